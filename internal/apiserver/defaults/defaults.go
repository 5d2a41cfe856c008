package defaults

import (
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Apply fills in the defaults upstream sets on objects of this type (in place).
// Unknown types are left alone.
func Apply(obj runtime.Object) {
	// A typed nil pointer is as "unknown" as an untyped one.
	if obj == nil {
		return
	}
	if v := reflect.ValueOf(obj); v.Kind() == reflect.Pointer && v.IsNil() {
		return
	}
	switch o := obj.(type) {
	// core/v1
	case *corev1.Namespace:
		namespace(o)
	case *corev1.Pod:
		pod(o)
	case *corev1.PodTemplate:
		podTemplateSpec(&o.Template)
	case *corev1.Service:
		service(o)
	case *corev1.Endpoints:
		endpoints(o)
	case *corev1.Secret:
		secret(o)
	case *corev1.Node:
		node(o)
	case *corev1.LimitRange:
		limitRange(o)
	case *corev1.PersistentVolume:
		persistentVolume(o)
	case *corev1.PersistentVolumeClaim:
		persistentVolumeClaim(o)

	// apps/v1
	case *appsv1.Deployment:
		deployment(o)
	case *appsv1.ReplicaSet:
		replicaSet(o)
	case *appsv1.DaemonSet:
		daemonSet(o)
	case *appsv1.StatefulSet:
		statefulSet(o)

	// batch/v1
	case *batchv1.Job:
		job(o)
	case *batchv1.CronJob:
		cronJob(o)

	// autoscaling
	case *autoscalingv2.HorizontalPodAutoscaler:
		hpaV2(o)
	case *autoscalingv1.HorizontalPodAutoscaler:
		hpaV1(o)

	// networking.k8s.io/v1
	case *networkingv1.NetworkPolicy:
		networkPolicy(o)

	case *discoveryv1.EndpointSlice:
		endpointSlice(o)
	case *rbacv1.RoleBinding:
		roleRef(&o.RoleRef)
		subjects(o.Subjects)
	case *rbacv1.ClusterRoleBinding:
		roleRef(&o.RoleRef)
		subjects(o.Subjects)
	case *schedulingv1.PriorityClass:
		priorityClass(o)
	case *storagev1.StorageClass:
		storageClass(o)
	}
}
