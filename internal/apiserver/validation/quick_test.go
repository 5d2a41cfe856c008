package validation

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// randomName makes strings near the edges of the name rules: the
// characters that matter, separators, and lengths around 15, 63 and 253.
func randomName(r *rand.Rand) string {
	const alphabet = "abcz09AZ-_./%é \n"
	lengths := []int{0, 1, 2, 3, 5, 14, 15, 16, 62, 63, 64, 120, 252, 253, 254, 300}
	n := lengths[r.IntN(len(lengths))]
	var b strings.Builder
	for b.Len() < n {
		switch r.IntN(4) {
		case 0: // mostly valid runs, so that valid names are common
			b.WriteString("ab-9"[:1+r.IntN(4)])
		default:
			b.WriteString(string([]rune(alphabet)[r.IntN(len([]rune(alphabet)))]))
		}
	}
	s := b.String()
	if len(s) > n {
		s = s[:n]
	}
	return s
}

// The quick checks must agree with upstream's: accepting what upstream
// rejects would let invalid objects in, rejecting what it accepts would
// only be slow, but is a mistake too.
func TestQuickChecksAgreeWithUpstream(t *testing.T) {
	checks := []struct {
		name     string
		quick    func(string) bool
		upstream func(string) []string
	}{
		{"DNS-1123 label", isDNS1123Label, validation.IsDNS1123Label},
		{"DNS-1035 label", isDNS1035Label, validation.IsDNS1035Label},
		{"DNS-1123 subdomain", isDNS1123Subdomain, validation.IsDNS1123Subdomain},
		{"qualified name", func(s string) bool { return isQualifiedName(s, false) }, validation.IsQualifiedName},
		{"annotation key", func(s string) bool { return isQualifiedName(s, true) },
			func(s string) []string { return validation.IsQualifiedName(strings.ToLower(s)) }},
		{"label value", isLabelValue, validation.IsValidLabelValue},
		{"port name", isPortName, validation.IsValidPortName},
	}
	r := rand.New(rand.NewPCG(1, 2))
	var inputs []string
	for range 200000 {
		inputs = append(inputs, randomName(r))
	}
	// Shapes random strings rarely hit.
	inputs = append(inputs, "a", "a/b", "/b", "a/", "a//b", "example.com/Name", "Example.com/name", "a.-b", "a..b",
		".a", "a.", "1-2", "a--b", "-a", "a-", "http", "8080", "x/y/z", strings.Repeat("a", 63)+"/b", strings.Repeat("a.", 126)+"a")
	for _, c := range checks {
		valid := 0
		for _, s := range inputs {
			quick, want := c.quick(s), len(c.upstream(s)) == 0
			if quick != want {
				t.Errorf("%s %q: quick check says %v, upstream %v (%v)", c.name, s, quick, want, c.upstream(s))
			}
			if want {
				valid++
			}
		}
		if valid < 100 {
			t.Errorf("%s: only %d valid inputs; the test does not try both sides", c.name, valid)
		}
	}
}

