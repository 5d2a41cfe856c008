package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/lotse/lotse/internal/scheduler"
	fw "github.com/lotse/lotse/internal/scheduler/framework"
	"github.com/lotse/lotse/internal/scheduler/plugins"
	"github.com/lotse/lotse/internal/testserver"
)

// The scheduler benchmarks (issue 4) share this harness: a control plane
// with no scheduler and no controller that could touch nodes or pods,
// simulated nodes written straight through the API, a backlog of pending
// pods, and a clock that runs from starting a scheduler to the last pod
// seen bound by a watch.

// bindConcurrency is the scheduler's default number of bind calls in
// flight; the bind-only baseline uses the same.
const bindConcurrency = 64

// benchScale reads LOTSE_BENCH_SCALE, a factor applied to every node and
// pod count of the scheduler benchmarks (default 1). LOTSE_BENCH_SCALE=0.05
// runs the 10,000-pod figure with 500 pods on 250 nodes: a check that the
// benchmark works, not a figure.
func benchScale(b *testing.B) float64 {
	b.Helper()
	v := os.Getenv("LOTSE_BENCH_SCALE")
	if v == "" {
		return 1
	}
	s, err := strconv.ParseFloat(v, 64)
	if err != nil || s <= 0 || s > 1 {
		b.Fatalf("LOTSE_BENCH_SCALE=%q: want a number in (0, 1]", v)
	}
	return s
}

func scaled(n int, s float64) int { return max(int(math.Round(float64(n)*s)), 1) }

// schedWorkload describes one scheduler benchmark.
type schedWorkload struct {
	nodes, pods int
	// pod returns pending pod i of namespace ns.
	pod func(ns string, i, nodes int) *corev1.Pod
	// bindTarget is where the bind-only baseline puts the k-th pod it
	// binds: round-robin, or the node the pod is pinned to.
	bindTarget func(p *corev1.Pod, k, nodes int) string
	// memGB is what the run needs at full scale, checked against
	// MemAvailable before starting.
	memGB float64
}

// schedCluster is the control plane of one scheduler benchmark.
type schedCluster struct {
	srv *testserver.Server
	// client is the scheduler's (and the bind-only baseline's): the
	// server's in-memory loopback, as `lotse server`'s own scheduler
	// reaches the API, with no client-side rate limit (the server is
	// measured).
	client kubernetes.Interface
	// conns are the creating workers' own connections.
	conns []kubernetes.Interface
	// probe is a separate connection, like a user's kubectl.
	probe kubernetes.Interface
	// observer is the clock's connection: it reads the pods' metadata.
	observer metadata.Interface
	nodes    []*corev1.Node // as created, for the decision replay
}

func startSchedCluster(b *testing.B) *schedCluster {
	b.Helper()
	// Only the namespace controller: above all no node lifecycle
	// controller, which would taint the heartbeat-less nodes, and no
	// pod GC or workload controllers.
	srv := testserver.Start(b, testserver.Options{DisableScheduler: true, Controllers: []string{"namespace"}})
	cfg := rest.CopyConfig(srv.Config)
	cfg.QPS, cfg.Burst = -1, 0
	ownConfig := func() *rest.Config {
		c := rest.CopyConfig(cfg)
		// A custom dialer opts out of client-go's shared transport.
		c.Dial = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		return c
	}
	own := func() kubernetes.Interface { return kubernetes.NewForConfigOrDie(ownConfig()) }
	loopback := srv.Loopback(b, "system:kube-scheduler")
	loopback.QPS, loopback.Burst = -1, 0
	c := &schedCluster{srv: srv, client: kubernetes.NewForConfigOrDie(loopback), probe: own(),
		observer: metadata.NewForConfigOrDie(ownConfig())}
	for range workers {
		c.conns = append(c.conns, own())
	}
	return c
}

func schedNodeName(i int) string { return fmt.Sprintf("node-%05d", i) }

// schedNode is simulated node i: Ready, 32 CPUs, 256Gi, room for 110
// pods, in one of three zones, as a kubelet would register it.
func schedNode(i int) *corev1.Node {
	name := schedNodeName(i)
	alloc := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods: resource.MustParse("110"), corev1.ResourceEphemeralStorage: resource.MustParse("500Gi"),
	}
	now := metav1.Now()
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
			"topology.kubernetes.io/zone": fmt.Sprintf("zone-%d", i%3),
		}},
		Status: corev1.NodeStatus{
			Capacity: alloc, Allocatable: alloc,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
				LastHeartbeatTime: now, LastTransitionTime: now}},
		},
	}
}

