package endpointslice

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// triggerTracker computes the endpoints.kubernetes.io/last-change-trigger-time
// of a Service: the earliest change (a pod's Ready transition, the
// Service's creation) not yet reflected by an earlier sync. Each loop has
// its own, since each writes on its own schedule.
type triggerTracker struct {
	mu    sync.Mutex
	state map[string]triggerState
}

type triggerState struct {
	service time.Time
	pods    map[string]time.Time
}

func newTriggerTracker() *triggerTracker {
	return &triggerTracker{state: map[string]triggerState{}}
}

// observe records the Service's pods and returns the trigger time of the
// changes since the last call; zero means nothing new.
func (t *triggerTracker) observe(key string, svc *corev1.Service, pods []*corev1.Pod) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	last := t.state[key]
	var earliest time.Time
	note := func(at time.Time) {
		if earliest.IsZero() || at.Before(earliest) {
			earliest = at
		}
	}
	next := triggerState{service: svc.CreationTimestamp.Time, pods: make(map[string]time.Time, len(pods))}
	for _, pod := range pods {
		at := podTriggerTime(pod)
		if at.IsZero() {
			continue
		}
		next.pods[pod.Name] = at
		if at.After(last.pods[pod.Name]) {
			note(at)
		}
	}
	if next.service.After(last.service) {
		note(next.service)
	}
	t.state[key] = next
	return earliest
}

func (t *triggerTracker) forget(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.state, key)
}
