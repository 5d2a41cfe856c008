package deployment

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// rolloutRolling takes one step of a rolling update: grow the new
// ReplicaSet within maxSurge, else shrink old ones within maxUnavailable.
func (c *Controller) rolloutRolling(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	newRS, old, err := c.replicaSetsAndRevision(ctx, d, rsList, true)
	if err != nil {
		return err
	}
	all := append(append([]*appsv1.ReplicaSet(nil), old...), newRS)

	scaledUp, err := c.reconcileNewRS(ctx, all, newRS, d)
	if err != nil {
		return err
	}
	if scaledUp {
		return c.syncRolloutStatus(ctx, all, newRS, d)
	}
	scaledDown, err := c.reconcileOldRSs(ctx, all, active(old), newRS, d)
	if err != nil {
		return err
	}
	if scaledDown {
		return c.syncRolloutStatus(ctx, all, newRS, d)
	}
	if complete(d, &d.Status) {
		if err := c.cleanup(ctx, old, d); err != nil {
			return err
		}
	}
	return c.syncRolloutStatus(ctx, all, newRS, d)
}

func (c *Controller) reconcileNewRS(ctx context.Context, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, d *appsv1.Deployment) (bool, error) {
	switch {
	case rsReplicas(newRS) == replicas(d):
		return false, nil
	case rsReplicas(newRS) > replicas(d):
		scaled, _, err := c.scaleAndRecord(ctx, newRS, replicas(d), d)
		return scaled, err
	}
	scaled, _, err := c.scaleAndRecord(ctx, newRS, newRSReplicas(d, all, newRS), d)
	return scaled, err
}

// oldScaleDown is how many old replicas a rolling update may remove now
// without falling below the minimum available, counting the new
// ReplicaSet's not-yet-available pods as unavailable.
func oldScaleDown(d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) int32 {
	minAvailable := replicas(d) - maxUnavailable(d)
	newUnavailable := rsReplicas(newRS) - newRS.Status.AvailableReplicas
	return specReplicas(all) - minAvailable - newUnavailable
}

func (c *Controller) reconcileOldRSs(ctx context.Context, all, old []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, d *appsv1.Deployment) (bool, error) {
	if specReplicas(old) == 0 {
		return false, nil
	}
	maxScaledDown := oldScaleDown(d, all, newRS)
	if maxScaledDown <= 0 {
		return false, nil
	}
	// Unhealthy old replicas go first: they would otherwise hold the
	// rollout up while counting as unavailable anyway.
	old, cleaned, err := c.cleanupUnhealthy(ctx, old, d, maxScaledDown)
	if err != nil {
		return false, err
	}
	all = append(append([]*appsv1.ReplicaSet(nil), old...), newRS)
	scaled, err := c.scaleDownOldForRolling(ctx, all, old, d)
	if err != nil {
		return false, err
	}
	return cleaned+scaled > 0, nil
}

func (c *Controller) cleanupUnhealthy(ctx context.Context, old []*appsv1.ReplicaSet, d *appsv1.Deployment, maxCleanup int32) ([]*appsv1.ReplicaSet, int32, error) {
	old = append([]*appsv1.ReplicaSet(nil), old...)
	sortByAge(old)
	var total int32
	for i, rs := range old {
		if total >= maxCleanup {
			break
		}
		n := min(maxCleanup-total, unhealthy(rs))
		if n <= 0 {
			continue
		}
		_, updated, err := c.scaleAndRecord(ctx, rs, rsReplicas(rs)-n, d)
		if err != nil {
			return nil, total, err
		}
		total += n
		old[i] = updated
	}
	return old, total, nil
}

// unhealthy is how many of the replicas rs wants are not available. Its
// status may still count pods of a larger size it just had, so more
// available than wanted is not negative unhealthiness.
func unhealthy(rs *appsv1.ReplicaSet) int32 {
	return max(0, rsReplicas(rs)-rs.Status.AvailableReplicas)
}

// availableWithin counts the available pods each ReplicaSet keeps: a
// status not yet caught up with a scale-down still counts pods about to
// go, and counting them would let a second scale-down break
// maxUnavailable. (Upstream counts them; this is the safe side.)
func availableWithin(rss []*appsv1.ReplicaSet) int32 {
	var n int32
	for _, rs := range rss {
		if rs != nil {
			n += min(rsReplicas(rs), rs.Status.AvailableReplicas)
		}
	}
	return n
}