// createNodes writes nodes 0..n-1 (schedNode) through the API, without
// any kubelet behind them.
func (c *schedCluster) createNodes(b *testing.B, n int) {
	b.Helper()
	ctx := b.Context()
	c.nodes = make([]*corev1.Node, n)
	parallel(b, n, func(w, i int) error {
		node := schedNode(i)
		created, err := c.conns[w].CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		created.Status = node.Status
		created, err = c.conns[w].CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
		c.nodes[i] = created
		return err
	})
}

// createPods creates namespace ns and n pending pods in it with 16
// concurrent clients.
func (c *schedCluster) createPods(b *testing.B, ns string, wl schedWorkload) {
	b.Helper()
	ctx := b.Context()
	if _, err := c.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	parallel(b, wl.pods, func(w, i int) error {
		_, err := c.conns[w].CoreV1().Pods(ns).Create(ctx, wl.pod(ns, i, wl.nodes), metav1.CreateOptions{})
		return err
	})
}

// latencies collects the durations of one kind of API call.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) since(start time.Time) {
	d := time.Since(start)
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// quantile returns the q-quantile (0 < q <= 1), 0 if nothing was recorded.
func (l *latencies) quantile(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), l.d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(int(math.Ceil(q*float64(len(s))))-1, len(s)-1)]
}

// bindRun is what one timed phase measured: time to the last bind seen
// by a watch, and client-side latencies of the binds and of the probes.
type bindRun struct {
	start           time.Time
	firstBind       atomic.Int64 // ns from start to the first bind's answer
	elapsed         time.Duration
	bind, get, list latencies
	bindErrs        atomic.Int64
	probeErrs       atomic.Int64
	watchRestarts   atomic.Int64 // of the watch that stops the clock
	pods            int

	failOnce sync.Once
	failed   chan struct{} // closed when the run cannot end well
	failErr  error
}

// fail ends the run: the pods it binds would never all be bound.
func (r *bindRun) fail(err error) {
	r.failOnce.Do(func() {
		r.failErr = err
		close(r.failed)
	})
}

func (r *bindRun) rate() float64 { return float64(r.pods) / r.elapsed.Seconds() }

// timeToBind starts run and returns once a watch on ns has seen all n
// pods bound. Meanwhile a probe, on a connection of its own, GETs a node
// and a pod and LISTs 500 pods of ns (kubectl's page size) in a loop, to
// see what API latency a user gets while the backlog is being bound.
func (c *schedCluster) timeToBind(b *testing.B, ns string, n int, run func(ctx context.Context, r *bindRun)) *bindRun {
	b.Helper()
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	// The watch that stops the clock is an outside observer, on a
	// network connection of its own.
	pods := c.observer.Resource(corev1.SchemeGroupVersion.WithResource("pods")).Namespace(ns)
	head, err := pods.List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		b.Fatal(err)
	}
	r := &bindRun{pods: n, failed: make(chan struct{})}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { countBound(ctx, r, pods, head.ResourceVersion, n, done) })
	wg.Go(func() { c.probeLoop(ctx, ns, head.Items[0].Name, r) })
	stopProfile := startCPUProfile(b, ns)
	start := time.Now()
	r.start = start
	wg.Go(func() { run(ctx, r) })
	// Generous, so that a slow scheduler yields a figure rather than a
	// failure: 20 pods/s still finishes.
	timeout := 10*time.Minute + time.Duration(n)*50*time.Millisecond
	select {
	case <-done:
	case <-r.failed:
		cancel()
		wg.Wait()
		b.Fatalf("%s: %v", ns, r.failErr)
	case <-time.After(timeout):
		cancel()
		wg.Wait()
		b.Fatalf("%s: not all %d pods bound after %v", ns, n, timeout)
	}
	r.elapsed = time.Since(start)
	stopProfile()
	cancel()
	wg.Wait()
	return r
}

// startCPUProfile writes a CPU profile of the process (server, etcd,
// scheduler and clients) to $LOTSE_BENCH_PROFILES/name.cpu.pb.gz, when
// that directory is set, until the returned function is called.
func startCPUProfile(b *testing.B, name string) (stop func()) {
	b.Helper()
	dir := os.Getenv("LOTSE_BENCH_PROFILES")
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, name+".cpu.pb.gz"))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
	}
}

