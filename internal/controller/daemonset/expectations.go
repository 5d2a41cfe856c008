package daemonset

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// expectationTTL bounds how long a missing observation blocks a sync, as
// upstream's: a lost watch event must not wedge a DaemonSet forever.
const expectationTTL = 5 * time.Minute

// expectations record, per DaemonSet, the pod creations the controller
// asked for and the pods it asked to delete but has not yet seen through
// the informer. Deletions are tracked by pod UID because a pod is seen
// going twice (deletionTimestamp set, then gone) and must count once.
type expectations struct {
	clock clock.Clock
	mu    sync.Mutex
	m     map[string]*pending
}

type pending struct {
	adds  int
	dels  map[types.UID]bool
	since time.Time
}

func newExpectations(c clock.Clock) *expectations {
	return &expectations{clock: c, m: map[string]*pending{}}
}

// expect replaces key's expectations: adds creations and the deletion of
// the pods with uids.
func (e *expectations) expect(key string, adds int, uids []types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := &pending{adds: adds, dels: map[types.UID]bool{}, since: e.clock.Now()}
	for _, u := range uids {
		p.dels[u] = true
	}
	e.m[key] = p
}

// created records one creation seen, or one that will never be seen
// because it was not made.
func (e *expectations) created(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.m[key]; p != nil {
		p.adds--
	}
}

// deleted records that the pod uid is going or gone.
func (e *expectations) deleted(key string, uid types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.m[key]; p != nil {
		delete(p.dels, uid)
	}
}

// satisfied reports whether the informer has caught up with everything
// asked for (or the wait has expired).
func (e *expectations) satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.m[key]
	return p == nil || (p.adds <= 0 && len(p.dels) == 0) || e.clock.Since(p.since) > expectationTTL
}

func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}
