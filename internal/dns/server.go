package dns

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	coreinformers "k8s.io/client-go/informers/core/v1"
	discoveryinformers "k8s.io/client-go/informers/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	Domain    string   // default "cluster.local"
	Upstreams []string // "ip:port" resolvers for names outside the domain; nil: nameservers of /etc/resolv.conf; empty: refuse such names
	TTL       uint32   // default 5
	Logger    *slog.Logger
}

const (
	defaultDomain = "cluster.local"
	defaultTTL    = 5

	// maxTCPMessage is the largest message the 2-byte TCP length prefix allows.
	maxTCPMessage = 65535
	// udpReadSize is large enough for any query a client sends over UDP.
	udpReadSize = 4096
	// tcpIdleTimeout bounds how long an idle TCP connection is kept (RFC 7766
	// suggests seconds, not minutes).
	tcpIdleTimeout = 10 * time.Second
	// maxForwards bounds concurrent forwarded queries so a slow upstream
	// cannot make the server pile up goroutines.
	maxForwards = 1024
	// maxTCPConns bounds concurrent TCP clients for the same reason.
	maxTCPConns = 1024
)

// Server answers DNS queries for the cluster domain from informer caches and
// forwards everything else. It is safe for concurrent use.
type Server struct {
	log       *slog.Logger
	ttl       uint32
	zone      string // lowercase, with trailing dot: "cluster.local."
	upstreams []string

	services       cache.Indexer
	slices         cache.Indexer
	servicesSynced cache.InformerSynced
	slicesSynced   cache.InformerSynced
	synced         atomic.Bool

	soa      dnsmessage.SOAResource
	nsName   dnsmessage.Name // ns.dns.<zone>
	zoneName dnsmessage.Name

	scratch  sync.Pool // *scratch
	forwards chan struct{}

	upstreamTimeout time.Duration
}

// New builds a Server that reads the given informers. It registers the
// indexes it needs, so call it before the informers are started.
func New(cfg Config, services coreinformers.ServiceInformer, slices discoveryinformers.EndpointSliceInformer) *Server {
	if cfg.Domain == "" {
		cfg.Domain = defaultDomain
	}
	if cfg.TTL == 0 {
		cfg.TTL = defaultTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger.With("component", "dns")
	if cfg.Upstreams == nil {
		ups, err := resolvConfUpstreams("/etc/resolv.conf")
		if err != nil {
			log.Warn("no upstream resolvers; names outside the cluster domain will be refused", "err", err)
		}
		cfg.Upstreams = ups
	}
	zone := strings.ToLower(strings.Trim(cfg.Domain, ".")) + "."

	svcInf := services.Informer()
	sliceInf := slices.Informer()
	// The server keeps working without its indexes (it just cannot answer
	// those lookups), so a failure is logged rather than fatal.
	if err := addIndexers(svcInf, cache.Indexers{
		indexServicesByIP:    servicesByIP,
		cache.NamespaceIndex: cache.MetaNamespaceIndexFunc,
	}); err != nil {
		log.Error("registering service indexes", "err", err)
	}
	if err := addIndexers(sliceInf, cache.Indexers{
		indexSlicesByService: slicesByService,
		indexSlicesByAddr:    slicesByAddr,
	}); err != nil {
		log.Error("registering endpointslice indexes", "err", err)
	}

	s := &Server{
		log:             log,
		ttl:             cfg.TTL,
		zone:            zone,
		upstreams:       cfg.Upstreams,
		services:        svcInf.GetIndexer(),
		slices:          sliceInf.GetIndexer(),
		servicesSynced:  svcInf.HasSynced,
		slicesSynced:    sliceInf.HasSynced,
		forwards:        make(chan struct{}, maxForwards),
		upstreamTimeout: 2 * time.Second,
	}
	s.scratch.New = func() any { return newScratch() }
	s.zoneName = mustName(zone)
	s.nsName = mustName("ns.dns." + zone)
	s.soa = dnsmessage.SOAResource{
		NS:   s.nsName,
		MBox: mustName("hostmaster." + zone),
		// The serial only has to grow between restarts; nobody transfers
		// this zone, so the start time is enough.
		Serial:  uint32(time.Now().Unix()),
		Refresh: 7200,
		Retry:   1800,
		Expire:  86400,
		MinTTL:  cfg.TTL,
	}
	return s
}

func mustName(s string) dnsmessage.Name {
	n, err := dnsmessage.NewName(s)
	if err != nil {
		// Only reachable with a cluster domain longer than DNS allows.
		panic(fmt.Sprintf("dns: invalid name %q: %v", s, err))
	}
	return n
}

// ready reports whether both caches have synced; until then answers from
// them would be false NXDOMAINs, so in-domain queries get SERVFAIL instead.
func (s *Server) ready() bool {
	if s.synced.Load() {
		return true
	}
	if s.servicesSynced() && s.slicesSynced() {
		s.synced.Store(true)
		return true
	}
	return false
}

// ListenAndServe listens on addr over UDP and TCP and serves until ctx ends.
// With port 0 the two sockets get different ports.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	var lc net.ListenConfig
	udp, err := lc.ListenPacket(ctx, "udp", addr)
	if err != nil {
		return fmt.Errorf("dns: listen udp: %w", err)
	}
	tcp, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		udp.Close()
		return fmt.Errorf("dns: listen tcp: %w", err)
	}
	return s.Serve(ctx, udp, tcp)
}

