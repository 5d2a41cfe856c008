package plugins

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
)

func podTerm(key string, sel map[string]string) v1.PodAffinityTerm {
	return v1.PodAffinityTerm{TopologyKey: key, LabelSelector: &metav1.LabelSelector{MatchLabels: sel}}
}

func podAffinity(terms ...v1.PodAffinityTerm) func(*v1.Pod) {
	return func(p *v1.Pod) {
		if p.Spec.Affinity == nil {
			p.Spec.Affinity = &v1.Affinity{}
		}
		p.Spec.Affinity.PodAffinity = &v1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: terms}
	}
}

func podAntiAffinity(terms ...v1.PodAffinityTerm) func(*v1.Pod) {
	return func(p *v1.Pod) {
		if p.Spec.Affinity == nil {
			p.Spec.Affinity = &v1.Affinity{}
		}
		p.Spec.Affinity.PodAntiAffinity = &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: terms}
	}
}

func TestInterPodAffinity(t *testing.T) {
	// Nodes a1, a2 in zone a; b1 in zone b.
	a1 := mkNode("a1", "1", "1Gi", map[string]string{"zone": "a", "host": "a1"})
	a2 := mkNode("a2", "1", "1Gi", map[string]string{"zone": "a", "host": "a2"})
	b1 := mkNode("b1", "1", "1Gi", map[string]string{"zone": "b", "host": "b1"})
	noZone := mkNode("x", "1", "1Gi", map[string]string{"host": "x"})
	web := map[string]string{"app": "web"}
	db := map[string]string{"app": "db"}
	dbOnA2 := mkPod("db", "", "", onNode("a2"), withLabels(db))
	webOnA1 := mkPod("w0", "", "", onNode("a1"), withLabels(web))
	runFilterCases(t, InterPodAffinity{}, []filterCase{
		{name: "no terms", pod: mkPod("p", "", ""), node: a1, extra: []*v1.Node{a2, b1}, others: []*v1.Pod{dbOnA2}, want: fw.Success},
		{name: "affinity: same zone as db", pod: mkPod("p", "", "", podAffinity(podTerm("zone", db))),
			node: a1, extra: []*v1.Node{a2, b1}, others: []*v1.Pod{dbOnA2}, want: fw.Success},
		{name: "affinity: other zone than db", pod: mkPod("p", "", "", podAffinity(podTerm("zone", db))),
			node: b1, extra: []*v1.Node{a1, a2}, others: []*v1.Pod{dbOnA2},
			want: fw.UnschedulableAndUnresolvable, reasons: []string{ReasonPodAffinity}},
		{name: "affinity: node lacks topology label", pod: mkPod("p", "", "", podAffinity(podTerm("zone", db))),
			node: noZone, extra: []*v1.Node{a2}, others: []*v1.Pod{dbOnA2},
			want: fw.UnschedulableAndUnresolvable, reasons: []string{ReasonPodAffinity}},
		{name: "affinity: db in another namespace does not count", pod: mkPod("p", "", "", podAffinity(podTerm("zone", db))),
			node: a1, extra: []*v1.Node{a2}, others: []*v1.Pod{mkPod("db", "", "", onNode("a2"), withLabels(db), func(p *v1.Pod) { p.Namespace = "other" })},
			want: fw.UnschedulableAndUnresolvable, reasons: []string{ReasonPodAffinity}},
		{name: "affinity: first pod of a self-matching group goes anywhere",
			pod:  mkPod("p", "", "", withLabels(web), podAffinity(podTerm("zone", web))),
			node: b1, extra: []*v1.Node{a1}, want: fw.Success},
		{name: "anti-affinity: host already has web", pod: mkPod("p", "", "", withLabels(web), podAntiAffinity(podTerm("host", web))),
			node: a1, extra: []*v1.Node{a2}, others: []*v1.Pod{webOnA1},
			want: fw.Unschedulable, reasons: []string{ReasonPodAntiAffinity}},
		{name: "anti-affinity: other host is fine", pod: mkPod("p", "", "", withLabels(web), podAntiAffinity(podTerm("host", web))),
			node: a2, extra: []*v1.Node{a1}, others: []*v1.Pod{webOnA1}, want: fw.Success},
		{name: "anti-affinity by zone", pod: mkPod("p", "", "", withLabels(web), podAntiAffinity(podTerm("zone", web))),
			node: a2, extra: []*v1.Node{a1}, others: []*v1.Pod{webOnA1},
			want: fw.Unschedulable, reasons: []string{ReasonPodAntiAffinity}},
		{name: "existing pod's anti-affinity rejects newcomer", pod: mkPod("p", "", "", withLabels(db)),
			node: a1, extra: []*v1.Node{b1}, others: []*v1.Pod{mkPod("w", "", "", onNode("a1"), withLabels(web), podAntiAffinity(podTerm("zone", db)))},
			want: fw.Unschedulable, reasons: []string{ReasonExistingPodAntiAffinity}},
		{name: "existing pod's anti-affinity leaves other zone", pod: mkPod("p", "", "", withLabels(db)),
			node: b1, extra: []*v1.Node{a1}, others: []*v1.Pod{mkPod("w", "", "", onNode("a1"), withLabels(web), podAntiAffinity(podTerm("zone", db)))},
			want: fw.Success},
	})
}

