package daemonset

import (
	"context"
	"log/slog"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/lotse/lotse/internal/controller"
)

var kind = appsv1.SchemeGroupVersion.WithKind("DaemonSet")

const (
	// burstReplicas caps the pods created or deleted in one sync, as upstream.
	burstReplicas = 250
	// workers is upstream's default --concurrent-daemonset-syncs.
	workers = 2
	// Failed daemon pods are replaced no faster than this back-off allows,
	// so a kubelet that keeps rejecting a pod does not make a hot loop.
	failedBackoffInitial = time.Second
	failedBackoffMax     = 15 * time.Minute
)

// Controller is the DaemonSet controller.
type Controller struct {
	client    kubernetes.Interface
	sets      appslisters.DaemonSetLister
	revisions cache.Indexer // with controller.ControllerUIDIndex
	pods      cache.Indexer // with controller.ControllerUIDIndex
	nodes     corelisters.NodeLister
	synced    []cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]
	expect    *expectations
	backoff   *flowcontrol.Backoff
	recorder  record.EventRecorder
	events    record.EventBroadcaster
	clock     clock.Clock
	log       *slog.Logger
}

// New builds the controller on the shared informers.
func New(ctx *controller.Context) (controller.Controller, error) {
	dsInf := ctx.Informers.Apps().V1().DaemonSets()
	revInf := ctx.Informers.Apps().V1().ControllerRevisions()
	podInf := ctx.Informers.Core().V1().Pods()
	nodeInf := ctx.Informers.Core().V1().Nodes()
	broadcaster := record.NewBroadcaster()
	c := &Controller{
		client:    ctx.Client,
		sets:      dsInf.Lister(),
		revisions: revInf.Informer().GetIndexer(),
		pods:      podInf.Informer().GetIndexer(),
		nodes:     nodeInf.Lister(),
		synced: []cache.InformerSynced{dsInf.Informer().HasSynced, revInf.Informer().HasSynced,
			podInf.Informer().HasSynced, nodeInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "daemonset", Clock: ctx.Clock}),
		expect:   newExpectations(ctx.Clock),
		backoff:  flowcontrol.NewFakeBackOff(failedBackoffInitial, failedBackoffMax, ctx.Clock),
		events:   broadcaster,
		recorder: broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "daemonset-controller"}),
		clock:    ctx.Clock,
		log:      ctx.Logger.With("controller", "daemonset"),
	}
	for _, inf := range []cache.SharedIndexInformer{revInf.Informer(), podInf.Informer()} {
		if err := controller.AddControllerUIDIndex(inf); err != nil {
			return nil, err
		}
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{dsInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.enqueue,
			UpdateFunc: func(_, obj any) { c.enqueue(obj) },
			DeleteFunc: func(obj any) {
				if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
					c.expect.forget(key)
					c.queue.Add(key)
				}
			},
		}},
		{revInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.revisionChanged,
			UpdateFunc: func(old, obj any) { c.revisionChanged(old); c.revisionChanged(obj) },
			DeleteFunc: c.revisionChanged,
		}},
		{podInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.addPod,
			UpdateFunc: c.updatePod,
			DeleteFunc: c.deletePod,
		}},
		{nodeInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.nodeChanged(nil, obj.(*corev1.Node)) },
			UpdateFunc: func(old, obj any) { c.nodeChanged(old.(*corev1.Node), obj.(*corev1.Node)) },
			DeleteFunc: func(any) { c.enqueueAll() },
		}},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Controller) enqueue(obj any) {
	if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
		c.queue.Add(key)
	}
}

func (c *Controller) enqueueAll() {
	sets, _ := c.sets.List(labels.Everything())
	for _, ds := range sets {
		c.enqueue(ds)
	}
}

// ownerKey is the key of the DaemonSet controlling obj, if any.
func ownerKey(obj metav1.Object) string {
	ref := metav1.GetControllerOf(obj)
	if ref == nil || ref.Kind != kind.Kind || ref.APIVersion != kind.GroupVersion().String() {
		return ""
	}
	return obj.GetNamespace() + "/" + ref.Name
}

// enqueueOwnerOrMatching queues obj's DaemonSet, or every set whose
// selector matches an orphan (one of them may adopt it).
func (c *Controller) enqueueOwnerOrMatching(obj metav1.Object) {
	if key := ownerKey(obj); key != "" {
		c.queue.Add(key)
		return
	}
	sets, err := c.sets.DaemonSets(obj.GetNamespace()).List(labels.Everything())
	if err != nil {
		return
	}
	for _, ds := range sets {
		sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(obj.GetLabels())) {
			c.enqueue(ds)
		}
	}
}

func (c *Controller) revisionChanged(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	if rev, ok := obj.(*appsv1.ControllerRevision); ok {
		c.enqueueOwnerOrMatching(rev)
	}
}

func (c *Controller) addPod(obj any) {
	pod := obj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil {
		// Seen first while going away (say after a restart): a deletion.
		c.deletePod(pod)
		return
	}
	if key := ownerKey(pod); key != "" {
		c.expect.created(key)
	}
	c.enqueueOwnerOrMatching(pod)
}

