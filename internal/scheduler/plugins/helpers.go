package plugins

import (
	"slices"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
)

// nodesKey is where RecordNodes keeps the cycle's whole node list.
const nodesKey = "plugins/nodes"

// RecordNodes keeps the cycle's node lister in state for scores that count
// over every node of the cluster, as upstream does, and not only over the
// feasible nodes PreScore is given (pods on a full node still make its zone
// crowded; an image on a cordoned node still makes it widespread). The
// InterPodAffinity and PodTopologySpread PreFilters call it; a scheduler
// without them may call it before scoring.
func RecordNodes(state *fw.CycleState, nodes fw.NodeLister) {
	state.Write(nodesKey, nodes)
}

// clusterNodes returns the nodes RecordNodes kept, or feasible when none
// were recorded.
func clusterNodes(state *fw.CycleState, feasible []*fw.NodeInfo) []*fw.NodeInfo {
	if v, ok := state.Read(nodesKey); ok {
		return v.(fw.NodeLister).List()
	}
	return feasible
}

// nodesWithAffinity returns the recorded nodes that have pods with
// (anti-)affinity terms, or those of feasible when none were recorded.
func nodesWithAffinity(state *fw.CycleState, feasible []*fw.NodeInfo) []*fw.NodeInfo {
	if v, ok := state.Read(nodesKey); ok {
		return v.(fw.NodeLister).HavePodsWithAffinity()
	}
	var out []*fw.NodeInfo
	for _, ni := range feasible {
		if len(ni.PodsWithAffinity) > 0 {
			out = append(out, ni)
		}
	}
	return out
}

// NodeNames returns the only nodes pod's required node affinity allows by
// name — every term names nodes with a matchFields metadata.name In
// requirement, as the DaemonSet controller's pods do — or nil when the
// affinity does not narrow the nodes by name. Upstream's NodeAffinity
// PreFilter narrows the same way, so that such a pod is checked against
// its one node rather than the whole cluster.
func NodeNames(pod *v1.Pod) []string {
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return nil
	}
	terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) == 0 {
		return nil
	}
	names := []string{}
	for _, t := range terms {
		i := slices.IndexFunc(t.MatchFields, func(r v1.NodeSelectorRequirement) bool {
			return r.Key == "metadata.name" && r.Operator == v1.NodeSelectorOpIn
		})
		if i < 0 {
			return nil
		}
		names = append(names, t.MatchFields[i].Values...)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// nodeSelectorTermMatches reports whether a node matches one term: every
// expression over labels and every field expression (only metadata.name
// exists) must hold. A term with no requirements matches nothing, as
// upstream.
func nodeSelectorTermMatches(term *v1.NodeSelectorTerm, node *v1.Node) bool {
	if len(term.MatchExpressions) == 0 && len(term.MatchFields) == 0 {
		return false
	}
	if len(term.MatchExpressions) > 0 {
		sel, ok := requirementsSelector(term.MatchExpressions)
		if !ok || !sel.Matches(labels.Set(node.Labels)) {
			return false
		}
	}
	if len(term.MatchFields) > 0 {
		sel, ok := requirementsSelector(term.MatchFields)
		if !ok || !sel.Matches(labels.Set{"metadata.name": node.Name}) {
			return false
		}
	}
	return true
}

// requirementsSelector turns node selector requirements into a label
// selector; ok is false for an invalid requirement, which matches nothing.
func requirementsSelector(reqs []v1.NodeSelectorRequirement) (labels.Selector, bool) {
	sel := labels.NewSelector()
	for _, r := range reqs {
		var op selection.Operator
		switch r.Operator {
		case v1.NodeSelectorOpIn:
			op = selection.In
		case v1.NodeSelectorOpNotIn:
			op = selection.NotIn
		case v1.NodeSelectorOpExists:
			op = selection.Exists
		case v1.NodeSelectorOpDoesNotExist:
			op = selection.DoesNotExist
		case v1.NodeSelectorOpGt:
			op = selection.GreaterThan
		case v1.NodeSelectorOpLt:
			op = selection.LessThan
		default:
			return nil, false
		}
		req, err := labels.NewRequirement(r.Key, op, r.Values)
		if err != nil {
			return nil, false
		}
		sel = sel.Add(*req)
	}
	return sel, true
}

// nodeSelectorMatches reports whether any term of ns matches.
func nodeSelectorMatches(ns *v1.NodeSelector, node *v1.Node) bool {
	for i := range ns.NodeSelectorTerms {
		if nodeSelectorTermMatches(&ns.NodeSelectorTerms[i], node) {
			return true
		}
	}
	return false
}

// podMatchesNodeSelectorAndAffinity is the NodeAffinity filter's test:
// spec.nodeSelector and the required node affinity must both hold.
func podMatchesNodeSelectorAndAffinity(pod *v1.Pod, node *v1.Node) bool {
	if len(pod.Spec.NodeSelector) > 0 && !labels.SelectorFromSet(pod.Spec.NodeSelector).Matches(labels.Set(node.Labels)) {
		return false
	}
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return true
	}
	return nodeSelectorMatches(a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution, node)
}

// tolerates reports whether any toleration tolerates taint. Comparison
// operators (Gt, Lt) are honoured, as in current upstream.
func tolerates(tolerations []v1.Toleration, taint *v1.Taint) bool {
	for i := range tolerations {
		if tolerations[i].ToleratesTaint(logr.Discard(), taint, true) {
			return true
		}
	}
	return false
}

// firstUntolerated returns the first taint with one of effects that no
// toleration tolerates.
func firstUntolerated(taints []v1.Taint, tolerations []v1.Toleration, effects ...v1.TaintEffect) (*v1.Taint, bool) {
	for i := range taints {
		t := &taints[i]
		relevant := false
		for _, e := range effects {
			relevant = relevant || t.Effect == e
		}
		if relevant && !tolerates(tolerations, t) {
			return t, true
		}
	}
	return nil, false
}
