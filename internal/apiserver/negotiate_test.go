package apiserver

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
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
