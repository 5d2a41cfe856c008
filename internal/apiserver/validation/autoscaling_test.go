package validation

import (
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

func validHPA() *autoscalingv2.HorizontalPodAutoscaler {
	return defaulted(&autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: meta("web"), Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
		ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
		MaxReplicas:    5,
		Behavior:       &autoscalingv2.HorizontalPodAutoscalerBehavior{},
	}})
}

func TestHPAv2(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(h *autoscalingv2.HorizontalPodAutoscaler)
		want   []want
	}{
		{"valid", func(h *autoscalingv2.HorizontalPodAutoscaler) {}, nil},
		{"max below min", func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.MinReplicas = ptr(int32(6)) }, []want{invalid("spec.maxReplicas")}},
		{"min zero", func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.MinReplicas = ptr(int32(0)) }, []want{invalid("spec.minReplicas")}},
		{"max zero", func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.MaxReplicas = 0 },
			[]want{invalid("spec.maxReplicas"), invalid("spec.maxReplicas")}},
		{"no target", func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.ScaleTargetRef = autoscalingv2.CrossVersionObjectReference{}
		},
			[]want{required("spec.scaleTargetRef.kind"), required("spec.scaleTargetRef.name")}},
		{"metric without source", func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Metrics = []autoscalingv2.MetricSpec{{Type: autoscalingv2.PodsMetricSourceType}}
		}, []want{required("spec.metrics[0].pods")}},
		{"utilization zero", func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Metrics[0].Resource.Target.AverageUtilization = ptr(int32(0))
		}, []want{invalid("spec.metrics[0].resource.target.averageUtilization")}},
		{"policy period too long", func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Behavior.ScaleUp.Policies[0].PeriodSeconds = 1801
		}, []want{invalid("spec.behavior.scaleUp.policies[0].periodSeconds")}},
		{"stabilization too long", func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Behavior.ScaleDown.StabilizationWindowSeconds = ptr(int32(3601))
		}, []want{invalid("spec.behavior.scaleDown.stabilizationWindowSeconds")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := validHPA()
			tt.mutate(h)
			checkErrors(t, ValidateCreate(h), tt.want...)
		})
	}
}

func TestHPAv1(t *testing.T) {
	h := defaulted(&autoscalingv1.HorizontalPodAutoscaler{ObjectMeta: meta("web"), Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
		ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{Kind: "Deployment", Name: "web"},
		MaxReplicas:    3,
	}})
	checkErrors(t, ValidateCreate(h))
	h.Spec.TargetCPUUtilizationPercentage = ptr(int32(0))
	h.Spec.ScaleTargetRef.Name = "a/b"
	checkErrors(t, ValidateCreate(h), invalid("spec.targetCPUUtilizationPercentage"), invalid("spec.scaleTargetRef.name"))
}

// An HPA is stored as autoscaling/v2; an update through autoscaling/v1 may
// be validated against the stored v2 object.
func TestHPAUpdateAcrossVersions(t *testing.T) {
	stored := validHPA()
	h := defaulted(&autoscalingv1.HorizontalPodAutoscaler{ObjectMeta: meta("web"), Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
		ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{Kind: "Deployment", Name: "web"},
		MaxReplicas:    3,
	}})
	checkErrors(t, ValidateUpdate(h, stored))
	h.Name = "other"
	h.Spec.MaxReplicas = 0
	checkErrors(t, ValidateUpdate(h, stored), invalid("metadata.name"), invalid("spec.maxReplicas"), invalid("spec.maxReplicas"))
}
