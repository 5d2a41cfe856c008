package plugins

import (
	"testing"

	v1 "k8s.io/api/core/v1"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
)

func requiredAffinity(terms ...v1.NodeSelectorTerm) func(*v1.Pod) {
	return func(p *v1.Pod) {
		p.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{NodeSelectorTerms: terms}}}
	}
}

func expr(key string, op v1.NodeSelectorOperator, values ...string) v1.NodeSelectorTerm {
	return v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{{Key: key, Operator: op, Values: values}}}
}

func TestNodeAffinityFilter(t *testing.T) {
	zoneA := mkNode("a", "1", "1Gi", map[string]string{"zone": "a", "size": "8"})
	nodeSel := func(sel map[string]string) func(*v1.Pod) { return func(p *v1.Pod) { p.Spec.NodeSelector = sel } }
	fail := func(name string, p *v1.Pod) filterCase {
		return filterCase{name: name, pod: p, node: zoneA, want: fw.UnschedulableAndUnresolvable, reasons: []string{ReasonNodeAffinity}}
	}
	ok := func(name string, p *v1.Pod) filterCase {
		return filterCase{name: name, pod: p, node: zoneA, want: fw.Success}
	}
	runFilterCases(t, NodeAffinity{}, []filterCase{
		ok("no constraints", mkPod("p", "", "")),
		ok("nodeSelector matches", mkPod("p", "", "", nodeSel(map[string]string{"zone": "a"}))),
		fail("nodeSelector does not match", mkPod("p", "", "", nodeSel(map[string]string{"zone": "b"}))),
		ok("In", mkPod("p", "", "", requiredAffinity(expr("zone", v1.NodeSelectorOpIn, "a", "b")))),
		fail("NotIn", mkPod("p", "", "", requiredAffinity(expr("zone", v1.NodeSelectorOpNotIn, "a")))),
		ok("Exists", mkPod("p", "", "", requiredAffinity(expr("zone", v1.NodeSelectorOpExists)))),
		fail("DoesNotExist", mkPod("p", "", "", requiredAffinity(expr("zone", v1.NodeSelectorOpDoesNotExist)))),
		ok("Gt", mkPod("p", "", "", requiredAffinity(expr("size", v1.NodeSelectorOpGt, "4")))),
		fail("Lt", mkPod("p", "", "", requiredAffinity(expr("size", v1.NodeSelectorOpLt, "4")))),
		ok("terms are ORed", mkPod("p", "", "", requiredAffinity(expr("zone", v1.NodeSelectorOpIn, "b"), expr("zone", v1.NodeSelectorOpIn, "a")))),
		fail("empty term matches nothing", mkPod("p", "", "", requiredAffinity(v1.NodeSelectorTerm{}))),
		ok("matchFields on name", mkPod("p", "", "", requiredAffinity(v1.NodeSelectorTerm{MatchFields: []v1.NodeSelectorRequirement{{Key: "metadata.name", Operator: v1.NodeSelectorOpIn, Values: []string{"a"}}}}))),
		fail("matchFields other name", mkPod("p", "", "", requiredAffinity(v1.NodeSelectorTerm{MatchFields: []v1.NodeSelectorRequirement{{Key: "metadata.name", Operator: v1.NodeSelectorOpIn, Values: []string{"b"}}}}))),
		fail("selector and affinity both needed", mkPod("p", "", "", nodeSel(map[string]string{"zone": "b"}), requiredAffinity(expr("zone", v1.NodeSelectorOpIn, "a")))),
	})
}

func TestNodeAffinityScore(t *testing.T) {
	pod := mkPod("p", "", "", func(p *v1.Pod) {
		p.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []v1.PreferredSchedulingTerm{
			{Weight: 10, Preference: expr("zone", v1.NodeSelectorOpIn, "a")},
			{Weight: 30, Preference: expr("disk", v1.NodeSelectorOpIn, "ssd")},
		}}}
	})
	nodes := []*v1.Node{
		mkNode("none", "1", "1Gi", nil),
		mkNode("zone", "1", "1Gi", map[string]string{"zone": "a"}),
		mkNode("ssd", "1", "1Gi", map[string]string{"disk": "ssd"}),
		mkNode("both", "1", "1Gi", map[string]string{"zone": "a", "disk": "ssd"}),
	}
	pi := fw.NewPodInfo(pod)
	var scores []int64
	for _, n := range nodes {
		scores = append(scores, NodeAffinity{}.Score(nil, pi, fw.NewNodeInfo(n)))
	}
	NodeAffinity{}.NormalizeScores(nil, pi, scores)
	want := []int64{0, 25, 75, 100}
	for i := range want {
		if scores[i] != want[i] {
			t.Errorf("scores = %v, want %v", scores, want)
			break
		}
	}
}

func TestNodeAffinityPreScoreSkipsPodsWithoutPreferences(t *testing.T) {
	if st := (NodeAffinity{}).PreScore(nil, fw.NewPodInfo(mkPod("p", "", "")), nil); st == nil || st.Code != fw.Skip {
		t.Errorf("pod without node affinity: PreScore %v, want Skip", st)
	}
	required := mkPod("p", "", "", func(p *v1.Pod) {
		p.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{
			NodeSelectorTerms: []v1.NodeSelectorTerm{expr("zone", v1.NodeSelectorOpIn, "a")}}}}
	})
	if st := (NodeAffinity{}).PreScore(nil, fw.NewPodInfo(required), nil); st == nil || st.Code != fw.Skip {
		t.Errorf("pod with required terms only: PreScore %v, want Skip", st)
	}
	preferred := mkPod("p", "", "", func(p *v1.Pod) {
		p.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []v1.PreferredSchedulingTerm{
			{Weight: 10, Preference: expr("zone", v1.NodeSelectorOpIn, "a")}}}}
	})
	if st := (NodeAffinity{}).PreScore(nil, fw.NewPodInfo(preferred), nil); st != nil {
		t.Errorf("pod with a preferred term: PreScore %v, want success", st)
	}
}
