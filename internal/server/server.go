package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/version"

	"github.com/lotse/lotse/internal/apiserver"
	"github.com/lotse/lotse/internal/apiserver/registry"
	"github.com/lotse/lotse/internal/etcd"
	"github.com/lotse/lotse/internal/join"
	"github.com/lotse/lotse/internal/node"
	"github.com/lotse/lotse/internal/openapi"
	"github.com/lotse/lotse/internal/pki"
	"github.com/lotse/lotse/internal/satoken"
	"github.com/lotse/lotse/internal/storage"
)

// Version is the Kubernetes version lotse reports; kubectl picks its
// behaviour (and the machines' kubectl dispatcher its binary) from it.
var Version = version.Info{
	Major: "1", Minor: "33", GitVersion: "v1.33.0-lotse", GitCommit: "lotse", GitTreeState: "clean",
	BuildDate: "2026-11-29T00:00:00Z", GoVersion: "go1.26", Compiler: "gc", Platform: "linux/amd64",
}

// Config is everything `lotse server` needs.
type Config struct {
	DataDir     string
	BindAddress string // default 127.0.0.1
	HTTPSPort   int    // default 6443; 0 picks a free port
	// EtcdServers, when set, are the client URLs of an external etcd
	// cluster used instead of the embedded member.
	EtcdServers []string
	TLSSANs     []string
	// WriteKubeconfig is an extra path for the admin kubeconfig.
	WriteKubeconfig string
	// AdvertiseAddress is the address pods reach the API (and cluster
	// DNS) at, published as the `kubernetes` Service's endpoint. Default:
	// BindAddress when it is one specific non-loopback address, else the
	// host's default-route address.
	AdvertiseAddress net.IP
	// ClusterDNSPort serves cluster DNS on AdvertiseAddress (the CLI's
	// default is DefaultClusterDNSPort); 0 serves none, -1 a free port.
	ClusterDNSPort int
	// IngressHTTPPort and IngressHTTPSPort serve the built-in Ingress
	// controller on all addresses (the CLI's defaults are 80 and 443); 0
	// serves none, -1 a free port.
	IngressHTTPPort, IngressHTTPSPort int
	// ClusterCIDR is the pod network, of which each node gets a /24;
	// ServiceCIDR the range of Service cluster IPs; ClusterDNS the
	// kube-dns Service's address. Defaults: DefaultClusterCIDR,
	// DefaultServiceCIDR and the service range's tenth address.
	ClusterCIDR, ServiceCIDR, ClusterDNS string
	// DisableAgent runs no node on this machine (a control plane only).
	DisableAgent bool
	// Node configures the node this machine runs unless DisableAgent.
	Node NodeConfig
	// Profiling serves /debug/pprof/ to the cluster's administrators.
	Profiling bool
	// DisableScheduler leaves pods unscheduled (another scheduler runs).
	DisableScheduler bool
	// Controllers selects the controllers to run, as --controllers does
	// ("*" all, "-name" disables one); empty means all.
	Controllers []string
	// ServiceAccountIssuer is the "iss" of service account tokens;
	// default satoken.DefaultIssuer.
	ServiceAccountIssuer string
	// DisableAdmissionPlugins turns admission plugins off, as
	// --disable-admission-plugins; only "ServiceAccount" can be.
	DisableAdmissionPlugins []string
	// EventTTL is how long events are kept after their last write, as
	// kube-apiserver's --event-ttl; 0 means DefaultEventTTL.
	EventTTL time.Duration
	// EtcdUnsafeNoSync trades durability for speed; tests only.
	EtcdUnsafeNoSync bool
	Logger           *slog.Logger
}

// DefaultEventTTL is kube-apiserver's --event-ttl default.
const DefaultEventTTL = time.Hour

// AdmissionServiceAccount is the admission plugin that gives pods their
// service account's token (see apiserver.Config.ServiceAccountAdmission).
const AdmissionServiceAccount = "ServiceAccount"

