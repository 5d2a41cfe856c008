package statefulset

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/util/retry"

	"github.com/lotse/lotse/internal/controller"
)

// ownedRevisions lists the set's ControllerRevisions, adopting orphans
// that match its selector (a set deleted with --cascade=orphan and
// created again gets its history back, as upstream).
func (c *Controller) ownedRevisions(ctx context.Context, set *appsv1.StatefulSet, sel labels.Selector, canAdopt func() error) ([]*appsv1.ControllerRevision, error) {
	// Only our own revisions and orphans: the switch below ignores every
	// revision another controller owns.
	all, err := controller.ControlledOrOrphaned[*appsv1.ControllerRevision](c.revisions, set)
	if err != nil {
		return nil, err
	}
	var owned []*appsv1.ControllerRevision
	for _, rev := range all {
		if !sel.Matches(labels.Set(rev.Labels)) {
			continue
		}
		ref := metav1.GetControllerOf(rev)
		switch {
		case ref != nil && ref.UID == set.UID:
			owned = append(owned, rev)
		case ref == nil && set.DeletionTimestamp == nil:
			if err := canAdopt(); err != nil {
				return nil, fmt.Errorf("can't adopt ControllerRevision %s: %w", rev.Name, err)
			}
			refs := append(append([]metav1.OwnerReference(nil), rev.OwnerReferences...), *metav1.NewControllerRef(set, kind))
			if err := c.patchOwners(ctx, "controllerrevisions", rev.Namespace, rev.Name, rev.UID, refs); err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return nil, err
			}
			rev = rev.DeepCopy()
			rev.OwnerReferences = refs
			owned = append(owned, rev)
		}
	}
	return owned, nil
}

// currentAndUpdateRevisions finds (or records) the revision of the set's
// template and the revision its pods are currently at. revs is sorted.
//
// The template's revision is the newest one if it matches; an older
// matching one (a rollback) is renumbered to be the newest; otherwise a
// new revision is created, its name moved by the collision count when a
// different revision already holds it.
func (c *Controller) currentAndUpdateRevisions(ctx context.Context, set *appsv1.StatefulSet, revs []*appsv1.ControllerRevision) (current, update *appsv1.ControllerRevision, collisions int32, err error) {
	if set.Status.CollisionCount != nil {
		collisions = *set.Status.CollisionCount
	}
	want, err := newRevision(set, nextRevisionNumber(revs), &collisions)
	if err != nil {
		return nil, nil, 0, err
	}
	var equal *appsv1.ControllerRevision
	for _, r := range revs {
		if equalRevision(r, want) {
			equal = r // the newest equal one wins
		}
	}
	switch {
	case equal != nil && equal == revs[len(revs)-1]:
		update = equal
	case equal != nil:
		update, err = c.renumberRevision(ctx, equal, want.Revision)
	default:
		update, err = c.createRevision(ctx, set, want, &collisions)
	}
	if err != nil {
		return nil, nil, collisions, err
	}
	for _, r := range revs {
		if r.Name == set.Status.CurrentRevision {
			current = r
			break
		}
	}
	if current == nil {
		// No history yet (or it was lost): the pods are taken to be at
		// the template's revision.
		current = update
	}
	return current, update, collisions, nil
}

func (c *Controller) createRevision(ctx context.Context, set *appsv1.StatefulSet, rev *appsv1.ControllerRevision, collisions *int32) (*appsv1.ControllerRevision, error) {
	revs := c.client.AppsV1().ControllerRevisions(set.Namespace)
	for {
		rev.Name = RevisionName(set.Name, HashRevision(rev.Data.Raw, collisions))
		created, err := revs.Create(ctx, rev, metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) {
			return created, err
		}
		existing, err := revs.Get(ctx, rev.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		if equalRevision(existing, rev) {
			return existing, nil // created by an earlier pass the cache missed
		}
		// Someone else's revision holds the name: move ours off it.
		*collisions++
	}
}

func (c *Controller) renumberRevision(ctx context.Context, rev *appsv1.ControllerRevision, number int64) (*appsv1.ControllerRevision, error) {
	revs := c.client.AppsV1().ControllerRevisions(rev.Namespace)
	next := rev.DeepCopy()
	var out *appsv1.ControllerRevision
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		if next.Revision == number {
			out = next
			return nil
		}
		next.Revision = number
		updated, err := revs.Update(ctx, next, metav1.UpdateOptions{})
		if err == nil {
			out = updated
			return nil
		}
		if apierrors.IsConflict(err) {
			if fresh, getErr := revs.Get(ctx, rev.Name, metav1.GetOptions{}); getErr == nil {
				next = fresh
			}
		}
		return err
	})
	return out, err
}

// truncateHistory deletes the oldest revisions no pod uses beyond
// spec.revisionHistoryLimit.
func (c *Controller) truncateHistory(ctx context.Context, set *appsv1.StatefulSet, pods []*corev1.Pod, revs []*appsv1.ControllerRevision, current, update *appsv1.ControllerRevision) error {
	live := map[string]bool{current.Name: true, update.Name: true}
	for _, p := range pods {
		live[podRevision(p)] = true
	}
	limit := 10
	if set.Spec.RevisionHistoryLimit != nil {
		limit = int(*set.Spec.RevisionHistoryLimit)
	}
	for _, r := range historyToDelete(revs, live, limit) {
		err := c.client.AppsV1().ControllerRevisions(r.Namespace).Delete(ctx, r.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}
