package disruption

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// StalePodDisruptionTimeout is how long a pod may carry a True
// DisruptionTarget condition without being deleted before the controller
// sets it back to False: whoever meant to disrupt it (the eviction
// subresource, preemption, the taint manager) gave up or failed.
const StalePodDisruptionTimeout = 2 * time.Minute

// staleDisruption reports whether pod carries a DisruptionTarget condition
// that will go stale, and how long until it does. Conditions set by the
// kubelet never do (the pod may take arbitrarily long to terminate), nor
// do those of finished or terminating pods.
func staleDisruption(pod *corev1.Pod, now time.Time) (bool, time.Duration) {
	if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false, 0
	}
	for _, c := range pod.Status.Conditions {
		if c.Type != corev1.DisruptionTarget {
			continue
		}
		if c.Status != corev1.ConditionTrue || c.Reason == corev1.PodReasonTerminationByKubelet {
			return false, 0
		}
		return true, max(StalePodDisruptionTimeout-now.Sub(c.LastTransitionTime.Time), 0)
	}
	return false, 0
}

// enqueueStale schedules a pod whose DisruptionTarget condition will go
// stale for a look once it has.
func (c *Controller) enqueueStale(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if stale, after := staleDisruption(pod, c.clock.Now()); stale {
		if key, err := cache.MetaNamespaceKeyFunc(pod); err == nil {
			c.staleQueue.AddAfter(key, after)
		}
	}
}

func (c *Controller) staleWorker(ctx context.Context) {
	for {
		key, quit := c.staleQueue.Get()
		if quit {
			return
		}
		if err := c.syncStale(ctx, key); err != nil {
			c.log.Warn("clearing stale DisruptionTarget condition", "pod", key, "err", err)
			// Retry with backoff: a conflict with the pod's other writers.
			c.staleQueue.AddRateLimited(key)
		} else {
			// Done; forget the key's failure history.
			c.staleQueue.Forget(key)
		}
		c.staleQueue.Done(key)
	}
}

// syncStale sets a stale DisruptionTarget condition to False, keeping its
// reason and message, so the pod no longer reads as about to go.
func (c *Controller) syncStale(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := c.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	now := c.clock.Now()
	stale, after := staleDisruption(pod, now)
	if !stale {
		return nil
	}
	if after > 0 {
		c.staleQueue.AddAfter(key, after)
		return nil
	}
	next := pod.DeepCopy()
	for i := range next.Status.Conditions {
		if next.Status.Conditions[i].Type == corev1.DisruptionTarget {
			next.Status.Conditions[i].Status = corev1.ConditionFalse
			next.Status.Conditions[i].LastTransitionTime = metav1.NewTime(now)
		}
	}
	_, err = c.client.CoreV1().Pods(ns).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
