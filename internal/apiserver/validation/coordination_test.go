package validation

import (
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
)

func TestLease(t *testing.T) {
	l := &coordinationv1.Lease{ObjectMeta: meta("node-1"), Spec: coordinationv1.LeaseSpec{LeaseDurationSeconds: ptr(int32(40))}}
	checkErrors(t, ValidateCreate(l))
	l.Spec.LeaseDurationSeconds = ptr(int32(0))
	l.Spec.LeaseTransitions = ptr(int32(-1))
	checkErrors(t, ValidateCreate(l), invalid("spec.leaseDurationSeconds"), invalid("spec.leaseTransitions"))
}
