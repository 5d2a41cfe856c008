package validation

import (
	"strings"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Quick checks. apimachinery's checks of names, labels and metadata match
// regular expressions and build field paths before knowing of any error:
// a sixth of a pod create's handler went there. The functions here only
// answer "certainly valid", with plain loops over the bytes; when one says
// no, the caller runs upstream's check, which words the errors. So each
// must accept nothing upstream rejects (quick_test.go holds them to that
// over generated strings), while rejecting a valid value only costs time.

// isDNS1123Label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 bytes.
func isDNS1123Label(s string) bool {
	return len(s) <= 63 && isDNSLabelPart(s, false)
}

// isDNS1035Label: [a-z]([-a-z0-9]*[a-z0-9])?, at most 63 bytes.
func isDNS1035Label(s string) bool {
	return len(s) <= 63 && isDNSLabelPart(s, false) && s[0] >= 'a' && s[0] <= 'z'
}

// isDNS1123Subdomain: DNS-1123 labels joined by dots, at most 253 bytes
// (each label may be longer than 63, as upstream's expression allows).
func isDNS1123Subdomain(s string) bool {
	return isSubdomain(s, false)
}

func isSubdomain(s string, anyCase bool) bool {
	if len(s) > 253 {
		return false
	}
	for {
		label, rest, more := strings.Cut(s, ".")
		if !isDNSLabelPart(label, anyCase) {
			return false
		}
		if !more {
			return true
		}
		s = rest
	}
}

// isDNSLabelPart is one label without its length limit: alphanumerics and
// inner hyphens, lower case unless anyCase.
func isDNSLabelPart(s string, anyCase bool) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || anyCase && c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// isQualifiedName is a label key: an optional DNS subdomain and '/' before
// a name of at most 63 bytes, alphanumerics with '-', '_' and '.' inside.
// anyCase allows upper case in the prefix too, as annotation keys do.
func isQualifiedName(s string, anyCase bool) bool {
	if prefix, name, ok := strings.Cut(s, "/"); ok {
		if !isSubdomain(prefix, anyCase) {
			return false
		}
		s = name
	}
	return s != "" && isLabelValue(s)
}

// isLabelValue: empty, or at most 63 bytes of alphanumerics with '-', '_'
// and '.' inside.
func isLabelValue(s string) bool {
	if len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || i == len(s)-1 || c != '-' && c != '_' && c != '.') {
			return false
		}
	}
	return true
}

// isPortName: at most 15 bytes of [-a-z0-9], a letter among them, no
// hyphen at either end or twice in a row.
func isPortName(s string) bool {
	if len(s) > 15 || !isDNSLabelPart(s, false) || strings.Contains(s, "--") {
		return false
	}
	return strings.ContainsFunc(s, func(r rune) bool { return r >= 'a' && r <= 'z' })
}

func labelsValid(m map[string]string) bool {
	for k, v := range m {
		if !isQualifiedName(k, false) || !isLabelValue(v) {
			return false
		}
	}
	return true
}

// annotationsValid: keys are qualified names in any case, and keys and
// values together stay within upstream's 256 KiB.
func annotationsValid(m map[string]string) bool {
	size := 0
	for k, v := range m {
		if !isQualifiedName(k, true) {
			return false
		}
		size += len(k) + len(v)
	}
	return size <= apivalidation.TotalAnnotationSizeLimitB
}

// validateLabels is metavalidation.ValidateLabels, quick when all is well.
func validateLabels(m map[string]string, fldPath *field.Path) field.ErrorList {
	if labelsValid(m) {
		return nil
	}
	return metavalidation.ValidateLabels(m, fldPath)
}

// labelName is metavalidation.ValidateLabelName, quick when all is well.
func labelName(s string, fldPath *field.Path) field.ErrorList {
	if isQualifiedName(s, false) {
		return nil
	}
	return metavalidation.ValidateLabelName(s, fldPath)
}

// qualifiedName reports what validation.IsQualifiedName finds wrong with s.
func qualifiedName(s string, fldPath *field.Path) field.ErrorList {
	if isQualifiedName(s, false) {
		return nil
	}
	return invalidEach(fldPath, s, validation.IsQualifiedName(s))
}

// validateAnnotations is apivalidation.ValidateAnnotations, quick when all is well.
func validateAnnotations(m map[string]string, fldPath *field.Path) field.ErrorList {
	if annotationsValid(m) {
		return nil
	}
	return apivalidation.ValidateAnnotations(m, fldPath)
}

