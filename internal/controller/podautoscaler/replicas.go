package podautoscaler

import (
	"errors"
	"fmt"
	"math"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// calculator turns pods and their samples into a replica proposal for one
// metric, as upstream's replica calculator does.
type calculator struct {
	tolerance float64
	// cpuInitialization is how long after start a pod's CPU samples are
	// distrusted unless it is ready and was sampled after becoming so.
	cpuInitialization time.Duration
	// readinessDelay is how long after start a not-ready pod is taken
	// to be still starting rather than broken.
	readinessDelay time.Duration
	now            time.Time
}

var (
	errNoPods    = errors.New("no pods returned by selector while calculating replica count")
	errNoSamples = errors.New("did not receive metrics for targeted pods (pods might be unready)")
)

// podGroups sorts the target's pods by how their samples may be used.
type podGroups struct {
	ready   int
	unready map[string]bool // pending, or CPU samples from start-up
	missing map[string]bool // running but without a sample
	ignored map[string]bool // going away or finished
}

func (c calculator) group(pods []*corev1.Pod, samples map[string]sample, res corev1.ResourceName) podGroups {
	g := podGroups{unready: map[string]bool{}, missing: map[string]bool{}, ignored: map[string]bool{}}
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded {
			g.ignored[pod.Name] = true
			continue
		}
		if pod.Status.Phase == corev1.PodPending {
			g.unready[pod.Name] = true
			continue
		}
		s, ok := samples[pod.Name]
		if !ok {
			g.missing[pod.Name] = true
			continue
		}
		// Only CPU spikes at start-up (JIT, caches), so only CPU samples
		// of starting pods are distrusted.
		if res == corev1.ResourceCPU && c.cpuUnready(pod, s) {
			g.unready[pod.Name] = true
			continue
		}
		g.ready++
	}
	return g
}

func (c calculator) cpuUnready(pod *corev1.Pod, s sample) bool {
	var ready *corev1.PodCondition
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodReady {
			ready = &pod.Status.Conditions[i]
		}
	}
	if ready == nil || pod.Status.StartTime == nil {
		return true
	}
	start := pod.Status.StartTime.Time
	if start.Add(c.cpuInitialization).After(c.now) {
		// Still initialising: trust only a ready pod sampled for a whole
		// window after it became ready.
		return ready.Status == corev1.ConditionFalse || s.timestamp.Before(ready.LastTransitionTime.Add(s.window))
	}
	// Past initialisation: ignore only a pod that has never been ready.
	return ready.Status == corev1.ConditionFalse && start.Add(c.readinessDelay).After(ready.LastTransitionTime.Time)
}

// podRequests sums each pod's requests of res (milli-units), over all
// containers or just the named one; a container without a request makes
// utilisation undefined.
func podRequests(pods []*corev1.Pod, container string, res corev1.ResourceName) (map[string]int64, error) {
	out := make(map[string]int64, len(pods))
	for _, pod := range pods {
		if pr := pod.Spec.Resources; container == "" && pr != nil {
			if q, ok := pr.Requests[res]; ok {
				out[pod.Name] = q.MilliValue() // pod-level resources cover all containers
				continue
			}
		}
		var sum int64
		for _, ctr := range pod.Spec.Containers {
			if container != "" && ctr.Name != container {
				continue
			}
			q, ok := ctr.Resources.Requests[res]
			if !ok {
				return nil, fmt.Errorf("missing request for %s in container %s of Pod %s", res, ctr.Name, pod.Name)
			}
			sum += q.MilliValue()
		}
		out[pod.Name] = sum
	}
	return out, nil
}

// utilizationRatio is usage over requests, as a whole percentage, divided
// by the target; rawAverage is the mean usage of the pods counted.
func utilizationRatio(samples map[string]sample, requests map[string]int64, target int32) (ratio float64, utilization int32, rawAverage int64, err error) {
	var usage, requested int64
	n := 0
	for name, s := range samples {
		req, ok := requests[name]
		if !ok {
			continue // a sample of a pod the selector no longer lists
		}
		usage += s.value
		requested += req
		n++
	}
	if requested == 0 {
		return 0, 0, 0, errors.New("no metrics returned matched known pods")
	}
	utilization = int32(usage * 100 / requested)
	return float64(utilization) / float64(target), utilization, usage / int64(n), nil
}

