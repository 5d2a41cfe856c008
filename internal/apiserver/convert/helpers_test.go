package convert

import (
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type autoscalingv1HPA = autoscalingv1.HorizontalPodAutoscaler

// v1HPA builds an autoscaling/v1 HPA for "web" with min 2 and max 5.
func v1HPA(target, current *int32, ann map[string]string) autoscalingv1HPA {
	min := int32(2)
	return autoscalingv1HPA{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Annotations: ann},
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
			ScaleTargetRef:                 autoscalingv1.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:                    &min,
			MaxReplicas:                    5,
			TargetCPUUtilizationPercentage: target,
		},
		Status: autoscalingv1.HorizontalPodAutoscalerStatus{CurrentCPUUtilizationPercentage: current},
	}
}
