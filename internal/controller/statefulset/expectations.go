package statefulset

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// expectationTTL bounds how long a lost watch event can hold a set back.
const expectationTTL = 5 * time.Minute

// expectations remember, per StatefulSet, the pods the controller created
// (by name) and deleted (by uid) that the pod informer has not shown yet.
// A set with pending expectations is not reconciled: a stale cache could
// otherwise make it create or delete the same ordinal twice.
type expectations struct {
	clock clock.Clock
	mu    sync.Mutex
	m     map[string]*pending
}

type pending struct {
	creates map[string]bool
	deletes map[types.UID]bool
	since   time.Time
}

func newExpectations(c clock.Clock) *expectations {
	return &expectations{clock: c, m: map[string]*pending{}}
}

func (e *expectations) get(key string) *pending {
	p := e.m[key]
	if p == nil {
		p = &pending{creates: map[string]bool{}, deletes: map[types.UID]bool{}}
		e.m[key] = p
	}
	p.since = e.clock.Now()
	return p
}

func (e *expectations) expectCreate(key, pod string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.get(key).creates[pod] = true
}

func (e *expectations) expectDelete(key string, uid types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.get(key).deletes[uid] = true
}

// created records that pod name exists (seen by the informer, or the
// create failed and will never be seen).
func (e *expectations) created(key, pod string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.m[key]; p != nil {
		delete(p.creates, pod)
	}
}

// deleted records that the pod with uid is terminating or gone.
func (e *expectations) deleted(key string, uid types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.m[key]; p != nil {
		delete(p.deletes, uid)
	}
}

func (e *expectations) satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.m[key]
	return p == nil || (len(p.creates) == 0 && len(p.deletes) == 0) || e.clock.Since(p.since) > expectationTTL
}

func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}
