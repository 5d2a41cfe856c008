package defaults

import (
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestZeroAndNilObjects applies the defaults to an empty object and to a
// typed nil of every served kind (the validation package runs random
// objects through both packages). Applying twice must change nothing.
func TestZeroAndNilObjects(t *testing.T) {
	objs := []runtime.Object{
		&corev1.Namespace{}, &corev1.Pod{}, &corev1.Service{}, &corev1.Endpoints{}, &corev1.ConfigMap{},
		&corev1.Secret{}, &corev1.Node{}, &corev1.Event{}, &corev1.ServiceAccount{}, &corev1.LimitRange{},
		&corev1.ResourceQuota{}, &corev1.PersistentVolume{}, &corev1.PersistentVolumeClaim{}, &corev1.PodTemplate{},
		&appsv1.Deployment{}, &appsv1.ReplicaSet{}, &appsv1.DaemonSet{}, &appsv1.StatefulSet{}, &appsv1.ControllerRevision{},
		&batchv1.Job{}, &batchv1.CronJob{},
		&autoscalingv2.HorizontalPodAutoscaler{}, &autoscalingv1.HorizontalPodAutoscaler{},
		&networkingv1.Ingress{}, &networkingv1.IngressClass{}, &networkingv1.NetworkPolicy{},
		&discoveryv1.EndpointSlice{}, &coordinationv1.Lease{}, &policyv1.PodDisruptionBudget{},
		&rbacv1.Role{}, &rbacv1.RoleBinding{}, &rbacv1.ClusterRole{}, &rbacv1.ClusterRoleBinding{},
		&eventsv1.Event{}, &schedulingv1.PriorityClass{}, &storagev1.StorageClass{},
	}
	for _, obj := range objs {
		Apply(reflect.Zero(reflect.TypeOf(obj)).Interface().(runtime.Object))
		Apply(obj)
		once := obj.DeepCopyObject()
		Apply(obj)
		if !reflect.DeepEqual(once, obj) {
			t.Errorf("%T: second Apply changed the object", obj)
		}
	}
	Apply(nil)
	Apply(&metav1.Status{})
}
