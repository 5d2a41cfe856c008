package agent

import (
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestRemoveLocalPath checks that only this node's local-path directories
// of deleted Delete-policy volumes are removed.
func TestRemoveLocalPath(t *testing.T) {
	a := newTestAgent(t)
	outside := filepath.Join(t.TempDir(), "pvc-elsewhere")
	tests := []struct {
		name        string
		path        string
		policy      corev1.PersistentVolumeReclaimPolicy
		wantRemoved bool
	}{
		{"ours", filepath.Join(a.localPathDir(), "pvc-1_ns_data"), corev1.PersistentVolumeReclaimDelete, true},
		{"retained", filepath.Join(a.localPathDir(), "pvc-2_ns_data"), corev1.PersistentVolumeReclaimRetain, false},
		{"outside the directory", outside, corev1.PersistentVolumeReclaimDelete, false},
		{"not a volume directory", filepath.Join(a.localPathDir(), "keep"), corev1.PersistentVolumeReclaimDelete, false},
		{"escaping by ..", filepath.Join(a.localPathDir(), "pvc-3", "..", "..", "pvc-x"), corev1.PersistentVolumeReclaimDelete, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.MkdirAll(filepath.Join(filepath.Clean(tt.path), "data"), 0o755); err != nil {
				t.Fatal(err)
			}
			a.removeLocalPath(&corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv"}, Spec: corev1.PersistentVolumeSpec{
				PersistentVolumeReclaimPolicy: tt.policy,
				PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: tt.path}},
			}})
			_, err := os.Stat(filepath.Clean(tt.path))
			if removed := os.IsNotExist(err); removed != tt.wantRemoved {
				t.Fatalf("removed = %v, want %v", removed, tt.wantRemoved)
			}
		})
	}
}
