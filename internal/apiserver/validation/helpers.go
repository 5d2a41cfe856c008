package validation

import (
	"fmt"
	"path"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Messages shared by several kinds, worded as upstream words them.
const (
	selectorMismatchMsg = "`selector` does not match template `labels`"
	fileModeErrorMsg    = "must be a number between 0 and 0777 (octal), both inclusive"
	isNotIntegerMsg     = "must be an integer"
)

// invalidEach turns the messages of a util/validation check into errors.
func invalidEach(fldPath *field.Path, value any, msgs []string) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range msgs {
		errs = append(errs, field.Invalid(fldPath, value, msg))
	}
	return errs
}

func dns1123Label(value string, fldPath *field.Path) field.ErrorList {
	if isDNS1123Label(value) {
		return nil
	}
	return invalidEach(fldPath, value, validation.IsDNS1123Label(value))
}

func dns1123Subdomain(value string, fldPath *field.Path) field.ErrorList {
	if isDNS1123Subdomain(value) {
		return nil
	}
	return invalidEach(fldPath, value, validation.IsDNS1123Subdomain(value))
}

func portName(value string, fldPath *field.Path) field.ErrorList {
	if isPortName(value) {
		return nil
	}
	return invalidEach(fldPath, value, validation.IsValidPortName(value))
}

func nonNegative(value int64, fldPath *field.Path) field.ErrorList {
	return apivalidation.ValidateNonnegativeField(value, fldPath)
}

func nonNegativePtr[T ~int32 | ~int64](value *T, fldPath *field.Path) field.ErrorList {
	if value == nil {
		return nil
	}
	return nonNegative(int64(*value), fldPath)
}

func immutable(newVal, oldVal any, fldPath *field.Path) field.ErrorList {
	return apivalidation.ValidateImmutableField(newVal, oldVal, fldPath)
}

// oneOf reports a Required error for an empty value and NotSupported for one
// outside the list.
func oneOf[T ~string](value T, fldPath *field.Path, valid ...T) field.ErrorList {
	if value == "" {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	for _, v := range valid {
		if value == v {
			return nil
		}
	}
	return field.ErrorList{field.NotSupported(fldPath, value, valid)}
}

// optionalOneOf is oneOf for fields where empty means "not set".
func optionalOneOf[T ~string](value T, fldPath *field.Path, valid ...T) field.ErrorList {
	if value == "" {
		return nil
	}
	return oneOf(value, fldPath, valid...)
}

func labelSelector(sel *metav1.LabelSelector, fldPath *field.Path) field.ErrorList {
	return metavalidation.ValidateLabelSelector(sel, metavalidation.LabelSelectorValidationOptions{}, fldPath)
}

// selectorMatchesTemplate reports the well-known selector/template mismatch
// at <templatePath>.metadata.labels. A nil selector selects nothing, so it
// never matches (upstream reports both that and the missing selector).
func selectorMatchesTemplate(sel *metav1.LabelSelector, templateLabels map[string]string, templatePath *field.Path) field.ErrorList {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		// The selector's own errors are reported where it is validated.
		return nil
	}
	if s.Empty() && sel != nil {
		return nil
	}
	if !s.Matches(labels.Set(templateLabels)) {
		return field.ErrorList{field.Invalid(templatePath.Child("metadata", "labels"), templateLabels, selectorMismatchMsg)}
	}
	return nil
}

func emptySelector(sel *metav1.LabelSelector) bool {
	return sel != nil && len(sel.MatchLabels)+len(sel.MatchExpressions) == 0
}

// intOrPercent validates fields such as maxUnavailable: a non-negative
// integer or a percentage string.
func intOrPercent(v intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	switch v.Type {
	case intstr.String:
		return invalidEach(fldPath, v, validation.IsValidPercent(v.StrVal))
	case intstr.Int:
		return nonNegative(int64(v.IntValue()), fldPath)
	default:
		return field.ErrorList{field.Invalid(fldPath, v, "must be an integer or percentage (e.g '5%')")}
	}
}

// intOrPercentValue returns the number in an int or percent value (0 when
// it does not parse; the parse error is reported elsewhere).
func intOrPercentValue(v *intstr.IntOrString) int {
	if v == nil {
		return 0
	}
	if v.Type == intstr.Int {
		return v.IntValue()
	}
	var n int
	if _, err := fmt.Sscanf(v.StrVal, "%d%%", &n); err != nil {
		return 0
	}
	return n
}

func notMoreThan100Percent(v *intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	if v == nil || v.Type != intstr.String || len(validation.IsValidPercent(v.StrVal)) > 0 {
		return nil
	}
	if intOrPercentValue(v) > 100 {
		return field.ErrorList{field.Invalid(fldPath, *v, "must not be greater than 100%")}
	}
	return nil
}

// portNumOrName validates a port that may be given by number or by name.
func portNumOrName(port intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	switch port.Type {
	case intstr.Int:
		return invalidEach(fldPath, port.IntValue(), validation.IsValidPortNum(port.IntValue()))
	case intstr.String:
		return portName(port.StrVal, fldPath)
	default:
		return field.ErrorList{field.InternalError(fldPath, fmt.Errorf("unknown type: %v", port.Type))}
	}
}

// localDescendingPath checks a path that must stay inside a volume.
func localDescendingPath(p string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if path.IsAbs(p) {
		errs = append(errs, field.Invalid(fldPath, p, "must be a relative path"))
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			errs = append(errs, field.Invalid(fldPath, p, "must not contain '..'"))
			break
		}
	}
	return errs
}

func fileMode(mode *int32, fldPath *field.Path) field.ErrorList {
	if mode != nil && (*mode > 0o777 || *mode < 0) {
		return field.ErrorList{field.Invalid(fldPath, *mode, fileModeErrorMsg)}
	}
	return nil
}

// sortedNames returns a resource list's names in order, so that errors come
// out the same way every time.
func sortedNames(l corev1.ResourceList) []corev1.ResourceName {
	names := make([]corev1.ResourceName, 0, len(l))
	for n := range l {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return names[i] < names[j] })
	return names
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func nonNegativeQuantity(q resource.Quantity, fldPath *field.Path) field.ErrorList {
	if q.Sign() < 0 {
		return field.ErrorList{field.Invalid(fldPath, q.String(), apivalidation.IsNegativeErrorMsg)}
	}
	return nil
}

type intOrStr = intstr.IntOrString

func apiequalityDeep(a, b any) bool { return apiequality.Semantic.DeepEqual(a, b) }
