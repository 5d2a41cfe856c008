package endpointslicemirroring

import (
	"strconv"
	"sync"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// tracker remembers, per Endpoints key, the resourceVersion of every slice
// the controller wrote and the slices it deleted. A sync whose informer
// shows older versions (or a deleted slice still there, or a created one
// missing) would act on a stale picture and create duplicates, so it waits
// instead; and the informer's echo of the controller's own write needs no
// sync. Upstream compares generations; lotse's resourceVersions are etcd
// revisions, which only grow, so they order writes just as well.
type tracker struct {
	mu    sync.Mutex
	byKey map[string]map[types.UID]int64
}

// deletionExpected marks a slice the controller deleted.
const deletionExpected = -1

func newTracker() *tracker {
	return &tracker{byKey: map[string]map[types.UID]int64{}}
}

func revision(s *discoveryv1.EndpointSlice) int64 {
	n, err := strconv.ParseInt(s.ResourceVersion, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func (t *tracker) set(key string, uid types.UID, rv int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.byKey[key]
	if m == nil {
		m = map[types.UID]int64{}
		t.byKey[key] = m
	}
	m[uid] = rv
}

// wrote records a slice as the API server returned it from a write.
func (t *tracker) wrote(key string, s *discoveryv1.EndpointSlice) { t.set(key, s.UID, revision(s)) }

// deleted records that the controller deleted the slice.
func (t *tracker) deleted(key string, s *discoveryv1.EndpointSlice) {
	t.set(key, s.UID, deletionExpected)
}

// stale reports whether the listed slices lag behind the controller's
// own writes.
func (t *tracker) stale(key string, listed []*discoveryv1.EndpointSlice) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.byKey[key]
	seen := make(map[types.UID]bool, len(listed))
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

// news reports whether an informer event for the slice is not merely the
// echo of the controller's own write.
func (t *tracker) news(key string, s *discoveryv1.EndpointSlice) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	rv, ok := t.byKey[key][s.UID]
	return !ok || (rv != deletionExpected && revision(s) > rv)
}

// gone handles a slice's deletion and reports whether someone else
// deleted it, so that its Endpoints needs a sync.
func (t *tracker) gone(key string, s *discoveryv1.EndpointSlice) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.byKey[key]
	rv, ok := m[s.UID]
	delete(m, s.UID)
	if len(m) == 0 {
		delete(t.byKey, key)
	}
	return !ok || rv != deletionExpected
}
