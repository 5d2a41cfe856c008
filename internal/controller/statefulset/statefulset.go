package statefulset

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
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

// workers is how many StatefulSets sync at once, as upstream's default.
const workers = 5

// Controller is the StatefulSet controller.
type Controller struct {
	client    kubernetes.Interface
	sets      appslisters.StatefulSetLister
	pods      cache.Indexer // with controller.ControllerUIDIndex
	claims    corelisters.PersistentVolumeClaimLister
	revisions cache.Indexer // with controller.ControllerUIDIndex
	synced    []cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]
	expect    *expectations
	recorder  record.EventRecorder
	events    record.EventBroadcaster
	clock     clock.Clock
	log       *slog.Logger
}

// New builds the controller on the shared informers.
func New(ctx *controller.Context) (controller.Controller, error) {
	setInf := ctx.Informers.Apps().V1().StatefulSets()
	podInf := ctx.Informers.Core().V1().Pods()
	pvcInf := ctx.Informers.Core().V1().PersistentVolumeClaims()
	revInf := ctx.Informers.Apps().V1().ControllerRevisions()
	broadcaster := record.NewBroadcaster()
	c := &Controller{
		client:    ctx.Client,
		sets:      setInf.Lister(),
		pods:      podInf.Informer().GetIndexer(),
		claims:    pvcInf.Lister(),
		revisions: revInf.Informer().GetIndexer(),
		synced: []cache.InformerSynced{setInf.Informer().HasSynced, podInf.Informer().HasSynced,
			pvcInf.Informer().HasSynced, revInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "statefulset", Clock: ctx.Clock}),
		expect:   newExpectations(ctx.Clock),
		events:   broadcaster,
		recorder: broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "statefulset-controller"}),
		clock:    ctx.Clock,
		log:      ctx.Logger.With("controller", "statefulset"),
	}
	for _, inf := range []cache.SharedIndexInformer{podInf.Informer(), revInf.Informer()} {
		if err := controller.AddControllerUIDIndex(inf); err != nil {
			return nil, err
		}
	}
	if _, err := setInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
		DeleteFunc: func(obj any) {
			if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
				c.expect.forget(key)
				c.queue.Add(key)
			}
		},
	}); err != nil {
		return nil, err
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.podChanged(nil, obj.(*corev1.Pod)) },
		UpdateFunc: func(old, obj any) { c.podChanged(old.(*corev1.Pod), obj.(*corev1.Pod)) },
		DeleteFunc: c.podDeleted,
	}); err != nil {
		return nil, err
	}
	// A stale claim blocks its pod until the garbage collector deletes it.
	_, err := pvcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok {
				c.enqueueMatching(pvc.Namespace, pvc.Labels)
			}
		},
	})
	return c, err
}

func (c *Controller) enqueue(obj any) {
	if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
		c.queue.Add(key)
	}
}

// ownerKey is the key of the StatefulSet controlling obj, if any.
func ownerKey(obj metav1.Object) string {
	ref := metav1.GetControllerOf(obj)
	if ref == nil || ref.Kind != kind.Kind || ref.APIVersion != kind.GroupVersion().String() {
		return ""
	}
	return obj.GetNamespace() + "/" + ref.Name
}

func (c *Controller) podChanged(old, pod *corev1.Pod) {
	key := ownerKey(pod)
	if key != "" {
		c.expect.created(key, pod.Name)
		if pod.DeletionTimestamp != nil {
			c.expect.deleted(key, pod.UID)
		}
	}
	if old != nil {
		if oldKey := ownerKey(old); oldKey != "" && oldKey != key {
			c.queue.Add(oldKey)
		}
		if old.ResourceVersion == pod.ResourceVersion {
			return // a resync: nothing changed
		}
	}
	if key == "" {
		// An orphan: every set that might adopt it looks.
		if pod.DeletionTimestamp == nil {
			c.enqueueMatching(pod.Namespace, pod.Labels)
		}
		return
	}
	c.queue.Add(key)
	// Availability comes with time, not with an event: look again once the
	// pod has been ready for minReadySeconds.
	if old != nil && readySince(old) == nil && readySince(pod) != nil {
		ns, name, _ := cache.SplitMetaNamespaceKey(key)
		if set, err := c.sets.StatefulSets(ns).Get(name); err == nil && set.Spec.MinReadySeconds > 0 {
			c.queue.AddAfter(key, time.Duration(set.Spec.MinReadySeconds)*time.Second)
		}
	}
}

func (c *Controller) podDeleted(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if key := ownerKey(pod); key != "" {
		c.expect.deleted(key, pod.UID)
		c.queue.Add(key)
	}
}

// enqueueMatching queues the sets in ns whose selector matches lbls.
func (c *Controller) enqueueMatching(ns string, lbls map[string]string) {
	sets, err := c.sets.StatefulSets(ns).List(labels.Everything())
	if err != nil {
		return
	}
	for _, set := range sets {
		sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(lbls)) {
			c.queue.Add(set.Namespace + "/" + set.Name)
		}
	}
}

// Run syncs StatefulSets until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	c.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer c.events.Shutdown()
	return controller.RunWorkers(ctx, "statefulset", c.synced, workers, c.worker)
}

func (c *Controller) worker(ctx context.Context) {
	controller.ProcessQueue(ctx, c.queue, c.log, "stateful set", c.sync)
}

