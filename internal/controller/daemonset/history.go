package daemonset

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/dump"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/controller"
)

// hashLabel ties pods and ControllerRevisions to a template version.
const hashLabel = appsv1.DefaultDaemonSetUniqueLabelKey

// computeHash is upstream's template hash: FNV-32a over a deep dump of
// the template, then the collision count, so a template gets the same
// revision name here as on any other cluster.
func computeHash(template *corev1.PodTemplateSpec, collisionCount *int32) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%v", dump.ForHash(*template))
	if collisionCount != nil {
		var buf [4]byte
		binary.LittleEndian.PutUint32(buf[:], uint32(*collisionCount))
		h.Write(buf[:])
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// templatePatch is what a ControllerRevision of ds stores: a strategic
// merge patch that replaces spec.template. kubectl computes the same
// bytes to find the current revision and applies them to undo.
func templatePatch(ds *appsv1.DaemonSet) ([]byte, error) {
	raw, err := json.Marshal(ds)
	if err != nil {
		return nil, err
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, err
	}
	spec, _ := obj["spec"].(map[string]any)
	template, _ := spec["template"].(map[string]any)
	if template == nil {
		template = map[string]any{}
	}
	template["$patch"] = "replace"
	return json.Marshal(map[string]any{"spec": map[string]any{"template": template}})
}

func revisionMatches(ds *appsv1.DaemonSet, rev *appsv1.ControllerRevision) (bool, error) {
	patch, err := templatePatch(ds)
	if err != nil {
		return false, err
	}
	return bytes.Equal(patch, rev.Data.Raw), nil
}

// constructHistory returns the revision of ds's current template
// (creating it, or raising its revision number to the newest) and the
// older revisions.
func (c *Controller) constructHistory(ctx context.Context, ds *appsv1.DaemonSet, revs []*appsv1.ControllerRevision) (*appsv1.ControllerRevision, []*appsv1.ControllerRevision, error) {
	var current, old []*appsv1.ControllerRevision
	for _, rev := range revs {
		if _, ok := rev.Labels[hashLabel]; !ok {
			// Revisions written before the label existed carry their
			// hash in the name; label them rather than recompute.
			upd := rev.DeepCopy()
			if upd.Labels == nil {
				upd.Labels = map[string]string{}
			}
			upd.Labels[hashLabel] = upd.Name
			var err error
			if rev, err = c.client.AppsV1().ControllerRevisions(ds.Namespace).Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
				return nil, nil, err
			}
		}
		match, err := revisionMatches(ds, rev)
		if err != nil {
			return nil, nil, err
		}
		if match {
			current = append(current, rev)
		} else {
			old = append(old, rev)
		}
	}
	next := maxRevision(old) + 1
	if len(current) == 0 {
		cur, err := c.snapshot(ctx, ds, next)
		return cur, old, err
	}
	cur, err := c.dedupCurrent(ctx, ds, current)
	if err != nil {
		return nil, nil, err
	}
	if cur.Revision < next {
		upd := cur.DeepCopy()
		upd.Revision = next
		if cur, err = c.client.AppsV1().ControllerRevisions(ds.Namespace).Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return nil, nil, err
		}
	}
	return cur, old, nil
}

func maxRevision(revs []*appsv1.ControllerRevision) int64 {
	var m int64
	for _, r := range revs {
		m = max(m, r.Revision)
	}
	return m
}

