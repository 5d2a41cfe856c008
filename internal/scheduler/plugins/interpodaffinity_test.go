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
