package apiserver

import (
	"context"
	"crypto/rand"
	"reflect"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/apiserver/convert"
	"github.com/lotse/lotse/internal/apiserver/registry"
	"github.com/lotse/lotse/internal/qos"
	"github.com/lotse/lotse/internal/storage"
	"github.com/lotse/lotse/internal/storageclass"
)

// toServed converts a stored object to the version the request is served in.
func toServed(k *registry.Kind, obj runtime.Object) runtime.Object {
	if k.GVK == k.StorageGVK {
		return obj
	}
	switch o := obj.(type) {
	case *autoscalingv2.HorizontalPodAutoscaler:
		return convert.HPAToV1(o)
	case *corev1.Event:
		return convert.EventToEventsV1(o)
	}
	return obj
}

// toStorage converts a served object to its storage version.
func toStorage(k *registry.Kind, obj runtime.Object) runtime.Object {
	if k.GVK == k.StorageGVK {
		return obj
	}
	switch o := obj.(type) {
	case *autoscalingv1.HorizontalPodAutoscaler:
		return convert.HPAFromV1(o)
	case *eventsv1.Event:
		return convert.EventFromEventsV1(o)
	}
	return obj
}

// field returns the addressable struct field name of obj, if it has one.
func structField(obj runtime.Object, name string) (reflect.Value, bool) {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	f := v.Elem().FieldByName(name)
	return f, f.IsValid()
}

// tracksGeneration reports whether spec changes bump metadata.generation:
// kinds with a spec and a status subresource do, except those upstream
// leaves without a generation.
func tracksGeneration(k *registry.Kind, obj runtime.Object) bool {
	if _, ok := obj.(*discoveryv1.EndpointSlice); ok {
		return true // no spec or status, but upstream counts its changes
	}
	if !k.HasSubresource("status") {
		return false
	}
	switch obj.(type) {
	case *corev1.Node, *corev1.Namespace, *corev1.Service, *corev1.PersistentVolume, *corev1.PersistentVolumeClaim, *corev1.ResourceQuota:
		return false
	}
	_, ok := structField(obj, "Spec")
	return ok
}

// specChanged reports whether everything but metadata and status differs.
func specChanged(obj, old runtime.Object) bool {
	a, b := reflect.ValueOf(obj).Elem(), reflect.ValueOf(old).Elem()
	t := a.Type()
	for i := 0; i < t.NumField(); i++ {
		switch t.Field(i).Name {
		case "TypeMeta", "ObjectMeta", "Status":
			continue
		}
		if !equality.Semantic.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			return true
		}
	}
	return false
}

// copyStatus sets dst's status to src's, so a write to the main resource
// cannot change status (it has its own subresource).
func copyStatus(dst, src runtime.Object) {
	d, ok1 := structField(dst, "Status")
	s, ok2 := structField(src, "Status")
	if ok1 && ok2 {
		d.Set(s)
	}
}

// resetStatus clears the status of a new object, keeping what upstream
// lets a creator set.
func resetStatus(k *registry.Kind, obj runtime.Object) {
	if !k.HasSubresource("status") {
		return
	}
	switch o := obj.(type) {
	case *corev1.Node:
		return // nodes register with their status
	case *corev1.Pod:
		o.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: qos.Class(o)}
		return
	case *corev1.PersistentVolume:
		o.Status = corev1.PersistentVolumeStatus{Phase: corev1.VolumePending}
		return
	case *corev1.PersistentVolumeClaim:
		o.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}
		return
	case *corev1.Namespace:
		// Empty, so defaulting treats it as new: phase Active and the
		// kubernetes finalizer.
		o.Status = corev1.NamespaceStatus{}
		return
	}
	if f, ok := structField(obj, "Status"); ok {
		f.Set(reflect.Zero(f.Type()))
	}
}

// keepSystemMeta copies what clients may not change from old to obj.
func keepSystemMeta(obj, old metav1.Object) {
	obj.SetUID(old.GetUID())
	obj.SetCreationTimestamp(old.GetCreationTimestamp())
	obj.SetDeletionTimestamp(old.GetDeletionTimestamp())
	obj.SetDeletionGracePeriodSeconds(old.GetDeletionGracePeriodSeconds())
	obj.SetGeneration(old.GetGeneration())
	obj.SetSelfLink("")
	if obj.GetGenerateName() == "" {
		obj.SetGenerateName(old.GetGenerateName())
	}
}

const nameChars = "bcdfghjklmnpqrstvwxz2456789"

// generateName appends five random characters, as upstream does.
func generateName(base string) string {
	const maxLen = 63 - 5
	if len(base) > maxLen {
		base = base[:maxLen]
	}
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = nameChars[int(b[i])%len(nameChars)]
	}
	return base + string(b)
}

