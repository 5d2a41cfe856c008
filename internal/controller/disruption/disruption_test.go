package disruption_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/util/retry"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/controller"
	"github.com/lotse/lotse/internal/controller/disruption"
	"github.com/lotse/lotse/internal/controller/manager"
	"github.com/lotse/lotse/internal/testserver"
)

const ns = "default"

type harness struct {
	t     *testing.T
	s     *testserver.Server
	clock *clocktesting.FakeClock
	tick  func() // if set, called on every poll of waitStatus
}

// start runs a control plane without the workload controllers (the test
// makes the pods itself) and without the server's own disruption
// controller, then this package's controller on a fake clock.
func start(t *testing.T) *harness {
	off := []string{"*", "-replicaset", "-deployment", "-statefulset", "-garbagecollector"}
	if _, ok := manager.Controllers["disruption"]; ok {
		off = append(off, "-disruption")
	}
	s := testserver.Start(t, testserver.Options{DisableScheduler: true, Controllers: off})
	clk := clocktesting.NewFakeClock(time.Now())
	factory := informers.NewSharedInformerFactory(s.Client, 0)
	c, err := disruption.New(&controller.Context{
		Client: s.Client, Informers: factory, Clock: clk,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; factory.Shutdown() })
	return &harness{t: t, s: s, clock: clk}
}

// replicaSet creates a ReplicaSet of replicas and, since no replicaset
// controller runs, its pods by hand: Running, Ready, owned by the set.
func (h *harness) replicaSet(name string, replicas int32, pods int) *appsv1.ReplicaSet {
	h.t.Helper()
	ctx := context.Background()
	labels := map[string]string{"app": name}
	rs, err := h.s.Client.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	for i := 0; i < pods; i++ {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: fmt.Sprintf("%s-%d", name, i), Labels: labels,
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))},
			},
			Spec: rs.Spec.Template.Spec,
		}
		if _, err := h.s.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			h.t.Fatal(err)
		}
		h.setReady(p.Name, true)
	}
	return rs
}

func (h *harness) setReady(pod string, ready bool) {
	h.t.Helper()
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := h.s.Client.CoreV1().Pods(ns).Get(context.Background(), pod, metav1.GetOptions{})
		if err != nil {
			return err
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.Now()}}
		_, err = h.s.Client.CoreV1().Pods(ns).UpdateStatus(context.Background(), p, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

// updateBudget changes a budget's spec (or status) with retries.
func (h *harness) updateBudget(name string, change func(*policyv1.PodDisruptionBudget), status bool) {
	h.t.Helper()
	budgets := h.s.Client.PolicyV1().PodDisruptionBudgets(ns)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pdb, err := budgets.Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(pdb)
		if status {
			_, err = budgets.UpdateStatus(context.Background(), pdb, metav1.UpdateOptions{})
		} else {
			_, err = budgets.Update(context.Background(), pdb, metav1.UpdateOptions{})
		}
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) scale(rs string, replicas int32) {
	h.t.Helper()
	// Controllers write the status meanwhile: retry a stale scale.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		sc, err := h.s.Client.AppsV1().ReplicaSets(ns).GetScale(context.Background(), rs, metav1.GetOptions{})
		if err != nil {
			return err
		}
		sc.Spec.Replicas = replicas
		_, err = h.s.Client.AppsV1().ReplicaSets(ns).UpdateScale(context.Background(), rs, sc, metav1.UpdateOptions{})
		return err
	}); err != nil {
		h.t.Fatal(err)
	}
}

// want is the part of a status a step checks; reason is the
// DisruptionAllowed condition's.
type want struct {
	expected, desired, healthy, allowed int32
	reason                              string
}

