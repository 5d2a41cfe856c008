package replicaset

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
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
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/lotse/lotse/internal/controller"
)

var kind = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")

// burstReplicas caps the pods created or deleted in one sync, as upstream.
const burstReplicas = 500

// Controller is the ReplicaSet controller.
type Controller struct {
	client   kubernetes.Interface
	sets     appslisters.ReplicaSetLister
	pods     cache.Indexer // with controller.ControllerUIDIndex
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	expect   *expectations
	recorder record.EventRecorder
	events   record.EventBroadcaster
	clock    clock.Clock
	log      *slog.Logger
}

// New builds the controller on the shared informers.
func New(ctx *controller.Context) (controller.Controller, error) {
	rsInf := ctx.Informers.Apps().V1().ReplicaSets()
	podInf := ctx.Informers.Core().V1().Pods()
	broadcaster := record.NewBroadcaster()
	c := &Controller{
		client: ctx.Client,
		sets:   rsInf.Lister(),
		pods:   podInf.Informer().GetIndexer(),
		synced: []cache.InformerSynced{rsInf.Informer().HasSynced, podInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "replicaset", Clock: ctx.Clock}),
		expect:   newExpectations(ctx.Clock),
		events:   broadcaster,
		recorder: broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "replicaset-controller"}),
		clock:    ctx.Clock,
		log:      ctx.Logger.With("controller", "replicaset"),
	}
	if err := controller.AddControllerUIDIndex(podInf.Informer()); err != nil {
		return nil, err
	}
	enqueueSet := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
	if _, err := rsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueueSet,
		UpdateFunc: func(_, obj any) { enqueueSet(obj) },
		DeleteFunc: func(obj any) {
			if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
				c.expect.forget(key)
				c.queue.Add(key)
			}
		},
	}); err != nil {
		return nil, err
	}
	_, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			pod := obj.(*corev1.Pod)
			if key := c.ownerKey(pod); key != "" {
				c.expect.observe(key, 1, 0)
			}
			c.enqueuePod(pod)
		},
		UpdateFunc: func(old, obj any) {
			c.enqueuePod(old.(*corev1.Pod))
			c.enqueuePod(obj.(*corev1.Pod))
		},
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			pod, ok := obj.(*corev1.Pod)
			if !ok {
				return
			}
			if key := c.ownerKey(pod); key != "" {
				c.expect.observe(key, 0, 1)
			}
			c.enqueuePod(pod)
		},
	})
	return c, err
}

// ownerKey is the key of the ReplicaSet controlling pod, if any.
func (c *Controller) ownerKey(pod *corev1.Pod) string {
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.Kind != kind.Kind || ref.APIVersion != kind.GroupVersion().String() {
		return ""
	}
	return pod.Namespace + "/" + ref.Name
}

// enqueuePod queues the pod's owner, or every set that could adopt it.
func (c *Controller) enqueuePod(pod *corev1.Pod) {
	if key := c.ownerKey(pod); key != "" {
		c.queue.Add(key)
		return
	}
	sets, err := c.sets.ReplicaSets(pod.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, rs := range sets {
		sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(pod.Labels)) {
			c.queue.Add(rs.Namespace + "/" + rs.Name)
		}
	}
}

// Run syncs ReplicaSets with five workers until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	c.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer c.events.Shutdown()
	return controller.RunWorkers(ctx, "replicaset", c.synced, 5, c.worker)
}

func (c *Controller) worker(ctx context.Context) {
	controller.ProcessQueue(ctx, c.queue, c.log, "replica set", c.sync)
}

// sync makes the pods of one ReplicaSet match its spec.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	rs, err := c.sets.ReplicaSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.expect.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil || sel.Empty() {
		return nil // invalid sets are refused by validation; nothing to do
	}
	candidates, err := controller.ControlledOrOrphaned[*corev1.Pod](c.pods, rs)
	if err != nil {
		return err
	}
	owned, err := c.claim(ctx, rs, sel, candidates)
	if err != nil {
		return err
	}
	active := filterActive(owned)
	var manageErr error
	if c.expect.satisfied(key) && rs.DeletionTimestamp == nil {
		manageErr = c.manage(ctx, rs, active)
	}
	if err := c.updateStatus(ctx, rs, active, manageErr); err != nil {
		return err
	}
	if manageErr == nil && rs.Spec.MinReadySeconds > 0 {
		// Availability depends on time passing, not on an event.
		if c.availableReplicas(rs, active) < c.readyReplicas(active) {
			c.queue.AddAfter(key, time.Duration(rs.Spec.MinReadySeconds)*time.Second)
		}
	}
	return manageErr
}

