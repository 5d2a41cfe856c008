package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"
)

// SimulatedLabel marks the Nodes of lotse sim. It is sim.LabelSimulated,
// which this package cannot import (sim's tests start a server, which
// imports this package); sim's tests check that the two agree.
const SimulatedLabel = "node.lotse.dev/simulated"

// VXLAN settings of the overlay between nodes that are not on one L2
// network: flannel's Linux defaults, so that firewalls already opened for
// it (UDP 8472) pass lotse's too.
const (
	vxlanID   = "1"
	vxlanPort = "8472"
)

// routes sends each other node's pod CIDR to that node. A node on this
// node's own network (its address is on a connected subnet) is reached
// directly: the pod CIDR is routed via its address (host gateway). A node
// behind a router is reached through a VXLAN overlay: the pod CIDR is
// routed via that node's VXLAN endpoint, whose address is the first of
// its pod CIDR and whose MAC address is derived from its node address,
// so that nodes need to tell each other nothing beyond their Node
// objects. The device is created when the first such node appears.
type routes struct {
	self    string
	nodeIP  netip.Addr
	podCIDR netip.Prefix
	device  string // the VXLAN device's name
	log     *slog.Logger
	// netns, when set, runs every command in that network namespace
	// (tests).
	netns string

	mu      sync.Mutex
	via     map[string]peerRoute // node -> route written
	overlay bool                 // the VXLAN device exists
}

// peerRoute is what one other node's pods are reached by.
type peerRoute struct {
	cidr    string
	nodeIP  string
	overlay bool
}

func newRoutes(self string, nodeIP netip.Addr, podCIDR netip.Prefix, bridge string, log *slog.Logger) *routes {
	device := "lotse.vxlan"
	if bridge != DefaultBridge {
		// Two nodes in one network namespace (tests) keep apart.
		device = bridge + ".vx"
	}
	return &routes{self: self, nodeIP: nodeIP, podCIDR: podCIDR, device: device, log: log}
}

func (r *routes) set(node *corev1.Node) {
	// Simulated nodes (lotse sim) run no pods to reach.
	if node.Name == r.self || node.Spec.PodCIDR == "" || node.Labels[SimulatedLabel] == "true" {
		return
	}
	var ip string
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && net.ParseIP(a.Address).To4() != nil {
			ip = a.Address
			break
		}
	}
	if ip == "" {
		return
	}
	r.mu.Lock()
	old, had := r.via[node.Name]
	r.mu.Unlock()
	if had && old.cidr == node.Spec.PodCIDR && old.nodeIP == ip {
		return // most updates of a Node change neither
	}
	path, err := r.pathTo(ip)
	if err != nil {
		r.log.Warn("cannot tell how to reach a node", "node", node.Name, "ip", ip, "err", err)
		return
	}
	if path == pathLocal {
		// A node on this very machine has its bridge's route already.
		return
	}
	want := peerRoute{cidr: node.Spec.PodCIDR, nodeIP: ip, overlay: path == pathRouted}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.via == nil {
		r.via = map[string]peerRoute{}
	}
	old, had = r.via[node.Name]
	if had && old == want {
		return
	}
	if had {
		r.unroute(old)
	}
	if err := r.route(want); err != nil {
		r.log.Warn("cannot route to a node's pods", "node", node.Name, "podCIDR", want.cidr, "nodeIP", ip, "overlay", want.overlay, "err", err)
		delete(r.via, node.Name)
		return
	}
	r.via[node.Name] = want
}

// route writes one node's route: via its address, or through the overlay
// with the neighbour and forwarding entries the device needs (it learns
// nothing by itself).
func (r *routes) route(p peerRoute) error {
	if !p.overlay {
		return r.ip("route", "replace", p.cidr, "via", p.nodeIP)
	}
	if err := r.ensureDevice(p.nodeIP); err != nil {
		return err
	}
	vtep, err := endpointOf(p.cidr)
	if err != nil {
		return err
	}
	mac := macFor(netip.MustParseAddr(p.nodeIP))
	if err := r.ip("neigh", "replace", vtep, "lladdr", mac, "dev", r.device, "nud", "permanent"); err != nil {
		return err
	}
	if err := r.run("bridge", "fdb", "replace", mac, "dev", r.device, "dst", p.nodeIP, "self", "permanent"); err != nil {
		return err
	}
	return r.ip("route", "replace", p.cidr, "via", vtep, "dev", r.device, "onlink")
}

// unroute removes what route wrote; errors are of no use here.
func (r *routes) unroute(p peerRoute) {
	if !p.overlay {
		_ = r.ip("route", "del", p.cidr, "via", p.nodeIP)
		return
	}
	vtep, err := endpointOf(p.cidr)
	if err != nil {
		return
	}
	_ = r.ip("route", "del", p.cidr, "via", vtep, "dev", r.device)
	_ = r.ip("neigh", "del", vtep, "dev", r.device)
	_ = r.run("bridge", "fdb", "del", macFor(netip.MustParseAddr(p.nodeIP)), "dev", r.device, "dst", p.nodeIP, "self")
}

