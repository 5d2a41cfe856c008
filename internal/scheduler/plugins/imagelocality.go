package plugins

import (
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
)

// ImageLocality prefers nodes that already hold the pod's container images
// (from node.status.images), so pods start sooner. An image's size counts
// in proportion to how many nodes have it, as upstream, so that pods do not
// all pile onto the one node that pulled a rare image.
type ImageLocality struct{}

// Name implements fw.Plugin.
func (ImageLocality) Name() string { return "ImageLocality" }

// Thresholds of upstream's formula: below 23 MiB an image saves nothing
// worth a preference; above 1000 MiB per container every node that has
// the images is equally good.
const (
	mib                        int64 = 1024 * 1024
	imageMinThreshold                = 23 * mib
	imageMaxContainerThreshold       = 1000 * mib
)

type imageLocalityState struct {
	// nodesWith counts, per normalised image name the pod uses, the
	// nodes of the cluster that have it.
	nodesWith  map[string]int
	totalNodes int
	// repos are the last path components of the pod's images, without
	// tag or digest. Normalising only adds to a name, so a node's image
	// name lacking all of them cannot match and is skipped cheaply: a
	// large cluster reports hundreds of thousands of names.
	repos []string
	// normalized memoises normalizeImageName for the cycle: nodes
	// report the same names over and over.
	normalized map[string]string
	// images are the pod's normalised images (podImages), and buf the
	// scratch space of Score, which runs once per node of the cycle.
	images []string
	buf    []imageSize
}

func (s *imageLocalityState) normalize(name string) string {
	n, ok := s.normalized[name]
	if !ok {
		n = normalizeImageName(name)
		s.normalized[name] = n
	}
	return n
}

func (s *imageLocalityState) mayMatch(name string) bool {
	for _, r := range s.repos {
		if strings.Contains(name, r) {
			return true
		}
	}
	return false
}

// repoBase returns the last path component of a normalised reference
// without its tag or digest: "nginx" for docker.io/library/nginx:latest.
func repoBase(ref string) string {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	ref = ref[strings.LastIndexByte(ref, '/')+1:]
	if i := strings.IndexByte(ref, ':'); i >= 0 {
		ref = ref[:i]
	}
	return ref
}

const imageLocalityKey = "ImageLocality"

// podImages lists the normalised images of the pod's init and app
// containers, one entry per container as upstream counts them.
func podImages(pod *v1.Pod) []string {
	out := make([]string, 0, len(pod.Spec.InitContainers)+len(pod.Spec.Containers))
	for _, cs := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			out = append(out, normalizeImageName(cs[i].Image))
		}
	}
	return out
}

// imageSize is one of the pod's images found on a node.
type imageSize struct {
	name string
	size int64
}

// nodeImages returns the pod's images that node holds, each once, reusing
// buf: scoring visits every node per pod, so this stays allocation-free.
func (s *imageLocalityState) nodeImages(node *v1.Node, buf []imageSize) []imageSize {
	out := buf[:0]
	for _, img := range node.Status.Images {
		for _, name := range img.Names {
			if !s.mayMatch(name) {
				continue
			}
			n := s.normalize(name)
			if _, ok := s.nodesWith[n]; !ok || n == "" || slices.ContainsFunc(out, func(f imageSize) bool { return f.name == n }) {
				continue
			}
			out = append(out, imageSize{n, img.SizeBytes})
		}
	}
	return out
}

// PreScore implements fw.PreScorePlugin: it counts the nodes holding each
// of the pod's images, over the whole cluster.
func (ImageLocality) PreScore(state *fw.CycleState, p *fw.PodInfo, feasible []*fw.NodeInfo) *fw.Status {
	s := &imageLocalityState{nodesWith: map[string]int{}, normalized: map[string]string{}, images: podImages(p.Pod)}
	for _, name := range s.images {
		if _, dup := s.nodesWith[name]; !dup && name != "" {
			s.repos = append(s.repos, repoBase(name))
		}
		s.nodesWith[name] = 0
	}
	all := clusterNodes(state, feasible)
	s.totalNodes = len(all)
	var buf []imageSize
	for _, ni := range all {
		buf = s.nodeImages(ni.Node, buf)
		for _, f := range buf {
			s.nodesWith[f.name]++
		}
	}
	state.Write(imageLocalityKey, s)
	return nil
}

// Score implements fw.ScorePlugin: the sizes of the pod's images on the
// node, each scaled by the share of nodes having it, clamped to
// [23 MiB, 1000 MiB × containers] and mapped onto 0..100.
func (ImageLocality) Score(state *fw.CycleState, p *fw.PodInfo, n *fw.NodeInfo) int64 {
	v, ok := state.Read(imageLocalityKey)
	if !ok {
		return 0
	}
	s := v.(*imageLocalityState)
	if s.totalNodes == 0 {
		return 0
	}
	images := s.images
	s.buf = s.nodeImages(n.Node, s.buf)
	found := s.buf
	var sum int64
	for _, name := range images {
		for _, f := range found {
			if f.name == name {
				spread := float64(s.nodesWith[name]) / float64(s.totalNodes)
				sum += int64(float64(f.size) * spread)
			}
		}
	}
	maxThreshold := imageMaxContainerThreshold * int64(len(images))
	if maxThreshold <= imageMinThreshold {
		return 0
	}
	sum = min(max(sum, imageMinThreshold), maxThreshold)
	return fw.MaxNodeScore * (sum - imageMinThreshold) / (maxThreshold - imageMinThreshold)
}

// normalizeImageName spells an image reference in full, so that "nginx"
// in a pod spec and "docker.io/library/nginx:latest" as a node reports it
// compare equal: Docker Hub is the default registry (index.docker.io an
// alias), its single-name repositories live under library/, and a
// reference without tag or digest means :latest. Upstream adds only the
// :latest; the docker.io defaults are lotse's, because runtimes report
// full names.
func normalizeImageName(ref string) string {
	if ref == "" {
		return ""
	}
	name, digest := ref, ""
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		name, digest = ref[:i], ref[i:]
	}
	domain, rest := "docker.io", name
	if i := strings.IndexByte(name, '/'); i >= 0 {
		first := name[:i]
		if strings.ContainsAny(first, ".:") || first == "localhost" {
			domain, rest = first, name[i+1:]
		}
	}
	if domain == "index.docker.io" {
		domain = "docker.io"
	}
	if domain == "docker.io" && !strings.Contains(rest, "/") {
		rest = "library/" + rest
	}
	// A colon after the last slash starts a tag (one before it belongs
	// to a registry port, already split off).
	if digest == "" && !strings.Contains(rest[strings.LastIndexByte(rest, '/')+1:], ":") {
		rest += ":latest"
	}
	return domain + "/" + rest + digest
}
