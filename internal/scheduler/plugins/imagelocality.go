package plugins

import (
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
	// images are the pod's normalised images (podImages).
	images []string
}

const imageLocalityKey = "ImageLocality"

// podImages lists the normalised images of the pod's init and app
// containers, one entry per container as upstream counts them.
func podImages(pod *v1.Pod) []string {
	out := make([]string, 0, len(pod.Spec.InitContainers)+len(pod.Spec.Containers))
	for _, cs := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			out = append(out, fw.NormalizeImageName(cs[i].Image))
		}
	}
	return out
}

// PreScore implements fw.PreScorePlugin: it counts the nodes holding each
// of the pod's images, over the whole cluster (the snapshot keeps the
// counts, as upstream's does).
func (ImageLocality) PreScore(state *fw.CycleState, p *fw.PodInfo, feasible []*fw.NodeInfo) *fw.Status {
	s := &imageLocalityState{nodesWith: map[string]int{}, images: podImages(p.Pod)}
	v, recorded := state.Read(nodesKey)
	if recorded {
		nodes := v.(fw.NodeLister)
		s.totalNodes = len(nodes.List())
		for _, name := range s.images {
			s.nodesWith[name] = nodes.NodesWithImage(name)
		}
	} else {
		s.totalNodes = len(feasible)
		for _, name := range s.images {
			s.nodesWith[name] = 0
			for _, ni := range feasible {
				if _, ok := ni.Images[name]; ok {
					s.nodesWith[name]++
				}
			}
		}
	}
	state.Write(imageLocalityKey, s)
	for _, n := range s.nodesWith {
		if n > 0 {
			return nil
		}
	}
	return fw.NewStatus(fw.Skip) // no node has any of the images
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
	var sum int64
	for _, name := range s.images {
		if size, ok := n.Images[name]; ok {
			spread := float64(s.nodesWith[name]) / float64(s.totalNodes)
			sum += int64(float64(size) * spread)
		}
	}
	maxThreshold := imageMaxContainerThreshold * int64(len(s.images))
	if maxThreshold <= imageMinThreshold {
		return 0
	}
	sum = min(max(sum, imageMinThreshold), maxThreshold)
	return fw.MaxNodeScore * (sum - imageMinThreshold) / (maxThreshold - imageMinThreshold)
}
