package scheduler

import (
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
)

func TestPreemption(t *testing.T) {
	placed := func(name, nodeName, cpu string, prio int32, mut ...func(*v1.Pod)) *v1.Pod {
		return pod(name, cpu, "", append([]func(*v1.Pod){withPriority(prio), func(p *v1.Pod) { p.Spec.NodeName = nodeName }}, mut...)...)
	}
	tests := []struct {
		name   string
		nodes  []*v1.Node
		placed []*v1.Pod
		pod    *v1.Pod
		pdbs   []*policyv1.PodDisruptionBudget
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
			name:  "on a tie, prefers the node whose victims started last",
			nodes: []*v1.Node{node("a", "1", "8Gi", nil), node("b", "1", "8Gi", nil), node("c", "1", "8Gi", nil)},
			placed: []*v1.Pod{
				placed("a-old", "a", "1", 1, startedAt(-3*time.Hour)),
				placed("b-new", "b", "1", 1, startedAt(-time.Minute)),
				placed("c-mid", "c", "1", 1, startedAt(-time.Hour)),
			},
			pod:  pod("high", "1", "", withPriority(10)),
			want: []string{"b", "b-new"},
		},
		{
			name:   "prefers the node whose victims matter least",
			nodes:  []*v1.Node{node("a", "1", "8Gi", nil), node("b", "1", "8Gi", nil)},
			placed: []*v1.Pod{placed("a5", "a", "1", 5), placed("b1", "b", "1", 1)},
			pod:    pod("high", "1", "", withPriority(10)),
			want:   []string{"b", "b1"},
		},
		{
			name:  "prefers the lower priority sum over fewer victims",
			nodes: []*v1.Node{node("a", "3", "8Gi", nil), node("b", "3", "8Gi", nil)},
			placed: []*v1.Pod{placed("a5", "a", "1", 5), placed("a0", "a", "1", 0), placed("a0b", "a", "1", 0),
				placed("b5", "b", "1500m", 5), placed("b5b", "b", "1500m", 5)},
			pod:  pod("high", "3", "", withPriority(10)),
			want: []string{"a", "a5", "a0", "a0b"},
		},
		{
			name:   "prefers a node where no budget is violated",
			nodes:  []*v1.Node{node("a", "1", "8Gi", nil), node("b", "1", "8Gi", nil)},
			placed: []*v1.Pod{placed("a0", "a", "1", 0, labelled("app", "db")), placed("b3", "b", "1", 3, labelled("app", "web"))},
			pod:    pod("high", "1", "", withPriority(10)),
			pdbs:   []*policyv1.PodDisruptionBudget{pdb("db", map[string]string{"app": "db"}, 0)},
			want:   []string{"b", "b3"},
		},
		{
			name:   "a budget with room left does not count as violated",
			nodes:  []*v1.Node{node("a", "1", "8Gi", nil), node("b", "1", "8Gi", nil)},
			placed: []*v1.Pod{placed("a0", "a", "1", 0, labelled("app", "db")), placed("b3", "b", "1", 3, labelled("app", "web"))},
			pod:    pod("high", "1", "", withPriority(10)),
			pdbs:   []*policyv1.PodDisruptionBudget{pdb("db", map[string]string{"app": "db"}, 1)},
			want:   []string{"a", "a0"},
		},
		{
			name:   "a budget in another namespace protects nothing here",
			nodes:  []*v1.Node{node("a", "1", "8Gi", nil), node("b", "1", "8Gi", nil)},
			placed: []*v1.Pod{placed("a0", "a", "1", 0, labelled("app", "db")), placed("b3", "b", "1", 3, labelled("app", "web"))},
			pod:    pod("high", "1", "", withPriority(10)),
			pdbs:   []*policyv1.PodDisruptionBudget{pdb("db", map[string]string{"app": "db"}, 0, func(p *policyv1.PodDisruptionBudget) { p.Namespace = "other" })},
			want:   []string{"a", "a0"},
		},
		{
			name:   "reprieves the protected pod before a more important one",
			nodes:  []*v1.Node{node("a", "2", "8Gi", nil)},
			placed: []*v1.Pod{placed("p1", "a", "1", 1, labelled("app", "db")), placed("p5", "a", "1", 5)},
			pod:    pod("high", "1", "", withPriority(10)),
			pdbs:   []*policyv1.PodDisruptionBudget{pdb("db", map[string]string{"app": "db"}, 0)},
			want:   []string{"a", "p5"},
		},
		{
			name:   "preempts anyway when every choice violates a budget",
			nodes:  []*v1.Node{node("a", "1", "8Gi", nil), node("b", "1", "8Gi", nil)},
			placed: []*v1.Pod{placed("a0", "a", "1", 0, labelled("app", "db")), placed("b3", "b", "1", 3, labelled("app", "db"))},
			pod:    pod("high", "1", "", withPriority(10)),
			pdbs:   []*policyv1.PodDisruptionBudget{pdb("db", map[string]string{"app": "db"}, 0)},
			want:   []string{"a", "a0"},
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
			for _, pdb := range tt.pdbs {
				h.add(pdb)
			}
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

func labelled(k, v string) func(*v1.Pod) {
	return func(p *v1.Pod) { p.Labels = map[string]string{k: v} }
}

func pdb(name string, sel map[string]string, allowed int32, mut ...func(*policyv1.PodDisruptionBudget)) *policyv1.PodDisruptionBudget {
	p := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: sel}},
		Status:     policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: allowed},
	}
	for _, m := range mut {
		m(p)
	}
	return p
}

