package apiserver

import (
	"encoding/json"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/randfill"

	"github.com/lotse/lotse/internal/apiserver/registry"
)

func TestDecodeJSONFast(t *testing.T) {
	want := corev1.SchemeGroupVersion.WithKind("ConfigMap")
	for _, tc := range []struct {
		name, body, contentType string
		strict, ok              bool
	}{
		{"kind and version as wanted", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":"v"}}`, "application/json", true, true},
		{"no content type means JSON", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}`, "", true, true},
		{"content type with parameters", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}`, "application/json; charset=utf-8", true, true},
		{"no kind: the serializer defaults it", `{"apiVersion":"v1","metadata":{"name":"a"}}`, "application/json", true, false},
		{"another version", `{"apiVersion":"v2","kind":"ConfigMap","metadata":{"name":"a"}}`, "application/json", true, false},
		{"unknown field, strict", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"nope":1}`, "application/json", true, false},
		{"unknown field, ignored", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"nope":1}`, "application/json", false, true},
		{"duplicate field, strict", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{},"data":{}}`, "application/json", true, false},
		{"field names are case-sensitive", `{"apiVersion":"v1","Kind":"ConfigMap","metadata":{"name":"a"}}`, "application/json", false, false},
		{"malformed", `{"apiVersion":"v1","kind":"ConfigMap",`, "application/json", true, false},
		{"YAML takes the serializer", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}`, "application/yaml", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cm := &corev1.ConfigMap{}
			got := decodeJSONFast([]byte(tc.body), tc.contentType, tc.strict, cm, want)
			if got != tc.ok {
				t.Fatalf("decodeJSONFast = %v, want %v", got, tc.ok)
			}
			if got && cm.Name != "a" {
				t.Errorf("decoded name %q, want a", cm.Name)
			}
		})
	}
}

// decodeJSONFast decodes with JSON v2, the serializer with sigs.k8s.io/json.
// Whenever the fast path takes a body, the serializer's decoder must have
// taken it too and decoded the same object: random objects of every served
// kind, and the same bodies mutated (a field twice, a name's case changed,
// an unknown field, a value of the wrong type).
func TestDecodeJSONFastAgreesWithTheSerializer(t *testing.T) {
	filler := randfill.New().NilChance(.3).NumElements(0, 2).MaxDepth(12).RandSource(rand.NewSource(1)).Funcs(
		func(q *resource.Quantity, c randfill.Continue) {
			*q = *resource.NewMilliQuantity(c.Int63n(1e6), resource.DecimalSI)
		},
		func(i *intstr.IntOrString, c randfill.Continue) {
			if c.Bool() {
				*i = intstr.FromInt32(c.Int31())
			} else {
				*i = intstr.FromString(c.String(0))
			}
		},
		func(r *runtime.RawExtension, c randfill.Continue) {
			*r = runtime.RawExtension{}
			if c.Bool() {
				r.Raw = []byte(`{"apiVersion":"v1","kind":"Pod"}`)
			}
		},
		func(tm *metav1.Time, c randfill.Continue) { *tm = metav1.Unix(c.Int63n(4e9), 0) },
		func(tm *metav1.MicroTime, c randfill.Continue) {
			*tm = metav1.NewMicroTime(time.Unix(c.Int63n(4e9), c.Int63n(1e6)*1000))
		},
		func(f *metav1.FieldsV1, c randfill.Continue) { *f = metav1.FieldsV1{Raw: []byte(`{"f:metadata":{}}`)} },
	)
	mutate := []func(string) string{
		func(s string) string { return s },
		func(s string) string {
			return strings.Replace(s, `"metadata":{`, `"metadata":{"name":"dup","name":"dup",`, 1)
		},
		func(s string) string { return strings.Replace(s, `"metadata"`, `"Metadata"`, 1) },
		func(s string) string { return strings.Replace(s, `"spec":{`, `"spec":{"bogus":1,`, 1) },
		func(s string) string { return strings.Replace(s, `"name":"`, `"name":7,"x":"`, 1) },
		func(s string) string { return strings.Replace(s, `:true`, `:"true"`, 1) },
		func(s string) string { return strings.Replace(s, `:{}`, `:[]`, 1) },
		func(s string) string { return strings.Replace(s, `"kind":"`, `"kind":"X`, 1) },
	}
	var taken, marshalFailed int
	for _, k := range registry.Default().Kinds() {
		for range 100 {
			obj := k.New()
			filler.Fill(obj)
			obj.GetObjectKind().SetGroupVersionKind(k.GVK)
			data, err := json.Marshal(obj)
			if err != nil {
				marshalFailed++
				continue
			}
			for _, m := range mutate {
				body := []byte(m(string(data)))
				for _, strict := range []bool{true, false} {
					fast := k.New()
					if !decodeJSONFast(body, "application/json", strict, fast, k.GVK) {
						continue
					}
					taken++
					slow := k.New()
					var strictErrs []error
					if strict {
						strictErrs, err = kjson.UnmarshalStrict(body, slow)
					} else {
						err = kjson.UnmarshalCaseSensitivePreserveInts(body, slow)
					}
					if err != nil || len(strictErrs) > 0 {
						t.Fatalf("%s (strict %v): the fast path took a body the serializer refuses (%v %v):\n%s", k.GVK, strict, err, strictErrs, body)
					}
					if !reflect.DeepEqual(fast, slow) {
						t.Fatalf("%s (strict %v): decoded differently:\nfast: %#v\nslow: %#v\nbody: %s", k.GVK, strict, fast, slow, body)
					}
				}
			}
		}
	}
	t.Logf("%d bodies taken by the fast path; %d random objects could not be marshalled", taken, marshalFailed)
	if taken < 100*len(registry.Default().Kinds()) {
		t.Errorf("only %d bodies took the fast path", taken)
	}
}
