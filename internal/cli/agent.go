package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"

	"github.com/lotse/lotse/internal/images"
	"github.com/lotse/lotse/internal/join"
	"github.com/lotse/lotse/internal/memtrim"
	"github.com/lotse/lotse/internal/node"
	"github.com/lotse/lotse/internal/server"
)

// runAgent is `lotse agent`: this machine becomes a node of the cluster
// at --server, joining with the server's node token on first start and
// reusing the credentials it got on later ones.
func runAgent(args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("lotse agent", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var serverURL, token, dataDir, nodeName, nodeIP, endpoint, bridge, logLevel string
	var port int
	fs.StringVar(&serverURL, "server", "", "URL of the lotse server, https://HOST:6443 (required)")
	fs.StringVar(&token, "token", os.Getenv("LOTSE_TOKEN"), "the server's node token (its DATA/node-token; or $LOTSE_TOKEN)")
	fs.StringVar(&dataDir, "data-dir", "/var/lib/lotse-agent", "directory for the node's credentials, containerd and pods")
	fs.StringVar(&nodeName, "node-name", "", "node name (default: the host name)")
	fs.StringVar(&nodeIP, "node-ip", "", "node IP (default: the address of the default route's interface)")
	fs.StringVar(&endpoint, "container-runtime-endpoint", "", "CRI endpoint of a container runtime you run (default: lotse runs containerd itself)")
	fs.StringVar(&bridge, "cni-bridge", node.DefaultBridge, "Linux bridge the pods attach to")
	fs.IntVar(&port, "agent-port", node.DefaultPort, "port of the node agent's API (0 picks a free one)")
	var logFiles int
	logSize := containerLogFlags(fs, &logFiles)
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	maxLogSize, err := parseLogSize(*logSize, logFiles)
	if err != nil {
		return err
	}
	if serverURL == "" {
		return errors.New("--server is required")
	}
	log, err := newLogger(stderr, logLevel)
	if err != nil {
		return err
	}
	if nodeName == "" {
		host, err := os.Hostname()
		if err != nil {
			return err
		}
		nodeName = strings.ToLower(host)
	}
	ip := node.HostIP()
	if nodeIP != "" {
		if ip = net.ParseIP(nodeIP); ip == nil {
			return fmt.Errorf("--node-ip %q is not an IP address", nodeIP)
		}
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	ctx, stop := untilSignal()
	defer stop()
	creds, err := loadOrJoin(ctx, filepath.Join(dataDir, "pki"), serverURL, token, nodeName, ip)
	if err != nil {
		return err
	}
	serving, err := tls.X509KeyPair(creds.ServingCert, creds.ServingKey)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(creds.CA)
	api := &rest.Config{
		Host:            serverURL,
		TLSClientConfig: rest.TLSClientConfig{CAData: creds.CA, CertData: creds.ClientCert, KeyData: creds.ClientKey},
		QPS:             50, Burst: 100, UserAgent: "lotse-agent/" + nodeName,
	}
	fmt.Fprintf(stdout, "lotse agent: node %s (%s, pods %s) joined %s\n", nodeName, ip, creds.PodCIDR, serverURL)
	go memtrim.Loop(ctx, log)
	if os.Getenv("GOGC") == "" {
		// The agent's live heap is a few MB; collecting at 50% growth
		// instead of 100% keeps ~3 MB less resident on every node for a
		// GC cost that is noise at this heap size. GOGC overrides it.
		debug.SetGCPercent(50)
	}
	return node.Run(ctx, node.Config{
		Name: nodeName, Dir: dataDir, API: api, RuntimeEndpoint: endpoint, SandboxImage: images.PauseRef,
		PodCIDR: creds.PodCIDR, ClusterCIDR: creds.ClusterCIDR, ClusterDNS: creds.ClusterDNS,
		Bridge: bridge, NodeIP: ip, Port: port, ServingCert: serving, ClientCAs: pool,
		Version: server.Version.GitVersion, Log: log, ContainerLogMaxSize: maxLogSize, ContainerLogMaxFiles: logFiles,
	})
}

// The files a joined node keeps in DIR/pki.
var credentialFiles = []string{"ca.crt", "node.crt", "node.key", "serving.crt", "serving.key", "pod-cidr"}

// networkFile keeps the server's network plan: cluster CIDR and cluster
// DNS address, a line each. Nodes that joined before servers sent it have
// none and use the defaults.
const networkFile = "network"

// loadOrJoin reads the node's credentials, or joins with the token when
// there are none (or they belong to another node name).
func loadOrJoin(ctx context.Context, dir, serverURL, token, nodeName string, ip net.IP) (*join.Credentials, error) {
	var parts [][]byte
	for _, name := range credentialFiles {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			parts = nil
			break
		}
		parts = append(parts, data)
	}
	if parts != nil {
		creds := &join.Credentials{CA: parts[0], ClientCert: parts[1], ClientKey: parts[2], ServingCert: parts[3], ServingKey: parts[4], PodCIDR: string(bytes.TrimSpace(parts[5]))}
		if data, err := os.ReadFile(filepath.Join(dir, networkFile)); err == nil {
			lines := strings.Fields(string(data))
			if len(lines) == 2 {
				creds.ClusterCIDR, creds.ClusterDNS = lines[0], lines[1]
			}
		}
		if certUser(creds.ClientCert) == "system:node:"+nodeName {
			return creds, nil
		}
	}
	if token == "" {
		return nil, errors.New("--token is required to join (it is in the server's DATA/node-token)")
	}
	t, err := join.ParseToken(token)
	if err != nil {
		return nil, err
	}
	creds, err := join.Join(ctx, serverURL, t, nodeName, ip)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	for i, data := range [][]byte{creds.CA, creds.ClientCert, creds.ClientKey, creds.ServingCert, creds.ServingKey, []byte(creds.PodCIDR + "\n")} {
		if err := os.WriteFile(filepath.Join(dir, credentialFiles[i]), data, 0o600); err != nil {
			return nil, err
		}
	}
	if creds.ClusterCIDR != "" && creds.ClusterDNS != "" {
		if err := os.WriteFile(filepath.Join(dir, networkFile), []byte(creds.ClusterCIDR+"\n"+creds.ClusterDNS+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	return creds, nil
}

// certUser is the common name of a PEM certificate, "" if unreadable.
func certUser(certPEM []byte) string {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return ""
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return ""
	}
	return cert.Subject.CommonName
}
