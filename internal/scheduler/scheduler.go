package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	schedulinglisters "k8s.io/client-go/listers/scheduling/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
	"github.com/lotse/lotse/internal/scheduler/plugins"
)

// DefaultSchedulerName is the spec.schedulerName pods get by default.
const DefaultSchedulerName = v1.DefaultSchedulerName

// Config configures a Scheduler.
type Config struct {
	// Client talks to the API server. Required.
	Client kubernetes.Interface
	// SchedulerName selects the pods to schedule: those whose
	// spec.schedulerName equals it. Default "default-scheduler".
	SchedulerName string
	// LeaderElect makes Run schedule only while holding the Lease
	// LeaseNamespace/LeaseName, so several servers can run it.
	LeaderElect    bool
	LeaseNamespace string // default kube-system
	LeaseName      string // default lotse-scheduler
	// Identity names this instance in the Lease; default hostname_uuid.
	Identity string
	// ScoreWeights maps score plugin names to weights (0 disables one);
	// nil means plugins.DefaultScoreWeights.
	ScoreWeights map[string]int64
	// PercentageOfNodesToScore bounds the search in large clusters; 0
	// is upstream's adaptive default, 100 looks at every node.
	PercentageOfNodesToScore int32
	// DisablePreemption stops pending pods from evicting pods of lower
	// priority.
	DisablePreemption bool
	// BindConcurrency bounds bind calls in flight; default 64.
	BindConcurrency int
	// Binder and Reporter default to the API; tests record instead.
	Binder   Binder
	Reporter Reporter
	// Clock drives backoff and flushes; default the real clock.
	Clock  clock.WithTicker
	Logger *slog.Logger
	// Informers, when set, is an informer factory shared with other
	// components of the process (see server.sharedInformers); by default
	// the scheduler makes its own from Client. Besides pods and nodes
	// the scheduler watches PriorityClasses, PersistentVolumeClaims,
	// PersistentVolumes, StorageClasses, Namespaces and
	// PodDisruptionBudgets through it.
	Informers informers.SharedInformerFactory
}

// Scheduler is the component. It is leader-only when LeaderElect is set.
type Scheduler struct {
	cfg       Config
	log       *slog.Logger
	cache     *Cache
	queue     *Queue
	algorithm *Algorithm
	binder    Binder
	reporter  Reporter
	bindSem   chan struct{}
	binds     sync.WaitGroup

	snapshot    *fw.Snapshot
	snapshotGen int64

	// factory is Config.Informers or the scheduler's own; the listers
	// below read from it once run has started it.
	factory         informers.SharedInformerFactory
	volumes         plugins.Listers
	priorityClasses schedulinglisters.PriorityClassLister
	pdbs            policylisters.PodDisruptionBudgetLister
}

// New validates cfg and fills defaults.
func New(cfg Config) (*Scheduler, error) {
	if cfg.Client == nil && (cfg.Binder == nil || cfg.Reporter == nil) {
		return nil, errors.New("scheduler: Config.Client is required")
	}
	if cfg.SchedulerName == "" {
		cfg.SchedulerName = DefaultSchedulerName
	}
	if cfg.LeaseNamespace == "" {
		cfg.LeaseNamespace = "kube-system"
	}
	if cfg.LeaseName == "" {
		cfg.LeaseName = "lotse-scheduler"
	}
	if cfg.Identity == "" {
		host, _ := os.Hostname()
		cfg.Identity = host + "_" + string(uuid.NewUUID())
	}
	if cfg.ScoreWeights == nil {
		cfg.ScoreWeights = plugins.DefaultScoreWeights()
	}
	if cfg.BindConcurrency <= 0 {
		cfg.BindConcurrency = 64
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PercentageOfNodesToScore < 0 || cfg.PercentageOfNodesToScore > 100 {
		return nil, fmt.Errorf("scheduler: PercentageOfNodesToScore %d is not within 0..100", cfg.PercentageOfNodesToScore)
	}
	// The plugins get their listers now; the informers behind them, and
	// those of pods, nodes and PriorityClasses, are registered here and
	// started by run (a factory started before run is then already warm).
	factory := cfg.Informers
	if factory == nil {
		factory = informers.NewSharedInformerFactory(cfg.Client, 0)
	}
	core := factory.Core().V1()
	listers := plugins.Listers{
		Claims:     core.PersistentVolumeClaims().Lister(),
		Volumes:    core.PersistentVolumes().Lister(),
		Classes:    factory.Storage().V1().StorageClasses().Lister(),
		Namespaces: core.Namespaces().Lister(),
	}
	s := &Scheduler{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "scheduler"),
		cache:     NewCache(),
		queue:     NewQueue(cfg.Clock),
		algorithm: NewAlgorithm(plugins.Filters(listers), plugins.Scores(listers), cfg.ScoreWeights, cfg.PercentageOfNodesToScore, uint64(time.Now().UnixNano())),
		binder:    cfg.Binder,
		reporter:  cfg.Reporter,
		bindSem:   make(chan struct{}, cfg.BindConcurrency),
		factory:   factory,
		volumes:   listers,
		pdbs:      factory.Policy().V1().PodDisruptionBudgets().Lister(),

		priorityClasses: factory.Scheduling().V1().PriorityClasses().Lister(),
	}
	core.Pods().Informer()
	core.Nodes().Informer()
	return s, nil
}

