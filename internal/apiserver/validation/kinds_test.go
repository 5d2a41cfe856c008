package validation

import (
	"reflect"
	"strings"

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
	"k8s.io/apimachinery/pkg/runtime"
)

// allKinds makes a zero object of every served kind.
var allKinds = []func() runtime.Object{
	func() runtime.Object { return &corev1.Namespace{} },
	func() runtime.Object { return &corev1.Pod{} },
	func() runtime.Object { return &corev1.Service{} },
	func() runtime.Object { return &corev1.Endpoints{} },
	func() runtime.Object { return &corev1.ConfigMap{} },
	func() runtime.Object { return &corev1.Secret{} },
	func() runtime.Object { return &corev1.Node{} },
	func() runtime.Object { return &corev1.Event{} },
	func() runtime.Object { return &corev1.ServiceAccount{} },
	func() runtime.Object { return &corev1.LimitRange{} },
	func() runtime.Object { return &corev1.ResourceQuota{} },
	func() runtime.Object { return &corev1.PersistentVolume{} },
	func() runtime.Object { return &corev1.PersistentVolumeClaim{} },
	func() runtime.Object { return &corev1.PodTemplate{} },
	func() runtime.Object { return &appsv1.Deployment{} },
	func() runtime.Object { return &appsv1.ReplicaSet{} },
	func() runtime.Object { return &appsv1.DaemonSet{} },
	func() runtime.Object { return &appsv1.StatefulSet{} },
	func() runtime.Object { return &appsv1.ControllerRevision{} },
	func() runtime.Object { return &batchv1.Job{} },
	func() runtime.Object { return &batchv1.CronJob{} },
	func() runtime.Object { return &autoscalingv2.HorizontalPodAutoscaler{} },
	func() runtime.Object { return &autoscalingv1.HorizontalPodAutoscaler{} },
	func() runtime.Object { return &networkingv1.Ingress{} },
	func() runtime.Object { return &networkingv1.IngressClass{} },
	func() runtime.Object { return &networkingv1.NetworkPolicy{} },
	func() runtime.Object { return &discoveryv1.EndpointSlice{} },
	func() runtime.Object { return &coordinationv1.Lease{} },
	func() runtime.Object { return &policyv1.PodDisruptionBudget{} },
	func() runtime.Object { return &rbacv1.Role{} },
	func() runtime.Object { return &rbacv1.RoleBinding{} },
	func() runtime.Object { return &rbacv1.ClusterRole{} },
	func() runtime.Object { return &rbacv1.ClusterRoleBinding{} },
	func() runtime.Object { return &eventsv1.Event{} },
	func() runtime.Object { return &schedulingv1.PriorityClass{} },
	func() runtime.Object { return &storagev1.StorageClass{} },
}

func typeOfValue(obj runtime.Object) reflect.Type { return reflect.TypeOf(obj) }

func typeName(obj runtime.Object) string {
	t := reflect.TypeOf(obj).Elem()
	return strings.TrimPrefix(t.PkgPath(), "k8s.io/api/") + "." + t.Name()
}

// nilPointer returns a typed nil of obj's type.
func nilPointer(obj runtime.Object) runtime.Object {
	return reflect.Zero(reflect.TypeOf(obj)).Interface().(runtime.Object)
}
