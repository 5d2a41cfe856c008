package apiserver

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

var scaleGVK = autoscalingv1.SchemeGroupVersion.WithKind("Scale")

// scaleOf renders the autoscaling/v1 Scale view of a scalable object.
func scaleOf(obj runtime.Object) (*autoscalingv1.Scale, error) {
	spec, ok1 := structField(obj, "Spec")
	status, ok2 := structField(obj, "Status")
	if !ok1 || !ok2 {
		return nil, errors.New("object has no spec and status")
	}
	acc := accessor(obj)
	sc := &autoscalingv1.Scale{
		TypeMeta: metav1.TypeMeta{APIVersion: "autoscaling/v1", Kind: "Scale"},
		ObjectMeta: metav1.ObjectMeta{Name: acc.GetName(), Namespace: acc.GetNamespace(), UID: acc.GetUID(),
			ResourceVersion: acc.GetResourceVersion(), CreationTimestamp: acc.GetCreationTimestamp()},
	}
	if r := spec.FieldByName("Replicas"); r.IsValid() {
		if r.Kind() == reflect.Pointer {
			if !r.IsNil() {
				sc.Spec.Replicas = int32(r.Elem().Int())
			}
		} else {
			sc.Spec.Replicas = int32(r.Int())
		}
	}
	if r := status.FieldByName("Replicas"); r.IsValid() {
		sc.Status.Replicas = int32(r.Int())
	}
	if s := spec.FieldByName("Selector"); s.IsValid() && !s.IsNil() {
		sel, err := metav1.LabelSelectorAsSelector(s.Interface().(*metav1.LabelSelector))
		if err == nil {
			sc.Status.Selector = sel.String()
		}
	}
	return sc, nil
}

func setReplicas(obj runtime.Object, n int32) {
	spec, _ := structField(obj, "Spec")
	r := spec.FieldByName("Replicas")
	if r.Kind() == reflect.Pointer {
		r.Set(reflect.ValueOf(&n))
	} else {
		r.SetInt(int64(n))
	}
}

// serveScale serves the scale subresource: GET, PUT and PATCH of a Scale.
func (rq *request) serveScale() error {
	switch rq.info.Verb {
	case "get":
		cur, err := rq.res.Get(rq.ctx, rq.info.Namespace, rq.info.Name)
		if err != nil {
			return rq.storageErr(err)
		}
		sc, err := scaleOf(toServed(rq.kind, cur))
		if err != nil {
			return err
		}
		return rq.encode(http.StatusOK, sc)
	case "update", "patch":
	default:
		return apierrors.NewMethodNotSupported(rq.kind.GroupResource(), rq.info.Verb)
	}
	body, err := rq.readBody()
	if err != nil {
		return err
	}
	var pt types.PatchType // empty for PUT
	if rq.info.Verb == "patch" {
		if pt, err = rq.patchType(); err != nil {
			return err
		}
	}
	result, err := rq.replace(func(cur runtime.Object) (runtime.Object, error) {
		sc, err := scaleOf(cur)
		if err != nil {
			return nil, err
		}
		var want runtime.Object
		if pt == "" {
			want, err = rq.decode(body, rq.r.Header.Get("Content-Type"), &autoscalingv1.Scale{TypeMeta: metav1.TypeMeta{APIVersion: "autoscaling/v1", Kind: "Scale"}})
		} else {
			original, _ := runtime.Encode(jsonSerializer, sc)
			patched, perr := applyPatch(pt, original, body, &autoscalingv1.Scale{})
			if perr != nil {
				return nil, perr
			}
			want, err = rq.decode(patched, mediaJSON, &autoscalingv1.Scale{TypeMeta: metav1.TypeMeta{APIVersion: "autoscaling/v1", Kind: "Scale"}})
		}
		if err != nil {
			return nil, err
		}
		ws := want.(*autoscalingv1.Scale)
		if ws.Spec.Replicas < 0 {
			return nil, apierrors.NewInvalid(scaleGVK.GroupKind(), rq.info.Name, fieldErrors("spec.replicas", ws.Spec.Replicas, "must be greater than or equal to 0"))
		}
		if ws.Name != "" && ws.Name != rq.info.Name {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", ws.Name, rq.info.Name))
		}
		next := cur.DeepCopyObject()
		setReplicas(next, ws.Spec.Replicas)
		accessor(next).SetResourceVersion(ws.ResourceVersion)
		return next, nil
	})
	if err != nil {
		return err
	}
	sc, err := scaleOf(result)
	if err != nil {
		return err
	}
	return rq.encode(http.StatusOK, sc)
}

// bind serves pods/binding: the scheduler's assignment of a pod to a node.
func (rq *request) bind() error {
	body, err := rq.readBody()
	if err != nil {
		return err
	}
	obj, err := rq.decode(body, rq.r.Header.Get("Content-Type"), &corev1.Binding{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Binding"}})
	if err != nil {
		return err
	}
	b := obj.(*corev1.Binding)
	if b.Name != "" && b.Name != rq.info.Name {
		return apierrors.NewBadRequest(fmt.Sprintf("the name of the binding (%s) does not match the pod (%s)", b.Name, rq.info.Name))
	}
	if b.Target.Name == "" {
		return apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Binding").GroupKind(), rq.info.Name, fieldErrors("target.name", "", "name is required"))
	}
	dry, err := rq.dryRun()
	if err != nil {
		return err
	}
	gr := rq.kind.GroupResource()
	gr.Resource += "/binding"
	assign := func(cur runtime.Object) (runtime.Object, error) {
		pod := cur.(*corev1.Pod)
		if pod.DeletionTimestamp != nil {
			return nil, apierrors.NewConflict(gr, pod.Name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", pod.Name))
		}
		if pod.Spec.NodeName != "" {
			return nil, apierrors.NewConflict(gr, pod.Name, fmt.Errorf("pod %s is already assigned to node %q", pod.Name, pod.Spec.NodeName))
		}
		if uid := b.UID; uid != "" && uid != pod.UID {
			return nil, apierrors.NewConflict(gr, pod.Name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", uid, pod.UID))
		}
		pod.Spec.NodeName = b.Target.Name
		for k, v := range b.Annotations {
			if pod.Annotations == nil {
				pod.Annotations = map[string]string{}
			}
			pod.Annotations[k] = v
		}
		setPodCondition(pod, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()})
		return pod, nil
	}
	if dry {
		cur, err := rq.res.Get(rq.ctx, rq.info.Namespace, rq.info.Name)
		if err == nil {
			_, err = assign(cur)
		}
		if err != nil {
			return rq.storageErr(err)
		}
	} else if _, err := rq.res.Update(rq.ctx, rq.info.Namespace, rq.info.Name, assign); err != nil {
		return rq.storageErr(err)
	}
	return rq.writeStatus(http.StatusCreated, &metav1.Status{Status: metav1.StatusSuccess})
}

func setPodCondition(pod *corev1.Pod, c corev1.PodCondition) {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == c.Type {
			if pod.Status.Conditions[i].Status == c.Status {
				c.LastTransitionTime = pod.Status.Conditions[i].LastTransitionTime
			}
			pod.Status.Conditions[i] = c
			return
		}
	}
	pod.Status.Conditions = append(pod.Status.Conditions, c)
}
