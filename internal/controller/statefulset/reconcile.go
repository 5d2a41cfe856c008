package statefulset

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// podControl is everything reconcile does to the world. The controller's
// implementation talks to the API server; tests record the calls.
type podControl interface {
	// createPod creates pod's missing claims, then pod.
	createPod(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error
	deletePod(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error
	// updatePod restores pod's identity, storage and claim owners.
	updatePod(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error
	// claimsMatchPolicy reports whether pod's claims carry the owner
	// references the retention policy asks for.
	claimsMatchPolicy(set *appsv1.StatefulSet, pod *corev1.Pod) (bool, error)
	fixClaimOwners(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error
	// claimIsStale reports a claim still owned by an earlier pod of the
	// same name, which must be deleted before the pod can be recreated.
	claimIsStale(set *appsv1.StatefulSet, pod *corev1.Pod) (bool, error)
	createMissingClaims(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error
}

// reconciler decides, for one StatefulSet, which pod to create, update or
// delete next, exactly as upstream orders it.
type reconciler struct {
	ctl podControl
	now time.Time
}

// reconcile makes one pass over set's pods. It returns the status to
// report (nil only when the revisions cannot be applied) and the first
// error met; it stops early where the ordering says to wait.
func (r *reconciler) reconcile(ctx context.Context, set *appsv1.StatefulSet, currentRev, updateRev *appsv1.ControllerRevision,
	collisionCount int32, pods []*corev1.Pod) (*appsv1.StatefulSetStatus, error) {
	currentSet, err := applyRevision(set, currentRev)
	if err != nil {
		return nil, err
	}
	updateSet, err := applyRevision(set, updateRev)
	if err != nil {
		return nil, err
	}
	minReady := set.Spec.MinReadySeconds
	status := &appsv1.StatefulSetStatus{
		ObservedGeneration: set.Generation,
		CurrentRevision:    currentRev.Name,
		UpdateRevision:     updateRev.Name,
		CollisionCount:     &collisionCount,
	}
	r.count(status, minReady, currentRev.Name, updateRev.Name, pods)

	// Split the pods into those in [start, end] by ordinal and the
	// condemned rest; pods whose name has no ordinal are ignored.
	start := startOrdinal(set)
	replicaPods := make([]*corev1.Pod, replicas(set))
	var condemned []*corev1.Pod
	for _, pod := range pods {
		switch ord := ordinal(pod); {
		case inOrdinalRange(pod, set):
			replicaPods[ord-start] = pod
		case ord >= 0:
			condemned = append(condemned, pod)
		}
	}
	for i := range replicaPods {
		if replicaPods[i] == nil {
			replicaPods[i] = newVersionedPod(currentSet, updateSet, currentRev.Name, updateRev.Name, start+i)
		}
	}
	// Highest ordinal first: that is the order of scaling down.
	sort.Slice(condemned, func(i, j int) bool { return ordinal(condemned[i]) > ordinal(condemned[j]) })

	var firstUnavailable *corev1.Pod
	for _, p := range replicaPods {
		if firstUnavailable == nil && isUnavailable(p, minReady, r.now) {
			firstUnavailable = p
		}
	}
	for i := len(condemned) - 1; i >= 0 && firstUnavailable == nil; i-- {
		if isUnavailable(condemned[i], minReady, r.now) {
			firstUnavailable = condemned[i]
		}
	}

	recount := func() {
		r.count(status, minReady, currentRev.Name, updateRev.Name, replicaPods, condemned)
	}
	if set.DeletionTimestamp != nil {
		return status, nil // a set being deleted only reports
	}
	ordered := set.Spec.PodManagementPolicy != appsv1.ParallelPodManagement

	// 1. Every replica exists, in order and ready when ordered.
	if stop, err := forAll(replicaPods, ordered, func(i int) (bool, error) {
		return r.processReplica(ctx, set, updateSet, ordered, replicaPods, i)
	}); stop || err != nil {
		recount()
		return status, err
	}
	// 2. Claims of condemned pods get the owners the policy asks for
	// before the pods go, so that whenScaled=Delete removes them.
	if stop, err := forAll(condemned, ordered, func(i int) (bool, error) {
		ok, err := r.ctl.claimsMatchPolicy(updateSet, condemned[i])
		if err != nil || ok {
			return err != nil, err
		}
		return false, r.ctl.fixClaimOwners(ctx, updateSet, condemned[i])
	}); stop || err != nil {
		recount()
		return status, err
	}
	// 3. Scale down, highest ordinal first, one at a time when ordered.
	if stop, err := forAll(condemned, ordered, func(i int) (bool, error) {
		return r.processCondemned(ctx, set, firstUnavailable, ordered, condemned, i)
	}); stop || err != nil {
		recount()
		return status, err
	}
	recount()

	// 4. Roll the template out. OnDelete waits for the user to delete pods.
	if set.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return status, nil
	}
	return status, r.rollOut(ctx, set, replicaPods, updateRev.Name, status)
}

// processReplica brings the replica at index i one step on; true means
// stop here (in ordered mode: wait for this pod).
func (r *reconciler) processReplica(ctx context.Context, set, updateSet *appsv1.StatefulSet, ordered bool, pods []*corev1.Pod, i int) (bool, error) {
	pod := pods[i]
	// A finished pod is deleted; its successor is created once it is gone,
	// so that two pods of one name never coexist.
	if isFailed(pod) || isSucceeded(pod) {
		if !isTerminating(pod) {
			if err := r.ctl.deletePod(ctx, set, pod); err != nil {
				return true, err
			}
		}
		return true, nil
	}
	if !isCreated(pod) {
		if stale, err := r.ctl.claimIsStale(set, pod); err != nil || stale {
			return true, err
		}
		if err := r.ctl.createPod(ctx, set, pod); err != nil {
			return true, err
		}
		// Ordered: nothing further until this pod runs and is ready.
		return ordered, nil
	}
	if isPending(pod) {
		// Claims deleted under a pending pod are made again.
		if err := r.ctl.createMissingClaims(ctx, set, pod); err != nil {
			return true, err
		}
	}
	if ordered && (isTerminating(pod) || !isRunningAndAvailable(pod, set.Spec.MinReadySeconds, r.now)) {
		return true, nil
	}
	match, err := r.ctl.claimsMatchPolicy(updateSet, pod)
	if err != nil {
		match = true // the claim may not exist yet; the next pass sees it
	}
	if identityMatches(set, pod) && storageMatches(set, pod) && match {
		return false, nil
	}
	if err := r.ctl.updatePod(ctx, updateSet, pod.DeepCopy()); err != nil {
		return true, err
	}
	return false, nil
}

// processCondemned deletes the condemned pod at index i when ordering
// allows: in ordered mode only when every other pod is available, unless
// it is itself the first unavailable one.
func (r *reconciler) processCondemned(ctx context.Context, set *appsv1.StatefulSet, firstUnavailable *corev1.Pod, ordered bool, pods []*corev1.Pod, i int) (bool, error) {
	pod := pods[i]
	if isTerminating(pod) {
		return ordered, nil
	}
	if ordered && pod != firstUnavailable && !isRunningAndAvailable(pod, set.Spec.MinReadySeconds, r.now) {
		return true, nil
	}
	return true, r.ctl.deletePod(ctx, set, pod)
}

// rollOut deletes pods at or above the partition that are not at the
// update revision, highest ordinal first; the next pass recreates them from
// the new template. Without rollingUpdate.maxUnavailable it replaces one
// pod at a time, as it always has; with it, several at once.
func (r *reconciler) rollOut(ctx context.Context, set *appsv1.StatefulSet, pods []*corev1.Pod, updateRev string, status *appsv1.StatefulSetStatus) error {
	partition := 0
	var maxUnavailable *intstr.IntOrString
	if ru := set.Spec.UpdateStrategy.RollingUpdate; ru != nil {
		if ru.Partition != nil {
			partition = int(*ru.Partition)
		}
		maxUnavailable = ru.MaxUnavailable
	}
	if maxUnavailable == nil {
		return r.rollOutOne(ctx, set, pods, partition, updateRev, status)
	}
	limit, err := unavailableLimit(maxUnavailable, len(pods))
	if err != nil {
		return err
	}
	return r.rollOutBudget(ctx, set, pods, partition, limit, updateRev, status)
}

// rollOutOne deletes the highest outdated pod, but not while a pod above
// it (already updated, or terminating) is unavailable.
func (r *reconciler) rollOutOne(ctx context.Context, set *appsv1.StatefulSet, pods []*corev1.Pod, partition int, updateRev string, status *appsv1.StatefulSetStatus) error {
	for i := len(pods) - 1; i >= partition; i-- {
		if podRevision(pods[i]) != updateRev && !isTerminating(pods[i]) {
			return r.deleteForUpdate(ctx, set, pods[i], status)
		}
		if isUnavailable(pods[i], set.Spec.MinReadySeconds, r.now) {
			return nil
		}
	}
	return nil
}

// rollOutBudget keeps at most limit pods of the set unavailable, counting
// those that already are (anywhere in the set, below the partition too):
// only limit minus that many healthy pods may go down now. The next pass,
// once the replacements are available, takes the next batch.
//
// With Parallel management upstream (since 1.37) first replaces every
// outdated pod that is unavailable anyway: deleting it costs no
// availability, and counting it against the budget would stall a rollout
// that is meant to repair a broken revision.
func (r *reconciler) rollOutBudget(ctx context.Context, set *appsv1.StatefulSet, pods []*corev1.Pod, partition, limit int, updateRev string, status *appsv1.StatefulSetStatus) error {
	minReady := set.Spec.MinReadySeconds
	budget := limit
	for _, p := range pods {
		if isUnavailable(p, minReady, r.now) {
			budget--
		}
	}
	parallel := set.Spec.PodManagementPolicy == appsv1.ParallelPodManagement
	for i := len(pods) - 1; i >= partition; i-- {
		p := pods[i]
		if podRevision(p) == updateRev || isTerminating(p) {
			continue
		}
		// In ordered mode every replica is available by now (reconcile
		// stops earlier otherwise), so only the budget decides.
		if parallel && !isRunningAndAvailable(p, minReady, r.now) {
			if err := r.deleteForUpdate(ctx, set, p, status); err != nil {
				return err
			}
			continue
		}
		if budget <= 0 {
			continue // a lower, unavailable outdated pod may still go
		}
		if err := r.deleteForUpdate(ctx, set, p, status); err != nil {
			return err
		}
		budget--
	}
	return nil
}

// deleteForUpdate deletes pod so that it is recreated at the update
// revision; a pod already gone is as good as deleted.
func (r *reconciler) deleteForUpdate(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod, status *appsv1.StatefulSetStatus) error {
	if err := r.ctl.deletePod(ctx, set, pod); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	status.CurrentReplicas--
	return nil
}

// unavailableLimit resolves maxUnavailable against the replica count: a
// percentage rounds down, and the result is at least 1 so that a small
// percentage of a small set still makes progress.
func unavailableLimit(v *intstr.IntOrString, replicas int) (int, error) {
	n, err := intstr.GetScaledValueFromIntOrPercent(v, replicas, false)
	if err != nil {
		return 0, fmt.Errorf("statefulset: rollingUpdate.maxUnavailable: %w", err)
	}
	return max(n, 1), nil
}

// count fills the replica counters of status from the pods given.
func (r *reconciler) count(status *appsv1.StatefulSetStatus, minReady int32, currentRev, updateRev string, lists ...[]*corev1.Pod) {
	status.Replicas, status.ReadyReplicas, status.AvailableReplicas = 0, 0, 0
	status.CurrentReplicas, status.UpdatedReplicas = 0, 0
	for _, list := range lists {
		for _, p := range list {
			if isCreated(p) {
				status.Replicas++
			}
			if isRunningAndReady(p) {
				status.ReadyReplicas++
				if isRunningAndAvailable(p, minReady, r.now) {
					status.AvailableReplicas++
				}
			}
			if isCreated(p) && !isTerminating(p) {
				if podRevision(p) == currentRev {
					status.CurrentReplicas++
				}
				if podRevision(p) == updateRev {
					status.UpdatedReplicas++
				}
			}
		}
	}
}

// completeRollingUpdate: once every pod is updated and ready, the update
// revision becomes the current one.
func completeRollingUpdate(set *appsv1.StatefulSet, status *appsv1.StatefulSetStatus) {
	if set.Spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType &&
		status.UpdatedReplicas == status.Replicas && status.ReadyReplicas == status.Replicas {
		status.CurrentReplicas = status.UpdatedReplicas
		status.CurrentRevision = status.UpdateRevision
	}
}

// forAll runs fn over pods: in order, stopping at the first stop or
// error, when ordered; otherwise all of them, in growing concurrent
// batches (1, 2, 4, ...) that stop after a batch with an error.
func forAll(pods []*corev1.Pod, ordered bool, fn func(i int) (bool, error)) (bool, error) {
	if ordered {
		for i := range pods {
			if stop, err := fn(i); stop || err != nil {
				return true, err
			}
		}
		return false, nil
	}
	next := 0
	for batch := 1; next < len(pods); batch *= 2 {
		size := min(batch, len(pods)-next)
		errs := make(chan error, size)
		var wg sync.WaitGroup
		for i := next; i < next+size; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := fn(i); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return true, err
		}
		next += size
	}
	return false, nil
}
