package scheduler

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
	"github.com/lotse/lotse/internal/scheduler/plugins"
)

// ErrNoNodesAvailable is returned when the cluster has no nodes at all; the
// text is upstream's.
var ErrNoNodesAvailable = errors.New("no nodes available to schedule pods")

// FitError says why no node fitted a pod. Its Error text is the
// FailedScheduling message upstream prints.
type FitError struct {
	NumAllNodes int
	// Reasons counts nodes per reason; a node can count for several
	// (Insufficient cpu and Insufficient memory).
	Reasons map[string]int
	// NodeStatuses is each rejected node's verdict; preemption looks
	// only at nodes whose code is Unschedulable.
	NodeStatuses map[string]*fw.Status
	// PreFilterMsg is set when a PreFilter rejected the pod for every
	// node at once (a missing PersistentVolumeClaim); it then replaces
	// the per-node reasons.
	PreFilterMsg string
	// PostFilterMsg is what preemption found, such as "preemption: 0/5
	// nodes are available: 5 Preemption is not helpful for scheduling.".
	PostFilterMsg string
}

// Error implements error:
// "0/5 nodes are available: 2 Insufficient cpu, 3 node(s) had untolerated
// taint {dedicated: gpu}. preemption: 0/5 nodes are available: 2 No
// preemption victims found for incoming pod, 3 Preemption is not helpful
// for scheduling."
func (e *FitError) Error() string {
	reasons := e.PreFilterMsg
	if reasons == "" {
		reasons = histogram(e.Reasons)
	}
	msg := fmt.Sprintf("0/%d nodes are available: %s.", e.NumAllNodes, reasons)
	if e.PostFilterMsg != "" {
		msg += " " + e.PostFilterMsg
	}
	return msg
}

