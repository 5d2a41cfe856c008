package disruption

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// DeletionTimeout is how long a pod recorded in status.disruptedPods by the
// eviction subresource is counted as on its way out. If it still exists
// (and is not being deleted) after that, the eviction is taken to have
// failed and the pod counts again, as upstream.
const DeletionTimeout = 2 * time.Minute

// owners finds the scale of the workload controlling a pod, from the
// informer caches of the kinds upstream knows.
type owners struct {
	replicaSets  appslisters.ReplicaSetLister
	deployments  appslisters.DeploymentLister
	statefulSets appslisters.StatefulSetLister
	rcs          corelisters.ReplicationControllerLister // nil if the server has none
}

// workload is one scalable controller: its uid (to count it once) and its
// desired replicas.
type workload struct {
	uid   types.UID
	scale int32
}

// refIs reports whether ref names kind in one of groups. A malformed
// apiVersion is an error: the pod's owner cannot be resolved.
func refIs(ref *metav1.OwnerReference, kind string, groups ...string) (bool, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return false, err
	}
	if ref.Kind != kind {
		return false, nil
	}
	for _, g := range groups {
		if gv.Group == g {
			return true, nil
		}
	}
	return false, nil
}

func replicas(r *int32) int32 {
	if r == nil {
		return 1 // the API server defaults it; an unset one means 1
	}
	return *r
}

// find resolves a pod's controller reference to a workload, nil if no
// known workload matches it (missing from the cache, or another uid).
// A ReplicaSet owned by a Deployment stands for the Deployment, since
// during a rollout the Deployment's replicas are what is expected.
func (o *owners) find(ns string, ref *metav1.OwnerReference) (*workload, error) {
	if ok, err := refIs(ref, "ReplicaSet", "apps", "extensions"); err != nil || ok {
		if err != nil {
			return nil, err
		}
		rs, err := o.replicaSets.ReplicaSets(ns).Get(ref.Name)
		if err != nil || rs.UID != ref.UID {
			return nil, nil // gone or replaced: nothing found
		}
		return o.deploymentOf(rs)
	}
	if ok, err := refIs(ref, "StatefulSet", "apps"); err != nil || ok {
		if err != nil {
			return nil, err
		}
		ss, err := o.statefulSets.StatefulSets(ns).Get(ref.Name)
		if err != nil || ss.UID != ref.UID {
			return nil, nil
		}
		return &workload{ss.UID, replicas(ss.Spec.Replicas)}, nil
	}
	if ok, err := refIs(ref, "ReplicationController", ""); err != nil || (ok && o.rcs != nil) {
		if err != nil {
			return nil, err
		}
		rc, err := o.rcs.ReplicationControllers(ns).Get(ref.Name)
		if err != nil || rc.UID != ref.UID {
			return nil, nil
		}
		return &workload{rc.UID, replicas(rc.Spec.Replicas)}, nil
	}
	return nil, nil
}

// deploymentOf returns the Deployment controlling rs, or rs itself when no
// Deployment does. A ReplicaSet whose Deployment is missing resolves to
// nothing, as upstream: its own replicas would be the wrong denominator.
func (o *owners) deploymentOf(rs *appsv1.ReplicaSet) (*workload, error) {
	ref := metav1.GetControllerOf(rs)
	if ref == nil {
		return &workload{rs.UID, replicas(rs.Spec.Replicas)}, nil
	}
	ok, err := refIs(ref, "Deployment", "apps", "extensions")
	if err != nil {
		return nil, err
	}
	if !ok {
		if ref.Kind == "Deployment" {
			return nil, nil
		}
		return &workload{rs.UID, replicas(rs.Spec.Replicas)}, nil
	}
	d, err := o.deployments.Deployments(rs.Namespace).Get(ref.Name)
	if err != nil || d.UID != ref.UID {
		return nil, nil
	}
	return &workload{d.UID, replicas(d.Spec.Replicas)}, nil
}

// expectedScale sums the scale of the controllers of pods, each counted
// once. Pods with no controller are returned by name and left out of the
// sum; a controller that cannot be found is an error.
func (o *owners) expectedScale(pods []*corev1.Pod) (int32, []string, error) {
	seen := map[types.UID]bool{}
	scales := map[types.UID]int32{}
	var unmanaged []string
	for _, pod := range pods {
		ref := metav1.GetControllerOf(pod)
		if ref == nil {
			unmanaged = append(unmanaged, pod.Name)
			continue
		}
		if seen[ref.UID] {
			continue
		}
		w, err := o.find(pod.Namespace, ref)
		if err != nil {
			return 0, nil, err
		}
		if w == nil {
			return 0, nil, fmt.Errorf("found no controllers for pod %q", pod.Name)
		}
		seen[ref.UID] = true
		scales[w.uid] = w.scale
	}
	var sum int32
	for _, s := range scales {
		sum += s
	}
	return sum, unmanaged, nil
}