// NodeConfig is the node `lotse server` runs on its own machine.
type NodeConfig struct {
	Name string // default: the host name
	IP   net.IP // default: the address of the default route's interface
	// Port is the agent's port; default 10250, -1 picks a free one.
	Port int
	// RuntimeEndpoint uses a CRI runtime the user runs instead of the
	// supervised containerd.
	RuntimeEndpoint string
	PodCIDR         string // default: the first /24 of the cluster CIDR
	Bridge          string
	// ContainerLogMaxSize and ContainerLogMaxFiles limit each container's
	// logs (zero: 10Mi and 5 files).
	ContainerLogMaxSize  int64
	ContainerLogMaxFiles int
}

// Server is a running control plane.
type Server struct {
	cfg        Config
	log        *slog.Logger
	url        string
	kubeconfig string
	ready      chan struct{}
	stopped    chan struct{}
	err        error
	pki        *pki.Bundle
	etcd       []string
	etcdClient *clientv3.Client
	token      string
	apiPort    int
	net        network
	// handler serves the API (and node joins); the server's own
	// components reach it in memory (see loopback).
	handler http.Handler
}

// New validates cfg and fills defaults; Start runs the server.
func New(cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("server: a data directory is required")
	}
	if cfg.EventTTL <= 0 {
		cfg.EventTTL = DefaultEventTTL
	}
	if cfg.BindAddress == "" {
		cfg.BindAddress = "127.0.0.1"
	}
	if net.ParseIP(cfg.BindAddress) == nil {
		return nil, fmt.Errorf("server: --bind-address %q is not an IP address", cfg.BindAddress)
	}
	if cfg.HTTPSPort < 0 || cfg.HTTPSPort > 65535 {
		return nil, fmt.Errorf("server: --https-port %d is out of range", cfg.HTTPSPort)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.AdvertiseAddress == nil {
		cfg.AdvertiseAddress = advertiseAddress(net.ParseIP(cfg.BindAddress), cfg.Node.IP)
	}
	plan, err := newNetwork(cfg.ClusterCIDR, cfg.ServiceCIDR, cfg.ClusterDNS, cfg.Node.PodCIDR)
	if err != nil {
		return nil, err
	}
	cfg.Node.PodCIDR = plan.nodePodCIDR.String()
	for _, p := range cfg.DisableAdmissionPlugins {
		if p != AdmissionServiceAccount {
			return nil, fmt.Errorf("server: admission plugin %q cannot be disabled (only %s can)", p, AdmissionServiceAccount)
		}
	}
	return &Server{cfg: cfg, log: cfg.Logger, net: plan, ready: make(chan struct{}), stopped: make(chan struct{})}, nil
}

// URL is the API server's https URL once ready.
func (s *Server) URL() string { return s.url }

// AdvertiseURL is the API's URL at the advertise address, for nodes on
// other machines.
func (s *Server) AdvertiseURL() string {
	return "https://" + net.JoinHostPort(s.cfg.AdvertiseAddress.String(), strconv.Itoa(s.apiPort))
}

// KubeconfigPath is where the admin kubeconfig was written.
func (s *Server) KubeconfigPath() string { return s.kubeconfig }

// EtcdEndpoints are the client URLs of the etcd the server uses.
func (s *Server) EtcdEndpoints() []string { return s.etcd }

// NodeToken is the bootstrap token `lotse agent --token` joins with.
func (s *Server) NodeToken() string { return s.token }

// PKI returns the cluster's certificates once ready.
func (s *Server) PKI() *pki.Bundle { return s.pki }

// ReadyNotify is closed once the API serves and the kubeconfig is written.
func (s *Server) ReadyNotify() <-chan struct{} { return s.ready }

// StopNotify is closed once the server has stopped; Err then says why.
func (s *Server) StopNotify() <-chan struct{} { return s.stopped }

// Err is the reason the server stopped, nil after a clean shutdown.
func (s *Server) Err() error { return s.err }

