package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// Labels and annotations every simulated node carries. The label selects
// the sim's own nodes in its informer; both tell people the node is fake.
const (
	LabelType      = "type"
	LabelTypeValue = "lotse-sim"
	LabelSimulated = "node.lotse.dev/simulated"
	// RuntimeVersion is the node's status.nodeInfo.containerRuntimeVersion.
	RuntimeVersion = "sim://lotse"
)

// MaxNodes is how many nodes one Sim can run: each gets its own /24 of pod
// addresses out of 10.128.0.0/9.
const MaxNodes = 32768

// Config says what to simulate. Zero values take the defaults in brackets.
type Config struct {
	// Client talks to the API server; its QPS and burst bound every write.
	Client kubernetes.Interface
	// Nodes is how many nodes to run (required, 1..MaxNodes).
	Nodes int
	// NamePrefix starts every node name; node i is NamePrefix+i ["sim-"].
	NamePrefix string
	// NodeCPU, NodeMemory and NodeEphemeralStorage are each node's capacity
	// and allocatable [32, 256Gi, 1Ti]; MaxPods is its pod capacity [110].
	NodeCPU, NodeMemory, NodeEphemeralStorage resource.Quantity
	MaxPods                                   int
	// PodRunTime is how long pods with restartPolicy Never or OnFailure run
	// before they end Succeeded [5s]; negative means at once.
	PodRunTime time.Duration
	// KubeletVersion goes into status.nodeInfo ["v1.33.0-lotse"].
	KubeletVersion string
	// Workers process node registrations and pod changes [32];
	// LeaseWorkers renew leases on a queue of their own [8], so that a
	// flood of pods never delays heartbeats.
	Workers, LeaseWorkers int
	// LeaseRenewInterval [10s], LeaseDuration [40s] and StatusReportInterval
	// [5m] follow the kubelet's defaults.
	LeaseRenewInterval, LeaseDuration, StatusReportInterval time.Duration
	// Clock drives every timer [real time]; tests pass a fake one.
	Clock clock.WithTicker
	// Logger [discard].
	Logger *slog.Logger
}

// Sim runs simulated nodes. It writes only Nodes named NamePrefix+i, their
// Leases in kube-node-lease, and the status (and, once their grace period
// is over, the final deletion) of pods bound to those nodes. When Run
// returns it has deleted the Nodes and Leases it created (or adopted from an
// earlier sim: a node of the same name that already carries the simulated
// label) and nothing else; pods bound to them are left to the control plane,
// as when a real node goes away.
type Sim struct {
	cfg    Config
	log    *slog.Logger
	client kubernetes.Interface
	clock  clock.WithTicker

	nodes  []*node
	byName map[string]*node
	start  time.Time // phase origin of lease renewals

	// queue carries node and pod keys, leases carry node indexes.
	queue  workqueue.TypedRateLimitingInterface[key]
	leases workqueue.TypedRateLimitingInterface[int]

	nodeLister cache.Indexer
	podIndexer cache.Indexer

	mu   sync.Mutex
	pods map[types.NamespacedName]*podState

	registered atomic.Int64 // nodes whose Node and Lease have been written
}

// key names one unit of work on the main queue: a node (by index) or a pod.
type key struct {
	node int // meaningful when pod is empty
	pod  types.NamespacedName
}

// node is the sim's memory of one simulated node.
type node struct {
	index   int
	name    string
	hostIP  string
	podBase [3]byte // first three octets of the node's pod /24

	mu       sync.Mutex
	uid      types.UID // set once this sim created or adopted the Node
	foreign  bool      // a Node of this name exists that is not simulated
	leaseRV  string
	leaseUID types.UID
	used     [4]uint64 // pod address host parts in use
}

