package job

import (
	"strconv"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/clock"
)

// expectationTTL bounds how long a missing observation blocks a sync: a
// lost watch event must not wedge a Job forever.
const expectationTTL = 5 * time.Minute

// expectations track, per Job, what the controller asked of the API server
// and has not yet seen through the pod informer: pod creations and
// deletions (so a slow informer never makes it create twice) and tracking
// finalizer removals (so a pod whose removal is in flight is never counted
// a second time after its UID left status.uncountedTerminatedPods); and
// the last status write the Job informer has not yet delivered.
type expectations struct {
	clock clock.Clock
	mu    sync.Mutex
	m     map[string]*pending
}

type pending struct {
	adds, dels int
	since      time.Time
	removing   sets.Set[types.UID]

	// wrote is the resourceVersion (an etcd revision) of the last status
	// this controller wrote, at wroteAt.
	wrote   int64
	wroteAt time.Time
}

func newExpectations(c clock.Clock) *expectations {
	return &expectations{clock: c, m: map[string]*pending{}}
}

func (e *expectations) entry(key string) *pending {
	p := e.m[key]
	if p == nil {
		p = &pending{removing: sets.New[types.UID]()}
		e.m[key] = p
	}
	return p
}

// expect records that adds creations and dels deletions are in flight.
func (e *expectations) expect(key string, adds, dels int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.entry(key)
	p.adds, p.dels, p.since = adds, dels, e.clock.Now()
}

func (e *expectations) observe(key string, adds, dels int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.m[key]; p != nil {
		p.adds -= adds
		p.dels -= dels
	}
}

// satisfied reports whether every create and delete asked for has been
// seen (or the wait expired).
func (e *expectations) satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.m[key]
	return p == nil || (p.adds <= 0 && p.dels <= 0) || e.clock.Since(p.since) > expectationTTL
}

// expectRemoval records finalizer removals about to be requested.
func (e *expectations) expectRemoval(key string, uids []types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.entry(key).removing.Insert(uids...)
}

// removalObserved clears a removal: it was seen, or the request failed.
func (e *expectations) removalObserved(key string, uid types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.m[key]; p != nil {
		p.removing.Delete(uid)
	}
}

// removing returns the UIDs whose finalizer removal is still unseen.
func (e *expectations) removing(key string) sets.Set[types.UID] {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.m[key]; p != nil {
		return p.removing.Clone()
	}
	return sets.New[types.UID]()
}

// wroteStatus records a status write as the API server returned it.
func (e *expectations) wroteStatus(key string, job *batchv1.Job) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.entry(key)
	p.wrote, p.wroteAt = revision(job), e.clock.Now()
}

// staleJob reports whether job, as the informer holds it, predates the
// last status this controller wrote. A pod's finalizer goes only after its
// UID is in a written status, and the pod informer may show the removal
// before the Job informer shows that status: such a view counts the pod
// nowhere, and acting on it replaces a pod that already finished.
func (e *expectations) staleJob(key string, job *batchv1.Job) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, rv := e.m[key], revision(job)
	return p != nil && rv > 0 && rv < p.wrote && e.clock.Since(p.wroteAt) <= expectationTTL
}

// revision reads a resourceVersion, which in lotse is an etcd revision
// and only grows; 0, never compared, if it is not a number.
func revision(job *batchv1.Job) int64 {
	n, err := strconv.ParseInt(job.ResourceVersion, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}