// Start runs the server in the background until ctx ends.
func (s *Server) Start(ctx context.Context) {
	go func() {
		s.err = s.run(ctx)
		close(s.stopped)
	}()
}

// Run starts the server and blocks until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	s.Start(ctx)
	<-s.stopped
	return s.err
}

func (s *Server) run(ctx context.Context) error {
	cfg := s.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("server: data directory: %w", err)
	}
	if err := s.checkNode(); err != nil {
		return err
	}
	// Pods reach the API by the kubernetes Service's address and at the
	// advertise address it maps to; both must be in the certificate.
	sans := append(slices.Clone(cfg.TLSSANs), s.net.kubernetes.String(), cfg.AdvertiseAddress.String())
	bundle, err := pki.LoadOrCreate(cfg.DataDir, sans)
	if err != nil {
		return err
	}
	s.pki = bundle

	endpoints := cfg.EtcdServers
	var member *etcd.Server
	if len(endpoints) == 0 {
		member, err = etcd.Start(ctx, etcd.Config{
			DataDir:   filepath.Join(cfg.DataDir, "etcd"),
			ClientURL: "http://127.0.0.1:0",
			PeerURL:   "http://127.0.0.1:0",
			Name:      "lotse",
			Unsafe:    cfg.EtcdUnsafeNoSync,
			Logger:    s.log,
		})
		if err != nil {
			return err
		}
		defer member.Close()
		endpoints = member.Endpoints()
	}
	s.etcd = endpoints
	client, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 10 * time.Second, Logger: quietZap()})
	if err != nil {
		return fmt.Errorf("server: etcd client: %w", err)
	}
	defer client.Close()
	s.etcdClient = client
	if member != nil {
		client.KV = member.InProcessKV()
	}

	reg := registry.Default()
	specs := apiserver.StorageResources(reg, cfg.EventTTL)
	store, err := storage.New(storage.Config{Client: client, Resources: specs, Logger: s.log})
	if err != nil {
		return err
	}
	storeCtx, stopStore := context.WithCancel(ctx)
	defer store.Stop()
	defer stopStore()
	store.Start(storeCtx)
	if err := ensureNamespaces(ctx, store); err != nil {
		return err
	}

	var ready atomic.Bool
	docs, err := openapi.Build(reg, Version.GitVersion)
	if err != nil {
		return err
	}
	imgs, err := openImages(cfg.DataDir)
	if err != nil {
		return err
	}
	toNodes, err := nodeTransport(bundle)
	if err != nil {
		return err
	}
	saKey, err := satoken.LoadOrCreateKey(filepath.Join(cfg.DataDir, satoken.KeyFile))
	if err != nil {
		return err
	}
	tokens, err := satoken.NewIssuer(saKey, cfg.ServiceAccountIssuer, nil)
	if err != nil {
		return err
	}
	api, err := apiserver.New(apiserver.Config{
		Tokens:                  tokens,
		ServiceCIDR:             s.net.serviceCIDR.String(),
		ServiceAccountAdmission: !slices.Contains(cfg.DisableAdmissionPlugins, AdmissionServiceAccount),
		Images:                  imgs,
		NodeTransport:           toNodes,
		Registry:                reg,
		Store:                   store,
		Authenticator:           x509Authenticator(bundle.CA),
		OpenAPI:                 docs,
		Profiling:               s.cfg.Profiling,
		Version:                 Version,
		Logger:                  s.log,
		Ready: func() error {
			if !ready.Load() {
				return errors.New("not ready yet")
			}
			return nil
		},
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.BindAddress, strconv.Itoa(cfg.HTTPSPort)))
	if err != nil {
		return fmt.Errorf("server: listen: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(bundle.CA)
	joins, err := s.newJoinHandler(bundle)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(join.Path, joins)
	mux.Handle("/", api)
	s.handler = mux
	httpServer := &http.Server{
		Handler: mux,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{bundle.ServingCert},
			ClientCAs:    pool,
			ClientAuth:   tls.VerifyClientCertIfGiven,
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"h2", "http/1.1"},
		},
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpServer.ServeTLS(ln, "", "") }()

	host := cfg.BindAddress
	if ip := net.ParseIP(host); ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	s.apiPort = ln.Addr().(*net.TCPAddr).Port
	s.url = "https://" + net.JoinHostPort(host, strconv.Itoa(s.apiPort))
	s.kubeconfig = filepath.Join(cfg.DataDir, "admin.kubeconfig")
	if err := bundle.WriteKubeconfig(s.kubeconfig, s.url); err != nil {
		return err
	}
	if cfg.WriteKubeconfig != "" {
		if err := bundle.WriteKubeconfig(cfg.WriteKubeconfig, s.url); err != nil {
			return err
		}
	}
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	err = store.WaitReady(waitCtx)
	cancel()
	if err != nil {
		return fmt.Errorf("server: watch caches did not load: %w", err)
	}
	ready.Store(true)
	close(s.ready)
	s.log.Info("lotse server ready", "url", s.url, "kubeconfig", s.kubeconfig)

	// Components get their own context so that they stop (and release
	// their leases) while the API still answers.
	componentsCtx, stopComponents := context.WithCancel(context.WithoutCancel(ctx))
	defer stopComponents()
	components, err := s.startComponents(componentsCtx, bundle)
	if err != nil {
		return err
	}
	var nodeDone <-chan error
	if !cfg.DisableAgent {
		if nodeDone, err = s.startNode(componentsCtx, bundle); err != nil {
			return err
		}
	}
	stopNode := func() {
		if nodeDone != nil {
			<-nodeDone
		}
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		stopComponents()
		components.Wait()
		stopNode()
		return fmt.Errorf("server: https: %w", err)
	case err := <-nodeDone:
		nodeDone = nil
		stopComponents()
		components.Wait()
		if err == nil {
			err = errors.New("stopped")
		}
		return fmt.Errorf("server: node: %w", err)
	}
	ready.Store(false)
	stopComponents()
	components.Wait()
	stopNode()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Watches never end by themselves; close them after in-flight
	// requests had a moment to finish.
	stopStore()
	_ = httpServer.Shutdown(shutdownCtx)
	_ = httpServer.Close()
	return nil
}

