package deployment

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// calculateStatus derives the deployment's status from its ReplicaSets,
// with the Available condition; other conditions are carried over.
func calculateStatus(d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, now metav1.Time) appsv1.DeploymentStatus {
	total, ready, available := statusReplicas(all)
	updated, _, _ := statusReplicas([]*appsv1.ReplicaSet{newRS})
	// More available than wanted happens while scaling down; that is not
	// a negative number unavailable.
	unavailable := max(0, specReplicas(all)-available)
	s := appsv1.DeploymentStatus{
		ObservedGeneration:  d.Generation,
		Replicas:            total,
		UpdatedReplicas:     updated,
		ReadyReplicas:       ready,
		AvailableReplicas:   available,
		UnavailableReplicas: unavailable,
		CollisionCount:      d.Status.CollisionCount,
	}
	s.Conditions = append(s.Conditions, d.Status.Conditions...)
	if available >= replicas(d)-maxUnavailable(d) {
		setCondition(&s, newCondition(appsv1.DeploymentAvailable, corev1.ConditionTrue, reasonMinimumAvailable, "Deployment has minimum availability.", now))
	} else {
		setCondition(&s, newCondition(appsv1.DeploymentAvailable, corev1.ConditionFalse, reasonMinimumUnavailable, "Deployment does not have minimum availability.", now))
	}
	return s
}

// rolloutStatus is calculateStatus plus the Progressing condition, which
// tells kubectl rollout status whether the rollout finished, moves, or
// made no progress within progressDeadlineSeconds.
func rolloutStatus(d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, now time.Time) appsv1.DeploymentStatus {
	mnow := metav1.NewTime(now)
	s := calculateStatus(d, all, newRS, mnow)
	if !hasProgressDeadline(d) {
		removeCondition(&s, appsv1.DeploymentProgressing)
	}
	cur := getCondition(d.Status, appsv1.DeploymentProgressing)
	// A finished rollout stays finished until the template changes (then
	// the new ReplicaSet's UpdatedReplicas falls behind Replicas).
	finished := s.Replicas == s.UpdatedReplicas && cur != nil && cur.Reason == reasonNewRSAvailable
	if hasProgressDeadline(d) && !finished {
		what := fmt.Sprintf("Deployment %q", d.Name)
		if newRS != nil {
			what = fmt.Sprintf("ReplicaSet %q", newRS.Name)
		}
		switch {
		case complete(d, &s):
			setCondition(&s, newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, reasonNewRSAvailable, what+" has successfully progressed.", mnow))
		case progressing(d, &s):
			// Progress refreshes lastUpdateTime even with the same reason,
			// which setCondition would not do; the deadline counts from it.
			c := newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, reasonRSUpdated, what+" is progressing.", mnow)
			if cur != nil {
				if cur.Status == corev1.ConditionTrue {
					c.LastTransitionTime = cur.LastTransitionTime
				}
				removeCondition(&s, appsv1.DeploymentProgressing)
			}
			setCondition(&s, c)
		case timedOut(d, &s, now):
			setCondition(&s, newCondition(appsv1.DeploymentProgressing, corev1.ConditionFalse, reasonTimedOut, what+" has timed out progressing.", mnow))
		}
	}
	if failures := replicaFailures(all, newRS); len(failures) > 0 {
		setCondition(&s, failures[0])
	} else {
		removeCondition(&s, appsv1.DeploymentReplicaFailure)
	}
	return s
}

// timedOut reports whether the rollout has gone progressDeadlineSeconds
// since its Progressing condition last saw progress.
func timedOut(d *appsv1.Deployment, s *appsv1.DeploymentStatus, now time.Time) bool {
	if !hasProgressDeadline(d) {
		return false
	}
	c := getCondition(*s, appsv1.DeploymentProgressing)
	if c == nil || c.Reason == reasonNewRSAvailable {
		return false
	}
	if c.Reason == reasonTimedOut {
		return true
	}
	deadline := c.LastUpdateTime.Add(time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second)
	return deadline.Before(now)
}

// replicaFailures lifts ReplicaFailure conditions of the ReplicaSets,
// the new one's first, to the deployment.
func replicaFailures(all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) []appsv1.DeploymentCondition {
	collect := func(rss []*appsv1.ReplicaSet) []appsv1.DeploymentCondition {
		var out []appsv1.DeploymentCondition
		for _, rs := range rss {
			if rs == nil {
				continue
			}
			for _, c := range rs.Status.Conditions {
				if c.Type == appsv1.ReplicaSetReplicaFailure {
					out = append(out, appsv1.DeploymentCondition{
						Type: appsv1.DeploymentReplicaFailure, Status: c.Status, Reason: c.Reason, Message: c.Message,
						LastUpdateTime: c.LastTransitionTime, LastTransitionTime: c.LastTransitionTime,
					})
				}
			}
		}
		return out
	}
	if out := collect([]*appsv1.ReplicaSet{newRS}); len(out) > 0 {
		return out
	}
	return collect(all)
}

func (c *Controller) syncRolloutStatus(ctx context.Context, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, d *appsv1.Deployment) error {
	now := c.clock.Now()
	s := rolloutStatus(d, all, newRS, now)
	if equality.Semantic.DeepEqual(d.Status, s) {
		c.requeueStuck(d, s, now)
		return nil
	}
	d.Status = s
	_, err := c.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{})
	return err
}

// syncStatus writes the counts and Available condition, for syncs that
// do not move a rollout on.
func (c *Controller) syncStatus(ctx context.Context, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, d *appsv1.Deployment) error {
	s := calculateStatus(d, all, newRS, metav1.NewTime(c.clock.Now()))
	if equality.Semantic.DeepEqual(d.Status, s) {
		return nil
	}
	d.Status = s
	_, err := c.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{})
	return err
}

// requeueStuck looks at a rollout that shows no progress again when its
// progress deadline passes: no event may arrive to say it timed out.
func (c *Controller) requeueStuck(d *appsv1.Deployment, s appsv1.DeploymentStatus, now time.Time) {
	cur := getCondition(d.Status, appsv1.DeploymentProgressing)
	if !hasProgressDeadline(d) || cur == nil || complete(d, &s) || cur.Reason == reasonTimedOut {
		return
	}
	after := cur.LastUpdateTime.Add(time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second).Sub(now)
	if after < time.Second {
		// Due now; rate-limited so a clock skew cannot make it spin.
		if key, err := cache.MetaNamespaceKeyFunc(d); err == nil {
			c.queue.AddRateLimited(key)
		}
		return
	}
	c.enqueueAfter(d, after.Truncate(time.Second)+time.Second)
}

// checkPausedCondition marks Progressing Unknown while paused and again
// when resumed, unless the rollout has already timed out.
func (c *Controller) checkPausedCondition(ctx context.Context, d *appsv1.Deployment) error {
	if !hasProgressDeadline(d) {
		return nil
	}
	cur := getCondition(d.Status, appsv1.DeploymentProgressing)
	if cur != nil && cur.Reason == reasonTimedOut {
		return nil
	}
	pausedShown := cur != nil && cur.Reason == reasonPaused
	now := metav1.NewTime(c.clock.Now())
	switch {
	case d.Spec.Paused && !pausedShown:
		setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, reasonPaused, "Deployment is paused", now))
	case !d.Spec.Paused && pausedShown:
		setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, reasonResumed, "Deployment is resumed", now))
	default:
		return nil
	}
	updated, err := c.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	*d = *updated
	return nil
}
