package validation

import (
	"testing"

	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestPodDisruptionBudget(t *testing.T) {
	one, half, tooMuch := intstr.FromInt32(1), intstr.FromString("50%"), intstr.FromString("101%")
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: meta("web"), Spec: policyv1.PodDisruptionBudgetSpec{
		MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
	checkErrors(t, ValidateCreate(pdb))
	both := pdb.DeepCopy()
	both.Spec.MaxUnavailable = &half
	checkErrors(t, ValidateCreate(both), invalid("spec"))
	over := pdb.DeepCopy()
	over.Spec.MinAvailable = &tooMuch
	checkErrors(t, ValidateCreate(over), invalid("spec.minAvailable"))
}
