package framework

import (
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSnapshotKeepsNodesWithAffinityPods(t *testing.T) {
	node := func(name string) *v1.Node {
		n := &v1.Node{}
		n.Name = name
		return n
	}
	term := v1.PodAffinityTerm{TopologyKey: "zone", LabelSelector: &metav1.LabelSelector{}}
	plain := NewPodInfo(&v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "plain"}})
	preferring := NewPodInfo(&v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "pref"}, Spec: v1.PodSpec{Affinity: &v1.Affinity{
		PodAffinity: &v1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []v1.WeightedPodAffinityTerm{{Weight: 1, PodAffinityTerm: term}}}}}})
	vetoing := NewPodInfo(&v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "anti"}, Spec: v1.PodSpec{Affinity: &v1.Affinity{
		PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{term}}}}})
	names := func(nis []*NodeInfo) []string {
		var out []string
		for _, ni := range nis {
			out = append(out, ni.Name())
		}
		slices.Sort(out)
		return out
	}
	check := func(s *Snapshot, step string, affinity, anti []string) {
		t.Helper()
		if got := names(s.HavePodsWithAffinity()); !slices.Equal(got, affinity) {
			t.Errorf("%s: HavePodsWithAffinity = %v, want %v", step, got, affinity)
		}
		if got := names(s.HavePodsWithRequiredAntiAffinity()); !slices.Equal(got, anti) {
			t.Errorf("%s: HavePodsWithRequiredAntiAffinity = %v, want %v", step, got, anti)
		}
	}

	s := NewSnapshot(NewNodeInfo(node("a"), plain), NewNodeInfo(node("b"), preferring), NewNodeInfo(node("c"), vetoing))
	check(s, "new", []string{"b", "c"}, []string{"c"})
	s.Set(NewNodeInfo(node("a"), vetoing))
	check(s, "a gains a vetoing pod", []string{"a", "b", "c"}, []string{"a", "c"})
	s.Set(NewNodeInfo(node("c"), plain))
	check(s, "c keeps only a plain pod", []string{"a", "b"}, []string{"a"})
	s.Set(NewNodeInfo(node("d"), preferring))
	check(s, "d joins", []string{"a", "b", "d"}, []string{"a"})
	s.Delete("a")
	check(s, "a goes", []string{"b", "d"}, nil)
}
