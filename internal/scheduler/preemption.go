package scheduler

import (
	"fmt"
	"sort"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

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
// important pods of lower priority lets it fit, respecting
// PodDisruptionBudgets where possible. It returns nil and the message for
// the FailedScheduling event when there is none.
//
// Not done yet: victims are deleted without first getting the
// DisruptionTarget condition.
func findPreemption(filters []fw.FilterPlugin, pod *fw.PodInfo, snap fw.NodeLister, fitErr *FitError, pdbs []*policyv1.PodDisruptionBudget) (*preemption, string) {
	if p := pod.Pod.Spec.PreemptionPolicy; p != nil && *p == v1.PreemptNever {
		return nil, msgPreemptionNever
	}
	budgets := newBudgets(pdbs)
	reasons := map[string]int{}
	var best *preemption
	var bestViolations int
	var bestMax, bestSum int64
	var bestStart time.Time
	for _, ni := range snap.List() {
		st := fitErr.NodeStatuses[ni.Name()]
		if st == nil || st.Code != fw.Unschedulable {
			reasons[reasonPreemptionNotHelpful]++
			continue
		}
		victims, violations, ok := selectVictims(filters, pod, ni, snap, budgets)
		if !ok {
			reasons[reasonNoVictims]++
			continue
		}
		var maxPrio, sum int64 = -1 << 62, 0
		for _, v := range victims {
			maxPrio = max(maxPrio, int64(v.Priority))
			sum += int64(v.Priority)
		}
		start := earliestStart(victims, maxPrio)
		// Upstream's order: the fewest PodDisruptionBudget violations,
		// then the lowest most-important victim, then the lowest
		// priority sum, then the fewest victims, then the node whose
		// most important victims started last (the least work lost).
		better := best == nil
		if !better {
			switch {
			case violations != bestViolations:
				better = violations < bestViolations
			case maxPrio != bestMax:
				better = maxPrio < bestMax
			case sum != bestSum:
				better = sum < bestSum
			case len(victims) != len(best.victims):
				better = len(victims) < len(best.victims)
			default:
				better = start.After(bestStart)
			}
		}
		if better {
			best = &preemption{node: ni.Name(), victims: victims}
			bestViolations, bestMax, bestSum, bestStart = violations, maxPrio, sum, start
		}
	}
	if best != nil {
		return best, ""
	}
	return nil, fmt.Sprintf("preemption: 0/%d nodes are available: %s.", fitErr.NumAllNodes, histogram(reasons))
}

// earliestStart is when the first of the victims of priority prio
// started (its creation when it has not started).
func earliestStart(victims []*fw.PodInfo, prio int64) time.Time {
	var first time.Time
	for _, v := range victims {
		if int64(v.Priority) != prio {
			continue
		}
		at := v.Pod.CreationTimestamp.Time
		if st := v.Pod.Status.StartTime; st != nil {
			at = st.Time
		}
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	return first
}

// selectVictims removes every pod of lower priority from a copy of the
// node; if the pod then fits, it puts back as many as it can and returns
// the rest, with how many of them evicting would violate a
// PodDisruptionBudget. As upstream, pods protected by a budget are put
// back first, then the others, most important first within each group.
func selectVictims(filters []fw.FilterPlugin, pod *fw.PodInfo, ni *fw.NodeInfo, snap fw.NodeLister, budgets []budget) ([]*fw.PodInfo, int, bool) {
	trial := ni.Clone()
	var lower []*fw.PodInfo
	for _, p := range ni.Pods {
		if p.Priority < pod.Priority {
			lower = append(lower, p)
			trial.RemovePod(string(p.Pod.UID))
		}
	}
	if len(lower) == 0 {
		return nil, 0, false
	}
	view := &overlay{base: snap, node: trial}
	if !fitsOn(filters, pod, trial, view) {
		return nil, 0, false
	}
	sort.SliceStable(lower, func(i, j int) bool { return lower[i].Priority > lower[j].Priority })
	protected, unprotected := splitByBudgets(lower, budgets)
	var victims []*fw.PodInfo
	// reprieve puts p back if the pod still fits; else p is a victim.
	reprieve := func(p *fw.PodInfo) bool {
		trial.AddPod(p)
		if fitsOn(filters, pod, trial, view) {
			return true
		}
		trial.RemovePod(string(p.Pod.UID))
		victims = append(victims, p)
		return false
	}
	violations := 0
	for _, p := range protected {
		if !reprieve(p) {
			violations++
		}
	}
	for _, p := range unprotected {
		reprieve(p)
	}
	return victims, violations, true
}

// budget is a PodDisruptionBudget with its selector parsed once per
// preemption rather than once per node and pod.
type budget struct {
	pdb      *policyv1.PodDisruptionBudget
	selector labels.Selector
}

// newBudgets parses the budgets' selectors. A budget whose selector is
// missing, empty or invalid protects no pod, as upstream.
func newBudgets(pdbs []*policyv1.PodDisruptionBudget) []budget {
	out := make([]budget, 0, len(pdbs))
	for _, pdb := range pdbs {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || sel.Empty() {
			continue
		}
		out = append(out, budget{pdb: pdb, selector: sel})
	}
	return out
}

// splitByBudgets sorts candidate victims, in order, into those whose
// eviction would take a budget below zero once the candidates before them
// are evicted too, and the rest. Pods a budget already lists as disrupted
// were counted by the disruption controller and do not use it up again.
func splitByBudgets(pods []*fw.PodInfo, budgets []budget) (protected, unprotected []*fw.PodInfo) {
	if len(budgets) == 0 {
		return nil, pods
	}
	allowed := make([]int32, len(budgets))
	for i, b := range budgets {
		allowed[i] = b.pdb.Status.DisruptionsAllowed
	}
	for _, p := range pods {
		violates := false
		for i, b := range budgets {
			if b.pdb.Namespace != p.Pod.Namespace || len(p.Pod.Labels) == 0 || !b.selector.Matches(labels.Set(p.Pod.Labels)) {
				continue
			}
			if _, disrupted := b.pdb.Status.DisruptedPods[p.Pod.Name]; disrupted {
				continue
			}
			allowed[i]--
			violates = violates || allowed[i] < 0
		}
		if violates {
			protected = append(protected, p)
		} else {
			unprotected = append(unprotected, p)
		}
	}
	return protected, unprotected
}

// fitsOn runs the prefilters over view and the filters on ni.
func fitsOn(filters []fw.FilterPlugin, pod *fw.PodInfo, ni *fw.NodeInfo, view fw.NodeLister) bool {
	state := fw.NewCycleState()
	for _, f := range filters {
		if pf, ok := f.(fw.PreFilterPlugin); ok {
			// A skipped plugin's Filter finds nothing in state and
			// passes, so there is no need to leave it out here.
			if st := pf.PreFilter(state, pod, view); !st.IsSuccess() && st.Code != fw.Skip {
				return false
			}
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

func (o *overlay) HavePodsWithAffinity() []*fw.NodeInfo {
	return o.swapped(o.base.HavePodsWithAffinity(), len(o.node.PodsWithAffinity) > 0)
}

func (o *overlay) HavePodsWithRequiredAntiAffinity() []*fw.NodeInfo {
	return o.swapped(o.base.HavePodsWithRequiredAntiAffinity(), len(o.node.PodsWithRequiredAntiAffinity) > 0)
}

// swapped is base without the trial node's original, plus the trial node
// when it belongs in the list.
func (o *overlay) swapped(base []*fw.NodeInfo, belongs bool) []*fw.NodeInfo {
	out := make([]*fw.NodeInfo, 0, len(base)+1)
	for _, ni := range base {
		if ni.Name() != o.node.Name() {
			out = append(out, ni)
		}
	}
	if belongs {
		out = append(out, o.node)
	}
	return out
}

// NodesWithImage is the base's: a trial copy holds the same node.
func (o *overlay) NodesWithImage(name string) int { return o.base.NodesWithImage(name) }

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
