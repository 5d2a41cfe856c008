package deployment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/lotse/lotse/internal/controller"
)

// controllerKind is what the ownerReferences on our ReplicaSets name.
var controllerKind = appsv1.SchemeGroupVersion.WithKind("Deployment")

// workers is how many deployments are synced at once.
const workers = 5

// Controller rolls out Deployments through ReplicaSets.
type Controller struct {
	client      kubernetes.Interface
	dLister     appslisters.DeploymentLister
	rsLister    appslisters.ReplicaSetLister
	rsIndex     cache.Indexer // with controller.ControllerUIDIndex
	podLister   corelisters.PodLister
	synced      []cache.InformerSynced
	queue       workqueue.TypedRateLimitingInterface[string]
	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
	clock       clock.WithTicker
	log         *slog.Logger
}

// New builds the controller on the shared informers.
func New(ctx *controller.Context) (controller.Controller, error) {
	dInf := ctx.Informers.Apps().V1().Deployments()
	rsInf := ctx.Informers.Apps().V1().ReplicaSets()
	podInf := ctx.Informers.Core().V1().Pods()
	clk := ctx.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	log := ctx.Logger
	if log == nil {
		log = slog.Default()
	}
	broadcaster := record.NewBroadcaster(record.WithCorrelatorOptions(record.CorrelatorOptions{Clock: clk}))
	c := &Controller{
		client:      ctx.Client,
		dLister:     dInf.Lister(),
		rsLister:    rsInf.Lister(),
		rsIndex:     rsInf.Informer().GetIndexer(),
		podLister:   podInf.Lister(),
		synced:      []cache.InformerSynced{dInf.Informer().HasSynced, rsInf.Informer().HasSynced, podInf.Informer().HasSynced},
		broadcaster: broadcaster,
		recorder:    broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "deployment-controller"}),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "deployment", Clock: clk}),
		clock: clk,
		log:   log.With("controller", "deployment"),
	}
	if err := controller.AddControllerUIDIndex(rsInf.Informer()); err != nil {
		return nil, err
	}
	if _, err := dInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
		DeleteFunc: c.enqueue,
	}); err != nil {
		return nil, err
	}
	if _, err := rsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addReplicaSet,
		UpdateFunc: c.updateReplicaSet,
		DeleteFunc: c.deleteReplicaSet,
	}); err != nil {
		return nil, err
	}
	// A Recreate rollout waits for the old pods to be gone.
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: c.deletePod,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// Run syncs deployments with several workers until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	c.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer c.broadcaster.Shutdown()
	return controller.RunWorkers(ctx, "deployment", c.synced, workers, c.worker)
}

func (c *Controller) worker(ctx context.Context) {
	for c.next(ctx) {
	}
}

func (c *Controller) next(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	err := c.sync(ctx, key)
	switch {
	case err == nil:
		// Synced: forget its failure history.
		c.queue.Forget(key)
	case apierrors.IsConflict(err):
		// Someone wrote first; the informer brings the newer object, but
		// look again soon in case the event was already processed.
		c.queue.AddRateLimited(key)
	default:
		c.log.Warn("syncing deployment", "deployment", key, "err", err)
		// Retry with backoff: the API may be briefly unavailable.
		c.queue.AddRateLimited(key)
	}
	return true
}

func (c *Controller) enqueue(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return
	}
	key, err := cache.MetaNamespaceKeyFunc(d)
	if err == nil {
		c.queue.Add(key)
	}
}

func (c *Controller) enqueueAfter(d *appsv1.Deployment, after time.Duration) {
	if key, err := cache.MetaNamespaceKeyFunc(d); err == nil {
		c.queue.AddAfter(key, after)
	}
}

// owner returns the deployment a controller reference points at, if it
// still exists with that UID.
func (c *Controller) owner(ns string, ref *metav1.OwnerReference) *appsv1.Deployment {
	if ref == nil || ref.Kind != controllerKind.Kind || ref.APIVersion != controllerKind.GroupVersion().String() {
		return nil
	}
	d, err := c.dLister.Deployments(ns).Get(ref.Name)
	if err != nil || d.UID != ref.UID {
		return nil
	}
	return d
}

