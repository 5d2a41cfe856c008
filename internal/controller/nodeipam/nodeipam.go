package nodeipam

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net/netip"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/lotse/lotse/internal/controller"
)

// maxNodeCIDRs bounds the allocator's table; upstream refuses a cluster
// CIDR with more than 2^16 node CIDRs too.
const maxNodeCIDRs = 1 << 16

// Controller assigns pod CIDRs to Nodes.
type Controller struct {
	client   kubernetes.Interface
	nodes    corelisters.NodeLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	events   record.EventBroadcaster
	recorder record.EventRecorder
	log      *slog.Logger
	alloc    *allocator
}

// New builds the controller from the context's cluster CIDR; without one
// it allocates nothing, as upstream's does without --allocate-node-cidrs.
func New(ctx *controller.Context) (controller.Controller, error) {
	log := ctx.Logger.With("controller", "nodeipam")
	if !ctx.ClusterCIDR.IsValid() {
		return idle{log}, nil
	}
	alloc, err := newAllocator(ctx.ClusterCIDR, ctx.NodeCIDRMaskSize)
	if err != nil {
		return nil, err
	}
	for _, p := range ctx.ReservedPodCIDRs {
		alloc.occupy(p)
	}
	inf := ctx.Informers.Core().V1().Nodes()
	c := &Controller{
		client: ctx.Client, nodes: inf.Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "nodeipam"}),
		log: log, alloc: alloc,
	}
	c.events = record.NewBroadcaster()
	c.recorder = c.events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "cidrAllocator"})
	reg, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.observe(obj.(*corev1.Node)) },
		UpdateFunc: func(_, obj any) { c.observe(obj.(*corev1.Node)) },
		DeleteFunc: c.release,
	})
	if err != nil {
		return nil, err
	}
	// Allocation waits until this handler has seen every Node of the
	// first list, so that every CIDR in use is known before one is given.
	c.synced = []cache.InformerSynced{inf.Informer().HasSynced, reg.HasSynced}
	return c, nil
}

// observe takes note of a Node's CIDR, or queues a Node that has none.
func (c *Controller) observe(node *corev1.Node) {
	if node.Spec.PodCIDR == "" {
		c.queue.Add(node.Name)
		return
	}
	if p, err := netip.ParsePrefix(node.Spec.PodCIDR); err == nil {
		c.alloc.occupy(p)
	}
}

// release frees the CIDR of a deleted Node.
func (c *Controller) release(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	node, ok := obj.(*corev1.Node)
	if !ok || node.Spec.PodCIDR == "" {
		return
	}
	if p, err := netip.ParsePrefix(node.Spec.PodCIDR); err == nil {
		c.alloc.free(p)
	}
}

// Run allocates until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	c.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer c.events.Shutdown()
	return controller.RunWorkers(ctx, "nodeipam", c.synced, 1, func(ctx context.Context) {
		controller.ProcessQueue(ctx, c.queue, c.log, "node", c.sync)
	})
}

func (c *Controller) sync(ctx context.Context, name string) error {
	node, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if node.Spec.PodCIDR != "" {
		return nil
	}
	cidr, ok := c.alloc.next()
	if !ok {
		c.recorder.Eventf(node, corev1.EventTypeNormal, "CIDRNotAvailable", "Node %s status is now: CIDRNotAvailable", name)
		return fmt.Errorf("no pod CIDR left in %s for node %s", c.alloc.cluster, name)
	}
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"podCIDR": cidr.String(), "podCIDRs": []string{cidr.String()}}})
	if _, err := c.client.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		c.alloc.free(cidr)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	c.log.Info("pod CIDR assigned", "node", name, "podCIDR", cidr)
	return nil
}

// idle is the controller without a cluster CIDR.
type idle struct{ log *slog.Logger }

func (i idle) Run(ctx context.Context) error {
	i.log.Info("no cluster CIDR: pod CIDRs are not allocated")
	<-ctx.Done()
	return nil
}

// allocator hands out the node-sized subnets of a cluster CIDR, each once.
type allocator struct {
	cluster netip.Prefix
	bits    int // node subnet prefix length
	mu      sync.Mutex
	used    []bool
	last    int // where the previous search ended, so freed CIDRs rest a while
}

func newAllocator(cluster netip.Prefix, bits int) (*allocator, error) {
	cluster = cluster.Masked()
	if bits == 0 {
		bits = 24
		if cluster.Addr().Is6() {
			bits = 64
		}
	}
	if bits < cluster.Bits() || bits > cluster.Addr().BitLen() {
		return nil, fmt.Errorf("nodeipam: node CIDR mask size %d does not fit cluster CIDR %s", bits, cluster)
	}
	if bits-cluster.Bits() > 16 {
		return nil, fmt.Errorf("nodeipam: cluster CIDR %s holds more than %d node CIDRs of /%d", cluster, maxNodeCIDRs, bits)
	}
	return &allocator{cluster: cluster, bits: bits, used: make([]bool, 1<<(bits-cluster.Bits())), last: -1}, nil
}

// index is where p sits in the table, or -1 for a prefix that is not
// one of its subnets.
func (a *allocator) index(p netip.Prefix) int {
	if p.Bits() != a.bits || !a.cluster.Contains(p.Addr()) {
		return -1
	}
	off := new(big.Int).Sub(new(big.Int).SetBytes(p.Masked().Addr().AsSlice()), new(big.Int).SetBytes(a.cluster.Addr().AsSlice()))
	return int(off.Rsh(off, uint(p.Addr().BitLen()-a.bits)).Int64())
}

func (a *allocator) subnet(i int) netip.Prefix {
	off := new(big.Int).Lsh(big.NewInt(int64(i)), uint(a.cluster.Addr().BitLen()-a.bits))
	sum := new(big.Int).Add(new(big.Int).SetBytes(a.cluster.Addr().AsSlice()), off).FillBytes(make([]byte, a.cluster.Addr().BitLen()/8))
	addr, _ := netip.AddrFromSlice(sum)
	return netip.PrefixFrom(addr, a.bits)
}

func (a *allocator) occupy(p netip.Prefix) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if i := a.index(p); i >= 0 {
		a.used[i] = true
	}
}

func (a *allocator) free(p netip.Prefix) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if i := a.index(p); i >= 0 {
		a.used[i] = false
	}
}

// next takes the first free subnet after the one taken last.
func (a *allocator) next() (netip.Prefix, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k := 1; k <= len(a.used); k++ {
		i := (a.last + k) % len(a.used)
		if !a.used[i] {
			a.used[i], a.last = true, i
			return a.subnet(i), true
		}
	}
	return netip.Prefix{}, false
}