// ensureDevice creates the VXLAN device: this node's endpoint, with the
// first address of its pod CIDR and the MAC address other nodes derive
// from this node's address. Its MTU leaves room for the 50 bytes of
// encapsulation on the link that leads to peer.
func (r *routes) ensureDevice(peer string) error {
	if r.overlay {
		return nil
	}
	if !r.nodeIP.Is4() {
		return fmt.Errorf("the overlay needs this node's IPv4 address")
	}
	vtep := r.podCIDR.Masked().Addr().String() + "/32"
	steps := [][]string{
		{"link", "add", r.device, "type", "vxlan", "id", vxlanID, "local", r.nodeIP.String(), "dstport", vxlanPort, "nolearning"},
		{"link", "set", r.device, "address", macFor(r.nodeIP), "mtu", fmt.Sprint(r.underlayMTU(peer) - vxlanOverhead), "up"},
		{"addr", "add", vtep, "dev", r.device},
	}
	for _, args := range steps {
		if err := r.ip(args...); err != nil {
			_ = r.ip("link", "del", r.device)
			return fmt.Errorf("creating the VXLAN device: %w", err)
		}
	}
	r.overlay = true
	r.log.Info("VXLAN overlay up", "device", r.device, "endpoint", vtep, "port", vxlanPort)
	return nil
}

func (r *routes) remove(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	node, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.via[node.Name]; ok {
		r.unroute(p)
		delete(r.via, node.Name)
	}
}

// clear removes the routes this node added and the VXLAN device (with
// whatever a crashed run left on it).
func (r *routes) clear() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, p := range r.via {
		if !p.overlay {
			r.unroute(p)
		}
		delete(r.via, name)
	}
	_ = r.ip("link", "del", r.device)
	r.overlay = false
}

// vxlanOverhead is what encapsulation adds to a packet: outer IPv4, UDP,
// VXLAN and inner Ethernet headers.
const vxlanOverhead = 50

// underlayMTU is the MTU of the device the kernel sends to peer through,
// 1500 when it cannot tell.
func (r *routes) underlayMTU(peer string) int {
	route, err := r.output("ip", "-o", "route", "get", peer)
	if err != nil {
		return 1500
	}
	dev := fieldAfter(route, "dev")
	link, err := r.output("ip", "-o", "link", "show", "dev", dev)
	if err != nil {
		return 1500
	}
	var mtu int
	if _, err := fmt.Sscan(fieldAfter(link, "mtu"), &mtu); err != nil || mtu <= vxlanOverhead {
		return 1500
	}
	return mtu
}

// fieldAfter returns the word after key in ip's one-line output.
func fieldAfter(out, key string) string {
	fields := strings.Fields(out)
	for i := 0; i+1 < len(fields); i++ {
		if fields[i] == key {
			return fields[i+1]
		}
	}
	return ""
}

// How this node reaches another node's address.
type path int

const (
	pathLocal  path = iota // an address of this machine
	pathOnLink             // on a connected subnet: host gateway
	pathRouted             // behind a router: overlay
)

// pathTo asks the kernel how it would send to ip.
func (r *routes) pathTo(ip string) (path, error) {
	out, err := r.output("ip", "-o", "route", "get", ip)
	if err != nil {
		return 0, err
	}
	switch fields := strings.Fields(out); {
	case len(fields) > 0 && fields[0] == "local":
		return pathLocal, nil
	case strings.Contains(" "+out, " via "):
		return pathRouted, nil
	default:
		return pathOnLink, nil
	}
}

// endpointOf is the VXLAN endpoint address of the node with pod CIDR cidr:
// the CIDR's first address.
func endpointOf(cidr string) (string, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() {
		return "", fmt.Errorf("pod CIDR %q is not an IPv4 prefix", cidr)
	}
	return p.Masked().Addr().String(), nil
}

// macFor is the VXLAN device's MAC address of the node with address ip:
// locally administered, unicast, the address's four bytes at the end.
func macFor(ip netip.Addr) string {
	b := ip.As4()
	return fmt.Sprintf("0e:6c:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}

func (r *routes) ip(args ...string) error { return r.run("ip", args...) }

func (r *routes) run(cmd string, args ...string) error {
	_, err := r.output(cmd, args...)
	return err
}

// output runs ip or bridge (in r.netns, when set) and returns its output.
func (r *routes) output(cmd string, args ...string) (string, error) {
	if r.netns != "" {
		args = append([]string{"-n", r.netns}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, cmd, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s: %v: %s", cmd, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
