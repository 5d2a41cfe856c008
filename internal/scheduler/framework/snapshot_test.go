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

func TestSnapshotCountsNodesWithImage(t *testing.T) {
	node := func(name string, images ...string) *v1.Node {
		n := &v1.Node{}
		n.Name = name
		for _, img := range images {
			n.Status.Images = append(n.Status.Images, v1.ContainerImage{Names: []string{img}, SizeBytes: 1})
		}
		return n
	}
	const nginx, redis = "docker.io/library/nginx:1.27", "docker.io/library/redis:latest"
	check := func(s *Snapshot, step string, wantNginx, wantRedis int) {
		t.Helper()
		if got := s.NodesWithImage(nginx); got != wantNginx {
			t.Errorf("%s: %d nodes with nginx, want %d", step, got, wantNginx)
		}
		if got := s.NodesWithImage(redis); got != wantRedis {
			t.Errorf("%s: %d nodes with redis, want %d", step, got, wantRedis)
		}
	}
	// Names are counted normalised, and once per node however often listed.
	s := NewSnapshot(NewNodeInfo(node("a", "nginx:1.27", "docker.io/library/nginx:1.27")), NewNodeInfo(node("b", "nginx:1.27", "redis")))
	check(s, "new", 2, 1)
	s.Set(NewNodeInfo(node("a", "redis:latest")))
	check(s, "a swaps nginx for redis", 1, 2)
	s.Delete("b")
	check(s, "b goes", 0, 1)
	s.Set(NewNodeInfo(node("c")))
	check(s, "c joins with no images", 0, 1)
}
