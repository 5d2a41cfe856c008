package slicetracker

import (
	"strconv"
	"sync"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// Tracker holds, per owner key (a Service's or an Endpoints' namespace/
// name), the resourceVersion of every slice the controller wrote and the
// slices it deleted. Upstream compares generations; lotse sets none on
// EndpointSlices, and its resourceVersions are etcd revisions, which only
// grow, so they order writes just as well.
type Tracker struct {
	mu    sync.Mutex
	byKey map[string]map[types.UID]int64
}

// deletionExpected marks a slice the controller deleted.
const deletionExpected = -1

// New returns an empty tracker.
func New() *Tracker {
	return &Tracker{byKey: map[string]map[types.UID]int64{}}
}

func revision(s *discoveryv1.EndpointSlice) int64 {
	n, err := strconv.ParseInt(s.ResourceVersion, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func (t *Tracker) set(key string, uid types.UID, rv int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.byKey[key]
	if m == nil {
		m = map[types.UID]int64{}
		t.byKey[key] = m
	}
	m[uid] = rv
}

// Wrote records a slice as the API server returned it from a write.
func (t *Tracker) Wrote(key string, s *discoveryv1.EndpointSlice) { t.set(key, s.UID, revision(s)) }

// Deleted records that the controller deleted the slice.
func (t *Tracker) Deleted(key string, s *discoveryv1.EndpointSlice) {
	t.set(key, s.UID, deletionExpected)
}

// Stale reports whether the listed slices lag behind the controller's own
// writes: an older version, a deleted slice still listed, or a written one
// missing.
func (t *Tracker) Stale(key string, listed []*discoveryv1.EndpointSlice) bool {
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

// News reports whether an informer event for the slice is news rather than
// the echo of the controller's own write.
func (t *Tracker) News(key string, s *discoveryv1.EndpointSlice) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	rv, ok := t.byKey[key][s.UID]
	return !ok || (rv != deletionExpected && revision(s) > rv)
}

// Gone handles a slice's deletion and reports whether someone else deleted
// it, so that its owner needs a sync.
func (t *Tracker) Gone(key string, s *discoveryv1.EndpointSlice) bool {
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

// Forget drops what is known about an owner that is gone.
func (t *Tracker) Forget(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.byKey, key)
}

// EventHandler turns slice events into owner keys to sync: a slice that
// changed or appeared for a reason other than the controller's own write,
// the owner a relabelled slice left, and the owner of a slice someone
// else deleted. ownerKey names a slice's owner ("" for slices that are
// not the controller's).
func (t *Tracker) EventHandler(ownerKey func(*discoveryv1.EndpointSlice) string, enqueue func(key string)) cache.ResourceEventHandler {
	onSlice := func(obj any) {
		if s, ok := obj.(*discoveryv1.EndpointSlice); ok {
			if key := ownerKey(s); key != "" && t.News(key, s) {
				enqueue(key)
			}
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: onSlice,
		UpdateFunc: func(old, obj any) {
			o, ok1 := old.(*discoveryv1.EndpointSlice)
			n, ok2 := obj.(*discoveryv1.EndpointSlice)
			if ok1 && ok2 {
				if key := ownerKey(o); key != "" && key != ownerKey(n) {
					enqueue(key)
				}
			}
			onSlice(obj)
		},
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if s, ok := obj.(*discoveryv1.EndpointSlice); ok {
				if key := ownerKey(s); key != "" && t.Gone(key, s) {
					enqueue(key)
				}
			}
		},
	}
}