// advertiseAddress is the bind address when it names one reachable
// address, else the node's address, else the host's default route's.
func advertiseAddress(bind, nodeIP net.IP) net.IP {
	switch {
	case bind != nil && !bind.IsUnspecified() && !bind.IsLoopback():
		return bind
	case nodeIP != nil:
		return nodeIP
	}
	return node.HostIP()
}

// x509Authenticator accepts client certificates signed by the cluster CA
// (TLS has verified the chain): CN is the user, O the groups.
func x509Authenticator(ca *x509.Certificate) apiserver.Authenticator {
	return func(r *http.Request) (*apiserver.User, bool) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.PeerCertificates) == 0 {
			return nil, false
		}
		cert := r.TLS.PeerCertificates[0]
		if cert.Subject.CommonName == "" {
			return nil, false
		}
		return &apiserver.User{Name: cert.Subject.CommonName, Groups: append(cert.Subject.Organization, "system:authenticated")}, true
	}
}

// ensureNamespaces creates the namespaces every cluster has.
func ensureNamespaces(ctx context.Context, store *storage.Store) error {
	res, _ := store.Resource(corev1.Resource("namespaces"))
	for _, name := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
		ns := &corev1.Namespace{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: name, UID: uuid.NewUUID(), CreationTimestamp: metav1.Now(),
				Labels: map[string]string{corev1.LabelMetadataName: name}},
			Spec:   corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}},
			Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
		}
		if _, err := res.Create(ctx, "", name, ns); err != nil && !errors.Is(err, storage.ErrExists) {
			return fmt.Errorf("server: creating namespace %s: %w", name, err)
		}
	}
	return nil
}
