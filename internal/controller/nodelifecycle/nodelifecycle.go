package nodelifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	coordlisters "k8s.io/client-go/listers/coordination/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/lotse/lotse/internal/controller"
)

// Config holds the timings; the zero value means upstream's defaults.
type Config struct {
	// GracePeriod is how long a node may go without a heartbeat before
	// it is considered unreachable [40s].
	GracePeriod time.Duration
	// MonitorPeriod is how often nodes are checked [5s].
	MonitorPeriod time.Duration
}

// Controller is the node lifecycle controller.
type Controller struct {
	cfg    Config
	client kubernetes.Interface
	nodes  corelisters.NodeLister
	leases coordlisters.LeaseLister
	pods   cache.Indexer
	synced []cache.InformerSynced
	clock  clock.WithTicker
	log    *slog.Logger
	// evictions holds pods to look at (now or when a toleration runs out).
	evictions workqueue.TypedRateLimitingInterface[string]
	recorder  record.EventRecorder

	mu sync.Mutex
	// heard is, per node, the last heartbeat seen and when this
	// controller saw it change: staleness is measured on our own clock,
	// so the node's clock does not matter.
	heard map[string]heartbeat
}

type heartbeat struct {
	renew    time.Time // the node's own stamp
	observed time.Time // our clock when renew last changed
}

const podNodeIndex = "spec.nodeName"

var everything = labels.Everything()

// New builds the controller with upstream's timings.
func New(ctx *controller.Context) (controller.Controller, error) {
	return NewWithConfig(ctx, Config{})
}

// NewWithConfig builds the controller with other timings (tests).
func NewWithConfig(ctx *controller.Context, cfg Config) (controller.Controller, error) {
	if cfg.GracePeriod <= 0 {
		cfg.GracePeriod = 40 * time.Second
	}
	if cfg.MonitorPeriod <= 0 {
		cfg.MonitorPeriod = 5 * time.Second
	}
	nodeInf := ctx.Informers.Core().V1().Nodes()
	leaseInf := ctx.Informers.Coordination().V1().Leases()
	podInf := ctx.Informers.Core().V1().Pods()
	if err := podInf.Informer().AddIndexers(cache.Indexers{podNodeIndex: func(obj any) ([]string, error) {
		if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
			return []string{p.Spec.NodeName}, nil
		}
		return nil, nil
	}}); err != nil {
		return nil, err
	}
	c := &Controller{
		cfg:    cfg,
		client: ctx.Client,
		nodes:  nodeInf.Lister(),
		leases: leaseInf.Lister(),
		pods:   podInf.Informer().GetIndexer(),
		synced: []cache.InformerSynced{nodeInf.Informer().HasSynced, leaseInf.Informer().HasSynced, podInf.Informer().HasSynced},
		clock:  ctx.Clock,
		log:    ctx.Logger.With("controller", "nodelifecycle"),
		evictions: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "nodelifecycle-evictions", Clock: ctx.Clock}),
		heard: map[string]heartbeat{},
	}
	// A node's taints changing, or a pod landing on a tainted node, may
	// call for evictions.
	_, err := nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.nodeChanged(obj) },
		UpdateFunc: func(_, obj any) { c.nodeChanged(obj) },
	})
	if err != nil {
		return nil, err
	}
	_, err = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.podChanged(obj) },
		UpdateFunc: func(_, obj any) { c.podChanged(obj) },
	})
	return c, err
}

// Run monitors nodes and evicts pods until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	defer utilruntime.HandleCrash()
	defer c.evictions.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return errors.New("nodelifecycle: informers did not sync")
	}
	b := record.NewBroadcaster(record.WithContext(ctx))
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer b.Shutdown()
	c.recorder = b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "node-controller"})
	go wait.UntilWithContext(ctx, c.evictWorker, time.Second)
	ticker := c.clock.NewTicker(c.cfg.MonitorPeriod)
	defer ticker.Stop()
	for {
		c.monitor(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C():
		}
	}
}

// monitor checks every node's heartbeat and brings conditions and
// taints in line with it.
func (c *Controller) monitor(ctx context.Context) {
	nodes, err := c.nodes.List(everything)
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for _, node := range nodes {
		seen[node.Name] = true
		if err := c.checkNode(ctx, node); err != nil && ctx.Err() == nil && !apierrors.IsConflict(err) {
			c.log.Warn("node check failed", "node", node.Name, "err", err)
		}
	}
	c.mu.Lock()
	for name := range c.heard {
		if !seen[name] {
			delete(c.heard, name)
		}
	}
	c.mu.Unlock()
}

// checkNode marks a silent node Unknown and keeps its taints right.
func (c *Controller) checkNode(ctx context.Context, node *corev1.Node) error {
	now := c.clock.Now()
	silent := c.silentFor(node, now) > c.cfg.GracePeriod
	if silent && !allUnknown(node) {
		if err := c.markUnknown(ctx, node, now); err != nil {
			return err
		}
		c.recorder.Eventf(node, corev1.EventTypeNormal, "NodeNotReady", "Node %s status is now: NodeNotReady", node.Name)
		if err := c.markPodsNotReady(ctx, node.Name); err != nil {
			return err
		}
		return nil // the node update comes back through the informer
	}
	want := wantedTaints(node, now)
	if taintsEqual(node.Spec.Taints, want) {
		return nil
	}
	next := node.DeepCopy()
	next.Spec.Taints = want
	_, err := c.client.CoreV1().Nodes().Update(ctx, next, metav1.UpdateOptions{})
	return err
}

