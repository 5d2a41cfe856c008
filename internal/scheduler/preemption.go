package scheduler

import (
	"fmt"
	"sort"

	v1 "k8s.io/api/core/v1"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
)

// Texts of the preemption part of FailedScheduling messages, as upstream.
const (
	reasonPreemptionNotHelpful = "Preemption is not helpful for scheduling"
	reasonNoVictims            = "No preemption victims found for incoming pod"
	msgPreemptionNever         = "preemption: not eligible due to preemptionPolicy=Never."
)

// preemption is a pending pod's plan to make room: evict victims on node.
type preemption struct {
	node    string
	victims []*fw.PodInfo
}

// findPreemption looks, on the nodes that rejected pod for reasons that
// evictions can fix, for the node where evicting the fewest and least
// important pods of lower priority lets it fit. It returns nil and the
// message for the FailedScheduling event when there is none.
//
// Not done yet: PodDisruptionBudgets are not consulted, and victims are
// deleted without first getting the DisruptionTarget condition.
func findPreemption(filters []fw.FilterPlugin, pod *fw.PodInfo, snap fw.NodeLister, fitErr *FitError) (*preemption, string) {
	if p := pod.Pod.Spec.PreemptionPolicy; p != nil && *p == v1.PreemptNever {
		return nil, msgPreemptionNever
	}
	reasons := map[string]int{}
	var best *preemption
	var bestMax, bestSum int64
	for _, ni := range snap.List() {
		st := fitErr.NodeStatuses[ni.Name()]
		if st == nil || st.Code != fw.Unschedulable {
			reasons[reasonPreemptionNotHelpful]++
			continue
		}
		victims, ok := selectVictims(filters, pod, ni, snap)
		if !ok {
			reasons[reasonNoVictims]++
			continue
		}
		var maxPrio, sum int64 = -1 << 62, 0
		for _, v := range victims {
			maxPrio = max(maxPrio, int64(v.Priority))
			sum += int64(v.Priority)
		}
		// Upstream's order: the lowest most-important victim, then
		// the fewest victims, then the lowest priority sum.
		better := best == nil || maxPrio < bestMax ||
			(maxPrio == bestMax && (len(victims) < len(best.victims) ||
				(len(victims) == len(best.victims) && sum < bestSum)))
		if better {
			best, bestMax, bestSum = &preemption{node: ni.Name(), victims: victims}, maxPrio, sum
		}
	}
	if best != nil {
		return best, ""
	}
	return nil, fmt.Sprintf("preemption: 0/%d nodes are available: %s.", fitErr.NumAllNodes, histogram(reasons))
}

// selectVictims removes every pod of lower priority from a copy of the
// node; if the pod then fits, it puts back as many as it can, most
// important first, and returns the rest.
func selectVictims(filters []fw.FilterPlugin, pod *fw.PodInfo, ni *fw.NodeInfo, snap fw.NodeLister) ([]*fw.PodInfo, bool) {
	trial := ni.Clone()
	var lower []*fw.PodInfo
	for _, p := range ni.Pods {
		if p.Priority < pod.Priority {
			lower = append(lower, p)
			trial.RemovePod(string(p.Pod.UID))
		}
	}
	if len(lower) == 0 {
		return nil, false
	}
	view := &overlay{base: snap, node: trial}
	if !fitsOn(filters, pod, trial, view) {
		return nil, false
	}
	sort.SliceStable(lower, func(i, j int) bool { return lower[i].Priority > lower[j].Priority })
	var victims []*fw.PodInfo
	for _, p := range lower {
		trial.AddPod(p)
		if !fitsOn(filters, pod, trial, view) {
			trial.RemovePod(string(p.Pod.UID))
			victims = append(victims, p)
		}
	}
	return victims, true
}

// fitsOn runs the prefilters over view and the filters on ni.
func fitsOn(filters []fw.FilterPlugin, pod *fw.PodInfo, ni *fw.NodeInfo, view fw.NodeLister) bool {
	state := fw.NewCycleState()
	for _, f := range filters {
		if pf, ok := f.(fw.PreFilterPlugin); ok && !pf.PreFilter(state, pod, view).IsSuccess() {
			return false
		}
	}
	return runFilters(filters, state, pod, ni).IsSuccess()
}

// overlay is a snapshot with one node replaced by a trial copy.
type overlay struct {
	base fw.NodeLister
	node *fw.NodeInfo
}

func (o *overlay) List() []*fw.NodeInfo {
	base := o.base.List()
	out := make([]*fw.NodeInfo, len(base))
	for i, ni := range base {
		out[i] = ni
		if ni.Name() == o.node.Name() {
			out[i] = o.node
		}
	}
	return out
}

func (o *overlay) Get(name string) (*fw.NodeInfo, bool) {
	if name == o.node.Name() {
		return o.node, true
	}
	return o.base.Get(name)
}

// waitingForVictims reports whether pod already preempted on its
// nominated node and lower-priority pods there are still terminating:
// then it waits instead of evicting more elsewhere.
func waitingForVictims(pod *fw.PodInfo, nominatedNode string, snap fw.NodeLister) bool {
	if nominatedNode == "" {
		return false
	}
	ni, ok := snap.Get(nominatedNode)
	if !ok {
		return false
	}
	for _, p := range ni.Pods {
		if p.Pod.DeletionTimestamp != nil && p.Priority < pod.Priority {
			return true
		}
	}
	return false
}
