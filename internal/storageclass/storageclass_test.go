package storageclass

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestOfClaimAndVolume(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		field       *string
		want        string
	}{
		{"none", nil, nil, ""},
		{"field", nil, ptr.To("fast"), "fast"},
		{"explicitly none", nil, ptr.To(""), ""},
		{"beta annotation wins", map[string]string{BetaAnnotation: "old"}, ptr.To("fast"), "old"},
	}
	for _, tt := range tests {
		c := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Annotations: tt.annotations}, Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: tt.field}}
		if got := OfClaim(c); got != tt.want {
			t.Errorf("%s: OfClaim = %q, want %q", tt.name, got, tt.want)
		}
		pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Annotations: tt.annotations}, Spec: corev1.PersistentVolumeSpec{StorageClassName: ptr.Deref(tt.field, "")}}
		if got := OfVolume(pv); got != tt.want {
			t.Errorf("%s: OfVolume = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestNewestDefault(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	class := func(name string, age time.Duration, isDefault bool) *storagev1.StorageClass {
		sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(t0.Add(-age))}}
		if isDefault {
			sc.Annotations = map[string]string{DefaultAnnotation: "true"}
		}
		return sc
	}
	tests := []struct {
		name    string
		classes []*storagev1.StorageClass
		want    string
	}{
		{"no classes", nil, ""},
		{"no default", []*storagev1.StorageClass{class("a", time.Hour, false)}, ""},
		{"the newest default", []*storagev1.StorageClass{class("old", 2*time.Hour, true), class("plain", 0, false), class("new", time.Hour, true)}, "new"},
		{"a tie goes to the lower name", []*storagev1.StorageClass{class("b", time.Hour, true), class("a", time.Hour, true)}, "a"},
	}
	for _, tt := range tests {
		if got := NewestDefault(tt.classes, DefaultAnnotation); got != tt.want {
			t.Errorf("%s: NewestDefault = %q, want %q", tt.name, got, tt.want)
		}
	}
}