// deploymentsSelecting lists the deployments whose selector matches an
// orphan ReplicaSet, which may adopt it.
func (c *Controller) deploymentsSelecting(rs *appsv1.ReplicaSet) []*appsv1.Deployment {
	all, err := c.dLister.Deployments(rs.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []*appsv1.Deployment
	for _, d := range all {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() {
			continue
		}
		if sel.Matches(labels.Set(rs.Labels)) {
			out = append(out, d)
		}
	}
	return out
}

func (c *Controller) addReplicaSet(obj any) {
	rs := obj.(*appsv1.ReplicaSet)
	if ref := metav1.GetControllerOf(rs); ref != nil {
		if d := c.owner(rs.Namespace, ref); d != nil {
			c.enqueue(d)
		}
		return
	}
	for _, d := range c.deploymentsSelecting(rs) {
		c.enqueue(d)
	}
}

func (c *Controller) updateReplicaSet(oldObj, newObj any) {
	old, cur := oldObj.(*appsv1.ReplicaSet), newObj.(*appsv1.ReplicaSet)
	if old.ResourceVersion == cur.ResourceVersion {
		return // a resync: nothing changed
	}
	oldRef, curRef := metav1.GetControllerOf(old), metav1.GetControllerOf(cur)
	if oldRef != nil && !reflect.DeepEqual(oldRef, curRef) {
		// Released or handed over: the old owner must notice.
		if d := c.owner(old.Namespace, oldRef); d != nil {
			c.enqueue(d)
		}
	}
	if curRef != nil {
		if d := c.owner(cur.Namespace, curRef); d != nil {
			c.enqueue(d)
		}
		return
	}
	if !reflect.DeepEqual(old.Labels, cur.Labels) || oldRef != nil {
		for _, d := range c.deploymentsSelecting(cur) {
			c.enqueue(d)
		}
	}
}

func (c *Controller) deleteReplicaSet(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return
	}
	if d := c.owner(rs.Namespace, metav1.GetControllerOf(rs)); d != nil {
		c.enqueue(d)
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
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.Kind != "ReplicaSet" {
		return
	}
	rs, err := c.rsLister.ReplicaSets(pod.Namespace).Get(ref.Name)
	if err != nil || rs.UID != ref.UID {
		return
	}
	if d := c.owner(rs.Namespace, metav1.GetControllerOf(rs)); d != nil && d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		c.enqueue(d)
	}
}

// sync brings one deployment's ReplicaSets and status in line with its
// spec. It is level-based: it looks only at the current state.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // a bad key never becomes good
	}
	d, err := c.dLister.Deployments(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil // deleted: the garbage collector removes its ReplicaSets
	}
	if err != nil {
		return err
	}
	d = d.DeepCopy()

	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() {
		c.recorder.Eventf(d, corev1.EventTypeWarning, "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.")
		if d.Status.ObservedGeneration < d.Generation {
			d.Status.ObservedGeneration = d.Generation
			_, err := c.client.AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{})
			return err
		}
		return nil
	}

	rsList, err := c.claimReplicaSets(ctx, d, sel)
	if err != nil {
		return err
	}
	if d.DeletionTimestamp != nil {
		return c.syncStatusOnly(ctx, d, rsList)
	}
	if behind, err := c.cacheBehind(ctx, d, rsList); err != nil || behind {
		return err // the newer deployment's event is on its way
	}
	if err := c.checkPausedCondition(ctx, d); err != nil {
		return err
	}
	if d.Spec.Paused {
		return c.syncScale(ctx, d, rsList)
	}
	if c.isScalingEvent(ctx, d, rsList) {
		return c.syncScale(ctx, d, rsList)
	}
	switch d.Spec.Strategy.Type {
	case appsv1.RecreateDeploymentStrategyType:
		return c.rolloutRecreate(ctx, d, rsList, sel)
	case appsv1.RollingUpdateDeploymentStrategyType:
		return c.rolloutRolling(ctx, d, rsList)
	}
	return fmt.Errorf("deployment %s: unknown strategy type %q", key, d.Spec.Strategy.Type)
}