func namespace(name string, labels map[string]string) *v1.Namespace {
	return &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func inNamespace(ns string) func(*v1.Pod) { return func(p *v1.Pod) { p.Namespace = ns } }

// nsTerm is podTerm reaching namespaces by name and by namespaceSelector.
func nsTerm(key string, sel map[string]string, nsSel *metav1.LabelSelector, names ...string) v1.PodAffinityTerm {
	t := podTerm(key, sel)
	t.NamespaceSelector, t.Namespaces = nsSel, names
	return t
}

func TestInterPodAffinityNamespaces(t *testing.T) {
	// default and third belong to team a, other to team b.
	l := testListers(
		namespace("default", map[string]string{"team": "a"}),
		namespace("third", map[string]string{"team": "a"}),
		namespace("other", map[string]string{"team": "b"}),
	)
	a1 := mkNode("a1", "1", "1Gi", map[string]string{"zone": "a"})
	a2 := mkNode("a2", "1", "1Gi", map[string]string{"zone": "a"})
	b1 := mkNode("b1", "1", "1Gi", map[string]string{"zone": "b"})
	db := map[string]string{"app": "db"}
	web := map[string]string{"app": "web"}
	teamA := &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}
	dbIn := func(ns string) *v1.Pod { return mkPod("db", "", "", onNode("a2"), withLabels(db), inNamespace(ns)) }
	affinity := func(term v1.PodAffinityTerm) *v1.Pod { return mkPod("p", "", "", podAffinity(term)) }
	noAffinity := []string{ReasonPodAffinity}
	// The newcomer sits on a1, in db's zone when db counts.
	cases := []filterCase{
		{name: "selector reaches a namespace with the labels", pod: affinity(nsTerm("zone", db, teamA)),
			node: a1, extra: []*v1.Node{a2}, others: []*v1.Pod{dbIn("third")}, want: fw.Success},
		{name: "selector skips a namespace without them", pod: affinity(nsTerm("zone", db, teamA)),
			node: a1, extra: []*v1.Node{a2}, others: []*v1.Pod{dbIn("other")},
			want: fw.UnschedulableAndUnresolvable, reasons: noAffinity},
		{name: "empty selector reaches every namespace", pod: affinity(nsTerm("zone", db, &metav1.LabelSelector{})),
			node: a1, extra: []*v1.Node{a2}, others: []*v1.Pod{dbIn("other")}, want: fw.Success},
		{name: "listed namespace", pod: affinity(nsTerm("zone", db, nil, "other")),
			node: a1, extra: []*v1.Node{a2}, others: []*v1.Pod{dbIn("other")}, want: fw.Success},
		{name: "a list leaves out the pod's own namespace", pod: affinity(nsTerm("zone", db, nil, "other")),
			node: a1, extra: []*v1.Node{a2}, others: []*v1.Pod{dbIn("default")},
			want: fw.UnschedulableAndUnresolvable, reasons: noAffinity},
		{name: "a selector leaves out the pod's own namespace unless it matches",
			pod:  affinity(nsTerm("zone", db, &metav1.LabelSelector{MatchLabels: map[string]string{"team": "b"}})),
			node: a1, extra: []*v1.Node{a2}, others: []*v1.Pod{dbIn("default")},
			want: fw.UnschedulableAndUnresolvable, reasons: noAffinity},
		{name: "list and selector add up", pod: affinity(nsTerm("zone", db, teamA, "other")),
			node: a1, extra: []*v1.Node{a2}, others: []*v1.Pod{dbIn("other")}, want: fw.Success},
		{name: "anti-affinity by selector", pod: mkPod("p", "", "", podAntiAffinity(nsTerm("zone", db, teamA))),
			node: a1, extra: []*v1.Node{a2}, others: []*v1.Pod{dbIn("third")},
			want: fw.Unschedulable, reasons: []string{ReasonPodAntiAffinity}},
		{name: "anti-affinity by selector ignores other namespaces", pod: mkPod("p", "", "", podAntiAffinity(nsTerm("zone", db, teamA))),
			node: a1, extra: []*v1.Node{a2}, others: []*v1.Pod{dbIn("other")}, want: fw.Success},
		{name: "placed pod's anti-affinity selects the newcomer's namespace by its labels",
			pod:  mkPod("p", "", "", withLabels(web)),
			node: a1, extra: []*v1.Node{b1},
			others: []*v1.Pod{mkPod("x", "", "", onNode("a1"), inNamespace("other"), podAntiAffinity(nsTerm("zone", web, teamA)))},
			want:   fw.Unschedulable, reasons: []string{ReasonExistingPodAntiAffinity}},
		{name: "placed pod's anti-affinity leaves newcomers of other namespaces alone",
			pod:  mkPod("p", "", "", withLabels(web), inNamespace("other")),
			node: a1, extra: []*v1.Node{b1},
			others: []*v1.Pod{mkPod("x", "", "", onNode("a1"), inNamespace("third"), podAntiAffinity(nsTerm("zone", web, teamA)))},
			want:   fw.Success},
	}
	runFilterCases(t, InterPodAffinity{Namespaces: l.Namespaces}, cases)

	// Without namespace labels a non-empty selector reaches nothing.
	runFilterCases(t, InterPodAffinity{}, []filterCase{
		{name: "no lister: selector matches no namespace", pod: affinity(nsTerm("zone", db, teamA)),
			node: a1, extra: []*v1.Node{a2}, others: []*v1.Pod{dbIn("third")},
			want: fw.UnschedulableAndUnresolvable, reasons: noAffinity},
	})
}