// waitStatus waits until the budget's status, for its current generation,
// is w and every extra check holds; it fails with the last status seen.
func (h *harness) waitStatus(name string, w want, extra ...func(*policyv1.PodDisruptionBudget) bool) *policyv1.PodDisruptionBudget {
	h.t.Helper()
	var last *policyv1.PodDisruptionBudget
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		if h.tick != nil {
			h.tick()
		}
		pdb, err := h.s.Client.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = pdb
		st := pdb.Status
		cond := apimeta.FindStatusCondition(st.Conditions, policyv1.DisruptionAllowedCondition)
		for _, check := range extra {
			if !check(pdb) {
				return false, nil
			}
		}
		return st.ObservedGeneration == pdb.Generation && cond != nil && cond.Reason == w.reason &&
			(cond.Status == metav1.ConditionTrue) == (w.allowed > 0) &&
			st.ExpectedPods == w.expected && st.DesiredHealthy == w.desired &&
			st.CurrentHealthy == w.healthy && st.DisruptionsAllowed == w.allowed, nil
	})
	if err != nil {
		h.t.Fatalf("budget %s: want %+v; last status %+v", name, w, last.Status)
	}
	return last
}

func intOrStr(v intstr.IntOrString) *intstr.IntOrString { return &v }

// TestBudgetStatus walks one budget through the ways of stating it and
// through pods going unready, a scale change and an eviction.
func TestBudgetStatus(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	h.replicaSet("web", 3, 3)
	budgets := h.s.Client.PolicyV1().PodDisruptionBudgets(ns)
	_, err := budgets.Create(ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: intOrStr(intstr.FromInt32(2)),
			Selector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.waitStatus("web", want{3, 2, 3, 1, policyv1.SufficientPodsReason})

	spec := func(minAvailable, maxUnavailable *intstr.IntOrString) func(*policyv1.PodDisruptionBudget) {
		return func(pdb *policyv1.PodDisruptionBudget) {
			pdb.Spec.MinAvailable, pdb.Spec.MaxUnavailable = minAvailable, maxUnavailable
		}
	}
	h.updateBudget("web", spec(nil, intOrStr(intstr.FromInt32(1))), false)
	h.waitStatus("web", want{3, 2, 3, 1, policyv1.SufficientPodsReason})
	h.updateBudget("web", spec(intOrStr(intstr.FromString("50%")), nil), false)
	h.waitStatus("web", want{3, 2, 3, 1, policyv1.SufficientPodsReason})
	h.updateBudget("web", spec(nil, intOrStr(intstr.FromString("34%"))), false)
	h.waitStatus("web", want{3, 1, 3, 2, policyv1.SufficientPodsReason})

	// A pod going unready uses up one disruption.
	h.setReady("web-1", false)
	h.waitStatus("web", want{3, 1, 2, 1, policyv1.SufficientPodsReason})
	h.updateBudget("web", spec(intOrStr(intstr.FromInt32(2)), nil), false)
	h.waitStatus("web", want{3, 2, 2, 0, policyv1.InsufficientPodsReason})

	// Percentages follow the controller's scale, not the pods there are.
	h.updateBudget("web", spec(intOrStr(intstr.FromString("50%")), nil), false)
	h.scale("web", 6)
	h.waitStatus("web", want{6, 3, 2, 0, policyv1.InsufficientPodsReason})
	h.scale("web", 3)
	h.setReady("web-1", true)
	h.waitStatus("web", want{3, 2, 3, 1, policyv1.SufficientPodsReason})

	// An eviction the API admitted: the pod is in disruptedPods (or gone)
	// and the budget has nothing left to give.
	evict := func(pod string) error {
		return h.s.Client.CoreV1().Pods(ns).EvictV1(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: ns}})
	}
	if err := evict("web-0"); err != nil {
		t.Fatalf("first eviction: %v", err)
	}
	// The entry lasts while the informer still has the pod, then goes.
	h.waitStatus("web", want{3, 2, 2, 0, policyv1.InsufficientPodsReason}, func(pdb *policyv1.PodDisruptionBudget) bool {
		_, ok := pdb.Status.DisruptedPods["web-0"]
		return !ok
	})
	if err := evict("web-2"); !apierrors.IsTooManyRequests(err) {
		t.Fatalf("second eviction: %v, want 429", err)
	}
}

