package validation

import (
	"fmt"
	"reflect"

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
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidateCreate returns the problems with a new object (nil when valid).
// Unknown types are accepted as they are.
func ValidateCreate(obj runtime.Object) field.ErrorList {
	if isNil(obj) {
		return nil
	}
	k, ok := kinds[reflect.TypeOf(obj)]
	if !ok {
		return nil
	}
	return nilIfEmpty(k.create(obj))
}

// ValidateUpdate returns the problems with replacing old by obj (immutable fields etc.).
func ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	if isNil(obj) {
		return nil
	}
	k, ok := kinds[reflect.TypeOf(obj)]
	if !ok {
		return nil
	}
	if isNil(old) {
		return field.ErrorList{field.InternalError(nil, fmt.Errorf("cannot validate an update of %T without the stored object", obj))}
	}
	if _, ok := old.(metav1.Object); !ok {
		return field.ErrorList{field.InternalError(nil, fmt.Errorf("cannot validate an update of %T from %T", obj, old))}
	}
	return nilIfEmpty(k.update(obj, old))
}

func isNil(obj runtime.Object) bool {
	if obj == nil {
		return true
	}
	v := reflect.ValueOf(obj)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

func nilIfEmpty(l field.ErrorList) field.ErrorList {
	if len(l) == 0 {
		return nil
	}
	return l
}

// object is what every served type is: a runtime.Object with ObjectMeta.
type object interface {
	runtime.Object
	metav1.Object
}

// validator is the type-erased form of rules, so one map holds every kind.
type validator interface {
	create(obj runtime.Object) field.ErrorList
	update(obj, old runtime.Object) field.ErrorList
}

// rules says how one kind is validated. Metadata is checked here; spec is
// checked by validate on both create and update (as upstream does), and
// update adds the checks that compare with the stored object.
type rules[T object] struct {
	namespaced bool
	name       nameRule
	validate   func(T) field.ErrorList
	immutable  func(obj, old T) field.ErrorList // optional
	createOnly func(T) field.ErrorList          // optional: what only a new object must obey
}

var metadataPath = field.NewPath("metadata")

func (r rules[T]) create(obj runtime.Object) field.ErrorList {
	o := obj.(T)
	errs := validateMeta(o, r.namespaced, r.name)
	if r.validate != nil {
		errs = append(errs, r.validate(o)...)
	}
	if r.createOnly != nil {
		errs = append(errs, r.createOnly(o)...)
	}
	return errs
}

// update compares with old field by field when old is of the same type. A
// stored object of another version (autoscaling/v2 behind a v1 request)
// still has its metadata compared; the field checks are then left to the
// caller, which should convert old first.
func (r rules[T]) update(obj, old runtime.Object) field.ErrorList {
	o := obj.(T)
	errs := validateMetaUpdate(o, old.(metav1.Object))
	if r.validate != nil {
		errs = append(errs, r.validate(o)...)
	}
	if p, ok := old.(T); ok && r.immutable != nil {
		errs = append(errs, r.immutable(o, p)...)
	}
	return errs
}

// Name rules per kind, as upstream's registry strategies choose them.
var (
	dnsSubdomain   = nameRule{apivalidation.NameIsDNSSubdomain, isDNS1123Subdomain}
	dnsLabel       = nameRule{apivalidation.NameIsDNSLabel, isDNS1123Label}
	dns1035Label   = nameRule{apivalidation.NameIsDNS1035Label, isDNS1035Label}
	pathSegment    = nameRule{path.ValidatePathSegmentName, nil}
	serviceAccount = nameRule{apivalidation.ValidateServiceAccountName, isDNS1123Subdomain}
)

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

var kinds = map[reflect.Type]validator{
	// core/v1
	typeOf[*corev1.Namespace]():             rules[*corev1.Namespace]{name: dnsLabel, validate: validateNamespace, immutable: validateNamespaceUpdate},
	typeOf[*corev1.Pod]():                   rules[*corev1.Pod]{namespaced: true, name: dnsSubdomain, validate: validatePod, immutable: validatePodUpdate, createOnly: validatePodCreate},
	typeOf[*corev1.Service]():               rules[*corev1.Service]{namespaced: true, name: dns1035Label, validate: validateService, immutable: validateServiceUpdate},
	typeOf[*corev1.Endpoints]():             rules[*corev1.Endpoints]{namespaced: true, name: dnsSubdomain, validate: validateEndpoints},
	typeOf[*corev1.ConfigMap]():             rules[*corev1.ConfigMap]{namespaced: true, name: dnsSubdomain, validate: validateConfigMap, immutable: validateConfigMapUpdate},
	typeOf[*corev1.Secret]():                rules[*corev1.Secret]{namespaced: true, name: dnsSubdomain, validate: validateSecret, immutable: validateSecretUpdate},
	typeOf[*corev1.Node]():                  rules[*corev1.Node]{name: dnsSubdomain, validate: validateNode, immutable: validateNodeUpdate},
	typeOf[*corev1.Event]():                 rules[*corev1.Event]{namespaced: true, name: dnsSubdomain, validate: validateCoreEvent, immutable: validateCoreEventUpdate},
	typeOf[*corev1.ServiceAccount]():        rules[*corev1.ServiceAccount]{namespaced: true, name: serviceAccount, validate: validateServiceAccount},
	typeOf[*corev1.LimitRange]():            rules[*corev1.LimitRange]{namespaced: true, name: dnsSubdomain, validate: validateLimitRange},
	typeOf[*corev1.ResourceQuota]():         rules[*corev1.ResourceQuota]{namespaced: true, name: dnsSubdomain, validate: validateResourceQuota},
	typeOf[*corev1.PersistentVolume]():      rules[*corev1.PersistentVolume]{name: dnsSubdomain, validate: validatePersistentVolume, immutable: validatePersistentVolumeUpdate},
	typeOf[*corev1.PersistentVolumeClaim](): rules[*corev1.PersistentVolumeClaim]{namespaced: true, name: dnsSubdomain, validate: validatePersistentVolumeClaim, immutable: validatePersistentVolumeClaimUpdate},
	typeOf[*corev1.PodTemplate]():           rules[*corev1.PodTemplate]{namespaced: true, name: dnsSubdomain, validate: validatePodTemplate},

	// apps/v1
	typeOf[*appsv1.Deployment]():         rules[*appsv1.Deployment]{namespaced: true, name: dnsSubdomain, validate: validateDeployment, immutable: validateDeploymentUpdate},
	typeOf[*appsv1.ReplicaSet]():         rules[*appsv1.ReplicaSet]{namespaced: true, name: dnsSubdomain, validate: validateReplicaSet, immutable: validateReplicaSetUpdate},
	typeOf[*appsv1.DaemonSet]():          rules[*appsv1.DaemonSet]{namespaced: true, name: dnsSubdomain, validate: validateDaemonSet, immutable: validateDaemonSetUpdate},
	typeOf[*appsv1.StatefulSet]():        rules[*appsv1.StatefulSet]{namespaced: true, name: dnsSubdomain, validate: validateStatefulSet, immutable: validateStatefulSetUpdate},
	typeOf[*appsv1.ControllerRevision](): rules[*appsv1.ControllerRevision]{namespaced: true, name: dnsSubdomain, validate: validateControllerRevision, immutable: validateControllerRevisionUpdate},

	// batch/v1
	typeOf[*batchv1.Job]():     rules[*batchv1.Job]{namespaced: true, name: dnsSubdomain, validate: validateJob, immutable: validateJobUpdate},
	typeOf[*batchv1.CronJob](): rules[*batchv1.CronJob]{namespaced: true, name: dnsSubdomain, validate: validateCronJob},

	// autoscaling
	typeOf[*autoscalingv2.HorizontalPodAutoscaler](): rules[*autoscalingv2.HorizontalPodAutoscaler]{namespaced: true, name: dnsSubdomain, validate: validateHPAv2},
	typeOf[*autoscalingv1.HorizontalPodAutoscaler](): rules[*autoscalingv1.HorizontalPodAutoscaler]{namespaced: true, name: dnsSubdomain, validate: validateHPAv1},

	// networking.k8s.io/v1
	typeOf[*networkingv1.Ingress]():       rules[*networkingv1.Ingress]{namespaced: true, name: dnsSubdomain, validate: validateIngress},
	typeOf[*networkingv1.IngressClass]():  rules[*networkingv1.IngressClass]{name: dnsSubdomain, validate: validateIngressClass, immutable: validateIngressClassUpdate},
	typeOf[*networkingv1.NetworkPolicy](): rules[*networkingv1.NetworkPolicy]{namespaced: true, name: dnsSubdomain, validate: validateNetworkPolicy},

	typeOf[*discoveryv1.EndpointSlice]():    rules[*discoveryv1.EndpointSlice]{namespaced: true, name: dnsSubdomain, validate: validateEndpointSlice, immutable: validateEndpointSliceUpdate},
	typeOf[*coordinationv1.Lease]():         rules[*coordinationv1.Lease]{namespaced: true, name: dnsSubdomain, validate: validateLease},
	typeOf[*policyv1.PodDisruptionBudget](): rules[*policyv1.PodDisruptionBudget]{namespaced: true, name: dnsSubdomain, validate: validatePDB},

	// rbac.authorization.k8s.io/v1 names only need to be safe in a URL.
	typeOf[*rbacv1.Role]():               rules[*rbacv1.Role]{namespaced: true, name: pathSegment, validate: validateRole},
	typeOf[*rbacv1.RoleBinding]():        rules[*rbacv1.RoleBinding]{namespaced: true, name: pathSegment, validate: validateRoleBinding, immutable: validateRoleBindingUpdate},
	typeOf[*rbacv1.ClusterRole]():        rules[*rbacv1.ClusterRole]{name: pathSegment, validate: validateClusterRole},
	typeOf[*rbacv1.ClusterRoleBinding](): rules[*rbacv1.ClusterRoleBinding]{name: pathSegment, validate: validateClusterRoleBinding, immutable: validateClusterRoleBindingUpdate},

	typeOf[*eventsv1.Event]():             rules[*eventsv1.Event]{namespaced: true, name: dnsSubdomain, validate: validateEventsEvent, immutable: validateEventsEventUpdate},
	typeOf[*schedulingv1.PriorityClass](): rules[*schedulingv1.PriorityClass]{name: dnsSubdomain, validate: validatePriorityClass, immutable: validatePriorityClassUpdate},
	typeOf[*storagev1.StorageClass]():     rules[*storagev1.StorageClass]{name: dnsSubdomain, validate: validateStorageClass, immutable: validateStorageClassUpdate},
}
