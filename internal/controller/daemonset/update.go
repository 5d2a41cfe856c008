package daemonset

import (
	"context"
	"sort"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// rollingUpdate replaces pods of older templates, within maxUnavailable
// and maxSurge; manage creates the replacements.
func (c *Controller) rollingUpdate(ctx context.Context, ds *appsv1.DaemonSet, nodes []*corev1.Node, nodePods map[string][]*corev1.Pod, hash string) error {
	remove, create := planRollingUpdate(ds, nodes, nodePods, hash, c.clock.Now())
	if len(remove) == 0 && len(create) == 0 {
		return nil
	}
	return c.syncNodes(ctx, ds, remove, create, hash)
}

// scaled resolves a maxSurge or maxUnavailable against the number of
// nodes that should run the daemon, rounding percentages up as upstream.
func scaled(v *intstr.IntOrString, desired int) int {
	if v == nil {
		return 0
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(v, desired, true)
	if err != nil {
		return 0
	}
	return n
}

func rollingParams(ds *appsv1.DaemonSet) (surge, unavailable *intstr.IntOrString) {
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	if ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType || ru == nil {
		return nil, nil
	}
	return ru.MaxSurge, ru.MaxUnavailable
}

// allowsSurge reports whether ds may run an old and a new pod on a node.
func allowsSurge(ds *appsv1.DaemonSet) bool {
	surge, _ := rollingParams(ds)
	return scaled(surge, 1) != 0
}

// isUpdated reports whether pod runs ds's current template: its hash
// label, or its template generation label, is the current one.
func isUpdated(ds *appsv1.DaemonSet, pod *corev1.Pod, hash string) bool {
	if hash != "" && pod.Labels[hashLabel] == hash {
		return true
	}
	gen, ok := templateGeneration(ds)
	return ok && pod.Labels[templateGenerationLabel] == strconv.FormatInt(gen, 10)
}

// updatedAndOld splits the live pods on one node into the one on the
// current template and the one on an older template; ok is false when
// there is more than one of either, which manage cleans up first.
func updatedAndOld(ds *appsv1.DaemonSet, pods []*corev1.Pod, hash string) (updated, old *corev1.Pod, ok bool) {
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		if isUpdated(ds, p, hash) {
			if updated != nil {
				return nil, nil, false
			}
			updated = p
		} else {
			if old != nil {
				return nil, nil, false
			}
			old = p
		}
	}
	return updated, old, true
}

// planRollingUpdate is upstream's rolling update decision over a
// snapshot: which old pods to delete and on which nodes to surge a new
// pod. Nodes are visited in name order so the plan is deterministic.
func planRollingUpdate(ds *appsv1.DaemonSet, nodes []*corev1.Node, nodePods map[string][]*corev1.Pod, hash string, now time.Time) (remove []*corev1.Pod, create []string) {
	byName := map[string]*corev1.Node{}
	pods := map[string][]*corev1.Pod{}
	for k, v := range nodePods {
		pods[k] = v
	}
	desired := 0
	for _, n := range nodes {
		byName[n.Name] = n
		if run, _ := NodeShouldRunDaemonPod(n, ds); run {
			desired++
			if _, ok := pods[n.Name]; !ok {
				pods[n.Name] = nil // counts as unavailable
			}
		}
	}
	surgeParam, unavailParam := rollingParams(ds)
	maxSurge, maxUnavailable := scaled(surgeParam, desired), scaled(unavailParam, desired)
	if desired > 0 && maxSurge == 0 && maxUnavailable == 0 {
		// An impossible configuration; upstream then accepts one
		// unavailable pod rather than never progressing.
		maxUnavailable = 1
	}
	names := make([]string, 0, len(pods))
	for n := range pods {
		names = append(names, n)
	}
	sort.Strings(names)
	available := func(p *corev1.Pod) bool { return podAvailable(p, ds.Spec.MinReadySeconds, now) }
	shouldRun := func(node string) bool {
		n := byName[node]
		if n == nil {
			return false
		}
		run, _ := NodeShouldRunDaemonPod(n, ds)
		return run
	}

	if maxSurge == 0 {
		// Delete just enough old pods to stay within maxUnavailable;
		// manage creates their replacements once they are gone.
		unavailable := 0
		var replace, candidates []*corev1.Pod
		for _, node := range names {
			updated, old, ok := updatedAndOld(ds, pods[node], hash)
			switch {
			case !ok, old == nil && updated == nil, old != nil && updated != nil:
				unavailable++ // manage is still creating or deleting here
			case updated != nil:
				if !available(updated) {
					unavailable++
				}
			case !available(old):
				// Already unavailable: replacing it costs nothing.
				replace = append(replace, old)
				unavailable++
			case unavailable < maxUnavailable:
				candidates = append(candidates, old)
			}
		}
		budget := min(max(maxUnavailable-unavailable, 0), len(candidates))
		return append(replace, candidates[:budget]...), nil
	}

	// With surge a new pod starts beside the old one, which is deleted
	// once the new one is available; at most maxSurge at once.
	surging, numAvailable := 0, 0
	var allowedNodes, candidateNodes []string
	var notRunHere []*corev1.Pod
	for _, node := range names {
		updated, old, ok := updatedAndOld(ds, pods[node], hash)
		if !ok {
			surging++
			continue
		}
		if (old != nil && available(old)) || (old == nil && updated != nil && available(updated)) {
			numAvailable++
		}
		switch {
		case old == nil:
			// manage takes care of this node
		case updated == nil && !available(old):
			if !shouldRun(node) {
				remove = append(remove, old)
				continue
			}
			allowedNodes = append(allowedNodes, node)
		case updated == nil:
			if !shouldRun(node) {
				notRunHere = append(notRunHere, old)
				continue
			}
			if surging >= maxSurge {
				continue
			}
			candidateNodes = append(candidateNodes, node)
		case !available(updated):
			surging++ // waiting for the new pod
		default:
			remove = append(remove, old)
		}
	}
	// Pods on nodes the set no longer wants go only once the pods
	// elsewhere are available: surge promises full availability.
	if extra := min(numAvailable-desired, len(notRunHere)); extra > 0 {
		remove = append(remove, notRunHere[:extra]...)
	}
	budget := min(max(maxSurge-surging, 0), len(candidateNodes))
	return remove, append(allowedNodes, candidateNodes[:budget]...)
}