// histogram renders "count reason" pairs sorted as strings, as upstream.
func histogram(reasons map[string]int) string {
	parts := make([]string, 0, len(reasons))
	for r, n := range reasons {
		parts = append(parts, fmt.Sprintf("%d %s", n, r))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// Algorithm is the pure part of the scheduler: given a pod and a snapshot
// it picks a node. It keeps only a rotating start index between calls, so
// it is used by one goroutine at a time.
type Algorithm struct {
	filters []fw.FilterPlugin
	scores  []weightedScore
	// percentageOfNodesToScore bounds how many feasible nodes are looked
	// for in large clusters; 0 means upstream's adaptive default.
	percentageOfNodesToScore int32
	nextStart                int
	rand                     *rand.Rand
	// nominated lists, per node, pods that preempted others there and
	// wait for the room; pods of lower priority must leave it to them.
	nominated map[string][]*fw.PodInfo
	// Scratch space of Schedule, kept between calls: hundreds of
	// feasible nodes and their scores per pod would otherwise be
	// allocated and collected for every pod.
	feasible                 []*fw.NodeInfo
	nodeTotals, pluginScores []int64
}

type weightedScore struct {
	plugin fw.ScorePlugin
	weight int64
}

// NewAlgorithm builds an algorithm from filters and weighted scores; score
// plugins with weight 0 are left out.
func NewAlgorithm(filters []fw.FilterPlugin, scores []fw.ScorePlugin, weights map[string]int64, percentage int32, seed uint64) *Algorithm {
	a := &Algorithm{filters: filters, percentageOfNodesToScore: percentage, rand: rand.New(rand.NewPCG(seed, seed^0x5eed))}
	for _, s := range scores {
		if w := weights[s.Name()]; w > 0 {
			a.scores = append(a.scores, weightedScore{s, w})
		}
	}
	return a
}

// numFeasibleNodesToFind is upstream's adaptive bound: all nodes below
// 100, else a share falling from 50% by 1% per 125 nodes to at least 5%,
// and never fewer than 100 nodes.
func (a *Algorithm) numFeasibleNodesToFind(all int) int {
	const minFeasible = 100
	if all < minFeasible || a.percentageOfNodesToScore >= 100 {
		return all
	}
	pct := int(a.percentageOfNodesToScore)
	if pct <= 0 {
		pct = max(50-all/125, 5)
	}
	return max(all*pct/100, minFeasible)
}

// Schedule returns the node for pod, a *FitError when none fits, or
// ErrNoNodesAvailable.
func (a *Algorithm) Schedule(pod *fw.PodInfo, nodes fw.NodeLister) (string, error) {
	all := nodes.List()
	if len(all) == 0 {
		return "", ErrNoNodesAvailable
	}
	state := fw.NewCycleState()
	// The scores count pods and images over the whole cluster, not only
	// the nodes that pass the filters.
	plugins.RecordNodes(state, nodes)
	var skipped []int // indexes into a.filters
	for i, f := range a.filters {
		pf, ok := f.(fw.PreFilterPlugin)
		if !ok {
			continue
		}
		switch st := pf.PreFilter(state, pod, nodes); {
		case st.IsSuccess():
		case st.Code == fw.Skip:
			skipped = append(skipped, i)
		case st.Code == fw.Error:
			return "", fmt.Errorf("prefilter %s: %s", pf.Name(), st.Message())
		default:
			return "", preFilterFitError(all, st)
		}
	}
	filters := a.filtersWithout(skipped)
	if names := plugins.NodeNames(pod.Pod); names != nil {
		if node, ok := a.scheduleAmong(filters, state, pod, nodes, names); ok {
			return node, nil
		}
		// None of them fits: the pass over all nodes below says why.
	}
	want := a.numFeasibleNodesToFind(len(all))
	feasible := a.feasible[:0]
	defer func() { a.feasible = feasible[:0]; clear(feasible) }()
	fitErr := &FitError{NumAllNodes: len(all), Reasons: map[string]int{}, NodeStatuses: map[string]*fw.Status{}}
	// Start where the last pod stopped, so that in large clusters every
	// node gets looked at in turn.
	start := a.nextStart % len(all)
	processed := 0
	for i := 0; i < len(all) && len(feasible) < want; i++ {
		ni := all[(start+i)%len(all)]
		processed++
		if st := a.runFilters(filters, state, pod, ni); st != nil {
			for _, r := range st.Reasons {
				fitErr.Reasons[r]++
			}
			fitErr.NodeStatuses[ni.Name()] = st
			continue
		}
		feasible = append(feasible, ni)
	}
	a.nextStart = (start + processed) % len(all)
	switch len(feasible) {
	case 0:
		return "", fitErr
	case 1:
		return feasible[0].Name(), nil
	}
	totals := a.score(state, pod, feasible)
	return a.selectHost(feasible, totals), nil
}

// preFilterFitError is the FitError for a pod a PreFilter rejected: every
// node gets its status, as upstream, so preemption sees whether evicting
// could help.
func preFilterFitError(all []*fw.NodeInfo, st *fw.Status) *FitError {
	e := &FitError{NumAllNodes: len(all), Reasons: map[string]int{}, NodeStatuses: make(map[string]*fw.Status, len(all)), PreFilterMsg: st.Message()}
	for _, ni := range all {
		e.NodeStatuses[ni.Name()] = st
	}
	return e
}

// scheduleAmong picks the best of the named nodes that pass the filters;
// ok is false when none does.
func (a *Algorithm) scheduleAmong(filters []fw.FilterPlugin, state *fw.CycleState, pod *fw.PodInfo, nodes fw.NodeLister, names []string) (string, bool) {
	var feasible []*fw.NodeInfo
	for _, name := range names {
		if ni, ok := nodes.Get(name); ok && a.runFilters(filters, state, pod, ni) == nil {
			feasible = append(feasible, ni)
		}
	}
	switch len(feasible) {
	case 0:
		return "", false
	case 1:
		return feasible[0].Name(), true
	}
	return a.selectHost(feasible, a.score(state, pod, feasible)), true
}

// filtersWithout returns the filters less those at the skipped indexes,
// in a new slice so that the algorithm's own list stays whole.
func (a *Algorithm) filtersWithout(skipped []int) []fw.FilterPlugin {
	if len(skipped) == 0 {
		return a.filters
	}
	out := make([]fw.FilterPlugin, 0, len(a.filters)-len(skipped))
	for i, f := range a.filters {
		if !slices.Contains(skipped, i) {
			out = append(out, f)
		}
	}
	return out
}

// runFilters runs filters on ni with the pods nominated to it that
// matter to pod.
func (a *Algorithm) runFilters(filters []fw.FilterPlugin, state *fw.CycleState, pod *fw.PodInfo, ni *fw.NodeInfo) *fw.Status {
	if len(a.nominated) == 0 {
		return runFilters(filters, state, pod, ni)
	}
	if noms := a.nominated[ni.Name()]; len(noms) > 0 {
		var with *fw.NodeInfo
		for _, n := range noms {
			if n.Pod.UID != pod.Pod.UID && n.Priority >= pod.Priority {
				if with == nil {
					with = ni.Clone()
				}
				with.AddPod(n)
			}
		}
		if with != nil {
			ni = with
		}
	}
	return runFilters(filters, state, pod, ni)
}

func runFilters(filters []fw.FilterPlugin, state *fw.CycleState, pod *fw.PodInfo, ni *fw.NodeInfo) *fw.Status {
	for _, f := range filters {
		if st := f.Filter(state, pod, ni); !st.IsSuccess() {
			return st
		}
	}
	return nil
}

// score returns the weighted sum of each plugin's normalised scores per
// feasible node. A plugin whose PreScore says Skip is left out, as
// upstream's framework does: it would score every node the same, which
// adds the same to each total and changes no choice.
func (a *Algorithm) score(state *fw.CycleState, pod *fw.PodInfo, feasible []*fw.NodeInfo) []int64 {
	a.nodeTotals = slices.Grow(a.nodeTotals[:0], len(feasible))[:len(feasible)]
	a.pluginScores = slices.Grow(a.pluginScores[:0], len(feasible))[:len(feasible)]
	totals, scores := a.nodeTotals, a.pluginScores
	clear(totals)
	for _, ws := range a.scores {
		if ps, ok := ws.plugin.(fw.PreScorePlugin); ok {
			if st := ps.PreScore(state, pod, feasible); st != nil && st.Code == fw.Skip {
				continue
			}
		}
		for i, ni := range feasible {
			scores[i] = ws.plugin.Score(state, pod, ni)
		}
		if n, ok := ws.plugin.(fw.ScoreNormalizer); ok {
			n.NormalizeScores(state, pod, scores)
		}
		for i := range scores {
			totals[i] += ws.weight * scores[i]
		}
	}
	return totals
}

// selectHost picks the best total, breaking ties at random so equal nodes
// share the load.
func (a *Algorithm) selectHost(feasible []*fw.NodeInfo, totals []int64) string {
	best, ties := 0, 1
	for i := 1; i < len(totals); i++ {
		switch {
		case totals[i] > totals[best]:
			best, ties = i, 1
		case totals[i] == totals[best]:
			ties++
			if a.rand.IntN(ties) == 0 { // reservoir sampling
				best = i
			}
		}
	}
	return feasible[best].Name()
}