// claim returns the pods this set controls, adopting matching orphans and
// releasing owned pods whose labels no longer match.
func (c *Controller) claim(ctx context.Context, rs *appsv1.ReplicaSet, sel labels.Selector, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	var owned []*corev1.Pod
	for _, pod := range pods {
		ref := metav1.GetControllerOf(pod)
		matches := sel.Matches(labels.Set(pod.Labels))
		switch {
		case ref != nil && ref.UID == rs.UID:
			if matches {
				owned = append(owned, pod)
				continue
			}
			if err := c.patchOwners(ctx, pod, removeRef(pod.OwnerReferences, rs.UID)); err != nil && !apierrors.IsNotFound(err) {
				return nil, err
			}
		case ref == nil && matches && pod.DeletionTimestamp == nil && rs.DeletionTimestamp == nil:
			refs := append(append([]metav1.OwnerReference(nil), pod.OwnerReferences...), *metav1.NewControllerRef(rs, kind))
			if err := c.patchOwners(ctx, pod, refs); err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return nil, err
			}
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

// patchOwners sets a pod's ownerReferences, guarded by its uid.
func (c *Controller) patchOwners(ctx context.Context, pod *corev1.Pod, refs []metav1.OwnerReference) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"ownerReferences": refs, "uid": pod.UID}})
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

// filterActive drops pods that finished or are going away.
func filterActive(pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			out = append(out, p)
		}
	}
	return out
}

// manage creates or deletes pods to reach spec.replicas.
func (c *Controller) manage(ctx context.Context, rs *appsv1.ReplicaSet, active []*corev1.Pod) error {
	want := int32(1)
	if rs.Spec.Replicas != nil {
		want = *rs.Spec.Replicas
	}
	key := rs.Namespace + "/" + rs.Name
	diff := len(active) - int(want)
	switch {
	case diff < 0:
		n := min(-diff, burstReplicas)
		c.expect.expect(key, n, 0)
		created, err := slowStart(n, func() error { return c.createPod(ctx, rs) })
		if skipped := n - created; skipped > 0 {
			// Pods never asked for will never be observed.
			c.expect.observe(key, skipped, 0)
		}
		return err
	case diff > 0:
		n := min(diff, burstReplicas)
		victims := podsToDelete(active, n)
		c.expect.expect(key, 0, n)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for _, pod := range victims {
			wg.Add(1)
			go func(pod *corev1.Pod) {
				defer wg.Done()
				err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{})
				if err != nil {
					// A failed delete is never observed.
					c.expect.observe(key, 0, 1)
					if !apierrors.IsNotFound(err) {
						c.recorder.Eventf(rs, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
						errs <- err
					}
					return
				}
				c.recorder.Eventf(rs, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", pod.Name)
			}(pod)
		}
		wg.Wait()
		close(errs)
		return <-errs
	}
	return nil
}

// slowStart runs fn n times in batches of 1, 2, 4, ... and stops at the
// first failing batch, so a set that cannot create pods (quota, bad
// template) does not flood the API with doomed requests.
func slowStart(n int, fn func() error) (int, error) {
	done := 0
	for batch := 1; done < n; batch *= 2 {
		size := min(batch, n-done)
		var wg sync.WaitGroup
		errs := make(chan error, size)
		for i := 0; i < size; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := fn(); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		failed := len(errs)
		done += size - failed
		if failed > 0 {
			return done, <-errs
		}
	}
	return done, nil
}

func (c *Controller) createPod(ctx context.Context, rs *appsv1.ReplicaSet) error {
	t := rs.Spec.Template
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    rs.Name + "-",
			Namespace:       rs.Namespace,
			Labels:          t.Labels,
			Annotations:     t.Annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(rs, kind)},
		},
		Spec: *t.Spec.DeepCopy(),
	}
	created, err := c.client.CoreV1().Pods(rs.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			c.recorder.Eventf(rs, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		}
		return err
	}
	c.recorder.Eventf(rs, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", created.Name)
	return nil
}

