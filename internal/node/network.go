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

// The defaults of `lotse server`'s network plan: the pod network all
// nodes' pod CIDRs (/24 each) come from, and the kube-dns Service's
// address ClusterFirst pods resolve with.
const (
	DefaultClusterCIDR = "10.42.0.0/16"
	DefaultClusterDNS  = "10.43.0.10"
)

// network is a node's share of the cluster network: the kernel settings
// pods and Services need, routes to the other nodes' pods, the Service
// proxy and NetworkPolicy.
type network struct {
	name        string
	bridge      string
	nodeIP      net.IP
	podCIDR     netip.Prefix
	clusterCIDR netip.Prefix
	client      kubernetes.Interface
	log         *slog.Logger
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
	clusterCIDR := n.clusterCIDR
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
	routes := newRoutes(n.name, nodeIP, n.podCIDR, n.bridge, n.log)
	routes.clear() // what a crashed run of this node left
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
