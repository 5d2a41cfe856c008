package printers

import (
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var leasePrinter = typed([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Holder", Type: "string", Description: coordinationv1.LeaseSpec{}.SwaggerDoc()["holderIdentity"]},
	ageColumn,
}, func(l *coordinationv1.Lease, now time.Time) []interface{} {
	return []interface{}{l.Name, deref(l.Spec.HolderIdentity, ""), since(l.CreationTimestamp, now)}
})