func TestSplitByBudgets(t *testing.T) {
	info := func(name, ns string, labels map[string]string) *fw.PodInfo {
		return fw.NewPodInfo(&v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}})
	}
	db := map[string]string{"app": "db"}
	tests := []struct {
		name      string
		pods      []*fw.PodInfo
		pdbs      []*policyv1.PodDisruptionBudget
		protected []string
	}{
		{"no budgets", []*fw.PodInfo{info("d1", "default", db)}, nil, nil},
		{"budget used up in order", []*fw.PodInfo{info("d1", "default", db), info("d2", "default", db), info("d3", "default", db)},
			[]*policyv1.PodDisruptionBudget{pdb("db", db, 1)}, []string{"d2", "d3"}},
		{"already disrupted pods do not count again", []*fw.PodInfo{info("d1", "default", db), info("d2", "default", db)},
			[]*policyv1.PodDisruptionBudget{pdb("db", db, 0, func(p *policyv1.PodDisruptionBudget) {
				p.Status.DisruptedPods = map[string]metav1.Time{"d1": {}}
			})}, []string{"d2"}},
		{"other namespace", []*fw.PodInfo{info("d1", "other", db)}, []*policyv1.PodDisruptionBudget{pdb("db", db, 0)}, nil},
		{"selector does not match", []*fw.PodInfo{info("w", "default", map[string]string{"app": "web"})},
			[]*policyv1.PodDisruptionBudget{pdb("db", db, 0)}, nil},
		{"empty selector protects nothing", []*fw.PodInfo{info("d1", "default", db)},
			[]*policyv1.PodDisruptionBudget{pdb("all", nil, 0)}, nil},
		{"pod without labels", []*fw.PodInfo{info("bare", "default", nil)},
			[]*policyv1.PodDisruptionBudget{pdb("db", db, 0)}, nil},
		{"any one violated budget protects", []*fw.PodInfo{info("d1", "default", map[string]string{"app": "db", "tier": "x"})},
			[]*policyv1.PodDisruptionBudget{pdb("db", db, 5), pdb("tier", map[string]string{"tier": "x"}, 0)}, []string{"d1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			protected, unprotected := splitByBudgets(tt.pods, newBudgets(tt.pdbs))
			var names []string
			for _, p := range protected {
				names = append(names, p.Pod.Name)
			}
			if !slices.Equal(names, tt.protected) || len(protected)+len(unprotected) != len(tt.pods) {
				t.Fatalf("protected = %v (%d unprotected), want %v", names, len(unprotected), tt.protected)
			}
		})
	}
}

// startedAt sets a placed pod's start time relative to now.
func startedAt(ago time.Duration) func(*v1.Pod) {
	return func(p *v1.Pod) { p.Status.StartTime = &metav1.Time{Time: time.Now().Add(ago)} }
}
