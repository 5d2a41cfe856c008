package printers

import (
	"time"

	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var podDisruptionBudgetPrinter = typed([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Min Available", Type: "string", Description: "The minimum number of pods that must be available."},
	{Name: "Max Unavailable", Type: "string", Description: "The maximum number of pods that may be unavailable."},
	{Name: "Allowed Disruptions", Type: "integer", Description: "Calculated number of pods that may be disrupted at this time."},
	ageColumn,
}, func(pdb *policyv1.PodDisruptionBudget, now time.Time) []interface{} {
	return []interface{}{
		pdb.Name,
		intOrStringOrNA(pdb.Spec.MinAvailable),
		intOrStringOrNA(pdb.Spec.MaxUnavailable),
		int64(pdb.Status.DisruptionsAllowed),
		since(pdb.CreationTimestamp, now),
	}
})

func intOrStringOrNA(v *intstr.IntOrString) string {
	if v == nil {
		return "N/A"
	}
	return v.String()
}
