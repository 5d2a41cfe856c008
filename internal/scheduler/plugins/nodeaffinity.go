package plugins

import (
	fw "github.com/lotse/lotse/internal/scheduler/framework"
)

// NodeAffinity filters on spec.nodeSelector and required node affinity,
// and scores by the weights of matching preferred terms.
type NodeAffinity struct{}

// Name implements fw.Plugin.
func (NodeAffinity) Name() string { return "NodeAffinity" }

// Filter implements fw.FilterPlugin.
func (NodeAffinity) Filter(_ *fw.CycleState, p *fw.PodInfo, n *fw.NodeInfo) *fw.Status {
	if podMatchesNodeSelectorAndAffinity(p.Pod, n.Node) {
		return nil
	}
	return fw.NewStatus(fw.UnschedulableAndUnresolvable, ReasonNodeAffinity)
}

// Score implements fw.ScorePlugin: the sum of the weights of the preferred
// terms the node matches.
func (NodeAffinity) Score(_ *fw.CycleState, p *fw.PodInfo, n *fw.NodeInfo) int64 {
	a := p.Pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil {
		return 0
	}
	var sum int64
	for i := range a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
		t := &a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution[i]
		if t.Weight != 0 && nodeSelectorTermMatches(&t.Preference, n.Node) {
			sum += int64(t.Weight)
		}
	}
	return sum
}

// PreScore implements fw.PreScorePlugin: Skip for a pod without preferred
// terms, as upstream.
func (NodeAffinity) PreScore(_ *fw.CycleState, p *fw.PodInfo, _ []*fw.NodeInfo) *fw.Status {
	if a := p.Pod.Spec.Affinity; a == nil || a.NodeAffinity == nil || len(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
		return fw.NewStatus(fw.Skip)
	}
	return nil
}

// NormalizeScores implements fw.ScoreNormalizer.
func (NodeAffinity) NormalizeScores(_ *fw.CycleState, _ *fw.PodInfo, scores []int64) {
	fw.NormalizeToMax(scores, false)
}
