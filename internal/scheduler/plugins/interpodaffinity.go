package plugins

import (
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
)

// Reasons of InterPodAffinity, worded as upstream.
const (
	ReasonPodAffinity             = "node(s) didn't match pod affinity rules"
	ReasonPodAntiAffinity         = "node(s) didn't match pod anti-affinity rules"
	ReasonExistingPodAntiAffinity = "node(s) didn't satisfy existing pods anti-affinity rules"
)

// InterPodAffinity enforces required pod affinity and anti-affinity, both
// the incoming pod's and that of pods already placed, and scores by the
// preferred terms (see interpodaffinityscore.go).
//
// Limitation: a non-empty namespaceSelector would need namespace labels,
// which the scheduler does not watch; such a term matches only the
// namespaces it lists (or the pod's own). An empty namespaceSelector ({})
// means all namespaces, as upstream.
type InterPodAffinity struct{}

// Name implements fw.Plugin.
func (InterPodAffinity) Name() string { return "InterPodAffinity" }

type affinityTerm struct {
	selector      labels.Selector
	namespaces    map[string]bool // nil: every namespace
	topologyKey   string
	matchesNoneOK bool
}

// matches reports whether pod is one the term talks about.
func (t *affinityTerm) matches(pod *v1.Pod) bool {
	if t.namespaces != nil && !t.namespaces[pod.Namespace] {
		return false
	}
	return t.selector.Matches(labels.Set(pod.Labels))
}

func newAffinityTerms(owner *v1.Pod, terms []v1.PodAffinityTerm) []affinityTerm {
	out := make([]affinityTerm, 0, len(terms))
	for _, t := range terms {
		sel, err := metav1.LabelSelectorAsSelector(t.LabelSelector)
		if err != nil || t.LabelSelector == nil {
			sel = labels.Nothing()
		}
		// matchLabelKeys narrows the selector to pods sharing the
		// owner's values for those keys (such as pod-template-hash).
		for _, k := range t.MatchLabelKeys {
			if v, ok := owner.Labels[k]; ok {
				if r, err := labels.NewRequirement(k, "=", []string{v}); err == nil {
					sel = sel.Add(*r)
				}
			}
		}
		var ns map[string]bool
		allNamespaces := t.NamespaceSelector != nil && len(t.NamespaceSelector.MatchLabels) == 0 && len(t.NamespaceSelector.MatchExpressions) == 0
		if !allNamespaces {
			ns = map[string]bool{}
			for _, n := range t.Namespaces {
				ns[n] = true
			}
			if len(ns) == 0 {
				ns[owner.Namespace] = true
			}
		}
		out = append(out, affinityTerm{selector: sel, namespaces: ns, topologyKey: t.TopologyKey})
	}
	return out
}

type topologyPair struct{ key, value string }

type interPodState struct {
	affinity, antiAffinity []affinityTerm
	// affinityCounts counts, per domain, existing pods matching all of
	// the pod's affinity terms.
	affinityCounts map[topologyPair]int
	// antiCounts counts, per domain, existing pods matched by one of the
	// pod's anti-affinity terms.
	antiCounts map[topologyPair]int
	// existingAnti counts domains where an existing pod's anti-affinity
	// rejects the incoming pod.
	existingAnti map[topologyPair]int
	// selfMatch: the pod matches all its own affinity terms, so the
	// first pod of a group may go anywhere.
	selfMatch bool
}

const interPodKey = "InterPodAffinity"

func requiredTerms(pod *v1.Pod) (aff, anti []v1.PodAffinityTerm) {
	a := pod.Spec.Affinity
	if a == nil {
		return nil, nil
	}
	if a.PodAffinity != nil {
		aff = a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	}
	if a.PodAntiAffinity != nil {
		anti = a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	}
	return aff, anti
}

// PreFilter implements fw.PreFilterPlugin.
func (InterPodAffinity) PreFilter(state *fw.CycleState, p *fw.PodInfo, nodes fw.NodeLister) *fw.Status {
	RecordNodes(state, nodes)
	affT, antiT := requiredTerms(p.Pod)
	s := &interPodState{
		affinity:       newAffinityTerms(p.Pod, affT),
		antiAffinity:   newAffinityTerms(p.Pod, antiT),
		affinityCounts: map[topologyPair]int{},
		antiCounts:     map[topologyPair]int{},
		existingAnti:   map[topologyPair]int{},
	}
	s.selfMatch = len(s.affinity) > 0
	for i := range s.affinity {
		s.selfMatch = s.selfMatch && s.affinity[i].matches(p.Pod)
	}
	for _, ni := range nodes.List() {
		nodeLabels := ni.Node.Labels
		for _, existing := range ni.PodsWithRequiredAntiAffinity {
			_, theirAnti := requiredTerms(existing.Pod)
			for _, t := range newAffinityTerms(existing.Pod, theirAnti) {
				if v, ok := nodeLabels[t.topologyKey]; ok && t.matches(p.Pod) {
					s.existingAnti[topologyPair{t.topologyKey, v}]++
				}
			}
		}
		if len(s.affinity) == 0 && len(s.antiAffinity) == 0 {
			continue
		}
		for _, existing := range ni.Pods {
			if len(s.affinity) > 0 && allMatch(s.affinity, existing.Pod) {
				for _, t := range s.affinity {
					if v, ok := nodeLabels[t.topologyKey]; ok {
						s.affinityCounts[topologyPair{t.topologyKey, v}]++
					}
				}
			}
			for _, t := range s.antiAffinity {
				if v, ok := nodeLabels[t.topologyKey]; ok && t.matches(existing.Pod) {
					s.antiCounts[topologyPair{t.topologyKey, v}]++
				}
			}
		}
	}
	state.Write(interPodKey, s)
	return nil
}

func allMatch(terms []affinityTerm, pod *v1.Pod) bool {
	for i := range terms {
		if !terms[i].matches(pod) {
			return false
		}
	}
	return true
}

// Filter implements fw.FilterPlugin.
func (InterPodAffinity) Filter(state *fw.CycleState, _ *fw.PodInfo, n *fw.NodeInfo) *fw.Status {
	v, ok := state.Read(interPodKey)
	if !ok {
		return nil
	}
	s := v.(*interPodState)
	nodeLabels := n.Node.Labels
	for pair := range s.existingAnti {
		if v, has := nodeLabels[pair.key]; has && v == pair.value {
			return fw.NewStatus(fw.Unschedulable, ReasonExistingPodAntiAffinity)
		}
	}
	for _, t := range s.antiAffinity {
		if v, ok := nodeLabels[t.topologyKey]; ok && s.antiCounts[topologyPair{t.topologyKey, v}] > 0 {
			return fw.NewStatus(fw.Unschedulable, ReasonPodAntiAffinity)
		}
	}
	if len(s.affinity) == 0 {
		return nil
	}
	satisfied := true
	for _, t := range s.affinity {
		v, ok := nodeLabels[t.topologyKey]
		if !ok {
			// Without the topology label the node is in no domain.
			return fw.NewStatus(fw.UnschedulableAndUnresolvable, ReasonPodAffinity)
		}
		satisfied = satisfied && s.affinityCounts[topologyPair{t.topologyKey, v}] > 0
	}
	if satisfied || (len(s.affinityCounts) == 0 && s.selfMatch) {
		return nil
	}
	return fw.NewStatus(fw.UnschedulableAndUnresolvable, ReasonPodAffinity)
}
