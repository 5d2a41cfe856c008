package testserver

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/lotse/lotse/internal/server"
)

// Options adjust the server a test starts.
type Options struct {
	// DataDir reuses a data directory (to test restarts); empty means a
	// fresh temporary one.
	DataDir string
	// Port fixes the HTTPS port (to restart on the same address); 0 picks one.
	Port int
	// DisableScheduler and Controllers choose which components the
	// server runs, as `lotse server --disable-scheduler --controllers`;
	// tests that run their own instance of a component turn the server's off.
	DisableScheduler bool
	Controllers      []string
	// ServiceAccountAdmission turns on the admission that gives pods
	// their kube-api-access volume and refuses pods whose service
	// account does not exist. Off by default so that tests can create
	// pods in a namespace the moment it exists.
	ServiceAccountAdmission bool
	// ClusterCIDR, ServiceCIDR and ClusterDNS are the network plan, as
	// `lotse server`'s flags of those names; empty for the defaults.
	ClusterCIDR, ServiceCIDR, ClusterDNS string
	// ClusterDNSPort serves cluster DNS (and so keeps the kube-dns
	// Service); 0 serves none, -1 a free port.
	ClusterDNSPort int
}

// Server is a running control plane owned by one test.
type Server struct {
	DataDir    string
	URL        string
	Kubeconfig string
	Config     *rest.Config
	Client     kubernetes.Interface
	// EtcdEndpoints reach the server's etcd directly (to compact it, say).
	EtcdEndpoints []string
	srv           *server.Server
	cancel        context.CancelFunc
}

// Start starts a control plane and stops it when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	dir := opts.DataDir
	if dir == "" {
		dir = t.TempDir()
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("LOTSE_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	sc := server.Config{
		DataDir: dir, HTTPSPort: opts.Port, DisableAgent: true, EtcdUnsafeNoSync: true, Logger: log,
		DisableScheduler: opts.DisableScheduler, Controllers: opts.Controllers,
		ClusterCIDR: opts.ClusterCIDR, ServiceCIDR: opts.ServiceCIDR, ClusterDNS: opts.ClusterDNS, ClusterDNSPort: opts.ClusterDNSPort,
	}
	if !opts.ServiceAccountAdmission {
		sc.DisableAdmissionPlugins = []string{server.AdmissionServiceAccount}
	}
	srv, err := server.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv.Start(ctx)
	select {
	case <-srv.ReadyNotify():
	case <-srv.StopNotify():
		cancel()
		t.Fatalf("lotse server failed to start: %v", srv.Err())
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("lotse server did not become ready in 60s")
	}
	s := &Server{DataDir: dir, URL: srv.URL(), Kubeconfig: srv.KubeconfigPath(), EtcdEndpoints: srv.EtcdEndpoints(), srv: srv, cancel: cancel}
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		s.Stop()
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	s.Config = cfg
	s.Client = kubernetes.NewForConfigOrDie(cfg)
	t.Cleanup(s.Stop)
	return s
}

// Stop shuts the control plane down and waits for it; it is idempotent.
func (s *Server) Stop() {
	s.cancel()
	<-s.srv.StopNotify()
}

// Loopback is a client configuration for user in groups over the server's
// in-memory transport, the one its own components use: as fast as a
// component inside `lotse server`, authenticated as user.
func (s *Server) Loopback(t testing.TB, user string, groups ...string) *rest.Config {
	t.Helper()
	cfg, err := s.srv.Loopback(user, groups...)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	return cfg
}

// Port is the HTTPS port the server listens on.
func (s *Server) Port() int { return portOf(s.URL) }