// countBound watches ns from rv and closes done once n distinct pods have
// been seen with spec.nodeName. It asks for bound pods only
// (fieldSelector spec.nodeName!=) and for their metadata only, so that
// the clock does not decode every pod the scheduler binds (a
// PartialObjectMetadata is a tenth of a pod); it keeps names, not pods.
// When its watch fails it relists and watches again, as an informer does.
func countBound(ctx context.Context, r *bindRun, pods metadata.ResourceInterface, rv string, n int, done chan struct{}) {
	const onlyBound = "spec.nodeName!="
	bound := make(map[string]struct{}, n)
	// see counts a bound pod and reports whether all n are bound.
	see := func(name string) bool {
		bound[name] = struct{}{}
		return len(bound) == n
	}
	for ctx.Err() == nil {
		if rv == "" {
			l, err := pods.List(ctx, metav1.ListOptions{FieldSelector: onlyBound})
			if err != nil {
				if ctx.Err() == nil {
					r.fail(fmt.Errorf("relisting the pods: %w", err))
				}
				return
			}
			for i := range l.Items {
				if see(l.Items[i].Name) {
					close(done)
					return
				}
			}
			rv = l.ResourceVersion
		}
		w, err := pods.Watch(ctx, metav1.ListOptions{FieldSelector: onlyBound, ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			r.watchRestarts.Add(1)
			rv = ""
			continue
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				r.watchRestarts.Add(1)
				rv = ""
				break
			}
			p, ok := ev.Object.(*metav1.PartialObjectMetadata)
			if !ok {
				continue
			}
			rv = p.ResourceVersion // resume here if the server ends the watch
			if ev.Type == watch.Deleted {
				continue
			}
			if see(p.Name) {
				close(done)
				w.Stop()
				return
			}
		}
		w.Stop()
	}
}

// probeLoop is a user's view of the API during the run; a call every
// 50 ms, so that it measures rather than adds load.
func (c *schedCluster) probeLoop(ctx context.Context, ns, pod string, r *bindRun) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for k := 0; ; k++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		start := time.Now()
		var err error
		switch k % 3 {
		case 0:
			_, err = c.probe.CoreV1().Nodes().Get(ctx, schedNodeName(k%len(c.nodes)), metav1.GetOptions{})
			if err == nil {
				r.get.since(start)
			}
		case 1:
			_, err = c.probe.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
			if err == nil {
				r.get.since(start)
			}
		case 2:
			// To the last byte, not decoded: the API's latency is
			// measured, and decoding 500 pods every 150 ms took 7% of
			// the two cores the scheduler and the server share.
			_, err = c.probe.CoreV1().RESTClient().Get().Namespace(ns).Resource("pods").
				VersionedParams(&metav1.ListOptions{Limit: 500}, scheme.ParameterCodec).
				SetHeader("Accept", runtime.ContentTypeProtobuf).DoRaw(ctx)
			if err == nil {
				r.list.since(start)
			}
		}
		if err != nil && ctx.Err() == nil {
			r.probeErrs.Add(1)
		}
	}
}

// timedBinder is the scheduler's own bind (a pods/binding create, as the
// default binder does) with its latency recorded.
type timedBinder struct {
	client kubernetes.Interface
	r      *bindRun
}

func (t *timedBinder) Bind(ctx context.Context, pod *corev1.Pod, node string) error {
	return bindPod(ctx, t.client, pod, node, t.r)
}

func (t *timedBinder) Preempt(context.Context, *corev1.Pod, string, []*corev1.Pod) error {
	return fmt.Errorf("bench: preemption is not expected here (every pod fits)")
}

func bindPod(ctx context.Context, c kubernetes.Interface, pod *corev1.Pod, node string, r *bindRun) error {
	binding := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	}
	start := time.Now()
	err := c.CoreV1().Pods(pod.Namespace).Bind(ctx, binding, metav1.CreateOptions{})
	if err != nil {
		if ctx.Err() == nil {
			r.bindErrs.Add(1)
		}
		return err
	}
	r.bind.since(start)
	r.firstBind.CompareAndSwap(0, int64(time.Since(r.start)))
	return nil
}

// warmInformers is an informer factory started before a phase's pods
// are created, as `lotse server`'s shared informers are running when pods
// arrive: the timed phase starts with the pods already in the informers'
// caches. A component's Start and Shutdown leave it running; close ends
// it.
type warmInformers struct {
	informers.SharedInformerFactory
	ctx    context.Context
	cancel context.CancelFunc
}

func (c *schedCluster) warmInformers(b *testing.B, opts ...informers.SharedInformerOption) *warmInformers {
	ctx, cancel := context.WithCancel(b.Context())
	return &warmInformers{SharedInformerFactory: informers.NewSharedInformerFactoryWithOptions(c.client, 0, opts...), ctx: ctx, cancel: cancel}
}

