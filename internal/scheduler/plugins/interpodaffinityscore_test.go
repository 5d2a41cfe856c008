package plugins

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func weighted(w int32, t v1.PodAffinityTerm) v1.WeightedPodAffinityTerm {
	return v1.WeightedPodAffinityTerm{Weight: w, PodAffinityTerm: t}
}

func preferAffinity(terms ...v1.WeightedPodAffinityTerm) func(*v1.Pod) {
	return func(p *v1.Pod) {
		if p.Spec.Affinity == nil {
			p.Spec.Affinity = &v1.Affinity{}
		}
		if p.Spec.Affinity.PodAffinity == nil {
			p.Spec.Affinity.PodAffinity = &v1.PodAffinity{}
		}
		p.Spec.Affinity.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution = terms
	}
}

func preferAntiAffinity(terms ...v1.WeightedPodAffinityTerm) func(*v1.Pod) {
	return func(p *v1.Pod) {
		if p.Spec.Affinity == nil {
			p.Spec.Affinity = &v1.Affinity{}
		}
		if p.Spec.Affinity.PodAntiAffinity == nil {
			p.Spec.Affinity.PodAntiAffinity = &v1.PodAntiAffinity{}
		}
		p.Spec.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution = terms
	}
}

func TestInterPodAffinityScore(t *testing.T) {
	a1 := mkNode("a1", "1", "1Gi", map[string]string{"zone": "a", "host": "a1"})
	a2 := mkNode("a2", "1", "1Gi", map[string]string{"zone": "a", "host": "a2"})
	b1 := mkNode("b1", "1", "1Gi", map[string]string{"zone": "b", "host": "b1"})
	nodes := []*v1.Node{a1, a2, b1}
	web := map[string]string{"app": "web"}
	db := map[string]string{"app": "db"}
	dbOnA2 := mkPod("db", "", "", onNode("a2"), withLabels(db))
	webOnA1 := mkPod("w0", "", "", onNode("a1"), withLabels(web))
	inNamespace := func(ns string) func(*v1.Pod) { return func(p *v1.Pod) { p.Namespace = ns } }
	dbTerm := func(mut func(*v1.PodAffinityTerm)) v1.PodAffinityTerm {
		t := podTerm("zone", db)
		mut(&t)
		return t
	}

	runScoreCases(t, InterPodAffinity{}, []scoreCase{
		{name: "no terms anywhere", pod: mkPod("p", "", "", withLabels(web)),
			nodes: nodes, others: []*v1.Pod{dbOnA2, webOnA1}, want: []int64{0, 0, 0}, skip: true},
		{name: "preferred affinity: zone of db", pod: mkPod("p", "", "", preferAffinity(weighted(10, podTerm("zone", db)))),
			nodes: nodes, others: []*v1.Pod{dbOnA2}, want: []int64{100, 100, 0}},
		{name: "preferred anti-affinity: away from web's host", pod: mkPod("p", "", "", withLabels(web), preferAntiAffinity(weighted(10, podTerm("host", web)))),
			nodes: nodes, others: []*v1.Pod{webOnA1}, want: []int64{0, 100, 100}},
		// a1: 5-10, a2: 5, b1: 0.
		{name: "affinity and anti-affinity add up",
			pod:   mkPod("p", "", "", withLabels(web), preferAffinity(weighted(5, podTerm("zone", db))), preferAntiAffinity(weighted(10, podTerm("host", web)))),
			nodes: nodes, others: []*v1.Pod{dbOnA2, webOnA1}, want: []int64{0, 100, 50}},
		{name: "pods on infeasible nodes count", pod: mkPod("p", "", "", preferAffinity(weighted(10, podTerm("zone", db)))),
			nodes: nodes, others: []*v1.Pod{dbOnA2}, feasible: []string{"a1", "b1"}, want: []int64{100, 0}},
		{name: "db in another namespace does not count", pod: mkPod("p", "", "", preferAffinity(weighted(10, podTerm("zone", db)))),
			nodes: nodes, others: []*v1.Pod{mkPod("db", "", "", onNode("a2"), withLabels(db), inNamespace("other"))}, want: []int64{0, 0, 0}, skip: true},
		{name: "namespaces list reaches another namespace",
			pod:   mkPod("p", "", "", preferAffinity(weighted(10, dbTerm(func(t *v1.PodAffinityTerm) { t.Namespaces = []string{"other"} })))),
			nodes: nodes, others: []*v1.Pod{mkPod("db", "", "", onNode("a2"), withLabels(db), inNamespace("other"))}, want: []int64{100, 100, 0}},
		{name: "empty namespaceSelector means every namespace",
			pod:   mkPod("p", "", "", preferAffinity(weighted(10, dbTerm(func(t *v1.PodAffinityTerm) { t.NamespaceSelector = &metav1.LabelSelector{} })))),
			nodes: nodes, others: []*v1.Pod{mkPod("db", "", "", onNode("b1"), withLabels(db), inNamespace("other"))}, want: []int64{0, 0, 100}},
		{name: "existing pod's required affinity draws the newcomer with weight 1", pod: mkPod("p", "", "", withLabels(web)),
			nodes:  nodes,
			others: []*v1.Pod{mkPod("x", "", "", onNode("b1"), podAffinity(podTerm("zone", web)))},
			want:   []int64{0, 0, 100}},
		{name: "existing pod's required anti-affinity is the filter's, not scored", pod: mkPod("p", "", "", withLabels(web)),
			nodes:  nodes,
			others: []*v1.Pod{mkPod("x", "", "", onNode("b1"), podAntiAffinity(podTerm("zone", web)))},
			want:   []int64{0, 0, 0}, skip: true},
		{name: "existing pod's preferred affinity draws the newcomer", pod: mkPod("p", "", "", withLabels(web)),
			nodes:  nodes,
			others: []*v1.Pod{mkPod("x", "", "", onNode("a1"), preferAffinity(weighted(7, podTerm("host", web))))},
			want:   []int64{100, 0, 0}},
		{name: "existing pod's preferred anti-affinity pushes the newcomer away", pod: mkPod("p", "", "", withLabels(web)),
			nodes:  nodes,
			others: []*v1.Pod{mkPod("x", "", "", onNode("a1"), preferAntiAffinity(weighted(20, podTerm("zone", web))))},
			want:   []int64{0, 0, 100}},
		{name: "existing pod's terms that do not match the newcomer", pod: mkPod("p", "", "", withLabels(db)),
			nodes:  nodes,
			others: []*v1.Pod{mkPod("x", "", "", onNode("a1"), preferAffinity(weighted(7, podTerm("host", web))))},
			want:   []int64{0, 0, 0}, skip: true},
		{name: "node without the topology key gets nothing", pod: mkPod("p", "", "", preferAffinity(weighted(10, podTerm("rack", db)))),
			nodes:  append(nodes, mkNode("r1", "1", "1Gi", map[string]string{"rack": "r"})),
			others: []*v1.Pod{mkPod("db", "", "", onNode("r1"), withLabels(db))},
			want:   []int64{0, 0, 0, 100}},
	})
}

