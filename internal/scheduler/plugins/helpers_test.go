package plugins

import (
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
)

// mkNode returns a Ready node with cpu, memory and 110 pods allocatable.
func mkNode(name, cpu, mem string, labels map[string]string, mut ...func(*v1.Node)) *v1.Node {
	n := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Status: v1.NodeStatus{
			Allocatable: v1.ResourceList{
				v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse(mem),
				v1.ResourcePods: resource.MustParse("110"),
			},
			Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}},
		},
	}
	for _, m := range mut {
		m(n)
	}
	return n
}

// mkPod returns a pod with one container requesting cpu and memory.
func mkPod(name, cpu, mem string, mut ...func(*v1.Pod)) *v1.Pod {
	req := v1.ResourceList{}
	if cpu != "" {
		req[v1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		req[v1.ResourceMemory] = resource.MustParse(mem)
	}
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
		Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "c", Resources: v1.ResourceRequirements{Requests: req}}}},
	}
	for _, m := range mut {
		m(p)
	}
	return p
}

func withLabels(l map[string]string) func(*v1.Pod) { return func(p *v1.Pod) { p.Labels = l } }
func onNode(n string) func(*v1.Pod)                { return func(p *v1.Pod) { p.Spec.NodeName = n } }

// filterCase is one row of a filter table.
type filterCase struct {
	name    string
	pod     *v1.Pod
	node    *v1.Node
	others  []*v1.Pod // pods already placed (on any node of the snapshot)
	extra   []*v1.Node
	want    fw.Code
	reasons []string
}

// runFilterCases runs PreFilter (if any) over a snapshot of node+extra
// with others placed, then Filter on node.
func runFilterCases(t *testing.T, f fw.FilterPlugin, cases []filterCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			snap := fw.SnapshotOf(append([]*v1.Node{tc.node}, tc.extra...), tc.others)
			pi := fw.NewPodInfo(tc.pod)
			state := fw.NewCycleState()
			if pf, ok := f.(fw.PreFilterPlugin); ok {
				if st := pf.PreFilter(state, pi, snap); !st.IsSuccess() && st.Code != fw.Skip {
					t.Fatalf("PreFilter: %v", st.Message())
				}
			}
			ni, _ := snap.Get(tc.node.Name)
			st := f.Filter(state, pi, ni)
			code := fw.Success
			var reasons []string
			if st != nil {
				code, reasons = st.Code, st.Reasons
			}
			if code != tc.want || !reflect.DeepEqual(reasons, tc.reasons) {
				t.Errorf("Filter = %v %q, want %v %q", code, reasons, tc.want, tc.reasons)
			}
		})
	}
}

// scoreCase is one row of a score table.
type scoreCase struct {
	name   string
	pod    *v1.Pod
	nodes  []*v1.Node // the whole cluster
	others []*v1.Pod  // pods already placed
	// feasible names the nodes that passed the filters, in the order
	// scored; nil means every node, in the order of nodes.
	feasible []string
	want     []int64 // normalised scores, in feasible order
	// skip: PreScore says Skip (every node would score the same).
	skip bool
}

// runScoreCases runs RecordNodes, PreScore, Score and NormalizeScores as
// the scheduler's algorithm does and compares the normalised scores.
func runScoreCases(t *testing.T, s fw.ScorePlugin, cases []scoreCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			snap := fw.SnapshotOf(tc.nodes, tc.others)
			names := tc.feasible
			if names == nil {
				for _, n := range tc.nodes {
					names = append(names, n.Name)
				}
			}
			feasible := make([]*fw.NodeInfo, len(names))
			for i, name := range names {
				ni, ok := snap.Get(name)
				if !ok {
					t.Fatalf("no node %q", name)
				}
				feasible[i] = ni
			}
			pi := fw.NewPodInfo(tc.pod)
			state := fw.NewCycleState()
			RecordNodes(state, snap)
			scores := make([]int64, len(feasible))
			// A Skip leaves the plugin out; its nodes score 0 alike, as
			// upstream's framework records them.
			skipped := false
			if ps, ok := s.(fw.PreScorePlugin); ok {
				switch st := ps.PreScore(state, pi, feasible); {
				case st != nil && st.Code == fw.Skip:
					skipped = true
				case !st.IsSuccess():
					t.Fatalf("PreScore: %v", st.Message())
				}
			}
			if !skipped {
				for i, ni := range feasible {
					scores[i] = s.Score(state, pi, ni)
				}
				if n, ok := s.(fw.ScoreNormalizer); ok {
					n.NormalizeScores(state, pi, scores)
				}
			}
			if skipped != tc.skip {
				t.Errorf("PreScore skipped: %v, want %v", skipped, tc.skip)
			}
			if !reflect.DeepEqual(scores, tc.want) {
				t.Errorf("scores of %v = %v, want %v", names, scores, tc.want)
			}
		})
	}
}

func TestNodeNames(t *testing.T) {
	byName := func(op v1.NodeSelectorOperator, names ...string) v1.NodeSelectorTerm {
		return v1.NodeSelectorTerm{MatchFields: []v1.NodeSelectorRequirement{{Key: "metadata.name", Operator: op, Values: names}}}
	}
	byLabel := v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{{Key: "zone", Operator: v1.NodeSelectorOpIn, Values: []string{"a"}}}}
	pod := func(terms ...v1.NodeSelectorTerm) *v1.Pod {
		p := &v1.Pod{}
		if terms != nil {
			p.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{NodeSelectorTerms: terms}}}
		}
		return p
	}
	tests := []struct {
		name string
		pod  *v1.Pod
		want []string
	}{
		{"no affinity", pod(), nil},
		{"a DaemonSet pod", pod(byName(v1.NodeSelectorOpIn, "n1")), []string{"n1"}},
		{"several terms, all by name", pod(byName(v1.NodeSelectorOpIn, "n2", "n1"), byName(v1.NodeSelectorOpIn, "n1", "n3")), []string{"n1", "n2", "n3"}},
		{"one term not by name", pod(byName(v1.NodeSelectorOpIn, "n1"), byLabel), nil},
		{"NotIn does not narrow", pod(byName(v1.NodeSelectorOpNotIn, "n1")), nil},
		{"In with no names narrows to none", pod(byName(v1.NodeSelectorOpIn)), []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NodeNames(tt.pod); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("NodeNames = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestPodsWithAffinity(t *testing.T) {
	plain := fw.NewPodInfo(&v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "plain"}})
	near := fw.NewPodInfo(&v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "near"}, Spec: v1.PodSpec{Affinity: &v1.Affinity{
		PodAffinity: &v1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []v1.WeightedPodAffinityTerm{{Weight: 1}}}}}})
	ni := fw.NewNodeInfo(mkNode("n", "1", "1Gi", nil), plain, near)
	if len(ni.PodsWithAffinity) != 1 || ni.PodsWithAffinity[0] != near {
		t.Fatalf("PodsWithAffinity = %v, want only the pod with affinity", ni.PodsWithAffinity)
	}
	clone := ni.Clone()
	ni.RemovePod("near")
	if len(ni.PodsWithAffinity) != 0 || len(clone.PodsWithAffinity) != 1 {
		t.Fatalf("after removal: %d left, clone %d", len(ni.PodsWithAffinity), len(clone.PodsWithAffinity))
	}
}
