package apiserver_test

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestDefaultStorageClass checks upstream's DefaultStorageClass admission:
// a new claim without storageClassName gets the newest default class; ""
// (no class), a named class and the beta annotation are kept.
func TestDefaultStorageClass(t *testing.T) {
	e := start(t)
	c := e.s.Client
	ns := e.namespace("pvc")
	class := func(name string, isDefault bool) {
		t.Helper()
		sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: "example.com/" + name}
		if isDefault {
			sc.Annotations = map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}
		}
		_, err := c.StorageV1().StorageClasses().Create(e.ctx, sc, metav1.CreateOptions{})
		must(t, err)
		time.Sleep(1100 * time.Millisecond) // creation timestamps have whole seconds
	}
	claim := func(name string, className *string, annotations map[string]string) *string {
		t.Helper()
		got, err := c.CoreV1().PersistentVolumeClaims(ns).Create(e.ctx, &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
			Spec: corev1.PersistentVolumeClaimSpec{
				StorageClassName: className, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		}, metav1.CreateOptions{})
		must(t, err)
		return got.Spec.StorageClassName
	}
	if got := claim("before", nil, nil); got != nil {
		t.Errorf("with no default class, storageClassName = %q", *got)
	}
	class("plain", false)
	class("old-default", true)
	class("new-default", true)
	tests := []struct {
		name        string
		className   *string
		annotations map[string]string
		want        *string
	}{
		{"unnamed", nil, nil, ptr.To("new-default")},
		{"named", ptr.To("plain"), nil, ptr.To("plain")},
		{"explicitly-none", ptr.To(""), nil, ptr.To("")},
		{"beta-annotation", nil, map[string]string{"volume.beta.kubernetes.io/storage-class": "plain"}, nil},
	}
	for _, tt := range tests {
		got := claim(tt.name, tt.className, tt.annotations)
		if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
			t.Errorf("%s: storageClassName = %v, want %v", tt.name, ptr.Deref(got, "<nil>"), ptr.Deref(tt.want, "<nil>"))
		}
	}
}
