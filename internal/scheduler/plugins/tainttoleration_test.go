package plugins

import (
	"testing"

	v1 "k8s.io/api/core/v1"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
)

func tainted(taints ...v1.Taint) func(*v1.Node) { return func(n *v1.Node) { n.Spec.Taints = taints } }

func TestTaintTolerationFilter(t *testing.T) {
	gpu := v1.Taint{Key: "dedicated", Value: "gpu", Effect: v1.TaintEffectNoSchedule}
	evict := v1.Taint{Key: "maint", Effect: v1.TaintEffectNoExecute}
	soft := v1.Taint{Key: "soft", Effect: v1.TaintEffectPreferNoSchedule}
	runFilterCases(t, TaintToleration{}, []filterCase{
		{name: "untainted", pod: mkPod("p", "", ""), node: mkNode("a", "1", "1Gi", nil), want: fw.Success},
		{name: "NoSchedule untolerated", pod: mkPod("p", "", ""), node: mkNode("a", "1", "1Gi", nil, tainted(gpu)),
			want: fw.UnschedulableAndUnresolvable, reasons: []string{"node(s) had untolerated taint {dedicated: gpu}"}},
		{name: "NoExecute untolerated", pod: mkPod("p", "", ""), node: mkNode("a", "1", "1Gi", nil, tainted(evict)),
			want: fw.UnschedulableAndUnresolvable, reasons: []string{"node(s) had untolerated taint {maint: }"}},
		{name: "PreferNoSchedule does not filter", pod: mkPod("p", "", ""), node: mkNode("a", "1", "1Gi", nil, tainted(soft)), want: fw.Success},
		{name: "Equal toleration", node: mkNode("a", "1", "1Gi", nil, tainted(gpu)), want: fw.Success,
			pod: mkPod("p", "", "", tolerating(v1.Toleration{Key: "dedicated", Operator: v1.TolerationOpEqual, Value: "gpu", Effect: v1.TaintEffectNoSchedule}))},
		{name: "Equal toleration, wrong value", node: mkNode("a", "1", "1Gi", nil, tainted(gpu)),
			pod:  mkPod("p", "", "", tolerating(v1.Toleration{Key: "dedicated", Operator: v1.TolerationOpEqual, Value: "cpu"})),
			want: fw.UnschedulableAndUnresolvable, reasons: []string{"node(s) had untolerated taint {dedicated: gpu}"}},
		{name: "toleration for another effect", node: mkNode("a", "1", "1Gi", nil, tainted(gpu)),
			pod:  mkPod("p", "", "", tolerating(v1.Toleration{Key: "dedicated", Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoExecute})),
			want: fw.UnschedulableAndUnresolvable, reasons: []string{"node(s) had untolerated taint {dedicated: gpu}"}},
		{name: "tolerate everything", node: mkNode("a", "1", "1Gi", nil, tainted(gpu, evict)), want: fw.Success,
			pod: mkPod("p", "", "", tolerating(v1.Toleration{Operator: v1.TolerationOpExists}))},
		{name: "second taint untolerated", node: mkNode("a", "1", "1Gi", nil, tainted(gpu, evict)),
			pod:  mkPod("p", "", "", tolerating(v1.Toleration{Key: "dedicated", Operator: v1.TolerationOpExists})),
			want: fw.UnschedulableAndUnresolvable, reasons: []string{"node(s) had untolerated taint {maint: }"}},
	})
}

func TestTaintTolerationScore(t *testing.T) {
	soft := func(k string) v1.Taint { return v1.Taint{Key: k, Effect: v1.TaintEffectPreferNoSchedule} }
	nodes := []*v1.Node{
		mkNode("clean", "1", "1Gi", nil),
		mkNode("one", "1", "1Gi", nil, tainted(soft("x"))),
		mkNode("two", "1", "1Gi", nil, tainted(soft("x"), soft("y"))),
		mkNode("tolerated", "1", "1Gi", nil, tainted(soft("t"))),
	}
	pi := fw.NewPodInfo(mkPod("p", "", "", tolerating(v1.Toleration{Key: "t", Operator: v1.TolerationOpExists, Effect: v1.TaintEffectPreferNoSchedule})))
	var scores []int64
	for _, n := range nodes {
		scores = append(scores, TaintToleration{}.Score(nil, pi, fw.NewNodeInfo(n)))
	}
	TaintToleration{}.NormalizeScores(nil, pi, scores)
	want := []int64{100, 50, 0, 100}
	for i := range want {
		if scores[i] != want[i] {
			t.Fatalf("scores = %v, want %v", scores, want)
		}
	}
}

func TestTaintTolerationPreScoreSkipsWithoutSoftTaints(t *testing.T) {
	pi := fw.NewPodInfo(mkPod("p", "", ""))
	hard := fw.NewNodeInfo(mkNode("hard", "1", "1Gi", nil, tainted(v1.Taint{Key: "x", Effect: v1.TaintEffectNoSchedule})))
	soft := fw.NewNodeInfo(mkNode("soft", "1", "1Gi", nil, tainted(v1.Taint{Key: "x", Effect: v1.TaintEffectPreferNoSchedule})))
	clean := fw.NewNodeInfo(mkNode("clean", "1", "1Gi", nil))
	if st := (TaintToleration{}).PreScore(nil, pi, []*fw.NodeInfo{clean, hard}); st == nil || st.Code != fw.Skip {
		t.Errorf("no PreferNoSchedule taint: PreScore %v, want Skip", st)
	}
	if st := (TaintToleration{}).PreScore(nil, pi, []*fw.NodeInfo{clean, soft}); st != nil {
		t.Errorf("a PreferNoSchedule taint: PreScore %v, want success", st)
	}
}