// Serve answers queries on udp and tcp (either may be nil) until ctx ends,
// then closes both and returns nil once every goroutine it started is done.
// It returns early with an error if a socket fails for good.
func (s *Server) Serve(ctx context.Context, udp net.PacketConn, tcp net.Listener) error {
	if udp == nil && tcp == nil {
		return errors.New("dns: nothing to serve")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var wg sync.WaitGroup
	errc := make(chan error, runtime.GOMAXPROCS(0)+1)
	if udp != nil {
		// Several readers on one socket let the kernel spread queries over
		// all cores without any locking of our own.
		for range runtime.GOMAXPROCS(0) {
			wg.Go(func() {
				if err := s.serveUDP(ctx, udp, &wg); err != nil {
					errc <- err
				}
			})
		}
	}
	if tcp != nil {
		wg.Go(func() {
			if err := s.serveTCP(ctx, tcp, &wg); err != nil {
				errc <- err
			}
		})
	}
	stop := context.AfterFunc(ctx, func() {
		if udp != nil {
			udp.Close()
		}
		if tcp != nil {
			tcp.Close()
		}
	})
	defer stop()

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		cancel()
	}
	wg.Wait()
	return err
}

// udpPeer is where a UDP reply goes; the netip form avoids an allocation per
// packet on *net.UDPConn.
type udpPeer struct {
	ap   netip.AddrPort
	addr net.Addr
}

func (s *Server) serveUDP(ctx context.Context, pc net.PacketConn, wg *sync.WaitGroup) error {
	uc, _ := pc.(*net.UDPConn)
	sc := newScratch()
	req := make([]byte, udpReadSize)
	for {
		var (
			n    int
			peer udpPeer
			err  error
		)
		if uc != nil {
			n, peer.ap, err = uc.ReadFromUDPAddrPort(req)
		} else {
			n, peer.addr, err = pc.ReadFrom(req)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("dns: udp read: %w", err)
			}
			// Transient errors (ICMP feedback, buffer pressure) must not
			// take DNS down.
			s.log.Debug("udp read", "err", err)
			continue
		}
		resp, fwd := s.handle(sc, req[:n], true)
		if fwd {
			s.forwardAsync(ctx, wg, req[:n], func(b []byte) { s.writeUDP(pc, uc, peer, b) })
			continue
		}
		if resp != nil {
			s.writeUDP(pc, uc, peer, resp)
		}
	}
}

func (s *Server) writeUDP(pc net.PacketConn, uc *net.UDPConn, peer udpPeer, b []byte) {
	var err error
	if uc != nil {
		_, err = uc.WriteToUDPAddrPort(b, peer.ap)
	} else {
		_, err = pc.WriteTo(b, peer.addr)
	}
	if err != nil {
		s.log.Debug("udp write", "err", err)
	}
}

// forwardAsync forwards a copy of req on its own goroutine so a slow upstream
// never blocks a UDP reader; reply is called with the answer.
func (s *Server) forwardAsync(ctx context.Context, wg *sync.WaitGroup, req []byte, reply func([]byte)) {
	select {
	case s.forwards <- struct{}{}:
	default:
		// Too many queries in flight upstream: fail fast, the client retries.
		sc := s.getScratch()
		if resp := s.servfail(sc, req, true); resp != nil {
			reply(resp)
		}
		s.scratch.Put(sc)
		return
	}
	sc := s.getScratch()
	sc.req = append(sc.req[:0], req...)
	wg.Go(func() {
		defer func() { <-s.forwards }()
		defer s.scratch.Put(sc)
		if resp := s.forward(ctx, sc, sc.req, true); resp != nil {
			reply(resp)
		}
	})
}

func (s *Server) getScratch() *scratch { return s.scratch.Get().(*scratch) }

func (s *Server) serveTCP(ctx context.Context, ln net.Listener, wg *sync.WaitGroup) error {
	conns := make(chan struct{}, maxTCPConns)
	var delay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("dns: tcp accept: %w", err)
			}
			// Out of file descriptors and the like: back off and retry.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("tcp accept", "err", err, "retryIn", delay)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		delay = 0
		select {
		case conns <- struct{}{}:
		default:
			conn.Close()
			continue
		}
		wg.Go(func() {
			defer func() { <-conns }()
			s.serveConn(ctx, conn)
		})
	}
}

// serveConn answers queries on one TCP connection in order until the client
// goes quiet, closes, or ctx ends.
func (s *Server) serveConn(ctx context.Context, conn net.Conn) {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()

	sc := s.getScratch()
	defer s.scratch.Put(sc)
	r := bufio.NewReaderSize(conn, 1024)
	var lenBuf [2]byte
	for {
		conn.SetDeadline(time.Now().Add(tcpIdleTimeout))
		if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
			return
		}
		n := int(lenBuf[0])<<8 | int(lenBuf[1])
		if cap(sc.req) < n {
			sc.req = make([]byte, n)
		}
		req := sc.req[:n]
		if _, err := io.ReadFull(r, req); err != nil {
			return
		}
		resp, fwd := s.handle(sc, req, false)
		if fwd {
			resp = s.forward(ctx, sc, req, false)
		}
		if resp == nil {
			// Unanswerable garbage: the stream cannot be trusted any more.
			return
		}
		// One write per answer keeps the length prefix and the message in
		// one segment.
		sc.frame = append(sc.frame[:0], byte(len(resp)>>8), byte(len(resp)))
		sc.frame = append(sc.frame, resp...)
		if _, err := conn.Write(sc.frame); err != nil {
			return
		}
	}
}

// resolvConfUpstreams reads the nameserver lines of a resolv.conf.
func resolvConfUpstreams(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ups []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		addr, err := netip.ParseAddr(fields[1])
		if err != nil {
			continue
		}
		ups = append(ups, netip.AddrPortFrom(addr.WithZone(""), 53).String())
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(ups) == 0 {
		return nil, fmt.Errorf("dns: no nameserver in %s", path)
	}
	return ups, nil
}
