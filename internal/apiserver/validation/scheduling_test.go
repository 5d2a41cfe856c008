package validation

import (
	"testing"

	schedulingv1 "k8s.io/api/scheduling/v1"
)

func TestPriorityClass(t *testing.T) {
	pc := defaulted(&schedulingv1.PriorityClass{ObjectMeta: clusterMeta("high"), Value: 1000})
	checkErrors(t, ValidateCreate(pc))
	tooHigh := pc.DeepCopy()
	tooHigh.Value = 1_000_000_001
	checkErrors(t, ValidateCreate(tooHigh), forbidden("value"))
	system := defaulted(&schedulingv1.PriorityClass{ObjectMeta: clusterMeta("system-node-critical"), Value: 2_000_001_000})
	checkErrors(t, ValidateCreate(system))
	fake := defaulted(&schedulingv1.PriorityClass{ObjectMeta: clusterMeta("system-mine"), Value: 1})
	checkErrors(t, ValidateCreate(fake), forbidden("metadata.name"))
	changed := pc.DeepCopy()
	changed.Value = 5
	checkErrors(t, ValidateUpdate(changed, pc), forbidden("value"))
}
