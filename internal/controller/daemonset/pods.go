package daemonset

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lotse/lotse/internal/controller"
)

// templateGenerationLabel carries, on each pod, the DaemonSet's
// deprecated.daemonset.template.generation annotation, as upstream.
const templateGenerationLabel = "pod-template-generation"

// claim returns the objects ds controls: it adopts matching orphans and
// releases owned objects whose labels stopped matching, as upstream's
// ControllerRefManager. patch writes an object's ownerReferences.
func claim[T metav1.Object](ctx context.Context, c *Controller, ds *appsv1.DaemonSet, sel labels.Selector, objs []T,
	patch func(context.Context, T, []metav1.OwnerReference) error) ([]T, error) {
	var owned []T
	canAdopt := (*bool)(nil)
	for _, obj := range objs {
		ref := metav1.GetControllerOf(obj)
		matches := sel.Matches(labels.Set(obj.GetLabels()))
		switch {
		case ref != nil && ref.UID == ds.UID:
			if matches {
				owned = append(owned, obj)
				continue
			}
			if err := patch(ctx, obj, removeRef(obj.GetOwnerReferences(), ds.UID)); err != nil && !apierrors.IsNotFound(err) {
				return nil, err
			}
		case ref == nil && matches && obj.GetDeletionTimestamp() == nil:
			if canAdopt == nil {
				// Adopt only for a set that still exists and is not being
				// deleted: the cache may be behind, so ask the API once.
				ok := c.canAdopt(ctx, ds)
				canAdopt = &ok
			}
			if !*canAdopt {
				continue
			}
			refs := append(append([]metav1.OwnerReference(nil), obj.GetOwnerReferences()...), *metav1.NewControllerRef(ds, kind))
			if err := patch(ctx, obj, refs); err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return nil, err
			}
			owned = append(owned, obj)
		}
	}
	return owned, nil
}

func (c *Controller) canAdopt(ctx context.Context, ds *appsv1.DaemonSet) bool {
	fresh, err := c.client.AppsV1().DaemonSets(ds.Namespace).Get(ctx, ds.Name, metav1.GetOptions{})
	return err == nil && fresh.UID == ds.UID && fresh.DeletionTimestamp == nil
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

// ownersPatch sets ownerReferences, guarded by the object's uid.
func ownersPatch(obj metav1.Object, refs []metav1.OwnerReference) []byte {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"ownerReferences": refs, "uid": obj.GetUID()}})
	return patch
}

func (c *Controller) claimPods(ctx context.Context, ds *appsv1.DaemonSet, sel labels.Selector) ([]*corev1.Pod, error) {
	// Only our own pods and orphans: claim ignores every pod another
	// controller owns.
	all, err := controller.ControlledOrOrphaned[*corev1.Pod](c.pods, ds)
	if err != nil {
		return nil, err
	}
	return claim(ctx, c, ds, sel, all, func(ctx context.Context, p *corev1.Pod, refs []metav1.OwnerReference) error {
		_, err := c.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType, ownersPatch(p, refs), metav1.PatchOptions{})
		return err
	})
}

func (c *Controller) claimRevisions(ctx context.Context, ds *appsv1.DaemonSet, sel labels.Selector) ([]*appsv1.ControllerRevision, error) {
	all, err := controller.ControlledOrOrphaned[*appsv1.ControllerRevision](c.revisions, ds)
	if err != nil {
		return nil, err
	}
	return claim(ctx, c, ds, sel, all, func(ctx context.Context, r *appsv1.ControllerRevision, refs []metav1.OwnerReference) error {
		_, err := c.client.AppsV1().ControllerRevisions(r.Namespace).Patch(ctx, r.Name, types.MergePatchType, ownersPatch(r, refs), metav1.PatchOptions{})
		return err
	})
}

// podsByNode groups a set's pods by the node they run on or are pinned
// to. Finished pods already being deleted are left out, as upstream.
func podsByNode(pods []*corev1.Pod) map[string][]*corev1.Pod {
	out := map[string][]*corev1.Pod{}
	for _, p := range pods {
		if p.DeletionTimestamp != nil && terminal(p) {
			continue
		}
		if node, ok := targetNode(p); ok {
			out[node] = append(out[node], p)
		}
	}
	return out
}

func terminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded
}

// manage creates the missing daemon pods and deletes those that must go.
func (c *Controller) manage(ctx context.Context, ds *appsv1.DaemonSet, nodes []*corev1.Node, nodePods map[string][]*corev1.Pod, hash string) error {
	var create []string
	var remove []*corev1.Pod
	exists := map[string]bool{}
	for _, node := range nodes {
		exists[node.Name] = true
		cr, rm := c.podsShouldBeOnNode(ds, node, nodePods[node.Name], hash)
		if cr {
			create = append(create, node.Name)
		}
		remove = append(remove, rm...)
	}
	// A pod pinned to a node that no longer exists can never be
	// scheduled; bound ones are left to pod garbage collection.
	for name, pods := range nodePods {
		if exists[name] {
			continue
		}
		for _, p := range pods {
			if p.Spec.NodeName == "" && p.DeletionTimestamp == nil {
				remove = append(remove, p)
			}
		}
	}
	return c.syncNodes(ctx, ds, remove, create, hash)
}

// podsShouldBeOnNode decides for one node whether a pod must be created
// and which of the set's pods there must be deleted.
func (c *Controller) podsShouldBeOnNode(ds *appsv1.DaemonSet, node *corev1.Node, pods []*corev1.Pod, hash string) (create bool, remove []*corev1.Pod) {
	shouldRun, shouldContinue := NodeShouldRunDaemonPod(node, ds)
	switch {
	case shouldRun && len(pods) == 0:
		return true, nil
	case shouldContinue:
		var running []*corev1.Pod
		for _, p := range pods {
			switch {
			case p.DeletionTimestamp != nil:
			case p.Status.Phase == corev1.PodFailed:
				// A kubelet that keeps rejecting the pod would make us
				// fight it in a hot loop: replace failed pods with back-off.
				bkey := ds.Namespace + "/" + ds.Name + "/" + string(ds.UID) + "/" + node.Name
				now := c.clock.Now()
				if c.backoff.IsInBackOffSinceUpdate(bkey, now) {
					c.queue.AddAfter(ds.Namespace+"/"+ds.Name, c.backoff.Get(bkey))
					continue
				}
				c.backoff.Next(bkey, now)
				c.recorder.Eventf(ds, corev1.EventTypeWarning, "FailedDaemonPod",
					"Found failed daemon pod %s/%s on node %s, will try to kill it", p.Namespace, p.Name, node.Name)
				remove = append(remove, p)
			case p.Status.Phase == corev1.PodSucceeded:
				remove = append(remove, p) // a daemon is not meant to finish
			default:
				running = append(running, p)
			}
		}
		return false, append(remove, excessPods(ds, running, hash, c.clock.Now())...)
	case len(pods) > 0:
		for _, p := range pods {
			if p.DeletionTimestamp == nil {
				remove = append(remove, p)
			}
		}
	}
	return false, remove
}

// excessPods picks the surplus among the running pods on one node.
// Without surge only the oldest stays. With surge an old and a new pod
// may overlap while the new one is not yet available.
func excessPods(ds *appsv1.DaemonSet, running []*corev1.Pod, hash string, now time.Time) []*corev1.Pod {
	if len(running) <= 1 {
		return nil
	}
	sorted := append([]*corev1.Pod(nil), running...)
	sortOldestFirst(sorted)
	if !allowsSurge(ds) {
		return sorted[1:]
	}
	var remove []*corev1.Pod
	var oldestNew, oldestOld *corev1.Pod
	for _, p := range sorted {
		switch {
		case p.Labels[hashLabel] == hash && oldestNew == nil:
			oldestNew = p
		case p.Labels[hashLabel] != hash && oldestOld == nil:
			oldestOld = p
		default:
			remove = append(remove, p)
		}
	}
	if oldestNew != nil && oldestOld != nil &&
		(!podReady(oldestOld) || podAvailable(oldestNew, ds.Spec.MinReadySeconds, now)) {
		remove = append(remove, oldestOld)
	}
	return remove
}

// sortOldestFirst orders pods bound first, then by creation, then name.
func sortOldestFirst(pods []*corev1.Pod) {
	sort.SliceStable(pods, func(i, j int) bool {
		a, b := pods[i], pods[j]
		if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
			return a.Spec.NodeName != ""
		}
		if a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.Name < b.Name
		}
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	})
}

