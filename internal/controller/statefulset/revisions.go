package statefulset

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// RevisionHashLabel holds a ControllerRevision's hash of its data.
const RevisionHashLabel = "controller.kubernetes.io/hash"

// templatePatch is what a ControllerRevision of set stores: a strategic
// merge patch that replaces spec.template. It is built as upstream builds
// it (the set's JSON, cut down to the template and re-encoded with sorted
// keys), so the same template gives the same bytes, hash and revision name
// here as on any cluster, and `kubectl rollout undo` can apply it.
func templatePatch(set *appsv1.StatefulSet) ([]byte, error) {
	data, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	spec, _ := raw["spec"].(map[string]any)
	template, _ := spec["template"].(map[string]any)
	if template == nil {
		template = map[string]any{}
	}
	template["$patch"] = "replace"
	return json.Marshal(map[string]any{"spec": map[string]any{"template": template}})
}

// HashRevision hashes a revision's data (FNV-1 32, as upstream), plus the
// collision count when set, into a name-safe string.
func HashRevision(data []byte, collisionCount *int32) string {
	h := fnv.New32()
	h.Write(data)
	if collisionCount != nil {
		h.Write([]byte(strconv.FormatInt(int64(*collisionCount), 10)))
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// RevisionName is "<set>-<hash>", the set's name cut so the whole fits.
func RevisionName(setName, hash string) string {
	if len(setName) > 223 {
		setName = setName[:223]
	}
	return setName + "-" + hash
}

// newRevision builds (but does not store) the revision of set's template.
func newRevision(set *appsv1.StatefulSet, number int64, collisionCount *int32) (*appsv1.ControllerRevision, error) {
	patch, err := templatePatch(set)
	if err != nil {
		return nil, err
	}
	hash := HashRevision(patch, collisionCount)
	cr := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name:            RevisionName(set.Name, hash),
			Namespace:       set.Namespace,
			Labels:          copyMap(set.Spec.Template.Labels),
			Annotations:     copyMap(set.Annotations),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(set, kind)},
		},
		Data:     runtime.RawExtension{Raw: patch},
		Revision: number,
	}
	cr.Labels[RevisionHashLabel] = hash
	return cr, nil
}

// applyRevision returns set with the template the revision recorded.
func applyRevision(set *appsv1.StatefulSet, rev *appsv1.ControllerRevision) (*appsv1.StatefulSet, error) {
	cur, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	patched, err := strategicpatch.StrategicMergePatch(cur, rev.Data.Raw, &appsv1.StatefulSet{})
	if err != nil {
		return nil, fmt.Errorf("applying revision %s: %w", rev.Name, err)
	}
	out := &appsv1.StatefulSet{}
	if err := json.Unmarshal(patched, out); err != nil {
		return nil, err
	}
	return out, nil
}

// sortRevisions orders revisions oldest first, as upstream: by number,
// then creation time, then name.
func sortRevisions(revs []*appsv1.ControllerRevision) {
	sort.SliceStable(revs, func(i, j int) bool {
		a, b := revs[i], revs[j]
		if a.Revision != b.Revision {
			return a.Revision < b.Revision
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Name < b.Name
	})
}

// equalRevision compares the recorded data. Equal bytes are equal; else
// the JSON is compared by meaning, so that a revision written by another
// encoder still counts as the same template.
func equalRevision(a, b *appsv1.ControllerRevision) bool {
	if bytes.Equal(a.Data.Raw, b.Data.Raw) {
		return true
	}
	var da, db any
	if json.Unmarshal(a.Data.Raw, &da) != nil || json.Unmarshal(b.Data.Raw, &db) != nil {
		return false
	}
	return equality.Semantic.DeepEqual(da, db)
}

// nextRevisionNumber is one past the newest of the sorted revisions.
func nextRevisionNumber(revs []*appsv1.ControllerRevision) int64 {
	if len(revs) == 0 {
		return 1
	}
	return revs[len(revs)-1].Revision + 1
}

// historyToDelete picks the revisions beyond the history limit: the oldest
// ones that neither the current nor the update revision nor any pod uses.
func historyToDelete(revs []*appsv1.ControllerRevision, live map[string]bool, limit int) []*appsv1.ControllerRevision {
	var old []*appsv1.ControllerRevision
	for _, r := range revs {
		if !live[r.Name] {
			old = append(old, r)
		}
	}
	if len(old) <= limit {
		return nil
	}
	return old[:len(old)-limit]
}