func (c *Controller) scaleDownOldForRolling(ctx context.Context, all, old []*appsv1.ReplicaSet, d *appsv1.Deployment) (int32, error) {
	minAvailable := replicas(d) - maxUnavailable(d)
	available := availableWithin(all)
	if available <= minAvailable {
		return 0, nil
	}
	old = append([]*appsv1.ReplicaSet(nil), old...)
	sortByAge(old)
	want := available - minAvailable
	var total int32
	for _, rs := range old {
		if total >= want {
			break
		}
		if rsReplicas(rs) == 0 {
			continue
		}
		n := min(rsReplicas(rs), want-total)
		if _, _, err := c.scaleAndRecord(ctx, rs, rsReplicas(rs)-n, d); err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// rolloutRecreate scales every old ReplicaSet to zero, waits until no old
// pod runs, then brings up the new ReplicaSet at full size.
func (c *Controller) rolloutRecreate(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet, sel labels.Selector) error {
	newRS, old, err := c.replicaSetsAndRevision(ctx, d, rsList, false)
	if err != nil {
		return err
	}
	all := append(append([]*appsv1.ReplicaSet(nil), old...), newRS)

	scaledDown := false
	for _, rs := range active(old) {
		scaled, _, err := c.scaleAndRecord(ctx, rs, 0, d)
		if err != nil {
			return err
		}
		scaledDown = scaledDown || scaled
	}
	if scaledDown {
		return c.syncRolloutStatus(ctx, all, newRS, d)
	}
	running, err := c.oldPodsRunning(d, sel, newRS, old)
	if err != nil {
		return err
	}
	if running {
		return c.syncRolloutStatus(ctx, all, newRS, d)
	}
	if newRS == nil {
		newRS, old, err = c.replicaSetsAndRevision(ctx, d, rsList, true)
		if err != nil {
			return err
		}
		all = append(append([]*appsv1.ReplicaSet(nil), old...), newRS)
	}
	if _, _, err := c.scaleAndRecord(ctx, newRS, replicas(d), d); err != nil {
		return err
	}
	if complete(d, &d.Status) {
		if err := c.cleanup(ctx, old, d); err != nil {
			return err
		}
	}
	return c.syncRolloutStatus(ctx, all, newRS, d)
}

// isScalingEvent reports whether spec.replicas changed since the active
// ReplicaSets were last sized, which is handled as scaling, not rollout.
func (c *Controller) isScalingEvent(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) bool {
	newRS, old := splitReplicaSets(d, rsList)
	for _, rs := range active(append(old, newRS)) {
		if desired, ok := annotationInt(rs, DesiredReplicasAnnotation); ok && desired != replicas(d) {
			return true
		}
	}
	return false
}

// syncScale resizes the ReplicaSets to spec.replicas without moving a
// rollout on, as for paused deployments and scaling events.
func (c *Controller) syncScale(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	newRS, old, err := c.replicaSetsAndRevision(ctx, d, rsList, false)
	if err != nil {
		return err
	}
	if err := c.scaleReplicaSets(ctx, d, newRS, old); err != nil {
		return err
	}
	if d.Spec.Paused {
		if err := c.cleanup(ctx, old, d); err != nil {
			return err
		}
	}
	return c.syncStatus(ctx, append(append([]*appsv1.ReplicaSet(nil), old...), newRS), newRS, d)
}

func (c *Controller) syncStatusOnly(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	newRS, old, err := c.replicaSetsAndRevision(ctx, d, rsList, false)
	if err != nil {
		return err
	}
	return c.syncStatus(ctx, append(append([]*appsv1.ReplicaSet(nil), old...), newRS), newRS, d)
}

// scaleReplicaSets brings the ReplicaSets' total to spec.replicas: all of
// it to the only active one, all of the old ones' to a saturated new one,
// else spread proportionally over the active ones.
func (c *Controller) scaleReplicaSets(ctx context.Context, d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) error {
	if rs := activeOrLatest(newRS, old); rs != nil {
		if rsReplicas(rs) == replicas(d) {
			return nil
		}
		_, _, err := c.scaleAndRecord(ctx, rs, replicas(d), d)
		return err
	}
	if isSaturated(d, newRS) {
		for _, rs := range active(old) {
			if _, _, err := c.scaleAndRecord(ctx, rs, 0, d); err != nil {
				return err
			}
		}
		return nil
	}
	if !isRollingUpdate(d) {
		return nil
	}
	all := active(append(append([]*appsv1.ReplicaSet(nil), old...), newRS))
	sizes := proportionalSizes(d, all)
	allowed := int32(0)
	if replicas(d) > 0 {
		allowed = replicas(d) + maxSurge(d)
	}
	op := ""
	switch total := specReplicas(all); {
	case allowed > total:
		op = "up"
	case allowed < total:
		op = "down"
	}
	for _, rs := range all {
		if _, _, err := c.scale(ctx, rs, sizes[rs.Name], d, op); err != nil {
			return err
		}
	}
	return nil
}
