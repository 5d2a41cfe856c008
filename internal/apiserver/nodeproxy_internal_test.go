package apiserver

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestPodContainer(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		InitContainers:      []corev1.Container{{Name: "init"}},
		Containers:          []corev1.Container{{Name: "main"}},
		EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger"}}},
	}}
	tests := []struct{ name, want, wantErr string }{
		{"", "main", ""},
		{"init", "init", ""},
		{"debugger", "debugger", ""},
		{"nope", "", "container nope is not valid for pod"},
	}
	for _, tt := range tests {
		got, err := podContainer(pod, tt.name)
		if got != tt.want || (err == nil) != (tt.wantErr == "") {
			t.Errorf("podContainer(%q) = %q, %v; want %q, %q", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}
