package printers

import (
	"fmt"
	"strings"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Both served versions print the same columns; a v1 object is first seen
// as the v2 shape it converts to.
var hpaColumns = []metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Reference", Type: "string", Description: autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["scaleTargetRef"]},
	{Name: "Targets", Type: "string", Description: autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["metrics"]},
	{Name: "MinPods", Type: "string", Description: autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["minReplicas"]},
	{Name: "MaxPods", Type: "string", Description: autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["maxReplicas"]},
	{Name: "Replicas", Type: "string", Description: autoscalingv2.HorizontalPodAutoscalerStatus{}.SwaggerDoc()["currentReplicas"]},
	ageColumn,
}

var hpaV2Printer = typed(hpaColumns, hpaCells)

var hpaV1Printer = typed(hpaColumns, func(h *autoscalingv1.HorizontalPodAutoscaler, now time.Time) []interface{} {
	return hpaCells(hpaV1ToV2(h), now)
})

func hpaCells(h *autoscalingv2.HorizontalPodAutoscaler, now time.Time) []interface{} {
	minPods := "<unset>"
	if h.Spec.MinReplicas != nil {
		minPods = fmt.Sprintf("%d", *h.Spec.MinReplicas)
	}
	return []interface{}{
		h.Name,
		h.Spec.ScaleTargetRef.Kind + "/" + h.Spec.ScaleTargetRef.Name,
		hpaTargets(h.Spec.Metrics, h.Status.CurrentMetrics),
		minPods,
		int64(h.Spec.MaxReplicas),
		int64(h.Status.CurrentReplicas),
		since(h.CreationTimestamp, now),
	}
}

// hpaV1ToV2 carries over what the v1 API can say: a CPU utilisation target
// and its current value. (Other metrics, which v1 keeps in annotations, are
// not shown.)
func hpaV1ToV2(h *autoscalingv1.HorizontalPodAutoscaler) *autoscalingv2.HorizontalPodAutoscaler {
	out := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: h.ObjectMeta,
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{
				Kind: h.Spec.ScaleTargetRef.Kind, Name: h.Spec.ScaleTargetRef.Name, APIVersion: h.Spec.ScaleTargetRef.APIVersion,
			},
			MinReplicas: h.Spec.MinReplicas,
			MaxReplicas: h.Spec.MaxReplicas,
		},
		Status: autoscalingv2.HorizontalPodAutoscalerStatus{CurrentReplicas: h.Status.CurrentReplicas},
	}
	if t := h.Spec.TargetCPUUtilizationPercentage; t != nil {
		out.Spec.Metrics = []autoscalingv2.MetricSpec{{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricSource{
				Name:   corev1.ResourceCPU,
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: t},
			},
		}}
	}
	if c := h.Status.CurrentCPUUtilizationPercentage; c != nil {
		out.Status.CurrentMetrics = []autoscalingv2.MetricStatus{{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricStatus{
				Name:    corev1.ResourceCPU,
				Current: autoscalingv2.MetricValueStatus{AverageUtilization: c},
			},
		}}
	}
	return out
}

// hpaTargets renders "current/target" for the first two metrics, matching
// each spec with the status at the same index. A spec whose source is
// missing is shown as an unknown type rather than dereferenced.
func hpaTargets(specs []autoscalingv2.MetricSpec, statuses []autoscalingv2.MetricStatus) string {
	if len(specs) == 0 {
		return "<none>"
	}
	status := func(i int) *autoscalingv2.MetricStatus {
		if i < len(statuses) {
			return &statuses[i]
		}
		return nil
	}
	const unknown = "<unknown>"
	list := make([]string, 0, len(specs))
	for i, spec := range specs {
		st := status(i)
		var s string
		switch {
		case spec.Type == autoscalingv2.ExternalMetricSourceType && spec.External != nil:
			target := spec.External.Target
			current := unknown
			if target.AverageValue != nil {
				if st != nil && st.External != nil && st.External.Current.AverageValue != nil {
					current = st.External.Current.AverageValue.String()
				}
				s = fmt.Sprintf("%s/%s (avg)", current, target.AverageValue.String())
			} else {
				if st != nil && st.External != nil {
					current = st.External.Current.Value.String()
				}
				s = fmt.Sprintf("%s/%s", current, target.Value.String())
			}
		case spec.Type == autoscalingv2.PodsMetricSourceType && spec.Pods != nil:
			current := unknown
			if st != nil && st.Pods != nil {
				current = st.Pods.Current.AverageValue.String()
			}
			s = fmt.Sprintf("%s/%s", current, spec.Pods.Target.AverageValue.String())
		case spec.Type == autoscalingv2.ObjectMetricSourceType && spec.Object != nil:
			target := spec.Object.Target
			current := unknown
			if target.AverageValue != nil {
				if st != nil && st.Object != nil && st.Object.Current.AverageValue != nil {
					current = st.Object.Current.AverageValue.String()
				}
				s = fmt.Sprintf("%s/%s (avg)", current, target.AverageValue.String())
			} else {
				if st != nil && st.Object != nil {
					current = st.Object.Current.Value.String()
				}
				s = fmt.Sprintf("%s/%s", current, target.Value.String())
			}
		case spec.Type == autoscalingv2.ResourceMetricSourceType && spec.Resource != nil:
			var current *autoscalingv2.MetricValueStatus
			if st != nil && st.Resource != nil {
				current = &st.Resource.Current
			}
			s = resourceTarget(spec.Resource.Name, spec.Resource.Target, current)
		case spec.Type == autoscalingv2.ContainerResourceMetricSourceType && spec.ContainerResource != nil:
			var current *autoscalingv2.MetricValueStatus
			if st != nil && st.ContainerResource != nil {
				current = &st.ContainerResource.Current
			}
			s = resourceTarget(spec.ContainerResource.Name, spec.ContainerResource.Target, current)
		default:
			s = "<unknown type>"
		}
		list = append(list, s)
	}
	const max = 2
	if len(list) > max {
		return fmt.Sprintf("%s + %d more...", strings.Join(list[:max], ", "), len(list)-max)
	}
	return strings.Join(list, ", ")
}

// resourceTarget renders "cpu: 20%/50%" for utilisation targets and
// "memory: 100Mi/200Mi" for average-value targets.
func resourceTarget(name corev1.ResourceName, target autoscalingv2.MetricTarget, current *autoscalingv2.MetricValueStatus) string {
	cur := "<unknown>"
	if target.AverageValue != nil {
		if current != nil {
			cur = current.AverageValue.String()
		}
		return fmt.Sprintf("%s: %s/%s", name, cur, target.AverageValue.String())
	}
	if current != nil && current.AverageUtilization != nil {
		cur = fmt.Sprintf("%d%%", *current.AverageUtilization)
	}
	want := "<auto>"
	if target.AverageUtilization != nil {
		want = fmt.Sprintf("%d%%", *target.AverageUtilization)
	}
	return fmt.Sprintf("%s: %s/%s", name, cur, want)
}
