package scheduler

import (
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestPreemption(t *testing.T) {
	placed := func(name, nodeName, cpu string, prio int32) *v1.Pod {
		return pod(name, cpu, "", withPriority(prio), func(p *v1.Pod) { p.Spec.NodeName = nodeName })
	}
	tests := []struct {
		name   string
		nodes  []*v1.Node
		placed []*v1.Pod
		pod    *v1.Pod
		want   []string // node, then victims; nil: no preemption
		msg    string   // FailedScheduling message when want is nil
	}{
		{
			name:   "evicts the lower-priority pod",
			nodes:  []*v1.Node{node("a", "2", "8Gi", nil)},
			placed: []*v1.Pod{placed("low", "a", "2", 0)},
			pod:    pod("high", "1", "", withPriority(100)),
			want:   []string{"a", "low"},
		},
		{
			name:   "keeps the more important pod when one victim is enough",
			nodes:  []*v1.Node{node("a", "2", "8Gi", nil)},
			placed: []*v1.Pod{placed("p1", "a", "1", 1), placed("p5", "a", "1", 5)},
			pod:    pod("high", "1", "", withPriority(10)),
			want:   []string{"a", "p1"},
		},
		{
			name:   "prefers the node whose victims matter least",
			nodes:  []*v1.Node{node("a", "1", "8Gi", nil), node("b", "1", "8Gi", nil)},
			placed: []*v1.Pod{placed("a5", "a", "1", 5), placed("b1", "b", "1", 1)},
			pod:    pod("high", "1", "", withPriority(10)),
			want:   []string{"b", "b1"},
		},
		{
			name:   "never evicts equal or higher priority",
			nodes:  []*v1.Node{node("a", "1", "8Gi", nil)},
			placed: []*v1.Pod{placed("same", "a", "1", 10)},
			pod:    pod("p", "1", "", withPriority(10)),
			msg:    "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.",
		},
		{
			name:   "evicting does not help against a taint",
			nodes:  []*v1.Node{node("a", "1", "8Gi", nil, func(n *v1.Node) { n.Spec.Taints = []v1.Taint{{Key: "k", Effect: v1.TaintEffectNoSchedule}} })},
			placed: []*v1.Pod{placed("low", "a", "1", 0)},
			pod:    pod("p", "1", "", withPriority(10)),
			msg:    "0/1 nodes are available: 1 node(s) had untolerated taint {k: }. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
		},
		{
			name:   "evicting everything is still not enough",
			nodes:  []*v1.Node{node("a", "2", "8Gi", nil)},
			placed: []*v1.Pod{placed("low", "a", "1", 0)},
			pod:    pod("p", "3", "", withPriority(10)),
			msg:    "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.nodes, tt.placed...)
			h.schedule(tt.pod)
			got := h.rec.preemptions[tt.pod.Name]
			if !slices.Equal(got, tt.want) {
				t.Fatalf("preemption = %v, want %v", got, tt.want)
			}
			if tt.want == nil && h.rec.unschedulable[tt.pod.Name] != tt.msg {
				t.Fatalf("message:\n got %q\nwant %q", h.rec.unschedulable[tt.pod.Name], tt.msg)
			}
		})
	}
}

// After preempting, the room is kept for the preemptor: a lower-priority
// pod arriving before it must not take it.
func TestPreemptionNominationReservesRoom(t *testing.T) {
	low := pod("low", "2", "", withPriority(0), func(p *v1.Pod) { p.Spec.NodeName = "a" })
	h := newHarness(t, []*v1.Node{node("a", "2", "8Gi", nil)}, low)
	high := pod("high", "1500m", "", withPriority(100))
	h.schedule(high)
	if got := h.rec.preemptions["high"]; !slices.Equal(got, []string{"a", "low"}) {
		t.Fatalf("preemption = %v", got)
	}
	// The victim is gone; a small latecomer may use what is left, a
	// big one may not.
	h.s.cache.RemovePod(low.UID)
	h.schedule(pod("late-big", "1", "", withPriority(0)), pod("late-small", "500m", "", withPriority(0)))
	if _, ok := h.rec.binds["late-big"]; ok {
		t.Fatal("late-big took the room reserved for high")
	}
	if h.rec.binds["late-small"] != "a" {
		t.Fatalf("binds = %v, want late-small on a", h.rec.binds)
	}
	// The preemptor comes back (the deletion moved it) and fits.
	h.s.queue.MoveAllToActiveOrBackoff()
	h.clock.Step(2e9)
	h.s.queue.flushBackoff()
	h.schedule()
	if h.rec.binds["high"] != "a" {
		t.Fatalf("binds = %v, want high on a", h.rec.binds)
	}
}