// expectedAndDesired returns how many pods the budget expects and how
// many of them must be healthy. An integer minAvailable counts the
// matching pods; a percentage, or any maxUnavailable, is relative to the
// scale of the pods' controllers, rounded up as upstream.
func (o *owners) expectedAndDesired(pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod) (expected, desired int32, unmanaged []string, err error) {
	switch {
	case pdb.Spec.MaxUnavailable != nil:
		expected, unmanaged, err = o.expectedScale(pods)
		if err != nil {
			return 0, 0, nil, err
		}
		maxUnavailable, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, int(expected), true)
		if err != nil {
			return 0, 0, nil, err
		}
		desired = max(expected-int32(maxUnavailable), 0)
	case pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.Type == intstr.Int:
		desired = pdb.Spec.MinAvailable.IntVal
		expected = int32(len(pods))
	case pdb.Spec.MinAvailable != nil:
		expected, unmanaged, err = o.expectedScale(pods)
		if err != nil {
			return 0, 0, nil, err
		}
		minAvailable, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, int(expected), true)
		if err != nil {
			return 0, 0, nil, err
		}
		desired = int32(minAvailable)
	}
	return expected, desired, unmanaged, nil
}

// disrupted keeps the status.disruptedPods entries that still stand: the
// pod exists, is not yet being deleted, and its entry has not expired.
// It also returns the pods whose entry expired while they stayed (the
// eviction did not happen) and the earliest time a kept entry expires.
func disrupted(pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod, now time.Time) (kept map[string]metav1.Time, notDeleted []*corev1.Pod, recheck time.Time) {
	if len(pdb.Status.DisruptedPods) == 0 {
		return nil, nil, time.Time{}
	}
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		at, ok := pdb.Status.DisruptedPods[pod.Name]
		if !ok {
			continue
		}
		deadline := at.Add(DeletionTimeout)
		if !deadline.After(now) {
			notDeleted = append(notDeleted, pod)
			continue
		}
		if kept == nil {
			kept = map[string]metav1.Time{}
		}
		kept[pod.Name] = at
		if recheck.IsZero() || deadline.Before(recheck) {
			recheck = deadline
		}
	}
	return kept, notDeleted, recheck
}

// podReady is the PodReady condition being True.
func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// countHealthy counts the ready pods that are neither being deleted nor
// about to be (admitted for eviction).
func countHealthy(pods []*corev1.Pod, disrupted map[string]metav1.Time) int32 {
	var n int32
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		if _, ok := disrupted[pod.Name]; ok {
			continue
		}
		if podReady(pod) {
			n++
		}
	}
	return n
}

// computed is the outcome of looking at one budget.
type computed struct {
	status     policyv1.PodDisruptionBudgetStatus
	unmanaged  []string      // pods with no controller, left out of the scale
	notDeleted []*corev1.Pod // admitted for eviction but still there
	recheck    time.Time     // when a disruptedPods entry expires; zero if none
}

// compute derives a budget's status from the pods its selector matches.
// The conditions other than DisruptionAllowed are kept as they were.
func (o *owners) compute(pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod, now time.Time) (*computed, error) {
	expected, desired, unmanaged, err := o.expectedAndDesired(pdb, pods)
	if err != nil {
		return nil, err
	}
	kept, notDeleted, recheck := disrupted(pdb, pods, now)
	healthy := countHealthy(pods, kept)
	allowed := healthy - desired
	// A budget that expects no pods allows nothing: its first pods may
	// appear before this controller has looked at them.
	if expected <= 0 || allowed < 0 {
		allowed = 0
	}
	st := policyv1.PodDisruptionBudgetStatus{
		ObservedGeneration: pdb.Generation,
		DisruptedPods:      kept,
		DisruptionsAllowed: allowed,
		CurrentHealthy:     healthy,
		DesiredHealthy:     desired,
		ExpectedPods:       expected,
		Conditions:         append([]metav1.Condition(nil), pdb.Status.Conditions...),
	}
	cond := metav1.Condition{
		Type:               policyv1.DisruptionAllowedCondition,
		Status:             metav1.ConditionFalse,
		Reason:             policyv1.InsufficientPodsReason,
		ObservedGeneration: st.ObservedGeneration,
		LastTransitionTime: metav1.NewTime(now),
	}
	if allowed > 0 {
		cond.Status, cond.Reason = metav1.ConditionTrue, policyv1.SufficientPodsReason
	}
	apimeta.SetStatusCondition(&st.Conditions, cond)
	return &computed{status: st, unmanaged: unmanaged, notDeleted: notDeleted, recheck: recheck}, nil
}

// failSafe is the status of a budget that could not be computed: nothing
// may be disrupted, and the condition says why. The observed generation
// is left alone, as upstream, so evictions wait for a real computation.
func failSafe(pdb *policyv1.PodDisruptionBudget, err error, now time.Time) policyv1.PodDisruptionBudgetStatus {
	st := *pdb.Status.DeepCopy()
	st.DisruptionsAllowed = 0
	apimeta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type:               policyv1.DisruptionAllowedCondition,
		Status:             metav1.ConditionFalse,
		Reason:             policyv1.SyncFailedReason,
		Message:            err.Error(),
		ObservedGeneration: st.ObservedGeneration,
		LastTransitionTime: metav1.NewTime(now),
	})
	return st
}
