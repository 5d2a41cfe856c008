package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3rpc"
	"go.etcd.io/etcd/server/v3/proxy/grpcproxy/adapter"
	"go.uber.org/zap"
)

const (
	// DefaultClientURL and DefaultPeerURL are etcd's well-known ports on loopback.
	DefaultClientURL = "http://127.0.0.1:2379"
	DefaultPeerURL   = "http://127.0.0.1:2380"
	// DefaultName is the member name used when Config.Name is empty.
	DefaultName = "lotse"

	// quotaBackendBytes caps the database at 4 GiB: double etcd's default,
	// half the size etcd advises as the most it handles well.
	quotaBackendBytes = 4 << 30
	// compactionRetention matches the interval at which kube-apiserver
	// compacts etcd, so watchers can resume from about as far back.
	compactionRetention = "5m"
	// startTimeout bounds Start even when the caller's context does not.
	startTimeout = 60 * time.Second
	// portAttempts is how often Start picks new free ports when one it
	// picked was taken before etcd could bind it.
	portAttempts = 5
)

// ErrStartTimeout is returned when the member is not ready within a minute.
var ErrStartTimeout = errors.New("etcd: member not ready within 60s")

// ErrDataDirInUse is returned when another Server, in this process or
// another, already runs on the data directory.
var ErrDataDirInUse = errors.New("etcd: data directory is in use")

// lockFileName is our lock inside DataDir. etcd locks its own files with
// blocking locks and would wait forever for a second member on the same
// directory; taking ours first without blocking turns that into an error.
const lockFileName = "lotse-etcd.lock"

// Config says where and how the member runs. Zero values pick defaults.
type Config struct {
	// DataDir holds the member's WAL and database; it is created with mode 0700.
	DataDir string
	// ClientURL is where clients connect, e.g. http://127.0.0.1:2379.
	// Port 0 picks a free port. Empty means DefaultClientURL.
	ClientURL string
	// PeerURL is where other members connect. Port 0 picks a free port.
	// Empty means DefaultPeerURL.
	PeerURL string
	// Name is the member's name. Empty means DefaultName.
	Name string
	// Unsafe turns off fsync. Only for tests: a crash loses data.
	Unsafe bool
	// Logger receives etcd's errors. Nil means slog.Default().
	Logger *slog.Logger
}

// Server is a running embedded etcd member.
type Server struct {
	etcd      *embed.Etcd
	lock      *os.File
	endpoints []string
	closing   *atomic.Bool
	closeOnce sync.Once
}

// Start starts the member and returns when it is ready to serve clients,
// or fails when ctx ends or a minute passes first.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("etcd: DataDir is required")
	}
	if cfg.ClientURL == "" {
		cfg.ClientURL = DefaultClientURL
	}
	if cfg.PeerURL == "" {
		cfg.PeerURL = DefaultPeerURL
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	clientURL, err := parseURL(cfg.ClientURL)
	if err != nil {
		return nil, err
	}
	peerURL, err := parseURL(cfg.PeerURL)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}

	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("etcd: start member %q: %w", cfg.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()

	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	pickPorts := clientURL.Port() == "0" || peerURL.Port() == "0"
	for attempt := 1; ; attempt++ {
		cu, pu := *clientURL, *peerURL
		if pickPorts {
			if err = pickFreePorts(&cu, &pu); err != nil {
				break
			}
		}
		var s *Server
		s, err = start(ctx, cfg, cu, pu)
		if err == nil {
			s.lock = lock
			return s, nil
		}
		// Between our probe closing a port and etcd binding it, another
		// process may take it; that is worth another pair of ports.
		if !pickPorts || attempt == portAttempts || !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	lock.Close()
	return nil, err
}

// lockDataDir takes an exclusive, non-blocking flock on DataDir's lock
// file. The lock goes with the file descriptor, so it is dropped when the
// file is closed or the process dies.
func lockDataDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrDataDirInUse, dir)
		}
		return nil, fmt.Errorf("etcd: lock %s: %w", dir, err)
	}
	return f, nil
}

