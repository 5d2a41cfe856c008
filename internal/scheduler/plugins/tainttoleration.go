package plugins

import (
	"fmt"

	v1 "k8s.io/api/core/v1"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
)

// TaintToleration rejects nodes with a NoSchedule or NoExecute taint the
// pod does not tolerate, and prefers nodes with fewer untolerated
// PreferNoSchedule taints.
type TaintToleration struct{}

// Name implements fw.Plugin.
func (TaintToleration) Name() string { return "TaintToleration" }

// Filter implements fw.FilterPlugin.
func (TaintToleration) Filter(_ *fw.CycleState, p *fw.PodInfo, n *fw.NodeInfo) *fw.Status {
	t, bad := firstUntolerated(n.Taints, p.Pod.Spec.Tolerations, v1.TaintEffectNoSchedule, v1.TaintEffectNoExecute)
	if !bad {
		return nil
	}
	return fw.NewStatus(fw.UnschedulableAndUnresolvable, fmt.Sprintf(ReasonUntoleratedTaint, t.Key, t.Value))
}

// Score implements fw.ScorePlugin: the number of untolerated
// PreferNoSchedule taints (fewer is better; NormalizeScores reverses it).
func (TaintToleration) Score(_ *fw.CycleState, p *fw.PodInfo, n *fw.NodeInfo) int64 {
	var count int64
	for i := range n.Taints {
		t := &n.Taints[i]
		if t.Effect != v1.TaintEffectPreferNoSchedule {
			continue
		}
		// Only tolerations that name this effect or none count.
		if !tolerates(p.Pod.Spec.Tolerations, t) {
			count++
		}
	}
	return count
}

// PreScore implements fw.PreScorePlugin: Skip when no feasible node has a
// PreferNoSchedule taint, the only kind Score counts.
func (TaintToleration) PreScore(_ *fw.CycleState, _ *fw.PodInfo, feasible []*fw.NodeInfo) *fw.Status {
	for _, n := range feasible {
		for i := range n.Taints {
			if n.Taints[i].Effect == v1.TaintEffectPreferNoSchedule {
				return nil
			}
		}
	}
	return fw.NewStatus(fw.Skip)
}

// NormalizeScores implements fw.ScoreNormalizer.
func (TaintToleration) NormalizeScores(_ *fw.CycleState, _ *fw.PodInfo, scores []int64) {
	fw.NormalizeToMax(scores, true)
}
