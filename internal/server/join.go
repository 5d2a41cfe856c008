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

	"github.com/lotse/lotse/internal/join"
	"github.com/lotse/lotse/internal/node"
	"github.com/lotse/lotse/internal/pki"
	"github.com/lotse/lotse/internal/storage"
)

// ClusterCIDR is the range node pod CIDRs (/24 each) come from; the
// server's own node takes the first unless told otherwise.
const ClusterCIDR = node.DefaultClusterCIDR

// newJoinHandler answers `lotse agent` joins with the token stored in
// DATA/node-token (created on first start).
func (s *Server) newJoinHandler(bundle *pki.Bundle, store *storage.Store) (http.Handler, error) {
	token, err := join.LoadOrCreateToken(filepath.Join(s.cfg.DataDir, "node-token"))
	if err != nil {
		return nil, fmt.Errorf("server: node token: %w", err)
	}
	s.token = token.String()
	const validity = 365 * 24 * time.Hour
	alloc := &podCIDRs{store: store, own: s.cfg.Node.PodCIDR, reserved: map[string]string{}}
	return &join.Signer{
		Token: token,
		CA:    bundle.CAPEM,
		SignClient: func(pub any, user string, groups []string) ([]byte, error) {
			return bundle.SignClientKey(pub, user, groups, validity)
		},
		SignServing: func(pub any, name string, dnsNames []string, ips []net.IP) ([]byte, error) {
			return bundle.SignServingKey(pub, name, dnsNames, ips, validity)
		},
		PodCIDR: alloc.forNode,
	}, nil
}

// podCIDRs hands each node a /24 of ClusterCIDR that no other node has:
// the one its Node object already carries, or the first free one.
type podCIDRs struct {
	store    *storage.Store
	own      string // the server's own node's
	mu       sync.Mutex
	reserved map[string]string // node -> CIDR handed out, maybe not yet registered
}

func (p *podCIDRs) forNode(ctx context.Context, node string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	res, _ := p.store.Resource(corev1.Resource("nodes"))
	list, err := res.List(ctx, storage.ListOptions{})
	if err != nil {
		return "", err
	}
	used := map[string]bool{p.own: true}
	for _, obj := range list.Items {
		n := obj.(*corev1.Node)
		if n.Name == node && n.Spec.PodCIDR != "" {
			return n.Spec.PodCIDR, nil
		}
		used[n.Spec.PodCIDR] = true
	}
	if cidr, ok := p.reserved[node]; ok {
		return cidr, nil
	}
	for _, cidr := range p.reserved {
		used[cidr] = true
	}
	_, cluster, _ := net.ParseCIDR(ClusterCIDR)
	base := cluster.IP.To4()
	for i := 0; i < 256; i++ {
		cidr := fmt.Sprintf("%d.%d.%d.0/24", base[0], base[1], i)
		if !used[cidr] {
			p.reserved[node] = cidr
			return cidr, nil
		}
	}
	return "", fmt.Errorf("no free /24 left in %s", ClusterCIDR)
}
