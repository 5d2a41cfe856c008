package plugins

import (
	"math"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
)

// softSpread is one whenUnsatisfiable: ScheduleAnyway constraint as the
// score sees it.
type softSpread struct {
	maxSkew       int32
	topologyKey   string
	selector      labels.Selector
	honorAffinity bool // nodeAffinityPolicy, Honor by default
	honorTaints   bool // nodeTaintsPolicy, Ignore by default
	// weight is log(domains+2): a constraint over few domains (zones)
	// weighs less per pod than one over many (hosts), so neither drowns
	// the other.
	weight float64
	// counts holds matching pods per domain, only for domains of
	// feasible nodes; hostname constraints count per node in Score.
	counts map[string]int64
}

// includes applies the constraint's node inclusion policies: nodes the pod
// could never use do not count towards the skew.
func (c *softSpread) includes(pod *v1.Pod, node *v1.Node) bool {
	if c.honorAffinity && !podMatchesNodeSelectorAndAffinity(pod, node) {
		return false
	}
	if c.honorTaints {
		if _, bad := firstUntolerated(node.Spec.Taints, pod.Spec.Tolerations, v1.TaintEffectNoSchedule, v1.TaintEffectNoExecute); bad {
			return false
		}
	}
	return true
}

type spreadScoreState struct {
	constraints []*softSpread
	// ignored marks, in the order PreScore got the feasible nodes (the
	// order of the scores NormalizeScores gets), nodes lacking a
	// constraint's topology key: they score 0.
	ignored []bool
}

const spreadScoreKey = "PodTopologySpread/score"

func hasSoftKeys(node *v1.Node, cs []*softSpread) bool {
	for _, c := range cs {
		if _, ok := node.Labels[c.topologyKey]; !ok {
			return false
		}
	}
	return true
}

// PreScore implements fw.PreScorePlugin: it finds the domains of the
// feasible nodes and counts the matching pods in them over the whole
// cluster, as upstream.
func (PodTopologySpread) PreScore(state *fw.CycleState, p *fw.PodInfo, feasible []*fw.NodeInfo) *fw.Status {
	s := &spreadScoreState{}
	state.Write(spreadScoreKey, s)
	for i := range p.Pod.Spec.TopologySpreadConstraints {
		c := &p.Pod.Spec.TopologySpreadConstraints[i]
		if c.WhenUnsatisfiable != v1.ScheduleAnyway {
			continue
		}
		sc := &softSpread{maxSkew: c.MaxSkew, topologyKey: c.TopologyKey, selector: spreadSelector(p.Pod, c),
			honorAffinity: true, counts: map[string]int64{}}
		if c.NodeAffinityPolicy != nil {
			sc.honorAffinity = *c.NodeAffinityPolicy == v1.NodeInclusionPolicyHonor
		}
		if c.NodeTaintsPolicy != nil {
			sc.honorTaints = *c.NodeTaintsPolicy == v1.NodeInclusionPolicyHonor
		}
		s.constraints = append(s.constraints, sc)
	}
	if len(s.constraints) == 0 {
		return nil
	}
	s.ignored = make([]bool, len(feasible))
	candidates := 0
	for i, ni := range feasible {
		if !hasSoftKeys(ni.Node, s.constraints) {
			s.ignored[i] = true
			continue
		}
		candidates++
		for _, c := range s.constraints {
			if c.topologyKey != v1.LabelHostname {
				c.counts[ni.Node.Labels[c.topologyKey]] = 0
			}
		}
	}
	for _, c := range s.constraints {
		domains := len(c.counts)
		if c.topologyKey == v1.LabelHostname {
			domains = candidates
		}
		c.weight = math.Log(float64(domains + 2))
	}
	for _, ni := range clusterNodes(state, feasible) {
		if !hasSoftKeys(ni.Node, s.constraints) {
			continue
		}
		for _, c := range s.constraints {
			if c.topologyKey == v1.LabelHostname {
				continue
			}
			domain := ni.Node.Labels[c.topologyKey]
			if _, ok := c.counts[domain]; !ok || !c.includes(p.Pod, ni.Node) {
				continue
			}
			c.counts[domain] += int64(countMatchingPods(ni.Pods, c.selector, p.Pod.Namespace))
		}
	}
	return nil
}

// Score implements fw.ScorePlugin: per constraint, the matching pods in
// the node's domain times the constraint's weight, plus maxSkew-1 (so a
// lenient constraint flattens the differences). Higher means more
// crowded; NormalizeScores reverses it.
func (PodTopologySpread) Score(state *fw.CycleState, p *fw.PodInfo, n *fw.NodeInfo) int64 {
	v, ok := state.Read(spreadScoreKey)
	if !ok {
		return 0
	}
	s := v.(*spreadScoreState)
	if len(s.constraints) == 0 || !hasSoftKeys(n.Node, s.constraints) {
		return 0
	}
	var score float64
	for _, c := range s.constraints {
		var count int64
		if c.topologyKey == v1.LabelHostname {
			count = int64(countMatchingPods(n.Pods, c.selector, p.Pod.Namespace))
		} else {
			count = c.counts[n.Node.Labels[c.topologyKey]]
		}
		score += float64(count)*c.weight + float64(c.maxSkew-1)
	}
	return int64(math.Round(score))
}

// NormalizeScores implements fw.ScoreNormalizer: the least crowded node
// gets 100 and the others less, in proportion, as upstream; nodes lacking
// a topology key get 0.
func (PodTopologySpread) NormalizeScores(state *fw.CycleState, _ *fw.PodInfo, scores []int64) {
	v, ok := state.Read(spreadScoreKey)
	if !ok {
		return
	}
	s := v.(*spreadScoreState)
	if len(s.constraints) == 0 {
		return
	}
	ignored := func(i int) bool { return i < len(s.ignored) && s.ignored[i] }
	var lo, hi int64 = math.MaxInt64, 0
	for i, sc := range scores {
		if !ignored(i) {
			lo, hi = min(lo, sc), max(hi, sc)
		}
	}
	for i, sc := range scores {
		switch {
		case ignored(i):
			scores[i] = 0
		case hi == 0:
			scores[i] = fw.MaxNodeScore
		default:
			scores[i] = fw.MaxNodeScore * (hi + lo - sc) / hi
		}
	}
}
