package plugins

import (
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
)

// Listers are the API objects besides nodes and pods that some plugins
// read; the scheduler fills them from its informers. A nil lister means
// those objects are unknown: the volume filters then check nothing, and
// every namespace counts as having no labels.
type Listers struct {
	Claims     corelisters.PersistentVolumeClaimLister
	Volumes    corelisters.PersistentVolumeLister
	Classes    storagelisters.StorageClassLister
	Namespaces corelisters.NamespaceLister
}

// DefaultFilters returns the filters without listers (see Filters), for
// callers that have only nodes and pods.
func DefaultFilters() []fw.FilterPlugin { return Filters(Listers{}) }

// Filters returns the filters in the order they run; cheap, decisive
// checks come first so most nodes are rejected early. The volume filters
// run before the pod-counting ones, as upstream, so that their PreFilter
// verdict (a missing claim) is the one reported.
func Filters(l Listers) []fw.FilterPlugin {
	return []fw.FilterPlugin{
		NodeUnschedulable{},
		NodeName{},
		NodeReady{},
		TaintToleration{},
		NodeAffinity{},
		NodePorts{},
		NodeResourcesFit{},
		VolumeBinding{Listers: l},
		VolumeZone{Listers: l},
		PodTopologySpread{},
		InterPodAffinity{Namespaces: l.Namespaces},
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

// AllScores returns every score plugin without listers (see Scores).
func AllScores() []fw.ScorePlugin { return Scores(Listers{}) }

// Scores returns every score plugin; a weight of 0 in the scheduler's
// Config switches one off.
func Scores(l Listers) []fw.ScorePlugin {
	return []fw.ScorePlugin{
		LeastAllocated{}, BalancedAllocation{}, NodeAffinity{}, TaintToleration{},
		PodTopologySpread{}, InterPodAffinity{Namespaces: l.Namespaces}, ImageLocality{},
	}
}
