package plugins

import (
	"math"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
)

// Reasons of PodTopologySpread, worded as upstream.
const (
	ReasonTopologySpread             = "node(s) didn't match pod topology spread constraints"
	ReasonTopologySpreadMissingLabel = "node(s) didn't match pod topology spread constraints (missing required label)"
)

// PodTopologySpread enforces topologySpreadConstraints with
// whenUnsatisfiable: DoNotSchedule: placing the pod must not make the
// number of matching pods in its domain exceed the emptiest domain's by
// more than maxSkew. Constraints with ScheduleAnyway are its score (see
// topologyspreadscore.go). The system default constraints upstream applies
// to pods without any are not implemented.
type PodTopologySpread struct{}

// Name implements fw.Plugin.
func (PodTopologySpread) Name() string { return "PodTopologySpread" }

type spreadConstraint struct {
	maxSkew     int32
	minDomains  int32
	topologyKey string
	selector    labels.Selector
	selfMatch   bool
	counts      map[string]int // domain value -> matching pods
}

const spreadKey = "PodTopologySpread"

// PreFilter implements fw.PreFilterPlugin: it counts matching pods in every
// domain of the nodes the pod could go to.
func (PodTopologySpread) PreFilter(state *fw.CycleState, p *fw.PodInfo, nodes fw.NodeLister) *fw.Status {
	RecordNodes(state, nodes)
	var cs []*spreadConstraint
	var honorAffinity, honorTaints bool = true, false
	for _, c := range p.Pod.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable != v1.DoNotSchedule {
			continue
		}
		sel := spreadSelector(p.Pod, &c)
		sc := &spreadConstraint{maxSkew: c.MaxSkew, topologyKey: c.TopologyKey, selector: sel, counts: map[string]int{}}
		if c.MinDomains != nil {
			sc.minDomains = *c.MinDomains
		}
		sc.selfMatch = sel.Matches(labels.Set(p.Pod.Labels))
		// Upstream reads the policies per constraint; they are nearly
		// always equal, and the last one wins here.
		if c.NodeAffinityPolicy != nil {
			honorAffinity = *c.NodeAffinityPolicy == v1.NodeInclusionPolicyHonor
		}
		if c.NodeTaintsPolicy != nil {
			honorTaints = *c.NodeTaintsPolicy == v1.NodeInclusionPolicyHonor
		}
		cs = append(cs, sc)
	}
	if len(cs) == 0 {
		return nil
	}
	for _, ni := range nodes.List() {
		if !hasAllKeys(ni.Node, cs) {
			continue
		}
		if honorAffinity && !podMatchesNodeSelectorAndAffinity(p.Pod, ni.Node) {
			continue
		}
		if honorTaints {
			if _, bad := firstUntolerated(ni.Taints, p.Pod.Spec.Tolerations, v1.TaintEffectNoSchedule, v1.TaintEffectNoExecute); bad {
				continue
			}
		}
		for _, c := range cs {
			domain := ni.Node.Labels[c.topologyKey]
			c.counts[domain] += countMatchingPods(ni.Pods, c.selector, p.Pod.Namespace)
		}
	}
	state.Write(spreadKey, cs)
	return nil
}

// spreadSelector is the constraint's labelSelector (nil or invalid matches
// nothing) narrowed by matchLabelKeys to pods sharing the pod's values for
// those keys.
func spreadSelector(pod *v1.Pod, c *v1.TopologySpreadConstraint) labels.Selector {
	sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
	if err != nil || c.LabelSelector == nil {
		sel = labels.Nothing()
	}
	for _, k := range c.MatchLabelKeys {
		if v, ok := pod.Labels[k]; ok {
			if r, err := labels.NewRequirement(k, "=", []string{v}); err == nil {
				sel = sel.Add(*r)
			}
		}
	}
	return sel
}

// countMatchingPods counts the pods in namespace that sel matches; pods
// being deleted are on their way out and do not count.
func countMatchingPods(pods []*fw.PodInfo, sel labels.Selector, namespace string) int {
	n := 0
	for _, existing := range pods {
		e := existing.Pod
		if e.Namespace == namespace && e.DeletionTimestamp == nil && sel.Matches(labels.Set(e.Labels)) {
			n++
		}
	}
	return n
}

func hasAllKeys(node *v1.Node, cs []*spreadConstraint) bool {
	for _, c := range cs {
		if _, ok := node.Labels[c.topologyKey]; !ok {
			return false
		}
	}
	return true
}

// Filter implements fw.FilterPlugin.
func (PodTopologySpread) Filter(state *fw.CycleState, _ *fw.PodInfo, n *fw.NodeInfo) *fw.Status {
	v, ok := state.Read(spreadKey)
	if !ok {
		return nil
	}
	cs := v.([]*spreadConstraint)
	if !hasAllKeys(n.Node, cs) {
		return fw.NewStatus(fw.UnschedulableAndUnresolvable, ReasonTopologySpreadMissingLabel)
	}
	for _, c := range cs {
		minMatch := math.MaxInt
		for _, count := range c.counts {
			minMatch = min(minMatch, count)
		}
		if minMatch == math.MaxInt || int32(len(c.counts)) < c.minDomains {
			// Too few domains: the missing ones count as empty.
			minMatch = 0
		}
		self := 0
		if c.selfMatch {
			self = 1
		}
		if skew := c.counts[n.Node.Labels[c.topologyKey]] + self - minMatch; skew > int(c.maxSkew) {
			return fw.NewStatus(fw.Unschedulable, ReasonTopologySpread)
		}
	}
	return nil
}