// TestDisruptedPodsExpire: a pod the eviction API admitted but which was
// never deleted counts as unhealthy for DeletionTimeout, then again as
// healthy, with a NotDeleted event.
func TestDisruptedPodsExpire(t *testing.T) {
	h := start(t)
	h.replicaSet("db", 3, 3)
	_, err := h.s.Client.PolicyV1().PodDisruptionBudgets(ns).Create(context.Background(), &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: intOrStr(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.waitStatus("db", want{3, 2, 3, 1, policyv1.SufficientPodsReason})
	// What the eviction subresource writes when its delete then fails.
	h.updateBudget("db", func(pdb *policyv1.PodDisruptionBudget) {
		pdb.Status.DisruptionsAllowed = 0
		pdb.Status.DisruptedPods = map[string]metav1.Time{"db-1": metav1.NewTime(h.clock.Now())}
	}, true)
	// The entry stands while the pod is there and the time has not run out.
	h.waitStatus("db", want{3, 2, 2, 0, policyv1.InsufficientPodsReason}, func(pdb *policyv1.PodDisruptionBudget) bool {
		_, ok := pdb.Status.DisruptedPods["db-1"]
		return ok
	})
	// A DisruptionTarget condition whose pod was never deleted goes stale.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := h.s.Client.CoreV1().Pods(ns).Get(context.Background(), "db-0", metav1.GetOptions{})
		if err != nil {
			return err
		}
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
			Reason: "EvictionByEvictionAPI", Message: "Eviction API: evicting", LastTransitionTime: metav1.NewTime(h.clock.Now())})
		_, err = h.s.Client.CoreV1().Pods(ns).UpdateStatus(context.Background(), p, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Step on every poll: the recheck may be queued just after the status
	// the wait above saw was written, measured from the clock of then.
	h.tick = func() { h.clock.Step(disruption.DeletionTimeout + time.Second) }
	h.waitStatus("db", want{3, 2, 3, 1, policyv1.SufficientPodsReason}, func(pdb *policyv1.PodDisruptionBudget) bool {
		return len(pdb.Status.DisruptedPods) == 0
	})
	err = wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		evs, err := h.s.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=db-1,reason=NotDeleted"})
		return err == nil && len(evs.Items) > 0, nil
	})
	if err != nil {
		t.Error("no NotDeleted event for db-1")
	}
	var cond *corev1.PodCondition
	err = wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		h.tick()
		p, err := h.s.Client.CoreV1().Pods(ns).Get(ctx, "db-0", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for i := range p.Status.Conditions {
			if p.Status.Conditions[i].Type == corev1.DisruptionTarget {
				cond = &p.Status.Conditions[i]
			}
		}
		return cond != nil && cond.Status == corev1.ConditionFalse, nil
	})
	if err != nil || cond.Reason != "EvictionByEvictionAPI" {
		t.Errorf("stale DisruptionTarget condition not cleared: %+v", cond)
	}
}

// TestUnresolvableController: a percentage budget over pods whose
// controller does not exist fails safe with SyncFailed; pods without any
// controller are left out of the scale.
func TestUnresolvableController(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	labels := map[string]string{"app": "ghost"}
	for name, refs := range map[string][]metav1.OwnerReference{
		"ghost": {{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "gone", UID: "0a0a0a0a-0000-0000-0000-000000000000", Controller: ptr.To(true)}},
		"lone":  nil,
	} {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, OwnerReferences: refs},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36"}}},
		}
		if _, err := h.s.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		h.setReady(name, true)
	}
	_, err := h.s.Client.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "ghost"},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: intOrStr(intstr.FromString("50%")),
			Selector:       &metav1.LabelSelector{MatchLabels: labels},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var last *policyv1.PodDisruptionBudget
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		last, err = h.s.Client.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "ghost", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := apimeta.FindStatusCondition(last.Status.Conditions, policyv1.DisruptionAllowedCondition)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == policyv1.SyncFailedReason &&
			c.Message == `found no controllers for pod "ghost"` && last.Status.DisruptionsAllowed == 0, nil
	})
	if err != nil {
		t.Fatalf("no SyncFailed condition: %+v", last.Status)
	}
	if last.Status.ObservedGeneration == last.Generation {
		t.Error("a failed sync must not claim to have observed the generation")
	}

	// Once the ghost pod goes, the lone pod is merely unmanaged: no
	// controller, so nothing is expected and nothing may be disrupted.
	if err := h.s.Client.CoreV1().Pods(ns).Delete(ctx, "ghost", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	h.waitStatus("ghost", want{0, 0, 1, 0, policyv1.InsufficientPodsReason})
}
