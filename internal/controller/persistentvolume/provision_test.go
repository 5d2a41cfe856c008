package persistentvolume

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestLocalPathVolume(t *testing.T) {
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "data-pg-0", UID: "1234", ResourceVersion: "42"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("3Gi")}},
			StorageClassName: ptr.To(ClassName),
		},
	}
	block := claim.DeepCopy()
	block.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeBlock)
	plain := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	labelled := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{hostnameLabel: "host-1"}}}
	retain := LocalPathClass()
	retain.ReclaimPolicy = ptr.To(corev1.PersistentVolumeReclaimRetain)
	tests := []struct {
		name        string
		claim       *corev1.PersistentVolumeClaim
		class       *storagev1.StorageClass
		node        *corev1.Node
		dir         string
		wantPath    string
		wantHost    string
		wantMode    corev1.PersistentVolumeMode
		wantReclaim corev1.PersistentVolumeReclaimPolicy
	}{
		{"default shape", claim, LocalPathClass(), plain, "/var/lib/lotse/storage",
			"/var/lib/lotse/storage/pvc-1234_db_data-pg-0", "n1", corev1.PersistentVolumeFilesystem, corev1.PersistentVolumeReclaimDelete},
		{"trailing slash in dir", claim, LocalPathClass(), plain, "/data/",
			"/data/pvc-1234_db_data-pg-0", "n1", corev1.PersistentVolumeFilesystem, corev1.PersistentVolumeReclaimDelete},
		{"hostname label pins", block, retain, labelled, "/d",
			"/d/pvc-1234_db_data-pg-0", "host-1", corev1.PersistentVolumeBlock, corev1.PersistentVolumeReclaimRetain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pv := localPathVolume(tt.claim, tt.class, tt.node, tt.dir)
			if pv.Name != "pvc-1234" {
				t.Errorf("name %q", pv.Name)
			}
			if hp := pv.Spec.HostPath; hp == nil || hp.Path != tt.wantPath || hp.Type == nil || *hp.Type != corev1.HostPathDirectoryOrCreate {
				t.Errorf("hostPath %+v, want %s DirectoryOrCreate", hp, tt.wantPath)
			}
			if q := pv.Spec.Capacity[corev1.ResourceStorage]; q.Cmp(resource.MustParse("3Gi")) != 0 || len(pv.Spec.Capacity) != 1 {
				t.Errorf("capacity %v", pv.Spec.Capacity)
			}
			if !equality.Semantic.DeepEqual(pv.Spec.AccessModes, tt.claim.Spec.AccessModes) {
				t.Errorf("access modes %v", pv.Spec.AccessModes)
			}
			if pv.Spec.VolumeMode == nil || *pv.Spec.VolumeMode != tt.wantMode {
				t.Errorf("volume mode %v, want %s", pv.Spec.VolumeMode, tt.wantMode)
			}
			if pv.Spec.StorageClassName != ClassName || pv.Spec.PersistentVolumeReclaimPolicy != tt.wantReclaim {
				t.Errorf("class %q reclaim %q", pv.Spec.StorageClassName, pv.Spec.PersistentVolumeReclaimPolicy)
			}
			wantRef := corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: "db", Name: "data-pg-0", UID: "1234", ResourceVersion: "42"}
			if pv.Spec.ClaimRef == nil || *pv.Spec.ClaimRef != wantRef {
				t.Errorf("claimRef %+v", pv.Spec.ClaimRef)
			}
			wantAffinity := &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: hostnameLabel, Operator: corev1.NodeSelectorOpIn, Values: []string{tt.wantHost}}},
			}}}}
			if !equality.Semantic.DeepEqual(pv.Spec.NodeAffinity, wantAffinity) {
				t.Errorf("node affinity %+v", pv.Spec.NodeAffinity)
			}
			// The agent labels its node with its name as hostname; the
			// volume must admit the node as it will be labelled.
			own := tt.node.DeepCopy()
			own.Labels = map[string]string{hostnameLabel: tt.wantHost}
			if !nodeAdmits(pv, own) {
				t.Error("the volume does not admit its own node")
			}
			if pv.Annotations[annProvisionedBy] != ProvisionerName || pv.Annotations[annBoundByController] != "yes" {
				t.Errorf("annotations %v", pv.Annotations)
			}
			if pv.Labels[LocalPathNodeLabel] != "n1" {
				t.Errorf("labels %v", pv.Labels)
			}
			// The claim it was made for takes it; another does not.
			if got, _ := findBestMatch(tt.claim, []*corev1.PersistentVolume{pv}, own, true); got != pv {
				t.Error("the claim does not match its provisioned volume")
			}
			other := tt.claim.DeepCopy()
			other.Name, other.UID = "other", "5678"
			pv.Status.Phase = corev1.VolumeAvailable
			if got, _ := findBestMatch(other, []*corev1.PersistentVolume{pv}, own, true); got != nil {
				t.Error("another claim took the provisioned volume")
			}
		})
	}
}

func TestLocalPathClass(t *testing.T) {
	sc := LocalPathClass()
	if sc.Name != "local-path" || sc.Provisioner != "lotse.io/local-path" ||
		sc.VolumeBindingMode == nil || *sc.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer ||
		sc.ReclaimPolicy == nil || *sc.ReclaimPolicy != corev1.PersistentVolumeReclaimDelete ||
		sc.Annotations["storageclass.kubernetes.io/is-default-class"] != "true" {
		t.Errorf("class %+v", sc)
	}
}