// Run schedules pods until ctx is done. With LeaderElect it first waits for
// the Lease and returns an error if it loses it while ctx is still live,
// so the caller can restart cleanly (with a new Scheduler: Run is called
// once).
func (s *Scheduler) Run(ctx context.Context) error {
	if !s.cfg.LeaderElect {
		return s.run(ctx)
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: s.cfg.LeaseNamespace, Name: s.cfg.LeaseName},
		Client:     s.cfg.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: s.cfg.Identity},
	}
	// The elector starts OnStartedLeading in its own goroutine and does
	// not wait for it; wg makes Run wait, so shutdown is complete.
	electionCtx, stopElection := context.WithCancel(ctx)
	defer stopElection()
	var (
		runErr  error
		wg      sync.WaitGroup
		mu      sync.Mutex
		stopped bool
	)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   15 * time.Second,
		RenewDeadline:   10 * time.Second,
		RetryPeriod:     2 * time.Second,
		ReleaseOnCancel: true,
		Name:            s.cfg.LeaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				mu.Lock()
				if stopped {
					mu.Unlock()
					return
				}
				wg.Add(1)
				mu.Unlock()
				defer wg.Done()
				s.log.Info("became leader", "identity", s.cfg.Identity)
				runErr = s.run(ctx)
				if runErr != nil {
					stopElection() // give up the Lease rather than hold it idle
				}
			},
			OnStoppedLeading: func() { s.log.Info("stopped leading", "identity", s.cfg.Identity) },
		},
	})
	if err != nil {
		return fmt.Errorf("scheduler: leader election: %w", err)
	}
	le.Run(electionCtx)
	mu.Lock()
	stopped = true
	mu.Unlock()
	wg.Wait()
	if runErr != nil {
		return runErr
	}
	if ctx.Err() == nil {
		return errors.New("scheduler: lost leadership")
	}
	return nil
}

