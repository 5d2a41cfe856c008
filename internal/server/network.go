package server

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// The cluster's address ranges, as k3s names and defaults them.
const (
	DefaultClusterCIDR = "10.42.0.0/16"
	DefaultServiceCIDR = "10.43.0.0/16"
)

// network is the cluster's address plan, checked and derived from Config.
type network struct {
	clusterCIDR netip.Prefix // pods; each node gets a /24 of it
	serviceCIDR netip.Prefix // Service cluster IPs
	kubernetes  netip.Addr   // the `kubernetes` Service: the range's first address, as upstream
	clusterDNS  netip.Addr   // the `kube-dns` Service
	nodePodCIDR netip.Prefix // this machine's node
}

// newNetwork checks the ranges (IPv4, pods' and Services' apart) and
// fills the defaults: the cluster DNS
// address is the service range's tenth, as k3s's; the node's pod CIDR is
// the cluster range's first /24.
func newNetwork(clusterCIDR, serviceCIDR, clusterDNS, podCIDR string) (network, error) {
	var n network
	parse := func(flag, s, def string, maxBits int) (netip.Prefix, error) {
		if s == "" {
			s = def
		}
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() || p.Bits() > maxBits {
			return netip.Prefix{}, fmt.Errorf("server: --%s %q: want an IPv4 CIDR of /%d or larger", flag, s, maxBits)
		}
		return p.Masked(), nil
	}
	var err error
	if n.clusterCIDR, err = parse("cluster-cidr", clusterCIDR, DefaultClusterCIDR, 24); err != nil {
		return n, err
	}
	if n.serviceCIDR, err = parse("service-cidr", serviceCIDR, DefaultServiceCIDR, 28); err != nil {
		return n, err
	}
	if n.clusterCIDR.Overlaps(n.serviceCIDR) {
		return n, fmt.Errorf("server: --cluster-cidr %s and --service-cidr %s overlap", n.clusterCIDR, n.serviceCIDR)
	}
	n.kubernetes = nth(n.serviceCIDR, 1)
	n.clusterDNS = nth(n.serviceCIDR, 10)
	if clusterDNS != "" {
		a, err := netip.ParseAddr(clusterDNS)
		if err != nil || !n.serviceCIDR.Contains(a) || a == n.serviceCIDR.Addr() || a == n.kubernetes {
			return n, fmt.Errorf("server: --cluster-dns %q: want an address of the service CIDR %s other than its first two (%s is the kubernetes Service's)",
				clusterDNS, n.serviceCIDR, n.kubernetes)
		}
		n.clusterDNS = a
	}
	// A pod CIDR outside the cluster's is allowed (tests use one): that
	// node's pods are then its own pod network.
	n.nodePodCIDR = netip.PrefixFrom(n.clusterCIDR.Addr(), 24)
	if podCIDR != "" {
		p, err := netip.ParsePrefix(podCIDR)
		if err != nil || !p.Addr().Is4() || p.Overlaps(n.serviceCIDR) {
			return n, fmt.Errorf("server: --pod-cidr %q: want an IPv4 CIDR outside the service CIDR %s", podCIDR, n.serviceCIDR)
		}
		n.nodePodCIDR = p.Masked()
	}
	return n, nil
}

// nth is the address at offset i of p (an IPv4 prefix).
func nth(p netip.Prefix, i uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], binary.BigEndian.Uint32(p.Addr().AsSlice())+i)
	return netip.AddrFrom4(b)
}
