package persistentvolume

import (
	"path"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lotse/lotse/internal/storageclass"
)

// LocalPathClass is the StorageClass the controller creates when it is
// missing: the cluster's default class, binding once a pod is scheduled
// so that the volume lands on that pod's node, deleted with its claim.
func LocalPathClass() *storagev1.StorageClass {
	wffc := storagev1.VolumeBindingWaitForFirstConsumer
	del := corev1.PersistentVolumeReclaimDelete
	return &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        ClassName,
			Annotations: map[string]string{storageclass.DefaultAnnotation: "true"},
		},
		Provisioner:       ProvisionerName,
		VolumeBindingMode: &wffc,
		ReclaimPolicy:     &del,
	}
}

// VolumeName is the name of the PV provisioned for a claim, upstream's
// "pvc-<claim UID>": unique, and the same on every attempt, so a retry
// after a lost answer finds the volume instead of making a second one.
func VolumeName(claimUID types.UID) string { return "pvc-" + string(claimUID) }

// LocalPath is the directory of a claim's volume under the node's
// local-path directory; namespace and name make it recognisable on disk.
func LocalPath(dir string, c *corev1.PersistentVolumeClaim) string {
	return path.Join(dir, VolumeName(c.UID)+"_"+c.Namespace+"_"+c.Name)
}

// localPathVolume is the PV provisioned for claim on node, whose
// local-path directory is dir. It is created reserved for the claim
// (claimRef with UID), so no other claim can take it, and pinned to the
// node, because the data lives on that node's disk. The pin uses the
// node's kubernetes.io/hostname label, which is what node affinity
// matches, and the node's name when the label is missing.
func localPathVolume(c *corev1.PersistentVolumeClaim, class *storagev1.StorageClass, node *corev1.Node, dir string) *corev1.PersistentVolume {
	hostname := node.Labels[hostnameLabel]
	if hostname == "" {
		hostname = node.Name
	}
	hostPathType := corev1.HostPathDirectoryOrCreate
	reclaim := corev1.PersistentVolumeReclaimDelete
	if class.ReclaimPolicy != nil {
		reclaim = *class.ReclaimPolicy
	}
	mode := volumeMode(c.Spec.VolumeMode)
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name: VolumeName(c.UID),
			Annotations: map[string]string{
				annProvisionedBy:     ProvisionerName,
				annBoundByController: "yes",
			},
			Labels: map[string]string{LocalPathNodeLabel: node.Name},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity: corev1.ResourceList{corev1.ResourceStorage: c.Spec.Resources.Requests[corev1.ResourceStorage]},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: LocalPath(dir, c), Type: &hostPathType},
			},
			AccessModes:                   append([]corev1.PersistentVolumeAccessMode(nil), c.Spec.AccessModes...),
			ClaimRef:                      claimRef(c),
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              class.Name,
			MountOptions:                  append([]string(nil), class.MountOptions...),
			VolumeMode:                    &mode,
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: hostnameLabel, Operator: corev1.NodeSelectorOpIn, Values: []string{hostname},
				}}}},
			}},
		},
	}
}

// claimRef is the reference a bound volume holds to its claim, with the
// fields upstream's reference helper fills.
func claimRef(c *corev1.PersistentVolumeClaim) *corev1.ObjectReference {
	return &corev1.ObjectReference{
		Kind: "PersistentVolumeClaim", APIVersion: "v1",
		Namespace: c.Namespace, Name: c.Name, UID: c.UID, ResourceVersion: c.ResourceVersion,
	}
}
