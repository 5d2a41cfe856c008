package storageclass

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Annotations upstream gives meaning to.
const (
	// BetaAnnotation names a claim's or volume's class; it predates
	// spec.storageClassName and still wins over it.
	BetaAnnotation = "volume.beta.kubernetes.io/storage-class"
	// DefaultAnnotation "true" marks the default StorageClass.
	DefaultAnnotation = "storageclass.kubernetes.io/is-default-class"
)

// OfClaim is the class a claim asks for; nil and "" both mean none.
func OfClaim(c *corev1.PersistentVolumeClaim) string {
	if name, ok := c.Annotations[BetaAnnotation]; ok {
		return name
	}
	if c.Spec.StorageClassName != nil {
		return *c.Spec.StorageClassName
	}
	return ""
}

// OfVolume is the class of a volume, by the same rule.
func OfVolume(pv *corev1.PersistentVolume) string {
	if name, ok := pv.Annotations[BetaAnnotation]; ok {
		return name
	}
	return pv.Spec.StorageClassName
}

// NewestDefault names the newest of objs annotated with annotation "true"
// (the lower name among equally old ones), as upstream's admission picks
// a default when several claim to be; "" when none does.
func NewestDefault[T metav1.Object](objs []T, annotation string) string {
	var newest metav1.Object
	for _, o := range objs {
		if o.GetAnnotations()[annotation] != "true" {
			continue
		}
		if newest == nil {
			newest = o
			continue
		}
		at, best := o.GetCreationTimestamp(), newest.GetCreationTimestamp()
		if at.After(best.Time) || at.Equal(&best) && o.GetName() < newest.GetName() {
			newest = o
		}
	}
	if newest == nil {
		return ""
	}
	return newest.GetName()
}
