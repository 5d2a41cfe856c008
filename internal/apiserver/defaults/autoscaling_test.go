package defaults

import (
	"reflect"
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

func TestHPADefaults(t *testing.T) {
	h := &autoscalingv2.HorizontalPodAutoscaler{}
	Apply(h)
	if *h.Spec.MinReplicas != 1 || h.Spec.Behavior != nil || len(h.Spec.Metrics) != 1 ||
		*h.Spec.Metrics[0].Resource.Target.AverageUtilization != 80 || h.Spec.Metrics[0].Resource.Name != "cpu" {
		t.Errorf("got %+v", h.Spec)
	}

	withBehavior := &autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
		Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptrTo(int32(60))}},
	}}
	Apply(withBehavior)
	b := withBehavior.Spec.Behavior
	if !reflect.DeepEqual(b.ScaleUp, defaultScaleUp()) {
		t.Errorf("scaleUp %+v", b.ScaleUp)
	}
	if *b.ScaleDown.StabilizationWindowSeconds != 60 || *b.ScaleDown.SelectPolicy != autoscalingv2.MaxChangePolicySelect ||
		!reflect.DeepEqual(b.ScaleDown.Policies, []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}}) {
		t.Errorf("scaleDown %+v", b.ScaleDown)
	}

	v1 := &autoscalingv1.HorizontalPodAutoscaler{}
	Apply(v1)
	if *v1.Spec.MinReplicas != 1 || v1.Spec.TargetCPUUtilizationPercentage != nil {
		t.Errorf("v1 %+v", v1.Spec)
	}
}
