package deployment

import (
	"context"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// findNewRS returns the oldest ReplicaSet whose template is the
// deployment's, the one the rollout moves to (or back to, on rollback).
func findNewRS(d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) *appsv1.ReplicaSet {
	sorted := append([]*appsv1.ReplicaSet(nil), rsList...)
	sortByAge(sorted)
	for _, rs := range sorted {
		if equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
			return rs
		}
	}
	return nil
}

// splitReplicaSets returns the new ReplicaSet (if it exists) and all
// the others.
func splitReplicaSets(d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) (*appsv1.ReplicaSet, []*appsv1.ReplicaSet) {
	newRS := findNewRS(d, rsList)
	var old []*appsv1.ReplicaSet
	for _, rs := range rsList {
		if newRS == nil || rs.UID != newRS.UID {
			old = append(old, rs)
		}
	}
	return newRS, old
}

// replicaSetsAndRevision returns the new and old ReplicaSets, creating the
// new one if create is set, and moves the deployment's revision to the
// new ReplicaSet's.
func (c *Controller) replicaSetsAndRevision(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet, create bool) (*appsv1.ReplicaSet, []*appsv1.ReplicaSet, error) {
	_, old := splitReplicaSets(d, rsList)
	newRS, err := c.newReplicaSet(ctx, d, rsList, old, create)
	if err != nil {
		return nil, nil, err
	}
	return newRS, old, nil
}

func (c *Controller) newReplicaSet(ctx context.Context, d *appsv1.Deployment, rsList, old []*appsv1.ReplicaSet, create bool) (*appsv1.ReplicaSet, error) {
	newRevision := strconv.FormatInt(maxRevision(old)+1, 10)
	now := metav1.NewTime(c.clock.Now())

	if existing := findNewRS(d, rsList); existing != nil {
		rs := existing.DeepCopy()
		changed := setNewRSAnnotations(d, rs, newRevision, true)
		if rs.Spec.MinReadySeconds != d.Spec.MinReadySeconds {
			rs.Spec.MinReadySeconds = d.Spec.MinReadySeconds
			changed = true
		}
		if changed {
			updated, err := c.client.AppsV1().ReplicaSets(rs.Namespace).Update(ctx, rs, metav1.UpdateOptions{})
			if err != nil {
				return nil, err
			}
			rs = updated
		}
		statusChanged := false
		if hasProgressDeadline(d) && getCondition(d.Status, appsv1.DeploymentProgressing) == nil {
			setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, reasonFoundNewRS,
				fmt.Sprintf("Found new replica set %q", rs.Name), now))
			statusChanged = true
		}
		if err := c.writeDeployment(ctx, d, rs.Annotations[RevisionAnnotation], statusChanged); err != nil {
			return nil, err
		}
		return rs, nil
	}
	if !create {
		return nil, nil
	}

	template := d.Spec.Template.DeepCopy()
	hash := ComputeHash(template, d.Status.CollisionCount)
	if template.Labels == nil {
		template.Labels = map[string]string{}
	}
	template.Labels[PodTemplateHashLabel] = hash
	selector := d.Spec.Selector.DeepCopy()
	if selector.MatchLabels == nil {
		selector.MatchLabels = map[string]string{}
	}
	selector.MatchLabels[PodTemplateHashLabel] = hash
	rsLabels := make(map[string]string, len(template.Labels))
	for k, v := range template.Labels {
		rsLabels[k] = v
	}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:            d.Name + "-" + hash,
			Namespace:       d.Namespace,
			Labels:          rsLabels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, controllerKind)},
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas:        new(int32),
			MinReadySeconds: d.Spec.MinReadySeconds,
			Selector:        selector,
			Template:        *template,
		},
	}
	*rs.Spec.Replicas = newRSReplicas(d, append(append([]*appsv1.ReplicaSet(nil), old...), rs), rs)
	setNewRSAnnotations(d, rs, newRevision, false)

	created, err := c.client.AppsV1().ReplicaSets(d.Namespace).Create(ctx, rs, metav1.CreateOptions{})
	alreadyExists := false
	switch {
	case apierrors.IsAlreadyExists(err):
		alreadyExists = true
		// Ours from a sync whose informer event has not arrived yet, or a
		// hash collision with someone else's ReplicaSet.
		cur, getErr := c.rsLister.ReplicaSets(d.Namespace).Get(rs.Name)
		if getErr != nil {
			cur, getErr = c.client.AppsV1().ReplicaSets(d.Namespace).Get(ctx, rs.Name, metav1.GetOptions{})
		}
		if getErr != nil {
			return nil, getErr
		}
		if ref := metav1.GetControllerOf(cur); ref != nil && ref.UID == d.UID && equalIgnoreHash(&cur.Spec.Template, &d.Spec.Template) {
			created = cur
			break
		}
		// A collision: count it, so the next hash differs.
		if d.Status.CollisionCount == nil {
			d.Status.CollisionCount = new(int32)
		}
		*d.Status.CollisionCount++
		updated, uerr := c.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{})
		if uerr == nil {
			*d = *updated
			c.log.Debug("pod-template-hash collision", "deployment", d.Namespace+"/"+d.Name, "collisionCount", *d.Status.CollisionCount)
		}
		return nil, err
	case err != nil:
		if hasProgressDeadline(d) {
			setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionFalse, reasonFailedRSCreate, err.Error(), now))
			if updated, uerr := c.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{}); uerr == nil {
				*d = *updated
			}
		}
		return nil, err
	}
	if !alreadyExists && rsReplicas(created) > 0 {
		c.recorder.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled up replica set %s from 0 to %d", created.Name, rsReplicas(created))
	}
	statusChanged := false
	if !alreadyExists && hasProgressDeadline(d) {
		setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, reasonNewRSCreated,
			fmt.Sprintf("Created new replica set %q", created.Name), now))
		statusChanged = true
	}
	if err := c.writeDeployment(ctx, d, newRevision, statusChanged); err != nil {
		return nil, err
	}
	return created, nil
}