// New validates cfg, fills defaults and prepares a Sim; nothing is written
// until Run.
func New(cfg Config) (*Sim, error) {
	if cfg.Client == nil {
		return nil, errors.New("sim: Config.Client is required")
	}
	if cfg.Nodes < 1 || cfg.Nodes > MaxNodes {
		return nil, fmt.Errorf("sim: nodes must be between 1 and %d, not %d", MaxNodes, cfg.Nodes)
	}
	if cfg.NamePrefix == "" {
		cfg.NamePrefix = "sim-"
	}
	defQ := func(q *resource.Quantity, def string) {
		if q.IsZero() {
			*q = resource.MustParse(def)
		}
	}
	defQ(&cfg.NodeCPU, "32")
	defQ(&cfg.NodeMemory, "256Gi")
	defQ(&cfg.NodeEphemeralStorage, "1Ti")
	if cfg.NodeCPU.Sign() < 0 || cfg.NodeMemory.Sign() < 0 || cfg.NodeEphemeralStorage.Sign() < 0 {
		return nil, errors.New("sim: node capacity must not be negative")
	}
	if cfg.MaxPods == 0 {
		cfg.MaxPods = 110
	}
	if cfg.MaxPods < 0 {
		return nil, fmt.Errorf("sim: max pods must be positive, not %d", cfg.MaxPods)
	}
	if cfg.PodRunTime == 0 {
		cfg.PodRunTime = 5 * time.Second
	}
	if cfg.PodRunTime < 0 {
		cfg.PodRunTime = 0
	}
	if cfg.KubeletVersion == "" {
		cfg.KubeletVersion = "v1.33.0-lotse"
	}
	defInt := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	defInt(&cfg.Workers, 32)
	defInt(&cfg.LeaseWorkers, 8)
	defDur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	defDur(&cfg.LeaseRenewInterval, 10*time.Second)
	defDur(&cfg.LeaseDuration, 40*time.Second)
	defDur(&cfg.StatusReportInterval, 5*time.Minute)
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Sim{
		cfg: cfg, log: cfg.Logger, client: cfg.Client, clock: cfg.Clock,
		byName: make(map[string]*node, cfg.Nodes),
		pods:   make(map[types.NamespacedName]*podState),
	}
	for i := 0; i < cfg.Nodes; i++ {
		n := &node{
			index: i, name: cfg.NamePrefix + strconv.Itoa(i),
			// 10.255.0.0/16 holds the node addresses and 10.128.0.0/9 the
			// pod /24s; neither ever carries traffic.
			hostIP:  fmt.Sprintf("10.255.%d.%d", (i+1)>>8, (i+1)&0xff),
			podBase: [3]byte{10, byte(128 + i>>8), byte(i & 0xff)},
		}
		s.nodes = append(s.nodes, n)
		s.byName[n.name] = n
	}
	return s, nil
}

// NodeNames lists the names of the nodes the sim runs.
func (s *Sim) NodeNames() []string {
	names := make([]string, len(s.nodes))
	for i, n := range s.nodes {
		names[i] = n.name
	}
	return names
}

// Run registers the nodes, keeps them alive and runs their pods until ctx
// is done, then deletes the Nodes and Leases it created and returns.
func (s *Sim) Run(ctx context.Context) error {
	s.start = s.clock.Now()
	s.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[key](),
		workqueue.TypedRateLimitingQueueConfig[key]{Name: "sim", Clock: s.clock})
	s.leases = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[int](),
		workqueue.TypedRateLimitingQueueConfig[int]{Name: "sim-leases", Clock: s.clock})

	informerCtx, stopInformers := context.WithCancel(ctx)
	defer stopInformers()
	// One informer for the sim's own nodes (to notice others' changes) and
	// ONE for every bound pod in the cluster, dispatched by node name: a
	// watch per node would be 5,000 watches.
	nodeFactory := informers.NewSharedInformerFactoryWithOptions(s.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = LabelSimulated + "=true" }))
	podFactory := informers.NewSharedInformerFactoryWithOptions(s.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "spec.nodeName!=" }),
		informers.WithTransform(stripPod))
	nodeInf := nodeFactory.Core().V1().Nodes().Informer()
	podInf := podFactory.Core().V1().Pods().Informer()
	s.nodeLister, s.podIndexer = nodeInf.GetIndexer(), podInf.GetIndexer()
	if _, err := nodeInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) { s.nodeEvent(obj) },
		DeleteFunc: s.nodeEvent,
	}); err != nil {
		return err
	}
	if _, err := podInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    s.podEvent,
		UpdateFunc: func(_, obj any) { s.podEvent(obj) },
		DeleteFunc: s.podEvent,
	}); err != nil {
		return err
	}
	nodeFactory.Start(informerCtx.Done())
	podFactory.Start(informerCtx.Done())
	defer func() {
		stopInformers()
		nodeFactory.Shutdown()
		podFactory.Shutdown()
	}()
	if !cache.WaitForCacheSync(ctx.Done(), nodeInf.HasSynced, podInf.HasSynced) {
		s.shutdownQueues()
		return s.cleanup(ctx)
	}
	s.log.Info("sim starting", "nodes", len(s.nodes), "prefix", s.cfg.NamePrefix)

	for i := range s.nodes {
		s.queue.Add(key{node: i})
	}
	var wg sync.WaitGroup
	for i := 0; i < s.cfg.Workers; i++ {
		wg.Go(func() {
			for s.processNext(ctx) {
			}
		})
	}
	for i := 0; i < s.cfg.LeaseWorkers; i++ {
		wg.Go(func() {
			for s.processLease(ctx) {
			}
		})
	}
	<-ctx.Done()
	s.shutdownQueues()
	wg.Wait()
	return s.cleanup(ctx)
}

