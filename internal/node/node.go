package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"path/filepath"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/lotse/lotse/internal/agent"
	"github.com/lotse/lotse/internal/containerd"
)

// Defaults for a node's network and agent.
const (
	DefaultPodCIDR = "10.42.0.0/24"
	DefaultBridge  = "lotse0"
	DefaultPort    = 10250
)

// Config is one node.
type Config struct {
	Name string
	// Dir is the node's own directory (DATA/agent).
	Dir string
	// API is how the node reaches the API server, as the node's user.
	API *rest.Config
	// RuntimeEndpoint, when set, is a CRI runtime the user runs; lotse
	// then neither configures nor starts containerd.
	RuntimeEndpoint string
	SandboxImage    string
	PodCIDR         string
	// ClusterCIDR is the cluster's pod network (DefaultClusterCIDR if
	// empty); ClusterDNS the kube-dns Service's address (DefaultClusterDNS
	// if empty).
	ClusterCIDR, ClusterDNS string
	Bridge                  string
	NodeIP                  net.IP
	Port                    int
	ServingCert             tls.Certificate
	// ClientCAs verifies the API server when it calls the agent.
	ClientCAs *x509.CertPool
	Labels    map[string]string
	Version   string
	Log       *slog.Logger
	// ContainerLogMaxSize and ContainerLogMaxFiles limit each container's
	// logs (agent.Config says how; zero means the defaults).
	ContainerLogMaxSize  int64
	ContainerLogMaxFiles int
}

// Run brings the node up and keeps it running until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if cfg.PodCIDR == "" {
		cfg.PodCIDR = DefaultPodCIDR
	}
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	if cfg.ClusterCIDR == "" {
		cfg.ClusterCIDR = DefaultClusterCIDR
	}
	if cfg.ClusterDNS == "" {
		cfg.ClusterDNS = DefaultClusterDNS
	}
	if cfg.NodeIP == nil {
		cfg.NodeIP = HostIP()
	}
	client, err := kubernetes.NewForConfig(cfg.API)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 3)
	running := 0 // goroutines that report on errs

	endpoint := cfg.RuntimeEndpoint
	if endpoint == "" {
		if err := containerd.CheckBinaries(); err != nil {
			return err
		}
		mirror, err := startMirror(ctx, cfg.API)
		if err != nil {
			return err
		}
		layout := containerd.Layout{Dir: filepath.Join(cfg.Dir, "containerd")}
		if err := layout.Write(containerd.Settings{
			SandboxImage: cfg.SandboxImage, MirrorURL: mirror, PodCIDR: cfg.PodCIDR, Bridge: cfg.Bridge,
		}); err != nil {
			return err
		}
		ready := make(chan struct{})
		sup := &containerd.Supervisor{Layout: layout, Log: cfg.Log.With("component", "containerd")}
		running++
		go func() { errs <- sup.Run(ctx, func() { close(ready) }) }()
		select {
		case <-ready:
		case err := <-errs:
			return err
		case <-ctx.Done():
			return nil
		}
		endpoint = layout.Endpoint()
	} else {
		waitCtx, waitCancel := context.WithTimeout(ctx, 30*time.Second)
		err := containerd.WaitReady(waitCtx, endpoint)
		waitCancel()
		if err != nil {
			return fmt.Errorf("container runtime at %s: %w", endpoint, err)
		}
	}
	conn, err := containerd.Dial(endpoint)
	if err != nil {
		return err
	}
	defer conn.Close()
	podCIDR, err := netip.ParsePrefix(cfg.PodCIDR)
	if err != nil {
		return fmt.Errorf("pod CIDR: %w", err)
	}
	clusterCIDR, err := netip.ParsePrefix(cfg.ClusterCIDR)
	if err != nil {
		return fmt.Errorf("cluster CIDR: %w", err)
	}
	nw := &network{name: cfg.Name, bridge: cfg.Bridge, nodeIP: cfg.NodeIP, podCIDR: podCIDR, clusterCIDR: clusterCIDR.Masked(), client: client,
		log: cfg.Log.With("component", "network")}
	running++
	go func() { errs <- nw.run(ctx) }()
	a, err := agent.New(agent.Config{
		ClusterDNS: []string{cfg.ClusterDNS},
		NodeName:   cfg.Name, Client: client, Runtime: conn, Dir: cfg.Dir, PodCIDR: cfg.PodCIDR, NodeIP: cfg.NodeIP,
		Labels: cfg.Labels, Version: cfg.Version, Port: cfg.Port, ServingCert: cfg.ServingCert, ClientCAs: cfg.ClientCAs,
		ContainerLogMaxSize: cfg.ContainerLogMaxSize, ContainerLogMaxFiles: cfg.ContainerLogMaxFiles, SandboxImage: cfg.SandboxImage,
		Log: cfg.Log.With("component", "agent"),
	})
	if err != nil {
		return err
	}
	running++
	go func() { errs <- a.Run(ctx) }()
	// The first to end (or ctx) ends all; wait for the rest.
	var first error
	select {
	case <-ctx.Done():
	case first = <-errs:
		running--
	}
	cancel()
	for ; running > 0; running-- {
		<-errs
	}
	return first
}

// startMirror serves, on a loopback port, the registry mirror containerd
// pulls every image through: it forwards to the API server's /v2/ with
// the node's credentials, so containerd needs neither TLS settings nor
// credentials of its own.
func startMirror(ctx context.Context, api *rest.Config) (string, error) {
	transport, err := rest.TransportFor(api)
	if err != nil {
		return "", err
	}
	upstream, err := url.Parse(api.Host)
	if err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("registry mirror: %w", err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.Out.Host = upstream.Host
		},
		Transport: transport,
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("registry mirror stopped", "err", err)
		}
	}()
	return "http://" + ln.Addr().String(), nil
}

// HostIP is the address of the interface that holds the default route,
// or loopback on a machine with none.
func HostIP() net.IP {
	conn, err := net.Dial("udp4", "192.0.2.1:9") // no packet is sent
	if err != nil {
		return net.IPv4(127, 0, 0, 1)
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).IP
}
