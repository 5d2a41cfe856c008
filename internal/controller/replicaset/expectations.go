package replicaset

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// expectationTTL bounds how long a missing observation blocks a sync,
// as upstream's: a lost watch event must not wedge a ReplicaSet forever.
const expectationTTL = 5 * time.Minute

// expectations counts, per ReplicaSet, the pod creations and deletions
// the controller has asked for but not yet seen through the informer.
type expectations struct {
	clock clock.Clock
	mu    sync.Mutex
	m     map[string]*pending
}

type pending struct {
	adds, dels int
	since      time.Time
}

func newExpectations(c clock.Clock) *expectations {
	return &expectations{clock: c, m: map[string]*pending{}}
}

// expect records that adds creations and dels deletions are in flight.
func (e *expectations) expect(key string, adds, dels int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[key] = &pending{adds: adds, dels: dels, since: e.clock.Now()}
}

func (e *expectations) observe(key string, adds, dels int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.m[key]; p != nil {
		p.adds -= adds
		p.dels -= dels
	}
}

// satisfied reports whether the informer has caught up with everything
// asked for (or the wait has expired).
func (e *expectations) satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.m[key]
	return p == nil || (p.adds <= 0 && p.dels <= 0) || e.clock.Since(p.since) > expectationTTL
}

func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}
