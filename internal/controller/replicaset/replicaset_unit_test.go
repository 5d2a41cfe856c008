package replicaset

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

func pod(name, node string, phase corev1.PodPhase, ready bool, created int) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(time.Unix(int64(created), 0))},
		Spec:       corev1.PodSpec{NodeName: node},
		Status:     corev1.PodStatus{Phase: phase},
	}
	if ready {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	}
	return p
}

func TestPodsToDeleteRanking(t *testing.T) {
	pods := []*corev1.Pod{
		pod("running-ready-old", "n1", corev1.PodRunning, true, 1),
		pod("running-ready-new", "n1", corev1.PodRunning, true, 5),
		pod("running-not-ready", "n1", corev1.PodRunning, false, 2),
		pod("pending-scheduled", "n1", corev1.PodPending, false, 3),
		pod("unscheduled", "", corev1.PodPending, false, 4),
	}
	want := []string{"unscheduled", "pending-scheduled", "running-not-ready", "running-ready-new", "running-ready-old"}
	for n := 1; n <= len(want); n++ {
		got := podsToDelete(pods, n)
		for i, p := range got {
			if p.Name != want[i] {
				t.Fatalf("podsToDelete(%d)[%d] = %s, want %s", n, i, p.Name, want[i])
			}
		}
	}
}

func TestSlowStartStopsAtFirstFailingBatch(t *testing.T) {
	var calls atomic.Int32
	done, err := slowStart(10, func() error {
		if calls.Add(1) > 3 {
			return errors.New("quota exceeded")
		}
		return nil
	})
	// Batches of 1 and 2 succeed; every call of the batch of 4 fails.
	if err == nil || done != 3 || calls.Load() != 7 {
		t.Fatalf("slowStart: done %d, calls %d, err %v; want 3 done of 7 calls and an error", done, calls.Load(), err)
	}
	calls.Store(0)
	if done, err := slowStart(10, func() error { calls.Add(1); return nil }); err != nil || done != 10 || calls.Load() != 10 {
		t.Fatalf("slowStart all good: done %d calls %d err %v", done, calls.Load(), err)
	}
}

func TestExpectations(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(0, 0))
	e := newExpectations(clk)
	if !e.satisfied("a") {
		t.Fatal("no expectations must be satisfied")
	}
	e.expect("a", 2, 0)
	e.observe("a", 1, 0)
	if e.satisfied("a") {
		t.Fatal("one of two creates seen: not satisfied")
	}
	e.observe("a", 1, 0)
	if !e.satisfied("a") {
		t.Fatal("both creates seen: satisfied")
	}
	e.expect("a", 0, 1)
	clk.Step(expectationTTL + time.Second)
	if !e.satisfied("a") {
		t.Fatal("expired expectations must not block")
	}
}