// averageRatio is the mean sample over the target value.
func averageRatio(samples map[string]sample, target int64) (float64, int64) {
	var total int64
	for _, s := range samples {
		total += s.value
	}
	avg := total / int64(len(samples))
	return float64(avg) / float64(target), avg
}

// utilizationReplicas proposes a replica count for a Utilization target.
func (c calculator) utilizationReplicas(current, target int32, res corev1.ResourceName, container string,
	pods []*corev1.Pod, samples map[string]sample) (replicas, utilization int32, rawAverage int64, err error) {
	if len(pods) == 0 {
		return 0, 0, 0, errNoPods
	}
	samples = copySamples(samples)
	g := c.group(pods, samples, res)
	drop(samples, g.ignored)
	drop(samples, g.unready)
	if len(samples) == 0 {
		return 0, 0, 0, errNoSamples
	}
	requests, err := podRequests(pods, container, res)
	if err != nil {
		return 0, 0, 0, err
	}
	ratio, utilization, rawAverage, err := utilizationRatio(samples, requests, target)
	if err != nil {
		return 0, 0, 0, err
	}
	// On a scale-down, a missing pod counts at 100% of its request (or the
	// target, when that is higher) so that it never pulls the count down.
	fallback := func(name string) int64 { return requests[name] * int64(max(100, target)) / 100 }
	replicas = c.rebalance(current, ratio, g, samples, fallback, func(s map[string]sample) float64 {
		r, _, _, _ := utilizationRatio(s, requests, target)
		return r
	})
	return replicas, utilization, rawAverage, nil
}

// averageValueReplicas proposes a replica count for an AverageValue
// target (milli-units per pod).
func (c calculator) averageValueReplicas(current int32, target int64, res corev1.ResourceName,
	pods []*corev1.Pod, samples map[string]sample) (replicas int32, average int64, err error) {
	if len(pods) == 0 {
		return 0, 0, errNoPods
	}
	samples = copySamples(samples)
	g := c.group(pods, samples, res)
	drop(samples, g.ignored)
	drop(samples, g.unready)
	if len(samples) == 0 {
		return 0, 0, errNoSamples
	}
	ratio, average := averageRatio(samples, target)
	replicas = c.rebalance(current, ratio, g, samples, func(string) int64 { return target }, func(s map[string]sample) float64 {
		r, _ := averageRatio(s, target)
		return r
	})
	return replicas, average, nil
}

// rebalance is the common second half of upstream's calculation. With no
// doubt about any pod the count is ceil(ratio × ready pods). Otherwise the
// missing pods are assumed idle on a scale-up (fallback on a scale-down)
// and unready pods idle on a scale-up, and the ratio is recomputed; the
// change is dropped if it is within tolerance or flips direction.
func (c calculator) rebalance(current int32, ratio float64, g podGroups, samples map[string]sample,
	fallback func(string) int64, recompute func(map[string]sample) float64) int32 {
	scaleUpWithUnready := len(g.unready) > 0 && ratio > 1.0
	if !scaleUpWithUnready && len(g.missing) == 0 {
		if math.Abs(1.0-ratio) <= c.tolerance {
			return current
		}
		return int32(math.Ceil(ratio * float64(g.ready)))
	}
	for name := range g.missing {
		switch {
		case ratio < 1.0:
			samples[name] = sample{value: fallback(name)}
		case ratio > 1.0:
			samples[name] = sample{}
		}
	}
	if scaleUpWithUnready {
		for name := range g.unready {
			samples[name] = sample{}
		}
	}
	newRatio := recompute(samples)
	if math.Abs(1.0-newRatio) <= c.tolerance || (ratio < 1.0 && newRatio > 1.0) || (ratio > 1.0 && newRatio < 1.0) {
		return current
	}
	replicas := int32(math.Ceil(newRatio * float64(len(samples))))
	if (newRatio < 1.0 && replicas > current) || (newRatio > 1.0 && replicas < current) {
		return current // counting more pods would reverse the direction
	}
	return replicas
}

func copySamples(in map[string]sample) map[string]sample {
	out := make(map[string]sample, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

func drop(samples map[string]sample, names map[string]bool) {
	for name := range names {
		delete(samples, name)
	}
}