// nameRule is how a kind's names are checked: upstream's function, which
// words the errors, and a quick check of the same rule (nil: none).
type nameRule struct {
	check apivalidation.ValidateNameFunc
	quick func(string) bool
}

// valid says whether name (a generateName when prefix) certainly passes.
func (r nameRule) valid(name string, prefix bool) bool {
	if r.quick == nil {
		return len(r.check(name, prefix)) == 0
	}
	if prefix {
		// As upstream's name functions do before matching a prefix.
		if len(name) > 1 && strings.HasSuffix(name, "-") {
			name = name[:len(name)-2] + "a"
		}
	}
	return r.quick(name)
}

// metaValid says whether an object's metadata certainly passes
// apivalidation.ValidateObjectMetaAccessor: the same checks, quick ones,
// and no for anything rarer than the common case (managed fields).
func metaValid(o metav1.Object, namespaced bool, name nameRule) bool {
	if gn := o.GetGenerateName(); gn != "" && !name.valid(gn, true) {
		return false
	}
	if o.GetName() == "" || !name.valid(o.GetName(), false) {
		return false
	}
	if ns := o.GetNamespace(); namespaced && !isDNS1123Label(ns) || !namespaced && ns != "" {
		return false
	}
	return o.GetGeneration() >= 0 && commonMetaValid(o) && finalizersValid(o.GetFinalizers())
}

// commonMetaValid covers the checks creates and updates share.
func commonMetaValid(o metav1.Object) bool {
	return labelsValid(o.GetLabels()) && annotationsValid(o.GetAnnotations()) &&
		ownerReferencesValid(o.GetOwnerReferences()) && len(o.GetManagedFields()) == 0
}

func ownerReferencesValid(refs []metav1.OwnerReference) bool {
	controllers := 0
	for _, ref := range refs {
		if ref.Kind == "" || ref.Name == "" || ref.UID == "" {
			return false
		}
		// "v1" or "group/v1"; a v1 Event cannot own anything.
		group, version, grouped := strings.Cut(ref.APIVersion, "/")
		if !grouped {
			group, version = "", group
		}
		if version == "" || strings.Contains(version, "/") || group == "" && ref.Kind == "Event" && version == "v1" {
			return false
		}
		if ref.Controller != nil && *ref.Controller {
			controllers++
		}
	}
	return controllers <= 1
}

func finalizersValid(finalizers []string) bool {
	orphan, foreground := false, false
	for _, f := range finalizers {
		if !isQualifiedName(f, false) {
			return false
		}
		orphan = orphan || f == metav1.FinalizerOrphanDependents
		foreground = foreground || f == metav1.FinalizerDeleteDependents
	}
	return !(orphan && foreground)
}

// validateMeta is apivalidation.ValidateObjectMetaAccessor, quick when all is well.
func validateMeta(o metav1.Object, namespaced bool, name nameRule) field.ErrorList {
	if metaValid(o, namespaced, name) {
		return nil
	}
	return apivalidation.ValidateObjectMetaAccessor(o, namespaced, name.check, metadataPath)
}

// validateMetaUpdate is apivalidation.ValidateObjectMetaAccessorUpdate,
// quick when all is well: nothing that must not change changed.
func validateMetaUpdate(o, old metav1.Object) field.ErrorList {
	quick := old.GetDeletionTimestamp() == nil && o.GetResourceVersion() != "" &&
		o.GetGeneration() >= 0 && o.GetGeneration() >= old.GetGeneration() &&
		o.GetName() == old.GetName() && o.GetNamespace() == old.GetNamespace() && o.GetUID() == old.GetUID() &&
		sameTime(o.GetCreationTimestamp(), old.GetCreationTimestamp()) &&
		sameTimePtr(o.GetDeletionTimestamp(), old.GetDeletionTimestamp()) &&
		sameInt64Ptr(o.GetDeletionGracePeriodSeconds(), old.GetDeletionGracePeriodSeconds()) &&
		commonMetaValid(o)
	if quick {
		return nil
	}
	return apivalidation.ValidateObjectMetaAccessorUpdate(o, old, metadataPath)
}

// sameTime is equality as apimachinery's semantic DeepEqual has it for
// metav1.Time.
func sameTime(a, b metav1.Time) bool { return a.UTC() == b.UTC() }

func sameTimePtr(a, b *metav1.Time) bool {
	return a == nil && b == nil || a != nil && b != nil && sameTime(*a, *b)
}

func sameInt64Ptr(a, b *int64) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}
