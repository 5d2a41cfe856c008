package statefulset

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// A pod the controller only built locally has no phase yet; the API server
// gives every stored pod one.
func isCreated(pod *corev1.Pod) bool { return pod.Status.Phase != "" }

func isPending(pod *corev1.Pod) bool     { return pod.Status.Phase == corev1.PodPending }
func isFailed(pod *corev1.Pod) bool      { return pod.Status.Phase == corev1.PodFailed }
func isSucceeded(pod *corev1.Pod) bool   { return pod.Status.Phase == corev1.PodSucceeded }
func isTerminating(pod *corev1.Pod) bool { return pod.DeletionTimestamp != nil }

// readySince is when pod's Ready condition turned true; nil if not ready.
func readySince(pod *corev1.Pod) *time.Time {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			t := c.LastTransitionTime.Time
			return &t
		}
	}
	return nil
}

func isRunningAndReady(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodRunning && readySince(pod) != nil
}

// isRunningAndAvailable: running and ready for at least minReadySeconds.
func isRunningAndAvailable(pod *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	if pod.Status.Phase != corev1.PodRunning {
		return false
	}
	since := readySince(pod)
	if since == nil {
		return false
	}
	return minReadySeconds == 0 || !since.Add(time.Duration(minReadySeconds)*time.Second).After(now)
}

// isUnavailable marks the pods that block ordered progress.
func isUnavailable(pod *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	return !isRunningAndAvailable(pod, minReadySeconds, now) || isTerminating(pod)
}