// claimReplicaSets returns the ReplicaSets d controls after adopting the
// orphans its selector matches and releasing its own that it no longer
// matches.
func (c *Controller) claimReplicaSets(ctx context.Context, d *appsv1.Deployment, sel labels.Selector) ([]*appsv1.ReplicaSet, error) {
	all, err := controller.ControlledOrOrphaned[*appsv1.ReplicaSet](c.rsIndex, d)
	if err != nil {
		return nil, err
	}
	var owned []*appsv1.ReplicaSet
	checkedOwner := false
	var errs []error
	for _, rs := range all {
		matches := sel.Matches(labels.Set(rs.Labels))
		ref := metav1.GetControllerOf(rs)
		switch {
		case ref != nil && ref.UID == d.UID:
			if matches {
				owned = append(owned, rs)
			} else if d.DeletionTimestamp == nil {
				if err := c.release(ctx, d, rs); err != nil {
					errs = append(errs, err)
				}
			}
		case ref != nil:
			// Another controller's.
		case matches && d.DeletionTimestamp == nil && rs.DeletionTimestamp == nil:
			// Adopt only if the deployment is still the one we hold and is
			// not being deleted, checked against the API, not the cache.
			if !checkedOwner {
				fresh, err := c.client.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
				if err != nil {
					return nil, err
				}
				if fresh.UID != d.UID || fresh.DeletionTimestamp != nil {
					return nil, fmt.Errorf("deployment %s/%s changed before adopting ReplicaSets", d.Namespace, d.Name)
				}
				checkedOwner = true
			}
			adopted, err := c.adopt(ctx, d, rs)
			if err != nil {
				if !apierrors.IsNotFound(err) {
					errs = append(errs, err)
				}
				continue
			}
			owned = append(owned, adopted)
		}
	}
	return owned, errors.Join(errs...)
}

func (c *Controller) adopt(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet) (*appsv1.ReplicaSet, error) {
	patch := fmt.Sprintf(`{"metadata":{"ownerReferences":[{"apiVersion":%q,"kind":%q,"name":%q,"uid":%q,"controller":true,"blockOwnerDeletion":true}],"uid":%q}}`,
		controllerKind.GroupVersion().String(), controllerKind.Kind, d.Name, d.UID, rs.UID)
	return c.client.AppsV1().ReplicaSets(rs.Namespace).Patch(ctx, rs.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
}

func (c *Controller) release(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet) error {
	patch := fmt.Sprintf(`{"metadata":{"ownerReferences":[{"$patch":"delete","uid":%q}],"uid":%q}}`, d.UID, rs.UID)
	_, err := c.client.AppsV1().ReplicaSets(rs.Namespace).Patch(ctx, rs.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsInvalid(err) {
		return nil // gone, or its UID changed: nothing of ours to release
	}
	return err
}

// oldPodsRunning reports whether any pod of an old ReplicaSet may still
// run, which Recreate must wait out.
func (c *Controller) oldPodsRunning(d *appsv1.Deployment, sel labels.Selector, newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet) (bool, error) {
	if n, _, _ := statusReplicas(oldRSs); n > 0 {
		return true, nil
	}
	pods, err := c.podLister.Pods(d.Namespace).List(sel)
	if err != nil {
		return false, err
	}
	old := map[types.UID]bool{}
	for _, rs := range oldRSs {
		old[rs.UID] = true
	}
	for _, p := range pods {
		ref := metav1.GetControllerOf(p)
		if ref == nil || !old[ref.UID] || (newRS != nil && ref.UID == newRS.UID) {
			continue
		}
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			return true, nil
		}
	}
	return false, nil
}

// cacheBehind reports whether the cached deployment is older than its
// ReplicaSets show: the newest revision's ReplicaSet has a template the
// deployment does not, and a revision the deployment has not recorded.
// ReplicaSet and Deployment events come on separate watches, so a sync
// can see a ReplicaSet made for a template it has not yet seen; rolling
// "back" to the cached template would undo a rollout just begun.
func (c *Controller) cacheBehind(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) (bool, error) {
	var newest *appsv1.ReplicaSet
	for _, rs := range rsList {
		if newest == nil || revision(rs) > revision(newest) {
			newest = rs
		}
	}
	if newest == nil || revision(newest) <= revision(d) || equalIgnoreHash(&newest.Spec.Template, &d.Spec.Template) {
		return false, nil
	}
	fresh, err := c.client.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return fresh.ResourceVersion != d.ResourceVersion, nil
}
