package printers

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Either annotation set to "true" marks the cluster's default class.
const (
	defaultClassAnnotation     = "storageclass.kubernetes.io/is-default-class"
	betaDefaultClassAnnotation = "storageclass.beta.kubernetes.io/is-default-class"
)

var storageClassPrinter = typed([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Provisioner", Type: "string", Description: storagev1.StorageClass{}.SwaggerDoc()["provisioner"]},
	{Name: "ReclaimPolicy", Type: "string", Description: storagev1.StorageClass{}.SwaggerDoc()["reclaimPolicy"]},
	{Name: "VolumeBindingMode", Type: "string", Description: storagev1.StorageClass{}.SwaggerDoc()["volumeBindingMode"]},
	{Name: "AllowVolumeExpansion", Type: "string", Description: storagev1.StorageClass{}.SwaggerDoc()["allowVolumeExpansion"]},
	ageColumn,
}, func(sc *storagev1.StorageClass, now time.Time) []interface{} {
	name := sc.Name
	if sc.Annotations[defaultClassAnnotation] == "true" || sc.Annotations[betaDefaultClassAnnotation] == "true" {
		name += " (default)"
	}
	// Unset policies print as the values the API defaults them to.
	reclaim := deref(sc.ReclaimPolicy, corev1.PersistentVolumeReclaimDelete)
	binding := deref(sc.VolumeBindingMode, storagev1.VolumeBindingImmediate)
	return []interface{}{
		name,
		sc.Provisioner,
		string(reclaim),
		string(binding),
		deref(sc.AllowVolumeExpansion, false),
		since(sc.CreationTimestamp, now),
	}
})
