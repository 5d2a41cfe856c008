package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/lotse/lotse/internal/join"
	"github.com/lotse/lotse/internal/pki"
)

// podCIDRWait bounds how long a join waits for the node IPAM controller.
const podCIDRWait = 30 * time.Second

// newJoinHandler answers `lotse agent` joins with the token stored in
// DATA/node-token (created on first start).
func (s *Server) newJoinHandler(bundle *pki.Bundle) (http.Handler, error) {
	token, err := join.LoadOrCreateToken(filepath.Join(s.cfg.DataDir, "node-token"))
	if err != nil {
		return nil, fmt.Errorf("server: node token: %w", err)
	}
	s.token = token.String()
	const validity = 365 * 24 * time.Hour
	// The client is made at the first join: the server's address is known
	// only once it listens.
	var once sync.Once
	var client kubernetes.Interface
	var clientErr error
	loopback := func() (kubernetes.Interface, error) {
		once.Do(func() {
			cfg, err := s.clientConfig("system:apiserver")
			if err != nil {
				clientErr = err
				return
			}
			client, clientErr = kubernetes.NewForConfig(cfg)
		})
		return client, clientErr
	}
	return &join.Signer{
		Token: token,
		CA:    bundle.CAPEM,
		SignClient: func(pub any, user string, groups []string) ([]byte, error) {
			return bundle.SignClientKey(pub, user, groups, validity)
		},
		SignServing: func(pub any, name string, dnsNames []string, ips []net.IP) ([]byte, error) {
			return bundle.SignServingKey(pub, name, dnsNames, ips, validity)
		},
		ClusterCIDR: s.net.clusterCIDR.String(), ClusterDNS: s.net.clusterDNS.String(),
		PodCIDR: func(ctx context.Context, name string) (string, error) {
			cs, err := loopback()
			if err != nil {
				return "", err
			}
			return podCIDRFor(ctx, cs, name)
		},
	}, nil
}

// podCIDRFor returns a joining node's pod CIDR: the one its Node has, or
// the one the node IPAM controller gives the Node created here for it.
// The controller is the one allocator of pod CIDRs; the agent completes
// the Node (labels, status) when it registers, before it starts pods.
func podCIDRFor(ctx context.Context, client kubernetes.Interface, name string) (string, error) {
	nodes := client.CoreV1().Nodes()
	_, err := nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("registering node %s: %w", name, err)
	}
	var cidr string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, podCIDRWait, true, func(ctx context.Context) (bool, error) {
		n, err := nodes.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil // transient; the timeout ends it
		}
		cidr = n.Spec.PodCIDR
		return cidr != "", nil
	})
	if err != nil {
		return "", fmt.Errorf("node %s was given no pod CIDR within %v: the nodeipam controller assigns them (is it running?)", name, podCIDRWait)
	}
	return cidr, nil
}
