package defaults

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
)

func TestPriorityClassDefaults(t *testing.T) {
	pc := &schedulingv1.PriorityClass{}
	Apply(pc)
	if *pc.PreemptionPolicy != corev1.PreemptLowerPriority {
		t.Errorf("preemptionPolicy %v", *pc.PreemptionPolicy)
	}
}