func start(ctx context.Context, cfg Config, clientURL, peerURL url.URL) (*Server, error) {
	ec := embed.NewConfig()
	ec.Name = cfg.Name
	ec.Dir = cfg.DataDir
	ec.ListenClientUrls = []url.URL{clientURL}
	ec.AdvertiseClientUrls = []url.URL{clientURL}
	ec.ListenPeerUrls = []url.URL{peerURL}
	ec.AdvertisePeerUrls = []url.URL{peerURL}
	// Ignored when DataDir already holds a member: it restarts as it was.
	ec.InitialCluster = ec.InitialClusterFromName(cfg.Name)
	ec.UnsafeNoFsync = cfg.Unsafe
	ec.QuotaBackendBytes = quotaBackendBytes
	ec.AutoCompactionMode = embed.CompactorModePeriodic
	ec.AutoCompactionRetention = compactionRetention
	// Nothing of ours speaks etcd's JSON gateway; skipping it saves memory.
	ec.EnableGRPCGateway = false
	// A lone member has no peer to hear from: a short election timeout
	// only shortens how long a restart waits before it leads again
	// (the 1 s default costs about half a second of every warm start).
	ec.TickMs = 50
	ec.ElectionMs = 250
	// No metrics listener: ListenMetricsUrls stays empty.
	closing := new(atomic.Bool)
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.New(newSlogCore(cfg.Logger, zap.ErrorLevel, closing)))
	stop := func(e *embed.Etcd) {
		closing.Store(true)
		e.Close()
	}

	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("etcd: start member %q: %w", cfg.Name, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		stop(e)
		return nil, fmt.Errorf("etcd: member %q failed while starting: %w", cfg.Name, err)
	case <-e.Server.StopNotify():
		stop(e)
		return nil, fmt.Errorf("etcd: member %q stopped while starting", cfg.Name)
	case <-ctx.Done():
		stop(e)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, ErrStartTimeout
		}
		return nil, fmt.Errorf("etcd: start member %q: %w", cfg.Name, ctx.Err())
	}

	s := &Server{etcd: e, closing: closing}
	for _, l := range e.Clients {
		s.endpoints = append(s.endpoints, clientURL.Scheme+"://"+l.Addr().String())
	}
	return s, nil
}

// Endpoints returns the client URLs the member is bound to.
func (s *Server) Endpoints() []string {
	return append([]string(nil), s.endpoints...)
}

// InProcessKV returns a KV client that calls the member's KV service as a
// function instead of through gRPC over a socket: an API server in the
// same process is spared marshaling, framing and the system calls of both
// ends on every read and write. Only KV: etcd's in-process watch streams
// can deadlock when many watches are cancelled at once (etcd issues
// 18879 and 20716), so watches and leases stay on a socket client.
func (s *Server) InProcessKV() clientv3.KV {
	return clientv3.NewKVFromKVClient(adapter.KvServerToKvClient(v3rpc.NewQuotaKVServer(s.etcd.Server)), nil)
}

// Close stops the member, waiting for in-flight requests and the database
// to be closed. Calling it again does nothing.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		s.etcd.Close()
		<-s.etcd.Server.StopNotify()
		// Only now may another member open the directory.
		s.lock.Close()
	})
	return nil
}

func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("etcd: bad URL %q: %w", raw, err)
	}
	if u.Scheme != "http" {
		// TLS for peers comes with HA; until then only plain loopback is served.
		return nil, fmt.Errorf("etcd: URL %q: only http is supported", raw)
	}
	if u.Port() == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("etcd: URL %q needs a host and a port", raw)
	}
	// etcd binds literal addresses; "localhost" could resolve to ::1 or
	// 127.0.0.1 depending on the machine, so pin it.
	if strings.EqualFold(u.Hostname(), "localhost") {
		u.Host = net.JoinHostPort("127.0.0.1", u.Port())
	}
	return u, nil
}

// pickFreePorts replaces every port 0 in the URLs with a port that was free
// a moment ago. Both probes are held open together so the two URLs never
// get the same port.
func pickFreePorts(urls ...*url.URL) error {
	var probes []net.Listener
	defer func() {
		for _, l := range probes {
			l.Close()
		}
	}()
	for _, u := range urls {
		if u.Port() != "0" {
			continue
		}
		l, err := net.Listen("tcp", u.Host)
		if err != nil {
			return fmt.Errorf("etcd: find a free port on %s: %w", u.Hostname(), err)
		}
		probes = append(probes, l)
		_, port, _ := net.SplitHostPort(l.Addr().String())
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	return nil
}
