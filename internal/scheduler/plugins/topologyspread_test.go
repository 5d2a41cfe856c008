package plugins

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
)

func spread(key string, maxSkew int32, sel map[string]string, mut ...func(*v1.TopologySpreadConstraint)) func(*v1.Pod) {
	return func(p *v1.Pod) {
		c := v1.TopologySpreadConstraint{MaxSkew: maxSkew, TopologyKey: key, WhenUnsatisfiable: v1.DoNotSchedule,
			LabelSelector: &metav1.LabelSelector{MatchLabels: sel}}
		for _, m := range mut {
			m(&c)
		}
		p.Spec.TopologySpreadConstraints = append(p.Spec.TopologySpreadConstraints, c)
	}
}

func TestPodTopologySpread(t *testing.T) {
	a1 := mkNode("a1", "1", "1Gi", map[string]string{"zone": "a"})
	a2 := mkNode("a2", "1", "1Gi", map[string]string{"zone": "a"})
	b1 := mkNode("b1", "1", "1Gi", map[string]string{"zone": "b"})
	noZone := mkNode("x", "1", "1Gi", nil)
	web := map[string]string{"app": "web"}
	w := func(name, node string) *v1.Pod { return mkPod(name, "", "", onNode(node), withLabels(web)) }
	newWeb := func(mut ...func(*v1.Pod)) *v1.Pod {
		return mkPod("p", "", "", append([]func(*v1.Pod){withLabels(web), spread("zone", 1, web)}, mut...)...)
	}
	runFilterCases(t, PodTopologySpread{}, []filterCase{
		{name: "balanced: either zone", pod: newWeb(), node: a1, extra: []*v1.Node{b1}, others: []*v1.Pod{w("1", "a1"), w("2", "b1")}, want: fw.Success},
		{name: "zone a ahead by one: a rejected", pod: newWeb(), node: a2, extra: []*v1.Node{a1, b1}, others: []*v1.Pod{w("1", "a1")},
			want: fw.Unschedulable, reasons: []string{ReasonTopologySpread}},
		{name: "zone a ahead by one: b accepted", pod: newWeb(), node: b1, extra: []*v1.Node{a1}, others: []*v1.Pod{w("1", "a1")}, want: fw.Success},
		{name: "maxSkew 2 allows", pod: mkPod("p", "", "", withLabels(web), spread("zone", 2, web)), node: a1, extra: []*v1.Node{b1},
			others: []*v1.Pod{w("1", "a1")}, want: fw.Success},
		{name: "other apps do not count", pod: newWeb(), node: a1, extra: []*v1.Node{b1},
			others: []*v1.Pod{mkPod("db", "", "", onNode("a1"), withLabels(map[string]string{"app": "db"}))}, want: fw.Success},
		{name: "missing topology label", pod: newWeb(), node: noZone, extra: []*v1.Node{a1},
			want: fw.UnschedulableAndUnresolvable, reasons: []string{ReasonTopologySpreadMissingLabel}},
		{name: "nodes excluded by nodeSelector do not form domains", node: a1, extra: []*v1.Node{b1}, others: []*v1.Pod{w("1", "a1")},
			pod: newWeb(func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"zone": "a"} }), want: fw.Success},
		{name: "minDomains counts missing domains as empty", node: a1, extra: []*v1.Node{a2}, others: []*v1.Pod{w("1", "a2")},
			pod:  mkPod("p", "", "", withLabels(web), spread("zone", 1, web, func(c *v1.TopologySpreadConstraint) { n := int32(2); c.MinDomains = &n })),
			want: fw.Unschedulable, reasons: []string{ReasonTopologySpread}},
		{name: "ScheduleAnyway is not a filter", node: a1, extra: []*v1.Node{b1}, others: []*v1.Pod{w("1", "a1"), w("2", "a1")},
			pod:  mkPod("p", "", "", withLabels(web), spread("zone", 1, web, func(c *v1.TopologySpreadConstraint) { c.WhenUnsatisfiable = v1.ScheduleAnyway })),
			want: fw.Success},
	})
}