// syncNodes deletes remove and creates a pod pinned to each node of
// create, recording expectations first so a slow informer never makes
// the next sync repeat them.
func (c *Controller) syncNodes(ctx context.Context, ds *appsv1.DaemonSet, remove []*corev1.Pod, create []string, hash string) error {
	key := ds.Namespace + "/" + ds.Name
	create = create[:min(len(create), burstReplicas)]
	remove = remove[:min(len(remove), burstReplicas)]
	uids := make([]types.UID, len(remove))
	for i, p := range remove {
		uids[i] = p.UID
	}
	c.expect.expect(key, len(create), uids)
	template := c.podTemplate(ds, hash)

	var errs []error
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	// Slow start: batches of 1, 2, 4, ... stop at the first failing
	// batch, so a set that cannot create pods does not flood the API.
	for pos, batch := 0, 1; pos < len(create); pos, batch = pos+batch, batch*2 {
		batch = min(batch, len(create)-pos)
		before := len(errs)
		var wg sync.WaitGroup
		for _, node := range create[pos : pos+batch] {
			wg.Add(1)
			go func(node string) {
				defer wg.Done()
				if err := c.createPod(ctx, ds, template, node); err != nil {
					c.expect.created(key) // never to be observed
					if !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
						fail(err)
					}
				}
			}(node)
		}
		wg.Wait()
		if len(errs) > before {
			for range create[pos+batch:] {
				c.expect.created(key) // skipped, never to be observed
			}
			break
		}
	}

	var wg sync.WaitGroup
	for _, p := range remove {
		wg.Add(1)
		go func(p *corev1.Pod) {
			defer wg.Done()
			err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}})
			if err != nil {
				c.expect.deleted(key, p.UID) // a failed delete is never observed
				if !apierrors.IsNotFound(err) {
					c.recorder.Eventf(ds, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
					fail(err)
				}
				return
			}
			c.recorder.Eventf(ds, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", p.Name)
		}(p)
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("daemonset %s: %w", key, errs[0])
	}
	return nil
}

// podTemplate is ds's template as its pods get it: the automatic
// tolerations, the revision hash and the template generation labels.
func (c *Controller) podTemplate(ds *appsv1.DaemonSet, hash string) *corev1.PodTemplateSpec {
	t := ds.Spec.Template.DeepCopy()
	addDaemonTolerations(&t.Spec)
	t.Labels = labels.Merge(t.Labels, nil)
	if gen, ok := templateGeneration(ds); ok {
		t.Labels[templateGenerationLabel] = strconv.FormatInt(gen, 10)
	}
	if hash != "" {
		t.Labels[hashLabel] = hash
	}
	return t
}

// templateGeneration reads the deprecated.daemonset.template.generation
// annotation the API server keeps on a DaemonSet.
func templateGeneration(ds *appsv1.DaemonSet) (int64, bool) {
	v, ok := ds.Annotations[appsv1.DeprecatedTemplateGeneration]
	if !ok {
		return 0, false
	}
	gen, err := strconv.ParseInt(v, 10, 64)
	return gen, err == nil
}

func (c *Controller) createPod(ctx context.Context, ds *appsv1.DaemonSet, t *corev1.PodTemplateSpec, node string) error {
	spec := t.Spec.DeepCopy()
	spec.Affinity = pinToNode(spec.Affinity, node)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    ds.Name + "-",
			Namespace:       ds.Namespace,
			Labels:          t.Labels,
			Annotations:     t.Annotations,
			Finalizers:      t.Finalizers,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ds, kind)},
		},
		Spec: *spec,
	}
	created, err := c.client.CoreV1().Pods(ds.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			c.recorder.Eventf(ds, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		}
		return err
	}
	c.recorder.Eventf(ds, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", created.Name)
	return nil
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

func podReady(p *corev1.Pod) bool { return readySince(p) != nil }

// podAvailable is upstream's test: Ready for at least minReadySeconds.
func podAvailable(p *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	since := readySince(p)
	if since == nil {
		return false
	}
	if minReadySeconds == 0 {
		return true
	}
	return !since.IsZero() && since.Add(time.Duration(minReadySeconds)*time.Second).Before(now)
}