func TestMetaQuickPathAgreesWithUpstream(t *testing.T) {
	yes := true
	base := func() *metav1.ObjectMeta {
		return &metav1.ObjectMeta{
			Name: "web-1", Namespace: "shop", GenerateName: "web-", UID: "u1", ResourceVersion: "5", Generation: 2,
			CreationTimestamp: metav1.Unix(1000, 0),
			Labels:            map[string]string{"app.kubernetes.io/name": "web", "tier": ""},
			Annotations:       map[string]string{"Example.com/Note": "x"},
			OwnerReferences:   []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: "u0", Controller: &yes}},
			Finalizers:        []string{"example.com/keep"},
		}
	}
	mutations := map[string]func(m *metav1.ObjectMeta){
		"as is":                   func(*metav1.ObjectMeta) {},
		"no name":                 func(m *metav1.ObjectMeta) { m.Name = "" },
		"upper-case name":         func(m *metav1.ObjectMeta) { m.Name = "Web" },
		"generateName dash":       func(m *metav1.ObjectMeta) { m.GenerateName = "-" },
		"generateName two dashes": func(m *metav1.ObjectMeta) { m.GenerateName = "a--" },
		"generateName dot dash":   func(m *metav1.ObjectMeta) { m.GenerateName = "a.-" },
		"no namespace":            func(m *metav1.ObjectMeta) { m.Namespace = "" },
		"dotted namespace":        func(m *metav1.ObjectMeta) { m.Namespace = "a.b" },
		"negative generation":     func(m *metav1.ObjectMeta) { m.Generation = -1 },
		"bad label key":           func(m *metav1.ObjectMeta) { m.Labels["a/b/c"] = "" },
		"bad label value":         func(m *metav1.ObjectMeta) { m.Labels["k"] = "-v" },
		"upper-case label prefix": func(m *metav1.ObjectMeta) { m.Labels["Example.com/k"] = "v" },
		"bad annotation key":      func(m *metav1.ObjectMeta) { m.Annotations["a b"] = "" },
		"huge annotations":        func(m *metav1.ObjectMeta) { m.Annotations["big"] = strings.Repeat("x", 256<<10) },
		"owner without uid":       func(m *metav1.ObjectMeta) { m.OwnerReferences[0].UID = "" },
		"owner without version":   func(m *metav1.ObjectMeta) { m.OwnerReferences[0].APIVersion = "apps/" },
		"owner bad version":       func(m *metav1.ObjectMeta) { m.OwnerReferences[0].APIVersion = "a/b/c" },
		"owner core version":      func(m *metav1.ObjectMeta) { m.OwnerReferences[0].APIVersion = "/v1" },
		"owner is an Event": func(m *metav1.ObjectMeta) {
			m.OwnerReferences[0].APIVersion, m.OwnerReferences[0].Kind = "v1", "Event"
		},
		"two controllers": func(m *metav1.ObjectMeta) {
			m.OwnerReferences = append(m.OwnerReferences, metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: "p", UID: "u2", Controller: &yes})
		},
		"bad finalizer": func(m *metav1.ObjectMeta) { m.Finalizers = append(m.Finalizers, "a/b/c") },
		"both deletion finalizers": func(m *metav1.ObjectMeta) {
			m.Finalizers = append(m.Finalizers, metav1.FinalizerOrphanDependents, metav1.FinalizerDeleteDependents)
		},
		"managed fields":   func(m *metav1.ObjectMeta) { m.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "x"}} },
		"no version":       func(m *metav1.ObjectMeta) { m.ResourceVersion = "" },
		"other uid":        func(m *metav1.ObjectMeta) { m.UID = types.UID("u9") },
		"older generation": func(m *metav1.ObjectMeta) { m.Generation = 1 },
		"other creation":   func(m *metav1.ObjectMeta) { m.CreationTimestamp = metav1.Unix(1001, 0) },
		"deleted":          func(m *metav1.ObjectMeta) { t := metav1.Unix(2000, 0); m.DeletionTimestamp = &t },
		"grace period":     func(m *metav1.ObjectMeta) { g := int64(3); m.DeletionGracePeriodSeconds = &g },
		"renamed":          func(m *metav1.ObjectMeta) { m.Name = "web-2" },
		"other namespace":  func(m *metav1.ObjectMeta) { m.Namespace = "other" },
		"creation in other zone": func(m *metav1.ObjectMeta) {
			m.CreationTimestamp = metav1.NewTime(m.CreationTimestamp.In(time.FixedZone("CET", 3600)))
		},
	}
	path := field.NewPath("metadata")
	for name, mutate := range mutations {
		for _, namespaced := range []bool{true, false} {
			m := base()
			if !namespaced {
				m.Namespace = ""
			}
			mutate(m)
			want := len(apivalidation.ValidateObjectMetaAccessor(m, namespaced, apivalidation.NameIsDNSSubdomain, path)) == 0
			if got := len(validateMeta(m, namespaced, dnsSubdomain)) == 0; got != want {
				t.Errorf("create, %s (namespaced %v): valid %v, upstream says %v", name, namespaced, got, want)
			}
			if got := metaValid(m, namespaced, dnsSubdomain); got && !want {
				t.Errorf("create, %s (namespaced %v): quick path accepts what upstream rejects", name, namespaced)
			}
			old := base()
			if !namespaced {
				old.Namespace = ""
			}
			want = len(apivalidation.ValidateObjectMetaAccessorUpdate(m, old, path)) == 0
			if got := len(validateMetaUpdate(m, old)) == 0; got != want {
				t.Errorf("update, %s (namespaced %v): valid %v, upstream says %v", name, namespaced, got, want)
			}
		}
	}
	if errs := validateLabels(map[string]string{"a/b/c": ""}, path); len(errs) != 1 ||
		errs[0].Error() != metavalidation.ValidateLabels(map[string]string{"a/b/c": ""}, path)[0].Error() {
		t.Errorf("a bad label: %v, want upstream's error", errs)
	}
}
