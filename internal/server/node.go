package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lotse/lotse/internal/agent"
	"github.com/lotse/lotse/internal/containerd"
	"github.com/lotse/lotse/internal/images"
	"github.com/lotse/lotse/internal/node"
	"github.com/lotse/lotse/internal/pki"
	imageregistry "github.com/lotse/lotse/internal/registry"
)

// openImages opens the image registry in the data directory and makes
// sure it holds the sandbox image, so that no node ever pulls one from
// outside.
func openImages(dataDir string) (*imageregistry.Registry, error) {
	reg, err := imageregistry.Open(filepath.Join(dataDir, "registry"))
	if err != nil {
		return nil, err
	}
	pause, err := images.Pause()
	if err != nil {
		return nil, err
	}
	if err := reg.Put(images.PauseRef, pause); err != nil {
		return nil, fmt.Errorf("server: store the pause image: %w", err)
	}
	return reg, nil
}

// nodeTransport is how the API server calls node agents: TLS verified
// against the cluster CA, with a client certificate of its own.
func nodeTransport(bundle *pki.Bundle) (http.RoundTripper, error) {
	certPEM, keyPEM, err := bundle.IssueClientCert(agent.APIServerUser, nil, 365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(bundle.CA)
	return &http.Transport{
		TLSClientConfig: &tls.Config{
			RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
			// Upgrades (exec, port-forward) need HTTP/1.1.
			NextProtos: []string{"http/1.1"},
		},
		Proxy:               nil,
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
		MaxIdleConnsPerHost: 10,
	}, nil
}

// checkNode fails early, in one line, when the node cannot run here.
func (s *Server) checkNode() error {
	if s.cfg.DisableAgent || s.cfg.Node.RuntimeEndpoint != "" {
		return nil
	}
	return containerd.CheckBinaries()
}

// startNode runs this machine's node with credentials the server issues
// itself: a client certificate for system:node:<name> and a serving
// certificate for the agent's API.
func (s *Server) startNode(ctx context.Context, bundle *pki.Bundle) (<-chan error, error) {
	nc := s.cfg.Node
	if nc.Name == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, err
		}
		nc.Name = strings.ToLower(host)
	}
	if nc.IP == nil {
		nc.IP = node.HostIP()
	}
	switch nc.Port {
	case 0:
		nc.Port = node.DefaultPort
	case -1:
		nc.Port = 0
	}
	user := "system:node:" + nc.Name
	api, err := s.Loopback(user, "system:nodes")
	if err != nil {
		return nil, err
	}
	api.QPS, api.Burst, api.UserAgent = 50, 100, "lotse-agent/"+nc.Name
	servPEM, servKey, err := bundle.IssueServingCert(nc.Name, []string{nc.Name, "localhost"}, []net.IP{nc.IP, net.IPv4(127, 0, 0, 1)}, 365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	serving, err := tls.X509KeyPair(servPEM, servKey)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(bundle.CA)
	done := make(chan error, 1)
	go func() {
		done <- node.Run(ctx, node.Config{
			Name: nc.Name, Dir: filepath.Join(s.cfg.DataDir, "agent"), API: api,
			RuntimeEndpoint: nc.RuntimeEndpoint, SandboxImage: images.PauseRef,
			PodCIDR: nc.PodCIDR, Bridge: nc.Bridge, NodeIP: nc.IP, Port: nc.Port,
			ClusterCIDR: s.net.clusterCIDR.String(), ClusterDNS: s.net.clusterDNS.String(),
			ContainerLogMaxSize: nc.ContainerLogMaxSize, ContainerLogMaxFiles: nc.ContainerLogMaxFiles,
			ServingCert: serving, ClientCAs: pool, Version: Version.GitVersion,
			Labels: map[string]string{"node-role.kubernetes.io/control-plane": "true"},
			Log:    s.log,
		})
	}()
	return done, nil
}
