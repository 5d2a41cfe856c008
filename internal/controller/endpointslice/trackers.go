package endpointslice

import (
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
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

// sliceTracker remembers the resourceVersion of every slice this
// controller wrote, and the slices it deleted, per Service. A sync that
// sees an older version (or a deleted slice still there, or a created one
// missing) is working from a stale informer and must wait, or it would
// create duplicates or undo its own writes. Upstream tracks generations;
// lotse does not set one on EndpointSlices, and its resourceVersions are
// etcd revisions, which only grow.
type sliceTracker struct {
	mu        sync.Mutex
	byService map[string]map[types.UID]int64
}

// deletionExpected marks a slice this controller deleted.
const deletionExpected = -1

func newSliceTracker() *sliceTracker {
	return &sliceTracker{byService: map[string]map[types.UID]int64{}}
}

func revision(s *discoveryv1.EndpointSlice) int64 {
	n, err := strconv.ParseInt(s.ResourceVersion, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func (t *sliceTracker) set(key string, uid types.UID, rv int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.byService[key]
	if m == nil {
		m = map[types.UID]int64{}
		t.byService[key] = m
	}
	m[uid] = rv
}

// wrote records a slice as the API server returned it.
func (t *sliceTracker) wrote(key string, s *discoveryv1.EndpointSlice) {
	t.set(key, s.UID, revision(s))
}

// deleted records that the controller deleted the slice.
func (t *sliceTracker) deleted(key string, s *discoveryv1.EndpointSlice) {
	t.set(key, s.UID, deletionExpected)
}

// stale reports whether the listed slices lag behind this controller's
// own writes.
func (t *sliceTracker) stale(key string, listed []*discoveryv1.EndpointSlice) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.byService[key]
	seen := map[types.UID]bool{}
	for _, s := range listed {
		seen[s.UID] = true
		if rv, ok := m[s.UID]; ok && (rv == deletionExpected || rv > revision(s)) {
			return true
		}
	}
	for uid, rv := range m {
		if rv != deletionExpected && !seen[uid] {
			return true
		}
	}
	return false
}

// needsSync reports whether an informer event for the slice is news: not
// the echo of the controller's own write.
func (t *sliceTracker) needsSync(key string, s *discoveryv1.EndpointSlice) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	rv, ok := t.byService[key][s.UID]
	return !ok || (rv != deletionExpected && revision(s) > rv)
}

// gone handles the deletion of a slice and reports whether it was
// unexpected (someone else deleted it, so the Service needs a sync).
func (t *sliceTracker) gone(key string, s *discoveryv1.EndpointSlice) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.byService[key]
	rv, ok := m[s.UID]
	delete(m, s.UID)
	return !ok || rv != deletionExpected
}

func (t *sliceTracker) forget(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.byService, key)
}