// sync makes one StatefulSet's pods, claims and revisions follow its spec.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	set, err := c.sets.StatefulSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.expect.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil || sel.Empty() {
		return nil // validation refuses such sets; nothing to do
	}
	if !c.expect.satisfied(key) {
		// The informer's events for our own writes re-queue the set; this
		// guards against one that never comes.
		c.queue.AddAfter(key, expectationTTL)
		return nil
	}
	set = set.DeepCopy()
	canAdopt := sync.OnceValue(func() error { return c.canAdopt(ctx, set) })
	revs, err := c.ownedRevisions(ctx, set, sel, canAdopt)
	if err != nil {
		return err
	}
	pods, err := c.claimPods(ctx, set, sel, canAdopt)
	if err != nil {
		return err
	}
	sortRevisions(revs)
	current, update, collisions, err := c.currentAndUpdateRevisions(ctx, set, revs)
	if err != nil {
		return err
	}
	r := &reconciler{ctl: &apiControl{c: c}, now: c.clock.Now()}
	status, syncErr := r.reconcile(ctx, set, current, update, collisions, pods)
	if status != nil {
		completeRollingUpdate(set, status)
		if err := c.writeStatus(ctx, set, status); err != nil && syncErr == nil {
			syncErr = err
		}
	}
	if err := c.truncateHistory(ctx, set, pods, revs, current, update); err != nil && syncErr == nil {
		syncErr = err
	}
	if syncErr == nil && status != nil && set.Spec.MinReadySeconds > 0 && status.AvailableReplicas != int32(replicas(set)) {
		c.queue.AddAfter(key, time.Duration(set.Spec.MinReadySeconds)*time.Second)
	}
	return syncErr
}

// canAdopt re-reads the set from the API server: adopting for a set that
// was deleted and recreated under the same name would be wrong.
func (c *Controller) canAdopt(ctx context.Context, set *appsv1.StatefulSet) error {
	fresh, err := c.client.AppsV1().StatefulSets(set.Namespace).Get(ctx, set.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if fresh.UID != set.UID {
		return fmt.Errorf("original StatefulSet %s/%s is gone: got uid %v, wanted %v", set.Namespace, set.Name, fresh.UID, set.UID)
	}
	if fresh.DeletionTimestamp != nil {
		return fmt.Errorf("%s/%s has just been deleted at %v", set.Namespace, set.Name, fresh.DeletionTimestamp)
	}
	return nil
}

// claimPods returns the pods the set controls: members (named after the
// set) matching its selector, adopting orphans and releasing the rest.
func (c *Controller) claimPods(ctx context.Context, set *appsv1.StatefulSet, sel labels.Selector, canAdopt func() error) ([]*corev1.Pod, error) {
	// Only our own pods and orphans: the switch below ignores every pod
	// another controller owns.
	all, err := controller.ControlledOrOrphaned[*corev1.Pod](c.pods, set)
	if err != nil {
		return nil, err
	}
	var owned []*corev1.Pod
	for _, pod := range all {
		ref := metav1.GetControllerOf(pod)
		wanted := sel.Matches(labels.Set(pod.Labels)) && isMemberOf(set, pod)
		switch {
		case ref != nil && ref.UID == set.UID:
			if wanted {
				owned = append(owned, pod)
				continue
			}
			if set.DeletionTimestamp != nil {
				continue
			}
			refs := removeRef(pod.OwnerReferences, set.UID)
			if err := c.patchOwners(ctx, "pods", pod.Namespace, pod.Name, pod.UID, refs); err != nil && !apierrors.IsNotFound(err) {
				return nil, err
			}
		case ref == nil && wanted && pod.DeletionTimestamp == nil && set.DeletionTimestamp == nil:
			if err := canAdopt(); err != nil {
				return nil, fmt.Errorf("can't adopt pod %s: %w", pod.Name, err)
			}
			refs := append(append([]metav1.OwnerReference(nil), pod.OwnerReferences...), *metav1.NewControllerRef(set, kind))
			if err := c.patchOwners(ctx, "pods", pod.Namespace, pod.Name, pod.UID, refs); err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return nil, err
			}
			pod = pod.DeepCopy()
			pod.OwnerReferences = refs
			owned = append(owned, pod)
		}
	}
	return owned, nil
}

func removeRef(refs []metav1.OwnerReference, uid types.UID) []metav1.OwnerReference {
	var out []metav1.OwnerReference
	for _, r := range refs {
		if r.UID != uid {
			out = append(out, r)
		}
	}
	return out
}

// patchOwners sets an object's ownerReferences, guarded by its uid.
func (c *Controller) patchOwners(ctx context.Context, resource, ns, name string, uid types.UID, refs []metav1.OwnerReference) error {
	if refs == nil {
		refs = []metav1.OwnerReference{}
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"ownerReferences": refs, "uid": uid}})
	if err != nil {
		return err
	}
	switch resource {
	case "pods":
		_, err = c.client.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	default:
		_, err = c.client.AppsV1().ControllerRevisions(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	}
	return err
}

// writeStatus writes status when it differs from what the set reports.
func (c *Controller) writeStatus(ctx context.Context, set *appsv1.StatefulSet, status *appsv1.StatefulSetStatus) error {
	status.Conditions = set.Status.Conditions // nothing here sets conditions; keep others'
	if equality.Semantic.DeepEqual(status, &set.Status) {
		return nil
	}
	next := set.DeepCopy()
	next.Status = *status
	_, err := c.client.AppsV1().StatefulSets(set.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // the informer brings the newer state and a new sync
	}
	return err
}
