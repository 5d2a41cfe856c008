package plugins

import (
	fw "github.com/lotse/lotse/internal/scheduler/framework"
)

// DefaultFilters returns the filters in the order they run; cheap,
// decisive checks come first so most nodes are rejected early.
func DefaultFilters() []fw.FilterPlugin {
	return []fw.FilterPlugin{
		NodeUnschedulable{},
		NodeName{},
		NodeReady{},
		TaintToleration{},
		NodeAffinity{},
		NodePorts{},
		NodeResourcesFit{},
		PodTopologySpread{},
		InterPodAffinity{},
	}
}

// DefaultScoreWeights are upstream's default weights for the scores lotse
// has.
func DefaultScoreWeights() map[string]int64 {
	return map[string]int64{
		LeastAllocated{}.Name():     1,
		BalancedAllocation{}.Name(): 1,
		NodeAffinity{}.Name():       2,
		TaintToleration{}.Name():    3,
		PodTopologySpread{}.Name():  2,
		InterPodAffinity{}.Name():   2,
		ImageLocality{}.Name():      1,
	}
}

// AllScores returns every score plugin; a weight of 0 in the scheduler's
// Config switches one off.
func AllScores() []fw.ScorePlugin {
	return []fw.ScorePlugin{
		LeastAllocated{}, BalancedAllocation{}, NodeAffinity{}, TaintToleration{},
		PodTopologySpread{}, InterPodAffinity{}, ImageLocality{},
	}
}
