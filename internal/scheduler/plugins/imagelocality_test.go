package plugins

import (
	"testing"

	v1 "k8s.io/api/core/v1"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
)

func withImage(sizeMiB int64, names ...string) func(*v1.Node) {
	return func(n *v1.Node) {
		n.Status.Images = append(n.Status.Images, v1.ContainerImage{Names: names, SizeBytes: sizeMiB * mib})
	}
}

// imagePod runs one app container per image; init images run as init
// containers.
func imagePod(images []string, initImages ...string) *v1.Pod {
	return mkPod("p", "", "", func(p *v1.Pod) {
		p.Spec.Containers = nil
		for _, img := range images {
			p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "c", Image: img})
		}
		for _, img := range initImages {
			p.Spec.InitContainers = append(p.Spec.InitContainers, v1.Container{Name: "i", Image: img})
		}
	})
}

func TestImageLocalityScore(t *testing.T) {
	const nginx = "docker.io/library/nginx:latest"
	node := func(name string, mut ...func(*v1.Node)) *v1.Node { return mkNode(name, "1", "1Gi", nil, mut...) }
	everywhere := func(mut ...func(*v1.Node)) []*v1.Node {
		return []*v1.Node{node("n1", mut...), node("n2", mut...), node("n3", mut...)}
	}
	runScoreCases(t, ImageLocality{}, []scoreCase{
		// (523-23)/(1000-23) of 100.
		{name: "image on every node", pod: imagePod([]string{"nginx"}),
			nodes: everywhere(withImage(523, nginx)), want: []int64{51, 51, 51}},
		{name: "no node has the image", pod: imagePod([]string{"redis"}),
			nodes: everywhere(withImage(523, nginx)), want: []int64{0, 0, 0}, skip: true},
		// Half the nodes: 1000 MiB counts as 500.
		{name: "rare image counts by its spread", pod: imagePod([]string{"nginx"}),
			nodes: []*v1.Node{node("n1", withImage(1000, nginx)), node("n2")}, want: []int64{48, 0}},
		{name: "images below 23 MiB do not count", pod: imagePod([]string{"nginx"}),
			nodes: everywhere(withImage(10, nginx)), want: []int64{0, 0, 0}},
		{name: "images above 1000 MiB per container are clamped", pod: imagePod([]string{"nginx"}),
			nodes: everywhere(withImage(2000, nginx)), want: []int64{100, 100, 100}},
		// (1200-23)/(2000-23).
		{name: "two containers sum up against a doubled ceiling", pod: imagePod([]string{"nginx", "redis:7"}),
			nodes: everywhere(withImage(600, nginx), withImage(600, "docker.io/library/redis:7")), want: []int64{59, 59, 59}},
		// (600-23)/(2000-23): the app image is missing.
		{name: "init container images count", pod: imagePod([]string{"redis:7"}, "nginx"),
			nodes: everywhere(withImage(600, nginx)), want: []int64{29, 29, 29}},
		// Two of three nodes: 1000 MiB counts as 666; with only the
		// feasible nodes it would be 500 (score 48).
		{name: "images on infeasible nodes make it more widespread", pod: imagePod([]string{"nginx"}),
			nodes:    []*v1.Node{node("n1", withImage(1000, nginx)), node("n2", withImage(1000, nginx)), node("n3")},
			feasible: []string{"n1", "n3"}, want: []int64{65, 0}},
		{name: "another tag is another image", pod: imagePod([]string{"nginx:1.27"}),
			nodes: everywhere(withImage(523, nginx)), want: []int64{0, 0, 0}, skip: true},
		{name: "digest references match", pod: imagePod([]string{"nginx@sha256:abc"}),
			nodes: everywhere(withImage(523, "docker.io/library/nginx@sha256:abc", nginx)), want: []int64{51, 51, 51}},
		{name: "several names of one image on a node count once", pod: imagePod([]string{"nginx"}),
			nodes: []*v1.Node{node("n1", withImage(1000, nginx, "nginx", "index.docker.io/library/nginx")), node("n2")}, want: []int64{48, 0}},
	})
}

func TestNormalizeImageName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nginx", "docker.io/library/nginx:latest"},
		{"nginx:1.27", "docker.io/library/nginx:1.27"},
		{"docker.io/nginx", "docker.io/library/nginx:latest"},
		{"index.docker.io/library/nginx:1.27", "docker.io/library/nginx:1.27"},
		{"bitnami/redis", "docker.io/bitnami/redis:latest"},
		{"registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"},
		{"localhost:5000/app", "localhost:5000/app:latest"},
		{"localhost/app:v1", "localhost/app:v1"},
		{"ghcr.io/org/team/app", "ghcr.io/org/team/app:latest"},
		{"nginx@sha256:abc", "docker.io/library/nginx@sha256:abc"},
		{"nginx:1.27@sha256:abc", "docker.io/library/nginx:1.27@sha256:abc"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := fw.NormalizeImageName(tt.in); got != tt.want {
			t.Errorf("NormalizeImageName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDefaultScoreWeights(t *testing.T) {
	weights := DefaultScoreWeights()
	want := map[string]int64{
		"PodTopologySpread": 2, "InterPodAffinity": 2, "ImageLocality": 1, "NodeAffinity": 2,
		"TaintToleration": 3, "NodeResourcesLeastAllocated": 1, "NodeResourcesBalancedAllocation": 1,
	}
	for _, s := range AllScores() {
		if weights[s.Name()] != want[s.Name()] || want[s.Name()] == 0 {
			t.Errorf("weight of %s = %d, want %d", s.Name(), weights[s.Name()], want[s.Name()])
		}
	}
	if len(AllScores()) != len(want) {
		t.Errorf("%d scores, want %d", len(AllScores()), len(want))
	}
}