// snapshot creates the ControllerRevision of ds's template. A name taken
// by a different template is a hash collision: it bumps
// status.collisionCount so the next sync hashes to a free name.
func (c *Controller) snapshot(ctx context.Context, ds *appsv1.DaemonSet, revision int64) (*appsv1.ControllerRevision, error) {
	patch, err := templatePatch(ds)
	if err != nil {
		return nil, err
	}
	hash := computeHash(&ds.Spec.Template, ds.Status.CollisionCount)
	lbls := labels.Merge(ds.Spec.Template.Labels, labels.Set{hashLabel: hash})
	rev := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name:            ds.Name + "-" + hash,
			Namespace:       ds.Namespace,
			Labels:          lbls,
			Annotations:     ds.Annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ds, kind)},
		},
		Data:     runtime.RawExtension{Raw: patch},
		Revision: revision,
	}
	revs := c.client.AppsV1().ControllerRevisions(ds.Namespace)
	created, err := revs.Create(ctx, rev, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		return created, err
	}
	existing, getErr := revs.Get(ctx, rev.Name, metav1.GetOptions{})
	if getErr != nil {
		return nil, getErr
	}
	if match, _ := revisionMatches(ds, existing); match {
		return existing, nil // created by an earlier sync (or an orphan we will adopt)
	}
	fresh, getErr := c.client.AppsV1().DaemonSets(ds.Namespace).Get(ctx, ds.Name, metav1.GetOptions{})
	if getErr != nil {
		return nil, getErr
	}
	if ptr.Deref(fresh.Status.CollisionCount, 0) != ptr.Deref(ds.Status.CollisionCount, 0) {
		return nil, fmt.Errorf("daemonset %s/%s: stale collision count, retrying", ds.Namespace, ds.Name)
	}
	fresh.Status.CollisionCount = ptr.To(ptr.Deref(fresh.Status.CollisionCount, 0) + 1)
	if _, err := c.client.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, fresh, metav1.UpdateOptions{}); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("daemonset %s/%s: hash collision on revision %s, collisionCount raised", ds.Namespace, ds.Name, rev.Name)
}

// dedupCurrent keeps the newest of several revisions holding the current
// template, moves pods labelled with the others onto it and deletes them.
func (c *Controller) dedupCurrent(ctx context.Context, ds *appsv1.DaemonSet, current []*appsv1.ControllerRevision) (*appsv1.ControllerRevision, error) {
	keep := current[0]
	for _, r := range current[1:] {
		if r.Revision >= keep.Revision {
			keep = r
		}
	}
	if len(current) == 1 {
		return keep, nil
	}
	keepHash := keep.Labels[hashLabel]
	pods, err := controller.ControlledOrOrphaned[*corev1.Pod](c.pods, ds)
	if err != nil {
		return nil, err
	}
	for _, dup := range current {
		if dup.Name == keep.Name {
			continue
		}
		for _, pod := range pods {
			if !metav1.IsControlledBy(pod, ds) || pod.Labels[hashLabel] != dup.Labels[hashLabel] {
				continue
			}
			patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{hashLabel: keepHash}}})
			if _, err := c.client.CoreV1().Pods(ds.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return nil, err
			}
		}
		if err := c.client.AppsV1().ControllerRevisions(ds.Namespace).Delete(ctx, dup.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return nil, err
		}
	}
	return keep, nil
}

// cleanupHistory deletes the oldest revisions beyond revisionHistoryLimit
// that no live pod still runs.
func (c *Controller) cleanupHistory(ctx context.Context, ds *appsv1.DaemonSet, old []*appsv1.ControllerRevision, nodePods map[string][]*corev1.Pod) error {
	for _, name := range revisionsToDelete(old, ptr.Deref(ds.Spec.RevisionHistoryLimit, 10), nodePods) {
		if err := c.client.AppsV1().ControllerRevisions(ds.Namespace).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("cleaning up revisions: %w", err)
		}
	}
	return nil
}

// revisionsToDelete picks, oldest first, the revisions over limit whose
// hash no live pod carries.
func revisionsToDelete(old []*appsv1.ControllerRevision, limit int32, nodePods map[string][]*corev1.Pod) []string {
	excess := len(old) - int(limit)
	if excess <= 0 {
		return nil
	}
	live := map[string]bool{}
	for _, pods := range nodePods {
		for _, p := range pods {
			if h := p.Labels[hashLabel]; h != "" {
				live[h] = true
			}
		}
	}
	sorted := append([]*appsv1.ControllerRevision(nil), old...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Revision < sorted[j].Revision })
	var out []string
	for _, r := range sorted {
		if excess == 0 {
			break
		}
		if live[r.Labels[hashLabel]] {
			continue
		}
		out = append(out, r.Name)
		excess--
	}
	return out
}
