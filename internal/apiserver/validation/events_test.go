package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestEventsV1(t *testing.T) {
	e := &eventsv1.Event{ObjectMeta: meta("web.1"), EventTime: metav1.NowMicro(), Type: "Normal",
		ReportingController: "lotse.io/scheduler", ReportingInstance: "node-1", Action: "Binding", Reason: "Scheduled",
		Regarding: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web"}}
	checkErrors(t, ValidateCreate(e))
	bad := e.DeepCopy()
	bad.Type = "Info"
	bad.DeprecatedCount = 3
	checkErrors(t, ValidateCreate(bad), invalid("type"), invalid("deprecatedCount"))
	changed := e.DeepCopy()
	changed.Note = "changed"
	checkErrors(t, ValidateUpdate(changed, e), invalid("note"))
}
