package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/lotse/lotse/internal/controller/manager"
	"github.com/lotse/lotse/internal/dns"
	"github.com/lotse/lotse/internal/ingress"
	"github.com/lotse/lotse/internal/inmemory"
	"github.com/lotse/lotse/internal/pki"
	"github.com/lotse/lotse/internal/scheduler"
)

// Loopback is how an in-process component reaches the API, authenticated
// as user in groups: through the same handlers, authentication,
// authorization and admission as any client, with a client certificate of
// its own, but in memory instead of over TCP and TLS (DESIGN.md 3 allows
// exactly that). The certificate is presented as a verified TLS peer
// certificate, so the x509 authenticator knows the component as it would
// from another machine. Exported for programs that run a component of
// their own in the server's process (benchmarks, tests); valid once the
// API is served.
func (s *Server) Loopback(user string, groups ...string) (*rest.Config, error) {
	if s.handler == nil {
		return nil, errors.New("server: the API is not served yet")
	}
	certPEM, _, err := s.pki.IssueClientCert(user, groups, 365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return nil, errors.New("server: issued client certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	return &rest.Config{
		Host: s.url,
		Transport: &inmemory.Transport{
			Handler:    s.handler,
			RemoteAddr: "127.0.0.1:0",
			TLS: &tls.ConnectionState{
				Version: tls.VersionTLS13, HandshakeComplete: true, NegotiatedProtocol: "h2",
				PeerCertificates: []*x509.Certificate{cert},
				VerifiedChains:   [][]*x509.Certificate{{cert, s.pki.CA}},
			},
		},
	}, nil
}

// clientConfig is the loopback of the scheduler and the controllers.
// Their client-side rate limit is far above upstream's defaults for
// kube-scheduler and kube-controller-manager (50 and 20 QPS): those
// protect a shared API server from a component elsewhere; here it is the
// one server's own component, and a limit of hundreds of requests a
// second would be what a 30,000-pod rollout waits on (bench/README.md,
// figure 13). It still stops a component gone into a hot loop from
// starving everyone else.
func (s *Server) clientConfig(user string) (*rest.Config, error) {
	cfg, err := s.Loopback(user)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 5000, 10000
	// Protobuf, as upstream's components talk by default: a pod
	// decodes in a fifth of the time JSON takes, and every informer
	// decodes every event.
	cfg.ContentConfig = rest.ContentConfig{
		ContentType:        "application/vnd.kubernetes.protobuf",
		AcceptContentTypes: "application/vnd.kubernetes.protobuf,application/json",
	}
	// "kube-controller-manager/lotse": server-side apply records writes
	// under the agent's first word, as upstream's components are
	// recorded.
	cfg.UserAgent = strings.TrimPrefix(user, "system:") + "/lotse"
	return cfg, nil
}

// sharedInformers is the one informer factory of a server process: the
// scheduler, the controllers, cluster DNS and the Ingress proxy all read
// the same caches, so 30,000 pods are held and decoded once, not once per
// component as separate kube-scheduler and kube-controller-manager
// processes must. A component's Start and Shutdown do not stop informers
// other components use: they run until the server stops.
type sharedInformers struct {
	informers.SharedInformerFactory
	stop <-chan struct{}
}

func (f sharedInformers) Start(<-chan struct{}) { f.SharedInformerFactory.Start(f.stop) }
func (f sharedInformers) Shutdown()             {}

// startComponents starts the control-plane components that run on the
// API: the scheduler and the controllers, each leader-elected so several
// servers can run them, and what every server serves.
func (s *Server) startComponents(ctx context.Context, bundle *pki.Bundle) (*sync.WaitGroup, error) {
	var wg sync.WaitGroup
	cfg, err := s.clientConfig("system:apiserver")
	if err != nil {
		return &wg, err
	}
	client := kubernetes.NewForConfigOrDie(cfg)
	factory := informers.NewSharedInformerFactory(client, 0)
	shared := sharedInformers{SharedInformerFactory: factory, stop: ctx.Done()}
	go func() {
		<-ctx.Done()
		factory.Shutdown()
	}()
	if !s.cfg.DisableScheduler {
		cfg, err := s.clientConfig("system:kube-scheduler")
		if err != nil {
			return &wg, err
		}
		sched, err := scheduler.New(scheduler.Config{
			Client: kubernetes.NewForConfigOrDie(cfg), LeaderElect: true, Logger: s.log.With("component", "scheduler"),
			Informers: shared,
		})
		if err != nil {
			return &wg, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sched.Run(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("scheduler stopped", "err", err)
			}
		}()
	}
	if err := s.startServing(ctx, client, shared, &wg); err != nil {
		return &wg, err
	}
	cfg, err = s.clientConfig("system:kube-controller-manager")
	if err != nil {
		return &wg, err
	}
	// Node IPAM: the server's own node brings its pod CIDR along; the
	// controller must not give it to a node that joins before that one
	// has registered, nor while the server runs without its node (it may
	// be started with it later).
	var reserved []netip.Prefix
	if own, err := netip.ParsePrefix(s.cfg.Node.PodCIDR); err == nil {
		reserved = append(reserved, own)
	}
	mgr, err := manager.New(manager.Config{
		RESTConfig: cfg, Enabled: s.cfg.Controllers, LeaderElect: true, Logger: s.log.With("component", "controller-manager"),
		Informers: shared,
		// The loopback has no CA to take it from: published as
		// kube-root-ca.crt in every namespace.
		RootCA:      bundle.CAPEM,
		ClusterCIDR: s.net.clusterCIDR, ReservedPodCIDRs: reserved,
	})
	if err != nil {
		return &wg, err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := mgr.Run(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("controller-manager stopped", "err", err)
		}
	}()
	return &wg, nil
}

// startServing starts what every server runs, leader or not: the cluster
// Services' endpoints at this server's address, cluster DNS and the
// Ingress proxy, both answering from the shared informers.
func (s *Server) startServing(ctx context.Context, client kubernetes.Interface, factory informers.SharedInformerFactory, wg *sync.WaitGroup) error {
	var err error
	var runs []func(context.Context) error
	dnsPort := 0
	if s.cfg.ClusterDNSPort != 0 {
		udp, tcp, err := listenDNS(s.cfg.AdvertiseAddress, s.cfg.ClusterDNSPort)
		if err != nil {
			return err
		}
		dnsPort = tcp.Addr().(*net.TCPAddr).Port
		core := factory.Core().V1()
		d := dns.New(dns.Config{Logger: s.log.With("component", "dns")}, core.Services(), factory.Discovery().V1().EndpointSlices())
		runs = append(runs, func(ctx context.Context) error { return d.Serve(ctx, udp, tcp) })
	}
	if s.cfg.IngressHTTPPort != 0 || s.cfg.IngressHTTPSPort != 0 {
		var lns [2]net.Listener
		for i, port := range []int{s.cfg.IngressHTTPPort, s.cfg.IngressHTTPSPort} {
			if port == 0 {
				continue
			}
			if lns[i], err = net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(max(port, 0)))); err != nil {
				return fmt.Errorf("server: ingress: %w", err)
			}
		}
		ing := ingress.New(ingress.Config{Client: client, Addresses: []string{s.cfg.AdvertiseAddress.String()},
			Logger: s.log.With("component", "ingress")}, factory)
		runs = append(runs, ing.Run, func(ctx context.Context) error { return ing.Serve(ctx, lns[0], lns[1]) })
	}
	factory.Start(ctx.Done())
	runs = append(runs, func(ctx context.Context) error {
		leases := &endpointLeases{etcd: s.etcdClient, addr: s.cfg.AdvertiseAddress.String()}
		s.keepClusterServices(ctx, client, leases, s.apiPort, dnsPort)
		return nil
	})
	for _, run := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("a serving component stopped", "err", err)
			}
		}()
	}
	return nil
}

// listenDNS opens UDP and TCP on the same port at addr (-1: a free one).
func listenDNS(addr net.IP, port int) (net.PacketConn, net.Listener, error) {
	for range 10 {
		tcp, err := net.Listen("tcp", net.JoinHostPort(addr.String(), strconv.Itoa(max(port, 0))))
		if err != nil {
			return nil, nil, fmt.Errorf("server: cluster DNS: %w", err)
		}
		udp, err := net.ListenPacket("udp", tcp.Addr().String())
		if err == nil {
			return udp, tcp, nil
		}
		tcp.Close()
		if port > 0 {
			return nil, nil, fmt.Errorf("server: cluster DNS: %w", err)
		}
	}
	return nil, nil, errors.New("server: cluster DNS: no port free for both UDP and TCP")
}