// run is the scheduler proper: informers, queue, scheduling loop.
func (s *Scheduler) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if s.reporter == nil || s.binder == nil {
		b := record.NewBroadcaster(record.WithContext(ctx))
		b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: s.cfg.Client.CoreV1().Events("")})
		defer b.Shutdown()
		rec := b.NewRecorder(scheme.Scheme, v1.EventSource{Component: s.cfg.SchedulerName})
		if s.reporter == nil {
			s.reporter = apiReporter{client: s.cfg.Client, recorder: rec}
			defer func() { s.reporter = nil }()
		}
		if s.binder == nil {
			s.binder = apiBinder{client: s.cfg.Client, recorder: rec, volumes: s.volumes}
			defer func() { s.binder = nil }()
		}
	}
	factory := s.factory
	podInformer := factory.Core().V1().Pods().Informer()
	nodeInformer := factory.Core().V1().Nodes().Informer()
	podHandler, err := podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.onPodAdd(obj) },
		UpdateFunc: func(old, obj any) { s.onPodUpdate(old, obj) },
		DeleteFunc: func(obj any) { s.onPodDelete(obj) },
	})
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	// Informers shared with other components outlive this run.
	defer podInformer.RemoveEventHandler(podHandler)
	nodeHandler, err := nodeInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.onNodeAdd(obj) },
		UpdateFunc: func(old, obj any) { s.onNodeUpdate(old, obj) },
		DeleteFunc: func(obj any) { s.onNodeDelete(obj) },
	})
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	defer nodeInformer.RemoveEventHandler(nodeHandler)
	// A claim getting bound, a volume appearing or being relabelled, or
	// a StorageClass appearing can make a waiting pod with volumes fit.
	volumeInformers := []cache.SharedIndexInformer{
		factory.Core().V1().PersistentVolumeClaims().Informer(),
		factory.Core().V1().PersistentVolumes().Informer(),
		factory.Storage().V1().StorageClasses().Informer(),
	}
	for _, inf := range volumeInformers {
		h, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: func(any) { s.queue.MoveAllToActiveOrBackoff() },
			UpdateFunc: func(old, obj any) {
				if volumeSchedulingChanged(old, obj) {
					s.queue.MoveAllToActiveOrBackoff()
				}
			},
		})
		if err != nil {
			return fmt.Errorf("scheduler: %w", err)
		}
		defer inf.RemoveEventHandler(h)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("scheduler: cache for %v did not sync", typ)
		}
	}
	// A synced informer has its whole list in its store, but its handlers
	// get the list's items asynchronously: without this wait the first
	// pods could be placed while the cache knows only some nodes (seen as
	// three pods on one of three empty nodes).
	// WaitFor, unlike WaitForCacheSync, does not poll every 100 ms.
	if !cache.WaitFor(ctx, "", podHandler.HasSyncedChecker(), nodeHandler.HasSyncedChecker()) {
		return nil // ctx ended
	}
	s.log.Info("scheduler started", "schedulerName", s.cfg.SchedulerName, "nodes", s.cache.NodeCount())
	var wg sync.WaitGroup
	wg.Go(func() { s.queue.Run(ctx) })
	for s.scheduleOne(ctx) {
	}
	wg.Wait()
	s.binds.Wait()
	return nil
}

// responsibleFor says whether pod is a pending pod this scheduler owns.
func (s *Scheduler) responsibleFor(pod *v1.Pod) bool {
	return pod.Spec.SchedulerName == s.cfg.SchedulerName && pod.Spec.NodeName == "" &&
		pod.DeletionTimestamp == nil && !isTerminal(pod)
}

// podInfo precomputes a pending pod and resolves its priority when the
// Priority admission has not (spec.priority unset).
func (s *Scheduler) podInfo(pod *v1.Pod) *fw.PodInfo {
	info := fw.NewPodInfo(pod)
	if pod.Spec.Priority == nil && s.priorityClasses != nil {
		if name := pod.Spec.PriorityClassName; name != "" {
			if pc, err := s.priorityClasses.Get(name); err == nil {
				info.Priority = pc.Value
			}
		} else if pcs, err := s.priorityClasses.List(labels.Everything()); err == nil {
			for _, pc := range pcs {
				if pc.GlobalDefault {
					info.Priority = pc.Value
				}
			}
		}
	}
	return info
}

func asPod(obj any) (*v1.Pod, bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, ok := obj.(*v1.Pod)
	return p, ok
}

func asNode(obj any) (*v1.Node, bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	n, ok := obj.(*v1.Node)
	return n, ok
}

func (s *Scheduler) onPodAdd(obj any) {
	pod, ok := asPod(obj)
	if !ok {
		return
	}
	switch {
	case pod.Spec.NodeName != "":
		s.cache.AddPod(pod)
	case s.responsibleFor(pod) && !s.cache.IsAssumed(pod.UID):
		s.queue.Add(s.podInfo(pod))
	}
}