func accessor(obj runtime.Object) metav1.Object {
	acc, err := meta.Accessor(obj)
	if err != nil {
		panic(err) // every registered kind has ObjectMeta
	}
	return acc
}

// normalize does what upstream's conversion into its internal types does
// on every write: Secret stringData is merged into data (write-only field).
func normalize(obj runtime.Object) {
	if sec, ok := obj.(*corev1.Secret); ok && len(sec.StringData) > 0 {
		if sec.Data == nil {
			sec.Data = map[string][]byte{}
		}
		for k, v := range sec.StringData {
			sec.Data[k] = []byte(v)
		}
		sec.StringData = nil
	}
}

// defaultTolerationSeconds is how long pods stay on a node that went
// not-ready or unreachable before they are evicted (upstream's
// DefaultTolerationSeconds admission).
const defaultTolerationSeconds = 300

// addDefaultTolerations gives a new pod NoExecute tolerations for the
// not-ready and unreachable taints, unless it tolerates them already.
func addDefaultTolerations(pod *corev1.Pod) {
	for _, key := range []string{corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable} {
		has := false
		for _, t := range pod.Spec.Tolerations {
			if (t.Key == key || t.Key == "" && t.Operator == corev1.TolerationOpExists) &&
				(t.Effect == corev1.TaintEffectNoExecute || t.Effect == "") {
				has = true
			}
		}
		if !has {
			pod.Spec.Tolerations = append(pod.Spec.Tolerations, corev1.Toleration{
				Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute,
				TolerationSeconds: ptr.To(int64(defaultTolerationSeconds)),
			})
		}
	}
}

// daemonSetTemplateGeneration is the annotation upstream keeps on
// DaemonSets: 1 at creation, one more at every change of the pod
// template. The DaemonSet controller labels its pods with it.
const daemonSetTemplateGeneration = "deprecated.daemonset.template.generation"

// stampTemplateGeneration sets a DaemonSet's template generation from
// old's (nil on create); what a client writes there is not kept.
func stampTemplateGeneration(obj, old runtime.Object) {
	ds, ok := obj.(*appsv1.DaemonSet)
	if !ok {
		return
	}
	gen := int64(1)
	if prev, ok := old.(*appsv1.DaemonSet); ok {
		if n, err := strconv.ParseInt(prev.Annotations[daemonSetTemplateGeneration], 10, 64); err == nil && n > 0 {
			gen = n
		}
		if !equality.Semantic.DeepEqual(prev.Spec.Template, ds.Spec.Template) {
			gen++
		}
	}
	if ds.Annotations == nil {
		ds.Annotations = map[string]string{}
	}
	ds.Annotations[daemonSetTemplateGeneration] = strconv.FormatInt(gen, 10)
}

// ingressClassDefault marks the IngressClass new Ingresses without a
// class get.
const ingressClassDefault = "ingressclass.kubernetes.io/is-default-class"

// setDefaultIngressClass gives a new Ingress that names no class (neither
// field nor legacy annotation) the default IngressClass, as upstream's
// DefaultIngressClass admission: the newest one marked default.
func (s *Server) setDefaultIngressClass(ctx context.Context, ing *networkingv1.Ingress) error {
	if ing.Spec.IngressClassName != nil || ing.Annotations["kubernetes.io/ingress.class"] != "" {
		return nil
	}
	name, err := s.newestDefault(ctx, networkingv1.Resource("ingressclasses"), ingressClassDefault)
	if name != "" {
		ing.Spec.IngressClassName = ptr.To(name)
	}
	return err
}

// setDefaultStorageClass gives a new PersistentVolumeClaim that names no
// class (a nil storageClassName; "" asks for none) the default
// StorageClass, as upstream's DefaultStorageClass admission: the newest
// one marked default.
func (s *Server) setDefaultStorageClass(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	if pvc.Spec.StorageClassName != nil || pvc.Annotations[storageclass.BetaAnnotation] != "" {
		return nil
	}
	name, err := s.newestDefault(ctx, storagev1.Resource("storageclasses"), storageclass.DefaultAnnotation)
	if name != "" {
		pvc.Spec.StorageClassName = ptr.To(name)
	}
	return err
}

// newestDefault names the newest object of gr annotated as the default
// (annotation "true"), or "" when there is none.
func (s *Server) newestDefault(ctx context.Context, gr schema.GroupResource, annotation string) (string, error) {
	res, ok := s.store.Resource(gr)
	if !ok {
		return "", nil
	}
	list, err := res.List(ctx, storage.ListOptions{})
	if err != nil {
		return "", storageError(err, gr, "")
	}
	items, err := list.Items()
	if err != nil {
		return "", storageError(err, gr, "")
	}
	objs := make([]metav1.Object, len(items))
	for i, obj := range items {
		objs[i] = accessor(obj)
	}
	return storageclass.NewestDefault(objs, annotation), nil
}
