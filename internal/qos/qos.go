package qos

import (
	corev1 "k8s.io/api/core/v1"
)

// Class computes a pod's quality-of-service class from its containers'
// cpu and memory requests and limits.
func Class(p *corev1.Pod) corev1.PodQOSClass {
	requests, limits := corev1.ResourceList{}, corev1.ResourceList{}
	guaranteed := true
	any := false
	containers := append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...)
	for _, c := range containers {
		for name, q := range c.Resources.Requests {
			if name != corev1.ResourceCPU && name != corev1.ResourceMemory || q.IsZero() {
				continue
			}
			any = true
			if cur, ok := requests[name]; ok {
				q.Add(cur)
			}
			requests[name] = q
		}
		seen := 0
		for name, q := range c.Resources.Limits {
			if name != corev1.ResourceCPU && name != corev1.ResourceMemory || q.IsZero() {
				continue
			}
			any = true
			seen++
			if cur, ok := limits[name]; ok {
				q.Add(cur)
			}
			limits[name] = q
		}
		if seen != 2 {
			guaranteed = false
		}
	}
	if !any {
		return corev1.PodQOSBestEffort
	}
	if guaranteed {
		for name, req := range requests {
			if lim, ok := limits[name]; !ok || lim.Cmp(req) != 0 {
				guaranteed = false
			}
		}
	}
	if guaranteed && len(limits) == 2 {
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}