func (s *Scheduler) onPodUpdate(oldObj, obj any) {
	old, ok1 := asPod(oldObj)
	pod, ok2 := asPod(obj)
	if !ok1 || !ok2 {
		return
	}
	key := pod.Namespace + "/" + pod.Name
	switch {
	case pod.Spec.NodeName != "":
		// Bound (by us or anyone): it leaves the queue and counts on
		// its node; once it ends, its room is free for waiting pods.
		s.queue.Delete(key)
		s.cache.AddPod(pod)
		if isTerminal(pod) && !isTerminal(old) {
			s.queue.MoveAllToActiveOrBackoff()
		}
	case s.responsibleFor(pod):
		if s.cache.IsAssumed(pod.UID) {
			return // decided and being bound; the watch will catch up
		}
		s.queue.Update(s.podInfo(pod), schedulingFieldsChanged(old, pod))
	default:
		// Terminating, or handed to another scheduler.
		s.queue.Delete(key)
	}
}

// schedulingFieldsChanged ignores status and bookkeeping, so that our own
// PodScheduled update does not send an unschedulable pod round again.
func schedulingFieldsChanged(old, pod *v1.Pod) bool {
	return !apiequality.Semantic.DeepEqual(old.Spec, pod.Spec) ||
		!apiequality.Semantic.DeepEqual(old.Labels, pod.Labels) ||
		!apiequality.Semantic.DeepEqual(old.Annotations, pod.Annotations)
}

func (s *Scheduler) onPodDelete(obj any) {
	pod, ok := asPod(obj)
	if !ok {
		return
	}
	s.queue.Delete(pod.Namespace + "/" + pod.Name)
	s.cache.ForgetNomination(pod.UID)
	if pod.Spec.NodeName != "" || s.cache.IsAssumed(pod.UID) {
		s.cache.RemovePod(pod.UID)
		// Its room is free: pods waiting for room may fit now.
		s.queue.MoveAllToActiveOrBackoff()
	}
}

func (s *Scheduler) onNodeAdd(obj any) {
	if node, ok := asNode(obj); ok {
		s.cache.AddNode(node)
		s.queue.MoveAllToActiveOrBackoff()
	}
}

func (s *Scheduler) onNodeUpdate(oldObj, obj any) {
	old, ok1 := asNode(oldObj)
	node, ok2 := asNode(obj)
	if !ok1 || !ok2 {
		return
	}
	s.cache.AddNode(node)
	// Heartbeats change only timestamps; retrying every waiting pod on
	// each would be polling in disguise.
	if nodeSchedulingChanged(old, node) {
		s.queue.MoveAllToActiveOrBackoff()
	}
}

// nodeSchedulingChanged reports changes a filter could care about.
func nodeSchedulingChanged(old, node *v1.Node) bool {
	return !apiequality.Semantic.DeepEqual(old.Spec, node.Spec) ||
		!apiequality.Semantic.DeepEqual(old.Labels, node.Labels) ||
		!apiequality.Semantic.DeepEqual(old.Status.Allocatable, node.Status.Allocatable) ||
		fw.NodeIsReady(old) != fw.NodeIsReady(node)
}

// volumeSchedulingChanged reports changes to a claim, volume or class the
// volume filters could care about; status-only churn does not retry pods,
// except a claim's or volume's phase.
func volumeSchedulingChanged(oldObj, obj any) bool {
	switch o := obj.(type) {
	case *v1.PersistentVolumeClaim:
		old, ok := oldObj.(*v1.PersistentVolumeClaim)
		return !ok || !apiequality.Semantic.DeepEqual(old.Spec, o.Spec) ||
			!apiequality.Semantic.DeepEqual(old.Annotations, o.Annotations) || old.Status.Phase != o.Status.Phase
	case *v1.PersistentVolume:
		old, ok := oldObj.(*v1.PersistentVolume)
		return !ok || !apiequality.Semantic.DeepEqual(old.Spec, o.Spec) ||
			!apiequality.Semantic.DeepEqual(old.Labels, o.Labels) || old.Status.Phase != o.Status.Phase
	}
	// StorageClasses are immutable but for metadata; an update
	// changes nothing the filters read.
	return false
}

func (s *Scheduler) onNodeDelete(obj any) {
	if node, ok := asNode(obj); ok {
		s.cache.RemoveNode(node.Name)
	}
}

// snapshotIdle is how long the scheduler waits for a pod before it lets
// its snapshot go.
const snapshotIdle = 10 * time.Second