// silentFor is how long, on our clock, since the node's heartbeat (its
// Lease's renewTime, or its Ready condition's heartbeat) last changed.
func (c *Controller) silentFor(node *corev1.Node, now time.Time) time.Duration {
	var renew time.Time
	if lease, err := c.leases.Leases(corev1.NamespaceNodeLease).Get(node.Name); err == nil {
		renew = leaseRenew(lease)
	}
	if cond := readyCondition(node); cond != nil && cond.LastHeartbeatTime.After(renew) {
		renew = cond.LastHeartbeatTime.Time
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.heard[node.Name]
	if !ok {
		// First sight: give the node a full grace period from now (or
		// from its creation, if it has never said anything).
		h = heartbeat{renew: renew, observed: now}
		if renew.IsZero() && node.CreationTimestamp.Time.Before(now) {
			h.observed = node.CreationTimestamp.Time
		}
	} else if !renew.Equal(h.renew) {
		h = heartbeat{renew: renew, observed: now}
	}
	c.heard[node.Name] = h
	return now.Sub(h.observed)
}

func leaseRenew(l *coordinationv1.Lease) time.Time {
	if l.Spec.RenewTime != nil {
		return l.Spec.RenewTime.Time
	}
	return time.Time{}
}

// The conditions the node's agent posts, which go Unknown with it.
var agentConditions = []corev1.NodeConditionType{corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure}

func allUnknown(node *corev1.Node) bool {
	for _, t := range agentConditions {
		found := false
		for _, c := range node.Status.Conditions {
			if c.Type == t {
				found = true
				if c.Status != corev1.ConditionUnknown {
					return false
				}
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// markUnknown sets the agent's conditions to Unknown, as upstream words it.
func (c *Controller) markUnknown(ctx context.Context, node *corev1.Node, now time.Time) error {
	next := node.DeepCopy()
	reason, message := "NodeStatusUnknown", "Kubelet stopped posting node status."
	if readyCondition(node) == nil {
		message = "Kubelet never posted node status."
	}
	for _, t := range agentConditions {
		found := false
		for i := range next.Status.Conditions {
			cond := &next.Status.Conditions[i]
			if cond.Type != t {
				continue
			}
			found = true
			if cond.Status != corev1.ConditionUnknown {
				cond.Status, cond.Reason, cond.Message = corev1.ConditionUnknown, reason, message
				cond.LastTransitionTime = metav1.NewTime(now)
			}
		}
		if !found {
			next.Status.Conditions = append(next.Status.Conditions, corev1.NodeCondition{
				Type: t, Status: corev1.ConditionUnknown, Reason: reason, Message: message,
				LastHeartbeatTime: node.CreationTimestamp, LastTransitionTime: metav1.NewTime(now),
			})
		}
	}
	_, err := c.client.CoreV1().Nodes().UpdateStatus(ctx, next, metav1.UpdateOptions{})
	return err
}

// markPodsNotReady sets Ready False on the pods of a node that went
// silent: nobody can vouch for them any more.
func (c *Controller) markPodsNotReady(ctx context.Context, nodeName string) error {
	objs, err := c.pods.ByIndex(podNodeIndex, nodeName)
	if err != nil {
		return err
	}
	for _, obj := range objs {
		pod := obj.(*corev1.Pod).DeepCopy()
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		changed := false
		for i := range pod.Status.Conditions {
			cond := &pod.Status.Conditions[i]
			if cond.Type == corev1.PodReady && cond.Status != corev1.ConditionFalse {
				cond.Status, cond.LastTransitionTime = corev1.ConditionFalse, metav1.NewTime(c.clock.Now())
				changed = true
			}
		}
		if !changed {
			continue
		}
		if _, err := c.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		c.recorder.Eventf(pod, corev1.EventTypeWarning, "NodeNotReady", "Node is not ready")
	}
	return nil
}

// The taints this controller manages; others are left alone.
var managed = map[string]bool{corev1.TaintNodeNotReady: true, corev1.TaintNodeUnreachable: true}

// wantedTaints is node's taints with the managed ones set from its Ready
// condition: not-ready when False, unreachable when Unknown, each as
// NoSchedule and NoExecute. A taint already there keeps its timeAdded.
func wantedTaints(node *corev1.Node, now time.Time) []corev1.Taint {
	var key string
	if cond := readyCondition(node); cond != nil {
		switch cond.Status {
		case corev1.ConditionFalse:
			key = corev1.TaintNodeNotReady
		case corev1.ConditionUnknown:
			key = corev1.TaintNodeUnreachable
		}
	}
	var out []corev1.Taint
	for _, t := range node.Spec.Taints {
		if !managed[t.Key] || t.Key == key {
			out = append(out, t)
		}
	}
	if key == "" {
		return out
	}
	for _, effect := range []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectNoExecute} {
		has := false
		for _, t := range out {
			if t.Key == key && t.Effect == effect {
				has = true
			}
		}
		if !has {
			t := corev1.Taint{Key: key, Effect: effect}
			if effect == corev1.TaintEffectNoExecute {
				t.TimeAdded = &metav1.Time{Time: now}
			}
			out = append(out, t)
		}
	}
	return out
}

func taintsEqual(a, b []corev1.Taint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || a[i].Value != b[i].Value || a[i].Effect != b[i].Effect {
			return false
		}
	}
	return true
}

func readyCondition(node *corev1.Node) *corev1.NodeCondition {
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == corev1.NodeReady {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}

// nodeChanged queues the node's pods for an eviction check.
func (c *Controller) nodeChanged(obj any) {
	node, ok := obj.(*corev1.Node)
	if !ok || !hasNoExecute(node) {
		return
	}
	objs, _ := c.pods.ByIndex(podNodeIndex, node.Name)
	for _, o := range objs {
		c.podChanged(o)
	}
}

func (c *Controller) podChanged(obj any) {
	if pod, ok := obj.(*corev1.Pod); ok && pod.Spec.NodeName != "" && pod.DeletionTimestamp == nil {
		if key, err := cache.MetaNamespaceKeyFunc(pod); err == nil {
			c.evictions.Add(key)
		}
	}
}

func hasNoExecute(node *corev1.Node) bool {
	for _, t := range node.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoExecute {
			return true
		}
	}
	return false
}

func (c *Controller) evictWorker(ctx context.Context) {
	for {
		key, quit := c.evictions.Get()
		if quit {
			return
		}
		err := c.checkEviction(ctx, key)
		if err != nil && !apierrors.IsNotFound(err) {
			c.evictions.AddRateLimited(key)
		} else {
			c.evictions.Forget(key)
		}
		c.evictions.Done(key)
	}
}

// checkEviction evicts a pod whose node has a NoExecute taint it does
// not tolerate, now or once its tolerationSeconds have run out.
func (c *Controller) checkEviction(ctx context.Context, key string) error {
	obj, exists, err := c.pods.GetByKey(key)
	if err != nil || !exists {
		return err
	}
	pod := obj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil || pod.Spec.NodeName == "" {
		return nil
	}
	node, err := c.nodes.Get(pod.Spec.NodeName)
	if err != nil {
		return nil // a vanished node's pods are the pod GC's
	}
	now := c.clock.Now()
	at, evict := evictionTime(pod, node.Spec.Taints, now)
	if !evict {
		return nil
	}
	if at.After(now) {
		c.evictions.AddAfter(key, at.Sub(now))
		return nil
	}
	return c.evict(ctx, pod)
}

// evictionTime says whether and when taints evict pod: at once for an
// untolerated NoExecute taint, at the earliest end of the matching
// tolerations' tolerationSeconds (counted from each taint's timeAdded),
// never when every NoExecute taint is tolerated forever.
func evictionTime(pod *corev1.Pod, taints []corev1.Taint, now time.Time) (time.Time, bool) {
	var earliest time.Time
	evict := false
	for _, taint := range taints {
		if taint.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		forever, tolerated := false, false
		var until time.Time
		for _, tol := range pod.Spec.Tolerations {
			if !tol.ToleratesTaint(logr.Discard(), &taint, true) {
				continue
			}
			tolerated = true
			if tol.TolerationSeconds == nil {
				forever = true
				break
			}
			added := now
			if taint.TimeAdded != nil {
				added = taint.TimeAdded.Time
			}
			end := added.Add(time.Duration(max(*tol.TolerationSeconds, 0)) * time.Second)
			if until.IsZero() || end.Before(until) {
				until = end
			}
		}
		switch {
		case !tolerated:
			return now, true
		case forever:
			continue
		}
		if !evict || until.Before(earliest) {
			earliest, evict = until, true
		}
	}
	return earliest, evict
}

// evict marks the pod with the DisruptionTarget condition, as upstream's
// taint manager does, and deletes it.
func (c *Controller) evict(ctx context.Context, pod *corev1.Pod) error {
	next := pod.DeepCopy()
	cond := corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "DeletionByTaintManager",
		Message: "Taint manager: deleting due to NoExecute taint", LastTransitionTime: metav1.NewTime(c.clock.Now())}
	replaced := false
	for i := range next.Status.Conditions {
		if next.Status.Conditions[i].Type == corev1.DisruptionTarget {
			next.Status.Conditions[i], replaced = cond, true
		}
	}
	if !replaced {
		next.Status.Conditions = append(next.Status.Conditions, cond)
	}
	if _, err := c.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil {
		return err
	}
	uid := pod.UID
	err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil {
		return err
	}
	c.recorder.Eventf(pod, corev1.EventTypeNormal, "TaintManagerEviction", "Marking for deletion Pod %s", types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name})
	c.log.Info("evicted pod from tainted node", "pod", fmt.Sprintf("%s/%s", pod.Namespace, pod.Name), "node", pod.Spec.NodeName)
	return nil
}
