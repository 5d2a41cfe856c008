package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/lotse/lotse/internal/netpol"
	"github.com/lotse/lotse/internal/proxy"
)

// DefaultClusterCIDR is the pod network all nodes' pod CIDRs (/24 each)
// come from.
const DefaultClusterCIDR = "10.42.0.0/16"

// ClusterDNS is the kube-dns Service's address ClusterFirst pods resolve
// with (lotse server keeps that Service).
const ClusterDNS = "10.43.0.10"

// network is a node's share of the cluster network: the kernel settings
// pods and Services need, routes to the other nodes' pods, the Service
// proxy and NetworkPolicy.
type network struct {
	name    string
	bridge  string
	nodeIP  net.IP
	podCIDR netip.Prefix
	client  kubernetes.Interface
	log     *slog.Logger
}

// run sets the node up and keeps proxy, policies and routes current
// until ctx ends; the nft tables go with it.
func (n *network) run(ctx context.Context) error {
	// Forwarding for pod and Service traffic; bridged pod-to-pod traffic
	// must pass the ip hooks for Service DNAT and NetworkPolicy.
	for _, key := range []string{"net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables"} {
		if err := os.WriteFile("/proc/sys/"+key, []byte("1"), 0o644); err != nil {
			n.log.Warn("cannot set a kernel setting the pod network needs", "sysctl", strings.ReplaceAll(key, "/", "."), "err", err)
		}
	}
	nodeIP, _ := netip.AddrFromSlice(n.nodeIP.To4())
	gateway := n.podCIDR.Addr().Next()
	// A node given a pod CIDR outside the cluster's (tests do) treats its
	// own pods as the pod network.
	clusterCIDR := netip.MustParsePrefix(DefaultClusterCIDR)
	if !clusterCIDR.Contains(n.podCIDR.Addr()) {
		clusterCIDR = n.podCIDR
	}

	// Two nodes on one machine (tests) each keep tables of their own.
	table := "lotse"
	if n.bridge != DefaultBridge {
		table += "-" + n.bridge
	}
	if err := nft(ctx, podnetRules(table+"-podnet", n.podCIDR, clusterCIDR)); err != nil {
		return fmt.Errorf("pod network masquerade: %w", err)
	}
	defer func() { _ = nft(context.WithoutCancel(ctx), "delete table ip "+table+"-podnet\n") }()

	factory := informers.NewSharedInformerFactory(n.client, 0)
	core := factory.Core().V1()
	svcProxy := proxy.New(proxy.Config{
		NodeName: n.name, Table: table, NodeIPs: []netip.Addr{nodeIP}, ClusterCIDR: clusterCIDR,
		Logger: n.log.With("component", "proxy"),
	}, core.Services(), factory.Discovery().V1().EndpointSlices())
	policies := netpol.New(netpol.Config{
		NodeName: n.name, Table: table + "-netpol", HostIPs: []netip.Addr{nodeIP, gateway},
		Logger: n.log.With("component", "netpol"),
	}, core.Pods(), core.Namespaces(), factory.Networking().V1().NetworkPolicies())
	routes := &routes{self: n.name, log: n.log}
	if _, err := core.Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { routes.set(obj.(*corev1.Node)) },
		UpdateFunc: func(_, obj any) { routes.set(obj.(*corev1.Node)) },
		DeleteFunc: routes.remove,
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, run := range []func(context.Context) error{svcProxy.Run, policies.Run} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- run(ctx)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	routes.clear()
	return nil
}

// routes sends each other node's pod CIDR to that node's address (the
// host-gateway mode: nodes on one L2 network). Nodes across routers
// would need an overlay (VXLAN), which lotse does not build yet.
type routes struct {
	self string
	log  *slog.Logger
	mu   sync.Mutex
	via  map[string][2]string // node -> {pod CIDR, node IP}
}

func (r *routes) set(node *corev1.Node) {
	if node.Name == r.self || node.Spec.PodCIDR == "" {
		return
	}
	var ip string
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && net.ParseIP(a.Address).To4() != nil {
			ip = a.Address
			break
		}
	}
	if ip == "" || isLocal(ip) {
		// A node on this very machine has its bridge's route already.
		return
	}
	want := [2]string{node.Spec.PodCIDR, ip}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.via == nil {
		r.via = map[string][2]string{}
	}
	if r.via[node.Name] == want {
		return
	}
	if err := ipRoute("replace", want[0], "via", want[1]); err != nil {
		r.log.Warn("cannot route to a node's pods", "node", node.Name, "podCIDR", want[0], "via", want[1], "err", err)
		return
	}
	r.via[node.Name] = want
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
	if via, ok := r.via[node.Name]; ok {
		_ = ipRoute("del", via[0], "via", via[1])
		delete(r.via, node.Name)
	}
}

// clear removes the routes this node added.
func (r *routes) clear() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, via := range r.via {
		_ = ipRoute("del", via[0], "via", via[1])
		delete(r.via, name)
	}
}

func ipRoute(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"route"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip route %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// isLocal reports whether ip is one of this machine's addresses.
func isLocal(ip string) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.String() == ip {
			return true
		}
	}
	return false
}

// podnetRules masquerade what the node's pods send out of the cluster
// network (the CNI bridge does not, so that pod addresses survive
// between nodes, as NetworkPolicy needs). Creating, deleting and
// recreating the table in one transaction replaces any earlier copy.
func podnetRules(table string, podCIDR, clusterCIDR netip.Prefix) string {
	return fmt.Sprintf(`table ip %[1]s
delete table ip %[1]s
table ip %[1]s {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr %[2]s ip daddr != %[3]s masquerade
	}
}
`, table, podCIDR.Masked(), clusterCIDR.Masked())
}

// nft applies one script atomically.
func nft(ctx context.Context, script string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
