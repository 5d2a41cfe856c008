package registry

import (
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
)

// Kind describes one served resource in one served version.
type Kind struct {
	GVK        schema.GroupVersionKind
	Resource   string // plural, lower case: "deployments"
	Singular   string
	ShortNames []string
	Categories []string
	Namespaced bool

	// Subresources served besides the main resource, e.g. "status", "scale".
	Subresources []string

	// Storage is the group/resource and version objects of this kind are
	// stored as. Usually the kind's own; events.k8s.io/v1 events share the
	// core events storage, autoscaling/v1 HPAs are stored as v2.
	StorageGVK      schema.GroupVersionKind
	StorageResource schema.GroupResource

	// FieldLabels returns the field-selector labels of a stored object
	// beyond metadata.name and metadata.namespace, which every kind
	// supports, as a new map (the store keeps it). A kind stored as
	// another takes that kind's labels.
	FieldLabels func(obj runtime.Object) map[string]string

	// Preferred marks the group's preferred version.
	Preferred bool
}

// GroupResource is the kind's group and resource.
func (k *Kind) GroupResource() schema.GroupResource {
	return schema.GroupResource{Group: k.GVK.Group, Resource: k.Resource}
}

// GroupVersionResource is the kind's group, version and resource.
func (k *Kind) GroupVersionResource() schema.GroupVersionResource {
	return k.GVK.GroupVersion().WithResource(k.Resource)
}

// HasSubresource reports whether the kind serves the named subresource.
func (k *Kind) HasSubresource(name string) bool {
	for _, s := range k.Subresources {
		if s == name {
			return true
		}
	}
	return false
}

// New returns an empty object of the kind.
func (k *Kind) New() runtime.Object {
	obj, err := scheme.Scheme.New(k.GVK)
	if err != nil {
		panic("registry: kind not in scheme: " + k.GVK.String())
	}
	return obj
}

// NewList returns an empty list of the kind.
func (k *Kind) NewList() runtime.Object {
	obj, err := scheme.Scheme.New(k.GVK.GroupVersion().WithKind(k.GVK.Kind + "List"))
	if err != nil {
		panic("registry: list kind not in scheme: " + k.GVK.String())
	}
	return obj
}

// NewStorage returns an empty object of the kind's storage version.
func (k *Kind) NewStorage() runtime.Object {
	obj, err := scheme.Scheme.New(k.StorageGVK)
	if err != nil {
		panic("registry: storage kind not in scheme: " + k.StorageGVK.String())
	}
	return obj
}

// Registry is the set of served kinds.
type Registry struct {
	kinds []*Kind
	byGVR map[schema.GroupVersionResource]*Kind
}

// New builds a registry from kinds, filling storage defaults.
func New(kinds []*Kind) *Registry {
	r := &Registry{byGVR: map[schema.GroupVersionResource]*Kind{}}
	for _, k := range kinds {
		if k.StorageGVK.Empty() {
			k.StorageGVK = k.GVK
		}
		if k.StorageResource.Empty() {
			k.StorageResource = k.GroupResource()
		}
		if k.Singular == "" {
			k.Singular = strings.ToLower(k.GVK.Kind)
		}
		r.kinds = append(r.kinds, k)
		r.byGVR[k.GroupVersionResource()] = k
	}
	// Selectors are evaluated on stored objects, so a kind served from
	// another's storage selects with that kind's field labels.
	for _, k := range r.kinds {
		if k.FieldLabels != nil || k.StorageGVK == k.GVK {
			continue
		}
		for _, stored := range r.kinds {
			if stored.GVK == k.StorageGVK {
				k.FieldLabels = stored.FieldLabels
			}
		}
	}
	return r
}

// Kinds returns every served kind in registration order.
func (r *Registry) Kinds() []*Kind { return r.kinds }

// Lookup finds the kind served at group/version/resource.
func (r *Registry) Lookup(gvr schema.GroupVersionResource) (*Kind, bool) {
	k, ok := r.byGVR[gvr]
	return k, ok
}

// GroupVersions returns the served group versions, the legacy core group
// first, then groups sorted by name with their preferred version first.
func (r *Registry) GroupVersions() []schema.GroupVersion {
	seen := map[schema.GroupVersion]bool{}
	var gvs []schema.GroupVersion
	for _, k := range r.kinds {
		gv := k.GVK.GroupVersion()
		if !seen[gv] {
			seen[gv] = true
			gvs = append(gvs, gv)
		}
	}
	sort.SliceStable(gvs, func(i, j int) bool {
		if gvs[i].Group != gvs[j].Group {
			return groupOrder(gvs[i].Group) < groupOrder(gvs[j].Group)
		}
		return r.PreferredVersion(gvs[i].Group) == gvs[i].Version && r.PreferredVersion(gvs[j].Group) != gvs[j].Version
	})
	return gvs
}

// PreferredVersion returns the preferred version of a group.
func (r *Registry) PreferredVersion(group string) string {
	first := ""
	for _, k := range r.kinds {
		if k.GVK.Group != group {
			continue
		}
		if k.Preferred {
			return k.GVK.Version
		}
		if first == "" {
			first = k.GVK.Version
		}
	}
	return first
}

// KindsIn returns the kinds served in one group version.
func (r *Registry) KindsIn(gv schema.GroupVersion) []*Kind {
	var out []*Kind
	for _, k := range r.kinds {
		if k.GVK.GroupVersion() == gv {
			out = append(out, k)
		}
	}
	return out
}

// groupOrder sorts the core group first, as upstream discovery does.
func groupOrder(g string) string {
	if g == "" {
		return ""
	}
	return "1" + g
}
