package plugins

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func scheduleAnyway(c *v1.TopologySpreadConstraint) { c.WhenUnsatisfiable = v1.ScheduleAnyway }

func TestPodTopologySpreadScore(t *testing.T) {
	zone := func(name, z string, mut ...func(*v1.Node)) *v1.Node {
		return mkNode(name, "1", "1Gi", map[string]string{"zone": z, "disk": "ssd"}, mut...)
	}
	host := func(name string) *v1.Node {
		return mkNode(name, "1", "1Gi", map[string]string{v1.LabelHostname: name})
	}
	zoneHost := func(name, z string) *v1.Node {
		return mkNode(name, "1", "1Gi", map[string]string{"zone": z, v1.LabelHostname: name})
	}
	a1, a2, b1, c1 := zone("a1", "a"), zone("a2", "a"), zone("b1", "b"), zone("c1", "c")
	noZone := mkNode("x", "1", "1Gi", nil)
	web := map[string]string{"app": "web"}
	w := func(name, node string, mut ...func(*v1.Pod)) *v1.Pod {
		return mkPod(name, "", "", append([]func(*v1.Pod){onNode(node), withLabels(web)}, mut...)...)
	}
	// newWeb is a web pod with a soft zone constraint; mut may change
	// the constraint.
	newWeb := func(maxSkew int32, mut ...func(*v1.TopologySpreadConstraint)) *v1.Pod {
		return mkPod("p", "", "", withLabels(web), spread("zone", maxSkew, web, append([]func(*v1.TopologySpreadConstraint){scheduleAnyway}, mut...)...))
	}
	policy := func(affinity, taints v1.NodeInclusionPolicy) func(*v1.TopologySpreadConstraint) {
		return func(c *v1.TopologySpreadConstraint) { c.NodeAffinityPolicy, c.NodeTaintsPolicy = &affinity, &taints }
	}
	ssdOnly := func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} }
	hdd := zone("a3", "a", func(n *v1.Node) { n.Labels = map[string]string{"zone": "a"} })
	noSchedule := zone("a3", "a", tainted(v1.Taint{Key: "k", Effect: v1.TaintEffectNoSchedule}))
	terminating := func(p *v1.Pod) { p.DeletionTimestamp = &metav1.Time{} }

	runScoreCases(t, PodTopologySpread{}, []scoreCase{
		// 3 domains: weight ln 5; raw a 2*1.61=3, b 1.61=2, c 0.
		{name: "fewer matching pods in the zone scores higher", pod: newWeb(1),
			nodes:  []*v1.Node{a1, a2, b1, c1},
			others: []*v1.Pod{w("1", "a1"), w("2", "a1"), w("3", "b1")},
			want:   []int64{0, 0, 33, 100}},
		// maxSkew 2 adds 1 to every raw score: 4, 3, 1.
		{name: "hostname constraint counts per node", pod: mkPod("p", "", "", withLabels(web), spread(v1.LabelHostname, 2, web, scheduleAnyway)),
			nodes:  []*v1.Node{host("h1"), host("h2"), host("h3")},
			others: []*v1.Pod{w("1", "h1"), w("2", "h1"), w("3", "h2")},
			want:   []int64{25, 50, 100}},
		// zone: 2 domains, weight ln 4; hostname: 4 nodes, weight ln 6.
		// Raw a1 2*1.39+2*1.79=6, a2 3, b1 and b2 2*1.39+1.79=5.
		{name: "constraints weigh by their number of domains",
			pod:    mkPod("p", "", "", withLabels(web), spread("zone", 1, web, scheduleAnyway), spread(v1.LabelHostname, 1, web, scheduleAnyway)),
			nodes:  []*v1.Node{zoneHost("a1", "a"), zoneHost("a2", "a"), zoneHost("b1", "b"), zoneHost("b2", "b")},
			others: []*v1.Pod{w("1", "a1"), w("2", "a1"), w("3", "b1"), w("4", "b2")},
			want:   []int64{50, 100, 66, 66}},
		{name: "node without the topology key scores 0", pod: newWeb(1),
			nodes: []*v1.Node{a1, b1, noZone}, others: []*v1.Pod{w("1", "a1")},
			want: []int64{0, 100, 0}},
		{name: "pods on infeasible nodes of a feasible domain count", pod: newWeb(1),
			nodes: []*v1.Node{a1, a2, b1}, others: []*v1.Pod{w("1", "a2")}, feasible: []string{"a1", "b1"},
			want: []int64{0, 100}},
		{name: "other apps, namespaces and terminating pods do not count", pod: newWeb(1),
			nodes: []*v1.Node{a1, b1},
			others: []*v1.Pod{
				mkPod("db", "", "", onNode("a1"), withLabels(map[string]string{"app": "db"})),
				w("ns", "a1", func(p *v1.Pod) { p.Namespace = "other" }),
				w("gone", "a1", terminating),
			},
			want: []int64{100, 100}},
		{name: "nodeAffinityPolicy Honor (default): nodes the pod cannot use do not count",
			pod:   mkPod("p", "", "", withLabels(web), ssdOnly, spread("zone", 1, web, scheduleAnyway)),
			nodes: []*v1.Node{a1, b1, hdd}, others: []*v1.Pod{w("1", "a3"), w("2", "a3")}, feasible: []string{"a1", "b1"},
			want: []int64{100, 100}},
		{name: "nodeAffinityPolicy Ignore: they do",
			pod:   mkPod("p", "", "", withLabels(web), ssdOnly, spread("zone", 1, web, scheduleAnyway, policy(v1.NodeInclusionPolicyIgnore, v1.NodeInclusionPolicyIgnore))),
			nodes: []*v1.Node{a1, b1, hdd}, others: []*v1.Pod{w("1", "a3"), w("2", "a3")}, feasible: []string{"a1", "b1"},
			want: []int64{0, 100}},
		{name: "nodeTaintsPolicy Ignore (default): tainted nodes count", pod: newWeb(1),
			nodes: []*v1.Node{a1, b1, noSchedule}, others: []*v1.Pod{w("1", "a3"), w("2", "a3")}, feasible: []string{"a1", "b1"},
			want: []int64{0, 100}},
		{name: "nodeTaintsPolicy Honor: untolerated tainted nodes do not", pod: newWeb(1, policy(v1.NodeInclusionPolicyHonor, v1.NodeInclusionPolicyHonor)),
			nodes: []*v1.Node{a1, b1, noSchedule}, others: []*v1.Pod{w("1", "a3"), w("2", "a3")}, feasible: []string{"a1", "b1"},
			want: []int64{100, 100}},
		{name: "matchLabelKeys narrows to the same revision",
			pod: mkPod("p", "", "", withLabels(map[string]string{"app": "web", "rev": "2"}),
				spread("zone", 1, web, scheduleAnyway, func(c *v1.TopologySpreadConstraint) { c.MatchLabelKeys = []string{"rev"} })),
			nodes: []*v1.Node{a1, b1},
			others: []*v1.Pod{
				mkPod("old1", "", "", onNode("a1"), withLabels(map[string]string{"app": "web", "rev": "1"})),
				mkPod("old2", "", "", onNode("a1"), withLabels(map[string]string{"app": "web", "rev": "1"})),
				mkPod("new", "", "", onNode("b1"), withLabels(map[string]string{"app": "web", "rev": "2"})),
			},
			want: []int64{100, 0}},
		{name: "only DoNotSchedule constraints: no score", pod: mkPod("p", "", "", withLabels(web), spread("zone", 1, web)),
			nodes: []*v1.Node{a1, b1}, others: []*v1.Pod{w("1", "a1")},
			want: []int64{0, 0}},
		{name: "DoNotSchedule keys do not make nodes ignored",
			pod:   mkPod("p", "", "", withLabels(web), spread("rack", 1, web), spread("zone", 1, web, scheduleAnyway)),
			nodes: []*v1.Node{a1, b1}, others: []*v1.Pod{w("1", "a1")},
			want: []int64{0, 100}},
		{name: "pod with a nodeSelector: Honor keeps nodes it matches", pod: mkPod("p", "", "", withLabels(web), ssdOnly, spread("zone", 1, web, scheduleAnyway)),
			nodes: []*v1.Node{a1, b1}, others: []*v1.Pod{w("1", "a1")},
			want: []int64{0, 100}},
	})
}