func (f *warmInformers) Start(<-chan struct{}) { f.SharedInformerFactory.Start(f.ctx.Done()) }
func (f *warmInformers) Shutdown()             {}

// start starts the informers registered so far and waits for their sync.
func (f *warmInformers) start(b *testing.B) {
	b.Helper()
	f.Start(nil)
	if res := f.WaitForCacheSyncWithContext(f.ctx); res.Err != nil {
		b.Fatalf("informers did not sync: %v", res.Err)
	}
}

// waitForPods waits until the pod informer holds n pods of ns.
func (f *warmInformers) waitForPods(b *testing.B, ns string, n int) {
	b.Helper()
	pods := f.Core().V1().Pods().Lister().Pods(ns)
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		l, err := pods.List(labels.Everything())
		if err != nil {
			b.Fatal(err)
		}
		if len(l) == n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("the informer holds %d of the %d pods of %s", len(l), n, ns)
		}
	}
}

func (f *warmInformers) close() {
	f.cancel()
	f.SharedInformerFactory.Shutdown()
}

// benchScheduler is lotse's scheduler with its defaults (events and the
// PodScheduled reporter included) on warm informers, its binds timed.
type benchScheduler struct {
	s      *scheduler.Scheduler
	binder *timedBinder
}

// newScheduler makes the scheduler, which registers its informers in inf:
// call it before inf.start.
func (c *schedCluster) newScheduler(b *testing.B, inf *warmInformers) *benchScheduler {
	b.Helper()
	binder := &timedBinder{client: c.client}
	s, err := scheduler.New(scheduler.Config{
		Client: c.client, Binder: binder, Informers: inf,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	return &benchScheduler{s: s, binder: binder}
}

// run schedules until ctx ends.
func (bs *benchScheduler) run(ctx context.Context, r *bindRun) {
	bs.binder.r = r
	if err := bs.s.Run(ctx); err != nil {
		r.fail(err)
	}
}

// bindOnly is the baseline: a "scheduler" that takes the pending pods
// from its warm informer and binds each where wl.bindTarget says, with
// the scheduler's bind concurrency, without filtering, scoring, a queue
// or events.
func (c *schedCluster) bindOnly(pods corelisters.PodNamespaceLister, wl schedWorkload) func(ctx context.Context, r *bindRun) {
	return func(ctx context.Context, r *bindRun) {
		all, err := pods.List(labels.Everything())
		if err != nil {
			r.fail(err)
			return
		}
		pending := make(chan *corev1.Pod, 1000)
		var wg sync.WaitGroup
		var next atomic.Int64
		for range bindConcurrency {
			wg.Go(func() {
				for p := range pending {
					_ = bindPod(ctx, c.client, p, wl.bindTarget(p, int(next.Add(1)-1), wl.nodes), r)
				}
			})
		}
		for _, p := range all {
			pending <- p
		}
		close(pending)
		wg.Wait()
	}
}

// replayDecisions times the scheduler's decisions alone: the same
// snapshot update, filter, score and assume steps its loop runs for each
// pod, on the same nodes and pods, in memory, with no API calls and no
// contention from the server. It is the CPU a decision costs; the
// share of the scheduler phase it amounts to is "scheduling work".
func replayDecisions(nodes []*corev1.Node, wl schedWorkload) (time.Duration, error) {
	cache := scheduler.NewCache()
	for _, n := range nodes {
		cache.AddNode(n)
	}
	alg := scheduler.NewAlgorithm(plugins.DefaultFilters(), plugins.AllScores(), plugins.DefaultScoreWeights(), 0, 1)
	var snap *fw.Snapshot
	var gen int64
	var total time.Duration
	for i := range wl.pods {
		p := wl.pod("replay", i, wl.nodes)
		p.UID = types.UID(fmt.Sprintf("replay-%d", i))
		start := time.Now()
		info := fw.NewPodInfo(p)
		snap = cache.UpdateSnapshot(snap, &gen)
		node, err := alg.Schedule(info, snap)
		if err != nil {
			return 0, fmt.Errorf("replay pod %d: %w", i, err)
		}
		cache.AssumePod(info, node)
		total += time.Since(start)
	}
	return total, nil
}

// checkMemory skips the benchmark when the machine lacks the memory the
// workload needs at this scale, with a quarter again as headroom.
func checkMemory(b *testing.B, needGB float64) {
	b.Helper()
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if have := kb / (1 << 20); have < needGB*1.25 {
				b.Skipf("needs about %.1f GB, %.1f GB available", needGB, have)
			}
		}
	}
}

// peakRSSMB is this process's high-water mark of resident memory: the
// server, etcd, the scheduler and the clients together.
func peakRSSMB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
