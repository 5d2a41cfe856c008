package validation

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/lotse/lotse/internal/apiserver/defaults"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// want is one expected error: its type and field path.
type want struct {
	typ  field.ErrorType
	path string
}

func (w want) String() string { return fmt.Sprintf("%s %s", w.typ, w.path) }

// checkErrors fails unless errs holds exactly the wanted errors, in any order.
func checkErrors(t *testing.T, errs field.ErrorList, wants ...want) {
	t.Helper()
	var got, exp []string
	for _, e := range errs {
		got = append(got, want{e.Type, e.Field}.String())
	}
	for _, w := range wants {
		exp = append(exp, w.String())
	}
	sort.Strings(got)
	sort.Strings(exp)
	if strings.Join(got, "\n") != strings.Join(exp, "\n") {
		t.Errorf("errors:\n  got  %q\n  want %q\nfull: %v", got, exp, errs.ToAggregate())
	}
}

func invalid(path string) want   { return want{field.ErrorTypeInvalid, path} }
func required(path string) want  { return want{field.ErrorTypeRequired, path} }
func forbidden(path string) want { return want{field.ErrorTypeForbidden, path} }
func notSupported(path string) want {
	return want{field.ErrorTypeNotSupported, path}
}
func duplicate(path string) want { return want{field.ErrorTypeDuplicate, path} }
func notFound(path string) want  { return want{field.ErrorTypeNotFound, path} }

// defaulted applies the defaults, as the handlers do before validating.
func defaulted[T runtime.Object](obj T) T {
	defaults.Apply(obj)
	return obj
}

func meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default", UID: "uid-1", ResourceVersion: "1"}
}

func clusterMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, UID: "uid-1", ResourceVersion: "1"}
}

func podSpec() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}}}
}

func podTemplate(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec()}
}

func q(s string) resource.Quantity { return resource.MustParse(s) }

func ptr[T any](v T) *T { return &v }

// errorText is how kubectl shows an error, for tests on the exact wording.
func errorText(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

func containsText(t *testing.T, errs field.ErrorList, text string) {
	t.Helper()
	for _, s := range errorText(errs) {
		if strings.Contains(s, text) {
			return
		}
	}
	t.Errorf("no error contains %q; got %q", text, errorText(errs))
}