func (s *Sim) shutdownQueues() {
	s.queue.ShutDown()
	s.leases.ShutDown()
}

func (s *Sim) processNext(ctx context.Context) bool {
	k, quit := s.queue.Get()
	if quit {
		return false
	}
	defer s.queue.Done(k)
	var err error
	if k.pod.Name != "" {
		err = s.syncPod(ctx, k.pod)
	} else {
		err = s.syncNode(ctx, s.nodes[k.node])
	}
	if err != nil && ctx.Err() == nil {
		s.log.Debug("sim: retrying", "key", k, "err", err)
		// Conflicts and throttling are transient: try again with backoff.
		s.queue.AddRateLimited(k)
		return true
	}
	// Done with this key for now; its backoff starts afresh next time.
	s.queue.Forget(k)
	return true
}

func (s *Sim) processLease(ctx context.Context) bool {
	i, quit := s.leases.Get()
	if quit {
		return false
	}
	defer s.leases.Done(i)
	if err := s.renewLease(ctx, s.nodes[i]); err != nil && ctx.Err() == nil {
		s.log.Debug("sim: retrying lease", "node", s.nodes[i].name, "err", err)
		// Retry soon: the lease expires after LeaseDuration.
		s.leases.AddRateLimited(i)
		return true
	}
	// Renewed; the next renewal is already scheduled by renewLease.
	s.leases.Forget(i)
	return true
}

func (s *Sim) nodeEvent(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if n, ok := obj.(*corev1.Node); ok {
		if sn := s.byName[n.Name]; sn != nil {
			s.queue.Add(key{node: sn.index})
		}
	}
}

func (s *Sim) podEvent(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if p, ok := obj.(*corev1.Pod); ok && s.byName[p.Spec.NodeName] != nil {
		s.queue.Add(key{pod: types.NamespacedName{Namespace: p.Namespace, Name: p.Name}})
	}
}

// cleanup deletes the Leases and Nodes this sim created, each with a UID
// precondition so that an object someone re-created under the same name
// survives. It runs after ctx is done and so gets a context of its own.
func (s *Sim) cleanup(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	work := make(chan *node)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Go(func() {
			for n := range work {
				if err := s.deleteNode(cctx, n); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	deleted := 0
	for _, n := range s.nodes {
		n.mu.Lock()
		ours := n.uid != "" || n.leaseUID != ""
		n.mu.Unlock()
		if ours {
			deleted++
			work <- n
		}
	}
	close(work)
	wg.Wait()
	s.log.Info("sim stopped", "nodesDeleted", deleted, "errors", len(errs))
	if len(errs) > 5 {
		errs = append(errs[:5], fmt.Errorf("and %d more errors", len(errs)-5))
	}
	return errors.Join(errs...)
}

func (s *Sim) deleteNode(ctx context.Context, n *node) error {
	n.mu.Lock()
	uid, leaseUID := n.uid, n.leaseUID
	n.mu.Unlock()
	var errs []error
	if leaseUID != "" {
		err := s.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Delete(ctx, n.name,
			metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &leaseUID}})
		if ignoreGone(err) != nil {
			errs = append(errs, fmt.Errorf("delete lease %s: %w", n.name, err))
		}
	}
	if uid != "" {
		err := s.client.CoreV1().Nodes().Delete(ctx, n.name,
			metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if ignoreGone(err) != nil {
			errs = append(errs, fmt.Errorf("delete node %s: %w", n.name, err))
		}
	}
	return errors.Join(errs...)
}

// Registered counts the nodes whose Node and Lease this sim has written.
func (s *Sim) Registered() int { return int(s.registered.Load()) }