// podsToDelete picks the n pods to remove first, as upstream ranks them:
// unscheduled before scheduled, pending before running, not ready before
// ready, and the most recently ready or created first.
func podsToDelete(pods []*corev1.Pod, n int) []*corev1.Pod {
	sorted := append([]*corev1.Pod(nil), pods...)
	sort.SliceStable(sorted, func(i, j int) bool { return deleteBefore(sorted[i], sorted[j]) })
	return sorted[:n]
}

func deleteBefore(a, b *corev1.Pod) bool {
	if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
		return a.Spec.NodeName == ""
	}
	rank := map[corev1.PodPhase]int{corev1.PodPending: 0, corev1.PodUnknown: 1, corev1.PodRunning: 2}
	if rank[a.Status.Phase] != rank[b.Status.Phase] {
		return rank[a.Status.Phase] < rank[b.Status.Phase]
	}
	if podReady(a) != podReady(b) {
		return !podReady(a)
	}
	return b.CreationTimestamp.Before(&a.CreationTimestamp)
}

func podReady(p *corev1.Pod) bool {
	return readySince(p) != nil
}

// readySince returns when the pod became Ready, nil if it is not.
func readySince(p *corev1.Pod) *metav1.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			t := c.LastTransitionTime
			return &t
		}
	}
	return nil
}

func (c *Controller) readyReplicas(active []*corev1.Pod) int32 {
	var n int32
	for _, p := range active {
		if podReady(p) {
			n++
		}
	}
	return n
}

func (c *Controller) availableReplicas(rs *appsv1.ReplicaSet, active []*corev1.Pod) int32 {
	var n int32
	minReady := time.Duration(rs.Spec.MinReadySeconds) * time.Second
	for _, p := range active {
		if since := readySince(p); since != nil && (minReady == 0 || c.clock.Since(since.Time) >= minReady) {
			n++
		}
	}
	return n
}

// updateStatus writes the observed counts when they changed.
func (c *Controller) updateStatus(ctx context.Context, rs *appsv1.ReplicaSet, active []*corev1.Pod, manageErr error) error {
	status := rs.Status.DeepCopy()
	status.Replicas = int32(len(active))
	status.ReadyReplicas = c.readyReplicas(active)
	status.AvailableReplicas = c.availableReplicas(rs, active)
	status.FullyLabeledReplicas = 0
	templateLabels := labels.Set(rs.Spec.Template.Labels)
	for _, p := range active {
		if labels.SelectorFromSet(templateLabels).Matches(labels.Set(p.Labels)) {
			status.FullyLabeledReplicas++
		}
	}
	status.ObservedGeneration = rs.Generation
	setFailureCondition(status, manageErr, c.clock.Now())
	if equality.Semantic.DeepEqual(status, &rs.Status) {
		return nil
	}
	next := rs.DeepCopy()
	next.Status = *status
	_, err := c.client.AppsV1().ReplicaSets(rs.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // the informer brings the newer state and a new sync
	}
	return err
}

// setFailureCondition reports (or clears) the ReplicaFailure condition.
func setFailureCondition(status *appsv1.ReplicaSetStatus, err error, now time.Time) {
	var keep []appsv1.ReplicaSetCondition
	for _, c := range status.Conditions {
		if c.Type != appsv1.ReplicaSetReplicaFailure {
			keep = append(keep, c)
		} else if err != nil && c.Message == fmt.Sprint(err) {
			return // reported already; keep its transition time
		}
	}
	status.Conditions = keep
	if err != nil && !apierrors.IsConflict(err) {
		status.Conditions = append(status.Conditions, appsv1.ReplicaSetCondition{
			Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate",
			Message: fmt.Sprint(err), LastTransitionTime: metav1.NewTime(now),
		})
	}
}