func (c *Controller) updatePod(oldObj, obj any) {
	old, pod := oldObj.(*corev1.Pod), obj.(*corev1.Pod)
	if old.ResourceVersion == pod.ResourceVersion {
		return // a resync
	}
	if pod.DeletionTimestamp != nil {
		// Graceful deletion: the pod is as good as gone for counting,
		// its replacement must not wait for the grace period.
		c.deletePod(pod)
		if ownerKey(old) != ownerKey(pod) {
			c.enqueueOwnerOrMatching(old)
		}
		return
	}
	if ownerKey(old) != ownerKey(pod) || !equality.Semantic.DeepEqual(old.Labels, pod.Labels) {
		c.enqueueOwnerOrMatching(old)
	}
	c.enqueueOwnerOrMatching(pod)
	if key := ownerKey(pod); key != "" && !podReady(old) && podReady(pod) {
		// Availability after minReadySeconds comes from time passing,
		// not from an event; one second against rounding, as upstream.
		if ds, err := c.sets.DaemonSets(pod.Namespace).Get(metav1.GetControllerOf(pod).Name); err == nil && ds.Spec.MinReadySeconds > 0 {
			c.queue.AddAfter(key, time.Duration(ds.Spec.MinReadySeconds)*time.Second+time.Second)
		}
	}
}

func (c *Controller) deletePod(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	// An orphan going away changes nothing a DaemonSet cares about.
	if key := ownerKey(pod); key != "" {
		c.expect.deleted(key, pod.UID)
		c.queue.Add(key)
	}
}

// nodeChanged queues the sets whose verdict on the node changed. Status
// heartbeats that change no condition are ignored.
func (c *Controller) nodeChanged(old, node *corev1.Node) {
	if old != nil && !nodeChangeMatters(old, node) {
		return
	}
	sets, err := c.sets.List(labels.Everything())
	if err != nil {
		return
	}
	for _, ds := range sets {
		run, keep := NodeShouldRunDaemonPod(node, ds)
		if old == nil {
			if run {
				c.enqueue(ds)
			}
			continue
		}
		oldRun, oldKeep := NodeShouldRunDaemonPod(old, ds)
		if run != oldRun || keep != oldKeep {
			c.enqueue(ds)
		}
	}
}

// nodeChangeMatters is false for an update that only renews heartbeats.
func nodeChangeMatters(old, cur *corev1.Node) bool {
	if !equality.Semantic.DeepEqual(old.Labels, cur.Labels) || !equality.Semantic.DeepEqual(old.Spec, cur.Spec) {
		return true
	}
	if len(old.Status.Conditions) != len(cur.Status.Conditions) {
		return true
	}
	for i := range old.Status.Conditions {
		o, n := old.Status.Conditions[i], cur.Status.Conditions[i]
		if o.Type != n.Type || o.Status != n.Status {
			return true
		}
	}
	return false
}

// Run syncs DaemonSets until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	c.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer c.events.Shutdown()
	// Forget the back-off of nodes whose pods stopped failing. It reads no
	// cache, so it need not wait for the sync.
	go wait.UntilWithContext(ctx, func(context.Context) { c.backoff.GC() }, time.Minute)
	return controller.RunWorkers(ctx, "daemonset", c.synced, workers, c.worker)
}

func (c *Controller) worker(ctx context.Context) {
	controller.ProcessQueue(ctx, c.queue, c.log, "daemon set", c.sync)
}

// sync makes the pods of one DaemonSet match its nodes and template and
// reports its status.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	ds, err := c.sets.DaemonSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.expect.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil {
		return nil // refused by validation; nothing to do
	}
	if sel.Empty() {
		c.recorder.Event(ds, corev1.EventTypeWarning, "SelectingAll", "This daemon set is selecting all pods. A non-empty selector is required.")
		return nil
	}
	if ds.DeletionTimestamp != nil {
		return nil // the garbage collector removes the pods
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	revs, err := c.claimRevisions(ctx, ds, sel)
	if err != nil {
		return err
	}
	cur, old, err := c.constructHistory(ctx, ds, revs)
	if err != nil {
		return err
	}
	hash := cur.Labels[hashLabel]
	pods, err := c.claimPods(ctx, ds, sel)
	if err != nil {
		return err
	}
	nodePods := podsByNode(pods)

	if !c.expect.satisfied(key) {
		// Pods in flight are not in the cache yet: acting now could
		// create twice. Report what is known; the events bring us back.
		return c.updateStatus(ctx, ds, nodes, nodePods, hash, false)
	}
	syncErr := c.manage(ctx, ds, nodes, nodePods, hash)
	if syncErr == nil && c.expect.satisfied(key) && ds.Spec.UpdateStrategy.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		syncErr = c.rollingUpdate(ctx, ds, nodes, nodePods, hash)
	}
	if syncErr == nil {
		syncErr = c.cleanupHistory(ctx, ds, old, nodePods)
	}
	statusErr := c.updateStatus(ctx, ds, nodes, nodePods, hash, true)
	if syncErr != nil {
		return syncErr
	}
	return statusErr
}
