package apiserver_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestEviction drives pods/eviction as kubectl drain does: a budget with
// no disruption left answers 429 with the cause, one with a disruption
// lets the pod go and uses the disruption up.
func TestEviction(t *testing.T) {
	e := start(t)
	ns := e.namespace("evict")
	pods := e.s.Client.CoreV1().Pods(ns)
	budgets := e.s.Client.PolicyV1().PodDisruptionBudgets(ns)
	running := func(name string) {
		t.Helper()
		p, err := pods.Create(e.ctx, newPod(name, map[string]string{"app": "web"}), metav1.CreateOptions{})
		must(t, err)
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		_, err = pods.UpdateStatus(e.ctx, p, metav1.UpdateOptions{})
		must(t, err)
	}
	evict := func(name string) error {
		return pods.EvictV1(e.ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}})
	}
	running("a")
	running("b")

	// No budget: the pod just goes (gracefully: it is marked).
	if err := evict("a"); err != nil {
		t.Fatalf("eviction without a budget: %v", err)
	}
	if p, err := pods.Get(e.ctx, "a", metav1.GetOptions{}); err == nil && p.DeletionTimestamp == nil {
		t.Error("evicted pod not deleted")
	}

	pdb, err := budgets.Create(e.ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &intstr.IntOrString{IntVal: 1}, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
	}, metav1.CreateOptions{})
	must(t, err)

	// A budget nobody has computed yet (observedGeneration behind) refuses.
	err = evict("b")
	if !apierrors.IsTooManyRequests(err) {
		t.Fatalf("eviction under an unprocessed budget: %v, want 429", err)
	}
	pdb.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: pdb.Generation, DisruptionsAllowed: 0, CurrentHealthy: 1, DesiredHealthy: 1, ExpectedPods: 1}
	pdb, err = budgets.UpdateStatus(e.ctx, pdb, metav1.UpdateOptions{})
	must(t, err)
	err = evict("b")
	st, ok := err.(*apierrors.StatusError)
	if !ok || st.ErrStatus.Code != 429 || st.ErrStatus.Details == nil || len(st.ErrStatus.Details.Causes) == 0 ||
		st.ErrStatus.Details.Causes[0].Message != "The disruption budget web needs 1 healthy pods and has 1 currently" {
		t.Fatalf("eviction with no disruption allowed: %#v", err)
	}

	pdb.Status.DisruptionsAllowed = 1
	_, err = budgets.UpdateStatus(e.ctx, pdb, metav1.UpdateOptions{})
	must(t, err)
	if err := evict("b"); err != nil {
		t.Fatalf("eviction with a disruption allowed: %v", err)
	}
	got, err := budgets.Get(e.ctx, "web", metav1.GetOptions{})
	must(t, err)
	if _, ok := got.Status.DisruptedPods["b"]; got.Status.DisruptionsAllowed != 0 || !ok {
		t.Errorf("budget after the eviction: allowed %d, disruptedPods %v; want 0 and b", got.Status.DisruptionsAllowed, got.Status.DisruptedPods)
	}

	// A pending pod needs no budget; a missing one is 404.
	_, err = pods.Create(e.ctx, newPod("pending", map[string]string{"app": "web"}), metav1.CreateOptions{})
	must(t, err)
	if err := evict("pending"); err != nil {
		t.Errorf("evicting a pending pod: %v", err)
	}
	if err := evict("nope"); !apierrors.IsNotFound(err) {
		t.Errorf("evicting a missing pod: %v, want 404", err)
	}
}
