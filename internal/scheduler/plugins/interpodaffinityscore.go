package plugins

import (
	"math"

	v1 "k8s.io/api/core/v1"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
)

// hardPodAffinityWeight is what an existing pod's required affinity term
// that matches the incoming pod adds to its domain: upstream's default
// hardPodAffinityWeight, so pods that must be near the newcomer's kind
// draw it a little.
const hardPodAffinityWeight = 1

// weightedTerm is an affinity term with its signed weight: positive for
// affinity, negative for anti-affinity.
type weightedTerm struct {
	affinityTerm
	weight int64
}

func newWeightedTerms(owner *v1.Pod, terms []v1.WeightedPodAffinityTerm, sign int64) []weightedTerm {
	if len(terms) == 0 {
		return nil
	}
	plain := make([]v1.PodAffinityTerm, len(terms))
	for i := range terms {
		plain[i] = terms[i].PodAffinityTerm
	}
	out := make([]weightedTerm, len(terms))
	for i, t := range newAffinityTerms(owner, plain) {
		out[i] = weightedTerm{affinityTerm: t, weight: sign * int64(terms[i].Weight)}
	}
	return out
}

// scoringTerms returns the terms of pod that take part in scoring: its
// preferred affinity and anti-affinity and, with hard, its required
// affinity at hardPodAffinityWeight. Required anti-affinity is the
// filter's alone.
func scoringTerms(pod *v1.Pod, hard bool) []weightedTerm {
	a := pod.Spec.Affinity
	if a == nil {
		return nil
	}
	var out []weightedTerm
	if pa := a.PodAffinity; pa != nil {
		out = append(out, newWeightedTerms(pod, pa.PreferredDuringSchedulingIgnoredDuringExecution, 1)...)
		if hard {
			for _, t := range newAffinityTerms(pod, pa.RequiredDuringSchedulingIgnoredDuringExecution) {
				out = append(out, weightedTerm{affinityTerm: t, weight: hardPodAffinityWeight})
			}
		}
	}
	if pa := a.PodAntiAffinity; pa != nil {
		out = append(out, newWeightedTerms(pod, pa.PreferredDuringSchedulingIgnoredDuringExecution, -1)...)
	}
	return out
}

// interPodScoreState maps topology key -> domain -> summed weight.
type interPodScoreState map[string]map[string]int64

func (s interPodScoreState) add(key string, node *v1.Node, weight int64) {
	v, ok := node.Labels[key]
	if !ok || weight == 0 {
		return
	}
	if s[key] == nil {
		s[key] = map[string]int64{}
	}
	s[key][v] += weight
}

const interPodScoreKey = "InterPodAffinity/score"

// PreScore implements fw.PreScorePlugin. Every placed pod in the cluster
// adds weight to its node's domains: the incoming pod's preferred terms
// that match it, and its own preferred terms and required affinity terms
// that match the incoming pod (the symmetric part).
func (pl InterPodAffinity) PreScore(state *fw.CycleState, p *fw.PodInfo, feasible []*fw.NodeInfo) *fw.Status {
	s := interPodScoreState{}
	state.Write(interPodScoreKey, s)
	own := scoringTerms(p.Pod, false)
	for i := range own {
		own[i].resolveNamespaces(pl.Namespaces)
	}
	ownNamespace := newNamespaceLabels(pl.Namespaces, p.Pod.Namespace)
	// Without terms of its own the newcomer is scored only by pods that
	// have terms; most clusters have few.
	nodes := clusterNodes(state, feasible)
	if len(own) == 0 {
		nodes = nodesWithAffinity(state, feasible)
	}
	for _, ni := range nodes {
		if len(ni.Node.Labels) == 0 {
			continue
		}
		pods := ni.Pods
		if len(own) == 0 {
			pods = ni.PodsWithAffinity
		}
		for _, existing := range pods {
			for i := range own {
				if own[i].matches(existing.Pod, nil) {
					s.add(own[i].topologyKey, ni.Node, own[i].weight)
				}
			}
			if a := existing.Pod.Spec.Affinity; a == nil || (a.PodAffinity == nil && a.PodAntiAffinity == nil) {
				continue
			}
			for _, t := range scoringTerms(existing.Pod, true) {
				if t.matches(p.Pod, ownNamespace) {
					s.add(t.topologyKey, ni.Node, t.weight)
				}
			}
		}
	}
	if len(s) == 0 {
		return fw.NewStatus(fw.Skip) // no weight on any domain
	}
	return nil
}

// Score implements fw.ScorePlugin: the summed weights of the domains the
// node is in; it can be negative.
func (InterPodAffinity) Score(state *fw.CycleState, _ *fw.PodInfo, n *fw.NodeInfo) int64 {
	v, ok := state.Read(interPodScoreKey)
	if !ok {
		return 0
	}
	var score int64
	for key, domains := range v.(interPodScoreState) {
		if val, ok := n.Node.Labels[key]; ok {
			score += domains[val]
		}
	}
	return score
}

// NormalizeScores implements fw.ScoreNormalizer: min-max onto 0..100, so
// the most attractive node gets 100 and the least 0; all equal gives 0.
func (InterPodAffinity) NormalizeScores(_ *fw.CycleState, _ *fw.PodInfo, scores []int64) {
	var lo, hi int64 = math.MaxInt64, math.MinInt64
	for _, sc := range scores {
		lo, hi = min(lo, sc), max(hi, sc)
	}
	for i, sc := range scores {
		if hi > lo {
			scores[i] = int64(float64(fw.MaxNodeScore) * float64(sc-lo) / float64(hi-lo))
		} else {
			scores[i] = 0
		}
	}
}
