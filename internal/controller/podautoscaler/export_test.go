package podautoscaler

import (
	"context"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// ReadScaleAndMetrics reads a target's Scale and its pods' metrics the way
// the controller does, through client.
func ReadScaleAndMetrics(ctx context.Context, client kubernetes.Interface, namespace string, ref autoscalingv2.CrossVersionObjectReference, sel labels.Selector) (int32, error) {
	sc := scales{rest: client.Discovery().RESTClient(), discovery: client.Discovery()}
	path, err := sc.path(namespace, ref)
	if err != nil {
		return 0, err
	}
	scale, err := sc.get(ctx, path)
	if err != nil {
		return 0, err
	}
	_, err = restMetrics{rest: client.Discovery().RESTClient()}.PodMetrics(ctx, namespace, sel)
	return scale.Spec.Replicas, err
}
