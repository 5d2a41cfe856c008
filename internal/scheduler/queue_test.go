package scheduler

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	clocktesting "k8s.io/utils/clock/testing"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
)

func withPriority(p int32) func(*v1.Pod) { return func(pod *v1.Pod) { pod.Spec.Priority = &p } }

func TestQueueOrder(t *testing.T) {
	q := NewQueue(clocktesting.NewFakeClock(time.Now()))
	// Created in this order; popped by priority, then age.
	oldLow := pod("old-low", "", "", withPriority(0))
	for _, p := range []*v1.Pod{
		oldLow,
		pod("high", "", "", withPriority(1000)),
		pod("new-low", "", "", withPriority(0)),
		pod("mid", "", "", withPriority(10)),
		oldLow, // re-added: queued once
	} {
		q.Add(fw.NewPodInfo(p))
	}
	var got []string
	for range 4 {
		qp, _ := q.Pop()
		got = append(got, qp.Info.Pod.Name)
	}
	want := []string{"high", "mid", "old-low", "new-low"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order = %v, want %v", got, want)
		}
	}
	if a, b, u := q.Len(); a+b+u != 0 {
		t.Fatalf("queue not empty: %d %d %d", a, b, u)
	}
}

func TestQueueBackoffDoubles(t *testing.T) {
	q := NewQueue(clocktesting.NewFakeClock(time.Now()))
	tests := []struct {
		attempts int
		want     time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {4, 8 * time.Second}, {5, 10 * time.Second}, {20, 10 * time.Second}}
	for _, tt := range tests {
		if got := q.backoffFor(tt.attempts); got != tt.want {
			t.Errorf("backoffFor(%d) = %v, want %v", tt.attempts, got, tt.want)
		}
	}
}

func TestQueueBackoffWaitsOut(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	q := NewQueue(clk)
	q.Add(fw.NewPodInfo(pod("p", "", "")))
	for attempt, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		qp, _ := q.Pop()
		q.AddBackoff(qp)
		clk.Step(wait - time.Millisecond)
		q.flushBackoff()
		if a, _, _ := q.Len(); a != 0 {
			t.Fatalf("attempt %d: active before backoff of %v expired", attempt+1, wait)
		}
		clk.Step(time.Millisecond)
		q.flushBackoff()
		if a, _, _ := q.Len(); a != 1 {
			t.Fatalf("attempt %d: not active after %v", attempt+1, wait)
		}
	}
}

func TestQueueMoveRequestDuringCycle(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	q := NewQueue(clk)
	q.Add(fw.NewPodInfo(pod("a", "", "")))
	q.Add(fw.NewPodInfo(pod("b", "", "")))
	qa, _ := q.Pop()
	q.AddUnschedulable(qa) // no event during a's cycle: parked
	qb, _ := q.Pop()
	q.MoveAllToActiveOrBackoff() // a node came while b was being tried
	q.AddUnschedulable(qb)       // so b must not be parked
	if _, backoff, unsched := q.Len(); backoff != 2 || unsched != 0 {
		t.Fatalf("backoff %d unschedulable %d, want 2 and 0", backoff, unsched)
	}
}

func TestQueueUnschedulableFlushAfterTimeout(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	q := NewQueue(clk)
	q.Add(fw.NewPodInfo(pod("a", "", "")))
	qa, _ := q.Pop()
	q.AddUnschedulable(qa)
	clk.Step(4 * time.Minute)
	q.flushUnschedulable()
	if a, _, u := q.Len(); a != 0 || u != 1 {
		t.Fatalf("flushed too early: active %d unschedulable %d", a, u)
	}
	clk.Step(time.Minute)
	q.flushUnschedulable()
	if a, _, u := q.Len(); a != 1 || u != 0 {
		t.Fatalf("not flushed after 5m: active %d unschedulable %d", a, u)
	}
}

func TestQueueUpdateAndDelete(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	q := NewQueue(clk)
	q.Add(fw.NewPodInfo(pod("a", "", "")))
	qa, _ := q.Pop()
	q.AddUnschedulable(qa)
	// A status-only update leaves it parked; a spec change retries it.
	q.Update(fw.NewPodInfo(pod("a", "", "")), false)
	if _, _, u := q.Len(); u != 1 {
		t.Fatal("status-only update moved the pod")
	}
	clk.Step(2 * time.Second)
	q.Update(fw.NewPodInfo(pod("a", "", "")), true)
	if a, _, _ := q.Len(); a != 1 {
		t.Fatal("relevant update did not retry the pod")
	}
	q.Delete("default/a")
	if a, b, u := q.Len(); a+b+u != 0 {
		t.Fatal("delete left the pod queued")
	}
	// A pod deleted while in flight is not requeued when its attempt ends.
	q.Add(fw.NewPodInfo(pod("b", "", "")))
	qb, _ := q.Pop()
	q.Delete("default/b")
	q.AddUnschedulable(qb)
	if a, b, u := q.Len(); a+b+u != 0 {
		t.Fatal("deleted in-flight pod came back")
	}
}