// A pod without terms, which no placed pod's anti-affinity selects, has
// nothing to check on any node: the PreFilter says Skip, so that the
// cycle leaves the per-node Filter out.
func TestInterPodAffinitySkipsPodsWithNothingToCheck(t *testing.T) {
	a1 := mkNode("a1", "1", "1Gi", map[string]string{"zone": "a"})
	web := map[string]string{"app": "web"}
	db := map[string]string{"app": "db"}
	antiDB := mkPod("w", "", "", onNode("a1"), withLabels(web), podAntiAffinity(podTerm("zone", db)))
	for _, tc := range []struct {
		name   string
		pod    *v1.Pod
		others []*v1.Pod
		skip   bool
	}{
		{"no terms, no placed anti-affinity", mkPod("p", "", "", withLabels(db)), nil, true},
		{"no terms, placed anti-affinity selects others", mkPod("p", "", "", withLabels(web)), []*v1.Pod{antiDB}, true},
		{"no terms, placed anti-affinity selects the pod", mkPod("p", "", "", withLabels(db)), []*v1.Pod{antiDB}, false},
		{"own affinity", mkPod("p", "", "", podAffinity(podTerm("zone", db))), nil, false},
		{"own anti-affinity", mkPod("p", "", "", podAntiAffinity(podTerm("zone", db))), nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := fw.SnapshotOf([]*v1.Node{a1}, tc.others)
			st := InterPodAffinity{}.PreFilter(fw.NewCycleState(), fw.NewPodInfo(tc.pod), snap)
			if skipped := st != nil && st.Code == fw.Skip; skipped != tc.skip {
				t.Fatalf("PreFilter = %+v, want skip %v", st, tc.skip)
			}
		})
	}
}