// writeDeployment records revision in the deployment's annotation and, if
// statusChanged, writes its status, updating d in place. The annotation
// goes through the main resource: a status write may not carry metadata.
func (c *Controller) writeDeployment(ctx context.Context, d *appsv1.Deployment, revision string, statusChanged bool) error {
	deployments := c.client.AppsV1().Deployments(d.Namespace)
	if revision != "" && d.Annotations[RevisionAnnotation] != revision {
		if d.Annotations == nil {
			d.Annotations = map[string]string{}
		}
		d.Annotations[RevisionAnnotation] = revision
		status := d.Status
		updated, err := deployments.Update(ctx, d, metav1.UpdateOptions{})
		if err != nil {
			return err
		}
		*d = *updated
		d.Status = status
	}
	if !statusChanged {
		return nil
	}
	updated, err := deployments.UpdateStatus(ctx, d, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	*d = *updated
	return nil
}

// scaleAndRecord scales rs to n, recording an event if its size changed.
func (c *Controller) scaleAndRecord(ctx context.Context, rs *appsv1.ReplicaSet, n int32, d *appsv1.Deployment) (bool, *appsv1.ReplicaSet, error) {
	if rsReplicas(rs) == n {
		return false, rs, nil
	}
	op := "down"
	if rsReplicas(rs) < n {
		op = "up"
	}
	return c.scale(ctx, rs, n, d, op)
}

// scale sets rs's size and its record of the deployment size it was set
// for; op ("up" or "down") goes into the event.
func (c *Controller) scale(ctx context.Context, rs *appsv1.ReplicaSet, n int32, d *appsv1.Deployment, op string) (bool, *appsv1.ReplicaSet, error) {
	sizeChanged := rsReplicas(rs) != n
	cp := rs.DeepCopy()
	annotationsChanged := setReplicasAnnotations(cp, replicas(d), replicas(d)+maxSurge(d))
	if !sizeChanged && !annotationsChanged {
		return false, rs, nil
	}
	from := rsReplicas(rs)
	cp.Spec.Replicas = &n
	updated, err := c.client.AppsV1().ReplicaSets(cp.Namespace).Update(ctx, cp, metav1.UpdateOptions{})
	if err != nil {
		return false, rs, err
	}
	if sizeChanged {
		c.recorder.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled %s replica set %s from %d to %d", op, rs.Name, from, n)
	}
	return sizeChanged, updated, nil
}

// cleanup deletes the oldest old ReplicaSets beyond revisionHistoryLimit
// that are scaled to zero and have no pods left.
func (c *Controller) cleanup(ctx context.Context, old []*appsv1.ReplicaSet, d *appsv1.Deployment) error {
	if d.Spec.RevisionHistoryLimit == nil {
		return nil
	}
	var alive []*appsv1.ReplicaSet
	for _, rs := range old {
		if rs != nil && rs.DeletionTimestamp == nil {
			alive = append(alive, rs)
		}
	}
	diff := len(alive) - int(*d.Spec.RevisionHistoryLimit)
	if diff <= 0 {
		return nil
	}
	sortByRevision(alive)
	for _, rs := range alive[:diff] {
		// Keep any that still run pods or whose status is not yet current.
		if rs.Status.Replicas != 0 || rsReplicas(rs) != 0 || rs.Generation > rs.Status.ObservedGeneration {
			continue
		}
		err := c.client.AppsV1().ReplicaSets(rs.Namespace).Delete(ctx, rs.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &rs.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return err
		}
	}
	return nil
}