func TestInterPodAffinityScoreNamespaceSelector(t *testing.T) {
	l := testListers(
		namespace("default", map[string]string{"team": "a"}),
		namespace("third", map[string]string{"team": "a"}),
		namespace("other", map[string]string{"team": "b"}),
	)
	a1 := mkNode("a1", "1", "1Gi", map[string]string{"zone": "a"})
	b1 := mkNode("b1", "1", "1Gi", map[string]string{"zone": "b"})
	nodes := []*v1.Node{a1, b1}
	db := map[string]string{"app": "db"}
	web := map[string]string{"app": "web"}
	teamA := &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}
	runScoreCases(t, InterPodAffinity{Namespaces: l.Namespaces}, []scoreCase{
		{name: "preferred affinity reaches db in a selected namespace",
			pod:   mkPod("p", "", "", preferAffinity(weighted(10, nsTerm("zone", db, teamA)))),
			nodes: nodes, others: []*v1.Pod{mkPod("db", "", "", onNode("b1"), withLabels(db), inNamespace("third"))},
			want: []int64{0, 100}},
		{name: "preferred affinity ignores db in an unselected namespace",
			pod:   mkPod("p", "", "", preferAffinity(weighted(10, nsTerm("zone", db, teamA)))),
			nodes: nodes, others: []*v1.Pod{mkPod("db", "", "", onNode("b1"), withLabels(db), inNamespace("other"))},
			want: []int64{0, 0}, skip: true},
		{name: "placed pod's preferred anti-affinity selects the newcomer's namespace",
			pod:   mkPod("p", "", "", withLabels(web)),
			nodes: nodes, others: []*v1.Pod{mkPod("x", "", "", onNode("a1"), inNamespace("other"), preferAntiAffinity(weighted(5, nsTerm("zone", web, teamA))))},
			want: []int64{0, 100}},
		{name: "placed pod's preferred anti-affinity skips the newcomer's unselected namespace",
			pod:   mkPod("p", "", "", withLabels(web), inNamespace("other")),
			nodes: nodes, others: []*v1.Pod{mkPod("x", "", "", onNode("a1"), inNamespace("third"), preferAntiAffinity(weighted(5, nsTerm("zone", web, teamA))))},
			want: []int64{0, 0}, skip: true},
	})
}
