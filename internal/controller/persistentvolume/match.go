package persistentvolume

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/lotse/lotse/internal/storageclass"
)

// boundToClaim reports whether the volume's claimRef names the claim: by
// namespace and name, and by UID unless the ref leaves it empty (a
// volume an administrator reserved for a claim that may not exist yet).
func boundToClaim(pv *corev1.PersistentVolume, c *corev1.PersistentVolumeClaim) bool {
	ref := pv.Spec.ClaimRef
	return ref != nil && ref.Namespace == c.Namespace && ref.Name == c.Name && (ref.UID == "" || ref.UID == c.UID)
}

// modesSupported reports whether the volume offers every access mode the
// claim asks for.
func modesSupported(c *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume) bool {
	offered := map[corev1.PersistentVolumeAccessMode]bool{}
	for _, m := range pv.Spec.AccessModes {
		offered[m] = true
	}
	for _, m := range c.Spec.AccessModes {
		if !offered[m] {
			return false
		}
	}
	return true
}

// volumeMode resolves an unset volume mode to Filesystem, the API default.
func volumeMode(m *corev1.PersistentVolumeMode) corev1.PersistentVolumeMode {
	if m == nil {
		return corev1.PersistentVolumeFilesystem
	}
	return *m
}

func requestedStorage(c *corev1.PersistentVolumeClaim) int64 {
	q := c.Spec.Resources.Requests[corev1.ResourceStorage]
	return q.Value()
}

func volumeSize(pv *corev1.PersistentVolume) int64 {
	q := pv.Spec.Capacity[corev1.ResourceStorage]
	return q.Value()
}

// checkSatisfies says why a volume cannot serve a claim, or nil. It is
// the check for a claim that names its volume, so the claim's selector
// is not consulted (upstream does not either: naming the volume is more
// specific than selecting it).
func checkSatisfies(pv *corev1.PersistentVolume, c *corev1.PersistentVolumeClaim) error {
	switch {
	case pv.DeletionTimestamp != nil:
		return fmt.Errorf("the volume is marked for deletion %q", pv.Name)
	case volumeSize(pv) < requestedStorage(c):
		return errors.New("requested PV is too small")
	case storageclass.OfVolume(pv) != storageclass.OfClaim(c):
		return errors.New("storageClassName does not match")
	case volumeMode(pv.Spec.VolumeMode) != volumeMode(c.Spec.VolumeMode):
		return errors.New("incompatible volumeMode")
	case !modesSupported(c, pv):
		return errors.New("incompatible accessMode")
	}
	return nil
}

// findBestMatch picks the volume a claim without spec.volumeName binds
// to. A volume reserved for the claim by its claimRef wins outright
// (unless node is given and the volume cannot be used there). Otherwise
// the smallest Available, unreserved volume that satisfies the claim,
// matches its selector and admits node wins; ties go to the first name.
// delayBinding without a node means the claim waits for a consumer, so
// only a reserved volume can be chosen. It returns nil when nothing fits.
func findBestMatch(c *corev1.PersistentVolumeClaim, volumes []*corev1.PersistentVolume, node *corev1.Node, delayBinding bool) (*corev1.PersistentVolume, error) {
	var sel labels.Selector
	if c.Spec.Selector != nil {
		s, err := metav1.LabelSelectorAsSelector(c.Spec.Selector)
		if err != nil {
			return nil, fmt.Errorf("claim %s/%s: invalid selector: %w", c.Namespace, c.Name, err)
		}
		sel = s
	}
	var best *corev1.PersistentVolume
	for _, pv := range volumes {
		if pv.DeletionTimestamp != nil {
			continue
		}
		// Size and volume mode bind even a reserved volume: a reservation
		// does not make a too-small volume big enough.
		if volumeSize(pv) < requestedStorage(c) || volumeMode(pv.Spec.VolumeMode) != volumeMode(c.Spec.VolumeMode) {
			continue
		}
		admits := node == nil || nodeAdmits(pv, node)
		if boundToClaim(pv, c) {
			if !admits {
				return nil, nil
			}
			return pv, nil
		}
		if node == nil && delayBinding {
			continue
		}
		switch {
		case pv.Status.Phase != corev1.VolumeAvailable, pv.Spec.ClaimRef != nil,
			sel != nil && !sel.Matches(labels.Set(pv.Labels)),
			storageclass.OfVolume(pv) != storageclass.OfClaim(c), !admits, !modesSupported(c, pv):
			continue
		}
		if best == nil || volumeSize(pv) < volumeSize(best) || (volumeSize(pv) == volumeSize(best) && pv.Name < best.Name) {
			best = pv
		}
	}
	return best, nil
}

// nodeAdmits reports whether the volume's required node affinity lets
// node use it: no affinity admits every node; otherwise one of the terms
// must match (a term matches when all of its requirements do).
func nodeAdmits(pv *corev1.PersistentVolume, node *corev1.Node) bool {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return true
	}
	for i := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		if termMatches(&pv.Spec.NodeAffinity.Required.NodeSelectorTerms[i], node) {
			return true
		}
	}
	return false
}

// termMatches matches one node selector term. A term with no
// requirements matches nothing, as upstream.
func termMatches(term *corev1.NodeSelectorTerm, node *corev1.Node) bool {
	if len(term.MatchExpressions) == 0 && len(term.MatchFields) == 0 {
		return false
	}
	for _, r := range term.MatchExpressions {
		if !requirementMatches(r, labels.Set(node.Labels)) {
			return false
		}
	}
	for _, r := range term.MatchFields {
		// metadata.name is the one field node selectors may name.
		if r.Key != "metadata.name" || !requirementMatches(r, labels.Set{r.Key: node.Name}) {
			return false
		}
	}
	return true
}

var operators = map[corev1.NodeSelectorOperator]selection.Operator{
	corev1.NodeSelectorOpIn:           selection.In,
	corev1.NodeSelectorOpNotIn:        selection.NotIn,
	corev1.NodeSelectorOpExists:       selection.Exists,
	corev1.NodeSelectorOpDoesNotExist: selection.DoesNotExist,
	corev1.NodeSelectorOpGt:           selection.GreaterThan,
	corev1.NodeSelectorOpLt:           selection.LessThan,
}

// requirementMatches evaluates one requirement; one that cannot be
// parsed matches nothing rather than everything.
func requirementMatches(r corev1.NodeSelectorRequirement, set labels.Set) bool {
	op, ok := operators[r.Operator]
	if !ok {
		return false
	}
	req, err := labels.NewRequirement(r.Key, op, r.Values)
	if err != nil {
		return false
	}
	return req.Matches(set)
}
