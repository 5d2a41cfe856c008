package statefulset

import (
	"context"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// apiControl carries out reconcile's decisions through the API server,
// recording expectations and the events upstream records.
type apiControl struct {
	c *Controller
}

func setKey(set *appsv1.StatefulSet) string { return set.Namespace + "/" + set.Name }

// podEvent records "<verb> Pod <pod> in StatefulSet <set> successful" or
// the failure, with upstream's reasons and messages.
func (a *apiControl) podEvent(verb, title string, set *appsv1.StatefulSet, pod *corev1.Pod, err error) {
	if err == nil {
		a.c.recorder.Eventf(set, corev1.EventTypeNormal, "Successful"+title, "%s Pod %s in StatefulSet %s successful", verb, pod.Name, set.Name)
		return
	}
	a.c.recorder.Eventf(set, corev1.EventTypeWarning, "Failed"+title, "%s Pod %s in StatefulSet %s failed error: %s", verb, pod.Name, set.Name, err)
}

func (a *apiControl) createPod(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error {
	if err := a.createClaims(ctx, set, pod); err != nil {
		a.podEvent("create", "Create", set, pod, err)
		return err
	}
	key := setKey(set)
	a.c.expect.expectCreate(key, pod.Name)
	created, err := a.c.client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		// A failed create is never observed; an existing pod may already
		// be in the cache, so no event would come for it either.
		a.c.expect.created(key, pod.Name)
		if !apierrors.IsAlreadyExists(err) {
			a.podEvent("create", "Create", set, pod, err)
		}
		return err
	}
	if err := a.fixClaimOwners(ctx, set, created); err != nil {
		a.podEvent("update", "Update", set, created, err)
		return err
	}
	a.podEvent("create", "Create", set, created, nil)
	return nil
}

func (a *apiControl) deletePod(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error {
	key := setKey(set)
	a.c.expect.expectDelete(key, pod.UID)
	// The uid precondition keeps a stale cache from deleting a newer pod
	// of the same name.
	err := a.c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil {
		a.c.expect.deleted(key, pod.UID)
	}
	a.podEvent("delete", "Delete", set, pod, err)
	return err
}

// updatePod restores identity and storage and the claims' owners, taking
// a fresh copy of the pod on conflict.
func (a *apiControl) updatePod(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error {
	pods := a.c.client.CoreV1().Pods(set.Namespace)
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		dirty := false
		if !identityMatches(set, pod) {
			setIdentity(set, pod)
			dirty = true
		}
		if !storageMatches(set, pod) {
			setStorage(set, pod)
			dirty = true
			if err = a.createClaims(ctx, set, pod); err != nil {
				break
			}
		}
		if err = a.fixClaimOwners(ctx, set, pod); err != nil {
			break
		}
		if !dirty {
			return nil
		}
		if _, err = pods.Update(ctx, pod, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
			break
		}
		fresh, getErr := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if getErr != nil {
			err = getErr
			break
		}
		pod = fresh
	}
	a.podEvent("update", "Update", set, pod, err)
	return err
}

// claim reads one of the pod's claims from the cache; nil if missing.
func (a *apiControl) claim(ns, name string) (*corev1.PersistentVolumeClaim, error) {
	pvc, err := a.c.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return pvc, err
}

func (a *apiControl) claimsMatchPolicy(set *appsv1.StatefulSet, pod *corev1.Pod) (bool, error) {
	for _, want := range claims(set, ordinal(pod)) {
		pvc, err := a.claim(want.Namespace, want.Name)
		if err != nil {
			return false, err
		}
		if pvc != nil && !claimOwnerUpToDate(pvc, set, pod) {
			return false, nil
		}
	}
	return true, nil
}

func (a *apiControl) fixClaimOwners(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error {
	for _, want := range claims(set, ordinal(pod)) {
		pvc, err := a.claim(want.Namespace, want.Name)
		if err != nil {
			return err
		}
		if pvc == nil {
			continue // created later; the next pass sets its owners
		}
		if hasUnexpectedController(pvc, set, pod) {
			a.c.recorder.Eventf(set, corev1.EventTypeWarning, "ConflictingController",
				"PersistentVolumeClaim %s has a conflicting OwnerReference that acts as a manging controller, the retention policy is ignored for this claim", pvc.Name)
		}
		if claimOwnerUpToDate(pvc, set, pod) {
			continue
		}
		pvc = pvc.DeepCopy()
		setClaimOwners(pvc, set, pod)
		if _, err := a.c.client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Update(ctx, pvc, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("could not update claim %s for delete policy ownerRefs: %w", pvc.Name, err)
		}
	}
	return nil
}

func (a *apiControl) claimIsStale(set *appsv1.StatefulSet, pod *corev1.Pod) (bool, error) {
	if retentionPolicy(set).WhenScaled == retain {
		return false, nil // claims are meant to be reused
	}
	for _, want := range claims(set, ordinal(pod)) {
		pvc, err := a.claim(want.Namespace, want.Name)
		if err != nil {
			return false, err
		}
		if pvc != nil && hasStaleOwnerRef(pvc, pod, podKind) {
			return true, nil
		}
	}
	return false, nil
}

func (a *apiControl) createMissingClaims(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error {
	if err := a.createClaims(ctx, set, pod); err != nil {
		return err
	}
	if err := a.fixClaimOwners(ctx, set, pod); err != nil {
		a.podEvent("update", "Update", set, pod, err)
		return err
	}
	return nil
}

// createClaims creates the pod's claims that do not exist yet.
func (a *apiControl) createClaims(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error {
	var errs []error
	for _, want := range claims(set, ordinal(pod)) {
		pvc, err := a.claim(want.Namespace, want.Name)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("failed to retrieve PVC %s: %w", want.Name, err))
		case pvc != nil:
			if pvc.DeletionTimestamp != nil {
				errs = append(errs, fmt.Errorf("pvc %s is being deleted", want.Name))
			}
		default:
			want.Status = corev1.PersistentVolumeClaimStatus{}
			// Owners the policy asks for go on at once (the set's, for
			// whenDeleted=Delete), rather than on a later pass.
			setClaimOwners(&want, set, pod)
			_, err := a.c.client.CoreV1().PersistentVolumeClaims(want.Namespace).Create(ctx, &want, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				continue // the cache was behind
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("failed to create PVC %s: %w", want.Name, err))
				a.c.recorder.Eventf(set, corev1.EventTypeWarning, "FailedCreate",
					"create Claim %s for Pod %s in StatefulSet %s failed error: %s", want.Name, pod.Name, set.Name, err)
				continue
			}
			a.c.recorder.Eventf(set, corev1.EventTypeNormal, "SuccessfulCreate",
				"create Claim %s Pod %s in StatefulSet %s success", want.Name, pod.Name, set.Name)
		}
	}
	return errors.Join(errs...)
}