// scheduleOne takes one pod from the queue, decides, assumes and starts
// the bind. It returns false once the queue is closed.
func (s *Scheduler) scheduleOne(ctx context.Context) bool {
	qp, ok, idle := s.queue.PopWithin(snapshotIdle)
	if idle {
		// The snapshot holds every pod of its last update, the ones
		// deleted since included (after a whole workload's deletion,
		// hundreds of MB), until the next pod comes; idle, it goes, and
		// the next cycle makes a whole one again.
		s.snapshot = nil
		return true
	}
	if !ok {
		return false
	}
	pod := qp.Info.Pod
	s.snapshot = s.cache.UpdateSnapshot(s.snapshot, &s.snapshotGen)
	s.algorithm.nominated = s.cache.Nominated()
	node, err := s.algorithm.Schedule(qp.Info, s.snapshot)
	if err != nil {
		s.handleFailure(ctx, qp, err)
		return true
	}
	s.cache.AssumePod(qp.Info, node)
	select {
	case s.bindSem <- struct{}{}:
	case <-ctx.Done():
		s.cache.ForgetPod(pod.UID)
		return false
	}
	s.binds.Go(func() {
		defer func() { <-s.bindSem }()
		if err := s.binder.Bind(ctx, pod, node); err != nil {
			// The pod is not on the node after all; free its room
			// and retry later, unless it is gone.
			s.cache.ForgetPod(pod.UID)
			s.log.Debug("bind failed", "pod", qp.key, "node", node, "err", err)
			s.queue.AddBackoff(qp)
			return
		}
		// Done before the watch confirms: the informer's update then
		// finds nothing to drop.
		s.queue.Done(qp)
		s.reporter.Scheduled(pod, node)
	})
	return true
}

func (s *Scheduler) handleFailure(ctx context.Context, qp *QueuedPod, err error) {
	var fitErr *FitError
	if !errors.As(err, &fitErr) && !errors.Is(err, ErrNoNodesAvailable) {
		s.log.Error("scheduling failed", "pod", qp.key, "err", err)
		s.queue.AddBackoff(qp)
		return
	}
	pod := qp.Info.Pod
	if fitErr != nil && !s.cfg.DisablePreemption && !waitingForVictims(qp.Info, s.cache.NominatedNode(pod.UID), s.snapshot) {
		plan, msg := findPreemption(s.algorithm.filters, qp.Info, s.snapshot, fitErr, s.disruptionBudgets())
		fitErr.PostFilterMsg = msg
		if plan != nil {
			s.preempt(ctx, qp, plan)
		}
	}
	s.log.Debug("pod unschedulable", "pod", qp.key, "reason", err.Error())
	s.queue.AddUnschedulable(qp)
	msg := err.Error()
	s.binds.Go(func() {
		if err := s.reporter.Unschedulable(ctx, pod, msg); err != nil && ctx.Err() == nil {
			s.log.Warn("could not report unschedulable pod", "pod", qp.key, "err", err)
		}
	})
}

// disruptionBudgets lists every PodDisruptionBudget; preemption consults
// them once per attempt. On error it returns none: preemption then goes
// ahead as if no budget protected the victims.
func (s *Scheduler) disruptionBudgets() []*policyv1.PodDisruptionBudget {
	pdbs, err := s.pdbs.List(labels.Everything())
	if err != nil {
		s.log.Warn("listing PodDisruptionBudgets", "err", err)
		return nil
	}
	return pdbs
}

// preempt reserves the node for the pod and evicts the victims in the
// background; the pod waits as unschedulable until their deletion frees
// the room and moves it back.
func (s *Scheduler) preempt(ctx context.Context, qp *QueuedPod, plan *preemption) {
	s.cache.Nominate(qp.Info, plan.node)
	victims := make([]*v1.Pod, len(plan.victims))
	for i, v := range plan.victims {
		victims[i] = v.Pod
	}
	s.log.Info("preempting", "pod", qp.key, "node", plan.node, "victims", len(victims))
	pod := qp.Info.Pod
	s.binds.Go(func() {
		if err := s.binder.Preempt(ctx, pod, plan.node, victims); err != nil && ctx.Err() == nil {
			s.log.Warn("preemption failed", "pod", qp.key, "err", err)
		}
	})
}
