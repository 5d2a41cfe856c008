package apiserver

import (
	"fmt"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/lotse/lotse/internal/storage"
)

// evict serves pods/eviction (policy/v1 Eviction, what `kubectl drain`
// posts): the pod is deleted only if the PodDisruptionBudget covering it
// allows one more disruption, which is then used up in the budget's
// status; otherwise 429, and the caller retries later.
func (rq *request) evict() error {
	body, err := rq.readBody()
	if err != nil {
		return err
	}
	obj, err := rq.decode(body, rq.r.Header.Get("Content-Type"), &policyv1.Eviction{TypeMeta: metav1.TypeMeta{APIVersion: "policy/v1", Kind: "Eviction"}})
	if err != nil {
		return err
	}
	ev, ok := obj.(*policyv1.Eviction)
	if !ok {
		return apierrors.NewBadRequest(fmt.Sprintf("expected an Eviction, got %T", obj))
	}
	if ev.Name != "" && ev.Name != rq.info.Name {
		return apierrors.NewBadRequest(fmt.Sprintf("name in URL does not match name in Eviction object"))
	}
	opts := ev.DeleteOptions
	if opts == nil {
		opts = &metav1.DeleteOptions{}
	}
	if len(rq.q["dryRun"]) > 0 {
		opts.DryRun = rq.q["dryRun"]
	}
	cur, err := rq.res.Get(rq.ctx, rq.info.Namespace, rq.info.Name)
	if err != nil {
		return rq.storageErr(err)
	}
	pod := cur.(*corev1.Pod)
	if !evictionNeedsBudget(pod) {
		return rq.evicted(opts)
	}
	budgetRes, ok := rq.s.store.Resource(policyv1.Resource("poddisruptionbudgets"))
	if !ok {
		return rq.evicted(opts)
	}
	list, err := budgetRes.List(rq.ctx, storage.ListOptions{Namespace: pod.Namespace})
	if err != nil {
		return apierrors.NewServiceUnavailable(err.Error())
	}
	inNamespace, err := list.Items()
	if err != nil {
		return apierrors.NewServiceUnavailable(err.Error())
	}
	var budgets []*policyv1.PodDisruptionBudget
	for _, o := range inNamespace {
		if b := o.(*policyv1.PodDisruptionBudget); budgetSelects(b, pod) {
			budgets = append(budgets, b)
		}
	}
	switch len(budgets) {
	case 0:
		return rq.evicted(opts)
	case 1:
	default:
		// Upstream answers 500 here; lotse does not answer 500 for a
		// caller's situation, and says the same thing with 400.
		return apierrors.NewBadRequest("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.")
	}
	pdb := budgets[0]
	if pdb.Spec.UnhealthyPodEvictionPolicy != nil && *pdb.Spec.UnhealthyPodEvictionPolicy == policyv1.AlwaysAllow && !podReady(pod) {
		return rq.evicted(opts)
	}
	if len(opts.DryRun) == 0 {
		if _, err := budgetRes.Update(rq.ctx, pdb.Namespace, pdb.Name, func(o runtime.Object) (runtime.Object, error) {
			b := o.(*policyv1.PodDisruptionBudget).DeepCopy()
			if err := budgetAllows(b, pod); err != nil {
				return nil, err
			}
			b.Status.DisruptionsAllowed--
			if b.Status.DisruptedPods == nil {
				b.Status.DisruptedPods = map[string]metav1.Time{}
			}
			b.Status.DisruptedPods[pod.Name] = metav1.NewTime(time.Now())
			return b, nil
		}); err != nil {
			if _, ok := err.(*apierrors.StatusError); ok {
				return err
			}
			return rq.storageErr(err)
		}
	} else if err := budgetAllows(pdb, pod); err != nil {
		return err
	}
	return rq.evicted(opts)
}

// evicted deletes the pod and answers as upstream: 201 with a Success
// Status.
func (rq *request) evicted(opts *metav1.DeleteOptions) error {
	if _, _, err := rq.deleteOne(rq.info.Namespace, rq.info.Name, opts); err != nil {
		return err
	}
	return rq.writeStatus(http.StatusCreated, &metav1.Status{Status: metav1.StatusSuccess})
}

// evictionNeedsBudget: pods that are finished, not yet running, or
// already going are deleted without consulting a budget, as upstream.
func evictionNeedsBudget(pod *corev1.Pod) bool {
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed, corev1.PodPending:
		return false
	}
	return pod.DeletionTimestamp == nil
}

// budgetAllows says whether the budget has a disruption left, with
// upstream's 429 when not.
func budgetAllows(pdb *policyv1.PodDisruptionBudget, pod *corev1.Pod) error {
	if pdb.Status.ObservedGeneration < pdb.Generation {
		return tooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.",
			"DisruptionBudget", fmt.Sprintf("The disruption budget %s is still being processed by the server.", pdb.Name))
	}
	if pdb.Status.DisruptionsAllowed <= 0 {
		return tooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.",
			"DisruptionBudget", fmt.Sprintf("The disruption budget %s needs %d healthy pods and has %d currently",
				pdb.Name, pdb.Status.DesiredHealthy, pdb.Status.CurrentHealthy))
	}
	if _, ok := pdb.Status.DisruptedPods[pod.Name]; ok {
		// Already counted: evicting it again uses nothing more.
		pdb.Status.DisruptionsAllowed++
	}
	return nil
}

func tooManyRequests(message, causeType, cause string) error {
	err := apierrors.NewTooManyRequests(message, 0) // no Retry-After: the caller decides, as upstream
	err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{Type: metav1.CauseType(causeType), Message: cause})
	return err
}

// budgetSelects reports whether a policy/v1 budget covers pod: an empty
// selector covers every pod of the namespace, a missing one none.
func budgetSelects(pdb *policyv1.PodDisruptionBudget, pod *corev1.Pod) bool {
	if pdb.Spec.Selector == nil {
		return false
	}
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		return false
	}
	return sel.Matches(labels.Set(pod.Labels))
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
