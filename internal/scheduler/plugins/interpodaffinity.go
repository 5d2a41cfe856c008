package plugins

import (
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"

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
// A term looks at the namespaces it lists plus those its
// namespaceSelector matches ({} matches all); with neither, at its own
// pod's namespace. Namespace labels come from Namespaces; without it every
// namespace counts as unlabelled.
type InterPodAffinity struct {
	Namespaces corelisters.NamespaceLister
}

// Name implements fw.Plugin.
func (InterPodAffinity) Name() string { return "InterPodAffinity" }

type affinityTerm struct {
	selector labels.Selector
	// namespaces are the listed ones, or the owner's when the term has
	// neither a list nor a selector.
	namespaces map[string]bool
	// allNamespaces: the namespaceSelector is {}.
	allNamespaces bool
	// nsSelector is a non-empty namespaceSelector, or nil.
	nsSelector  labels.Selector
	topologyKey string
}

// matches reports whether pod is one the term talks about. ns gives the
// labels of pod's namespace; it is consulted only for a term whose
// namespaceSelector was not resolved to names beforehand.
func (t *affinityTerm) matches(pod *v1.Pod, ns *namespaceLabels) bool {
	inScope := t.allNamespaces || t.namespaces[pod.Namespace] ||
		(t.nsSelector != nil && t.nsSelector.Matches(ns.get()))
	return inScope && t.selector.Matches(labels.Set(pod.Labels))
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
		term := affinityTerm{selector: sel, namespaces: map[string]bool{}, topologyKey: t.TopologyKey}
		for _, n := range t.Namespaces {
			term.namespaces[n] = true
		}
		switch nsSel := t.NamespaceSelector; {
		case nsSel == nil:
			if len(t.Namespaces) == 0 {
				term.namespaces[owner.Namespace] = true
			}
		case len(nsSel.MatchLabels) == 0 && len(nsSel.MatchExpressions) == 0:
			term.allNamespaces = true
		default:
			if term.nsSelector, err = metav1.LabelSelectorAsSelector(nsSel); err != nil {
				term.nsSelector = labels.Nothing() // invalid: matches no namespace
			}
		}
		out = append(out, term)
	}
	return out
}

// resolveNamespaces turns the namespaceSelector of one of the incoming
// pod's own terms into namespace names, once per cycle, as upstream does:
// matching the many placed pods then needs no namespace lookups.
func (t *affinityTerm) resolveNamespaces(lister corelisters.NamespaceLister) {
	if t.nsSelector == nil {
		return
	}
	if lister != nil {
		if nss, err := lister.List(t.nsSelector); err == nil {
			for _, n := range nss {
				t.namespaces[n.Name] = true
			}
		}
	}
	t.nsSelector = nil
}

// namespaceLabels fetches the labels of one namespace (the incoming pod's)
// on first use: only placed pods' terms with a namespaceSelector need
// them, and most cycles meet none.
type namespaceLabels struct {
	lister  corelisters.NamespaceLister
	name    string
	fetched bool
	labels  labels.Set
}

func newNamespaceLabels(lister corelisters.NamespaceLister, name string) *namespaceLabels {
	return &namespaceLabels{lister: lister, name: name}
}

// get returns the labels; a missing namespace or lister has none, as
// upstream assumes for a namespace it cannot find.
func (n *namespaceLabels) get() labels.Set {
	if n == nil {
		return nil
	}
	if !n.fetched {
		n.fetched = true
		if n.lister != nil {
			if ns, err := n.lister.Get(n.name); err == nil {
				n.labels = labels.Set(ns.Labels)
			}
		}
	}
	return n.labels
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
func (pl InterPodAffinity) PreFilter(state *fw.CycleState, p *fw.PodInfo, nodes fw.NodeLister) *fw.Status {
	RecordNodes(state, nodes)
	affT, antiT := requiredTerms(p.Pod)
	s := &interPodState{
		affinity:       newAffinityTerms(p.Pod, affT),
		antiAffinity:   newAffinityTerms(p.Pod, antiT),
		affinityCounts: map[topologyPair]int{},
		antiCounts:     map[topologyPair]int{},
		existingAnti:   map[topologyPair]int{},
	}
	for i := range s.affinity {
		s.affinity[i].resolveNamespaces(pl.Namespaces)
	}
	for i := range s.antiAffinity {
		s.antiAffinity[i].resolveNamespaces(pl.Namespaces)
	}
	// Placed pods' anti-affinity terms may select the newcomer by its
	// namespace's labels.
	ownNamespace := newNamespaceLabels(pl.Namespaces, p.Pod.Namespace)
	s.selfMatch = len(s.affinity) > 0 && allMatch(s.affinity, p.Pod)
	for _, ni := range nodes.HavePodsWithRequiredAntiAffinity() {
		nodeLabels := ni.Node.Labels
		for _, existing := range ni.PodsWithRequiredAntiAffinity {
			_, theirAnti := requiredTerms(existing.Pod)
			for _, t := range newAffinityTerms(existing.Pod, theirAnti) {
				if v, ok := nodeLabels[t.topologyKey]; ok && t.matches(p.Pod, ownNamespace) {
					s.existingAnti[topologyPair{t.topologyKey, v}]++
				}
			}
		}
	}
	ownTerms := len(s.affinity) > 0 || len(s.antiAffinity) > 0
	if !ownTerms && len(s.existingAnti) == 0 {
		// Nothing to check on any node, the common case: as upstream,
		// the Filter is left out of the cycle.
		return fw.NewStatus(fw.Skip)
	}
	if ownTerms {
		for _, ni := range nodes.List() {
			s.countMatching(ni)
		}
	}
	state.Write(interPodKey, s)
	return nil
}

// countMatching counts the pods on ni that the incoming pod's own terms
// match, per topology domain.
func (s *interPodState) countMatching(ni *fw.NodeInfo) {
	nodeLabels := ni.Node.Labels
	for _, existing := range ni.Pods {
		if len(s.affinity) > 0 && allMatch(s.affinity, existing.Pod) {
			for _, t := range s.affinity {
				if v, ok := nodeLabels[t.topologyKey]; ok {
					s.affinityCounts[topologyPair{t.topologyKey, v}]++
				}
			}
		}
		for _, t := range s.antiAffinity {
			if v, ok := nodeLabels[t.topologyKey]; ok && t.matches(existing.Pod, nil) {
				s.antiCounts[topologyPair{t.topologyKey, v}]++
			}
		}
	}
}

// allMatch reports whether pod matches all of the incoming pod's terms,
// whose namespaceSelectors are resolved.
func allMatch(terms []affinityTerm, pod *v1.Pod) bool {
	for i := range terms {
		if !terms[i].matches(pod, nil) {
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
