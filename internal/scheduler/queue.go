package scheduler

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"k8s.io/utils/clock"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
)

// Queue holds the pods waiting for a node, in three parts as upstream:
//
//   - active: ready to be tried, highest priority first, then oldest;
//   - backoff: failed recently, waiting out an exponential backoff;
//   - unschedulable: no node fitted; retried when the cluster changes in a
//     way that could help (MoveAllToActiveOrBackoff), or after
//     UnschedulableTimeout as a safety net — never by tight polling.
//
// A pod is in at most one part, or "in flight" between Pop and Done.
type Queue struct {
	clock                clock.WithTicker
	initialBackoff       time.Duration
	maxBackoff           time.Duration
	unschedulableTimeout time.Duration

	mu            sync.Mutex
	cond          *sync.Cond
	active        podHeap
	activeByKey   map[string]*QueuedPod
	backoff       map[string]*QueuedPod
	unschedulable map[string]*QueuedPod
	inFlight      map[string]*QueuedPod
	// cycle counts Pops; moveCycle is the cycle of the last move
	// request. A pod that fails while a move request arrived during its
	// cycle goes to backoff, not unschedulable, so the event is not lost.
	cycle, moveCycle int64
	closed           bool
}

// QueuedPod is a pod in the queue with its retry bookkeeping.
type QueuedPod struct {
	Info *fw.PodInfo
	// Attempts counts how often the pod was popped.
	Attempts int
	// Cycle is the scheduling cycle of the last Pop.
	Cycle int64

	key             string
	backoffUntil    time.Time
	unschedulableAt time.Time
	index           int
}

// NewQueue returns a queue with upstream's timings: backoff 1 s doubling to
// 10 s, unschedulable pods flushed after 5 minutes.
func NewQueue(c clock.WithTicker) *Queue {
	q := &Queue{
		clock:                c,
		initialBackoff:       time.Second,
		maxBackoff:           10 * time.Second,
		unschedulableTimeout: 5 * time.Minute,
		activeByKey:          map[string]*QueuedPod{},
		backoff:              map[string]*QueuedPod{},
		unschedulable:        map[string]*QueuedPod{},
		inFlight:             map[string]*QueuedPod{},
	}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// podKey is namespace/name.
func podKey(info *fw.PodInfo) string { return info.Pod.Namespace + "/" + info.Pod.Name }

// Add queues a new pending pod, or refreshes the object of a queued one.
func (q *Queue) Add(info *fw.PodInfo) {
	q.mu.Lock()
	defer q.mu.Unlock()
	key := podKey(info)
	if qp := q.find(key); qp != nil {
		q.refresh(qp, info)
		return
	}
	q.pushActive(&QueuedPod{Info: info, key: key})
}

func (q *Queue) pushActive(qp *QueuedPod) {
	heap.Push(&q.active, qp)
	q.activeByKey[qp.key] = qp
	q.cond.Signal()
}

// Update refreshes a queued pod after its object changed. A pod waiting as
// unschedulable is tried again when its scheduling-relevant fields changed
// (the caller says so), since the change may make it fit.
func (q *Queue) Update(info *fw.PodInfo, relevantChange bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	key := podKey(info)
	qp := q.find(key)
	if qp == nil {
		q.pushActive(&QueuedPod{Info: info, key: key})
		return
	}
	q.refresh(qp, info)
	if _, ok := q.unschedulable[key]; ok && relevantChange {
		delete(q.unschedulable, key)
		q.requeueLocked(qp)
	}
}

func (q *Queue) find(key string) *QueuedPod {
	if qp, ok := q.inFlight[key]; ok {
		return qp
	}
	if qp, ok := q.backoff[key]; ok {
		return qp
	}
	if qp, ok := q.unschedulable[key]; ok {
		return qp
	}
	return q.activeByKey[key]
}

func (q *Queue) refresh(qp *QueuedPod, info *fw.PodInfo) {
	qp.Info = info
	if q.activeByKey[qp.key] == qp {
		heap.Fix(&q.active, qp.index)
	}
}

// Delete drops a pod: it was deleted, bound, or handed to another
// scheduler.
func (q *Queue) Delete(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.inFlight, key)
	delete(q.backoff, key)
	delete(q.unschedulable, key)
	if qp, ok := q.activeByKey[key]; ok {
		heap.Remove(&q.active, qp.index)
		delete(q.activeByKey, key)
	}
}

// Pop blocks until a pod is active and returns it, now in flight; ok is
// false once the queue is closed.
func (q *Queue) Pop() (qp *QueuedPod, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.active) == 0 && !q.closed {
		q.cond.Wait()
	}
	return q.popLocked()
}

// PopWithin is Pop that waits at most d for a pod: idle reports that none
// came (qp is nil then, and ok true).
func (q *Queue) PopWithin(d time.Duration) (qp *QueuedPod, ok, idle bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.active) == 0 && !q.closed {
		timedOut := false
		t := q.clock.NewTimer(d)
		stop := make(chan struct{})
		defer func() { t.Stop(); close(stop) }()
		go func() {
			select {
			case <-t.C():
				q.mu.Lock()
				timedOut = true
				q.cond.Broadcast()
				q.mu.Unlock()
			case <-stop:
			}
		}()
		for len(q.active) == 0 && !q.closed && !timedOut {
			q.cond.Wait()
		}
		if len(q.active) == 0 && !q.closed {
			return nil, true, true
		}
	}
	qp, ok = q.popLocked()
	return qp, ok, false
}

func (q *Queue) popLocked() (qp *QueuedPod, ok bool) {
	if q.closed {
		return nil, false
	}
	qp = heap.Pop(&q.active).(*QueuedPod)
	delete(q.activeByKey, qp.key)
	q.cycle++
	qp.Cycle = q.cycle
	qp.Attempts++
	q.inFlight[qp.key] = qp
	return qp, true
}

// Done ends a pod's flight after it was bound.
func (q *Queue) Done(qp *QueuedPod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.inFlight[qp.key] == qp {
		delete(q.inFlight, qp.key)
	}
}

// AddUnschedulable parks an in-flight pod no node fitted. If a move request
// came in during its cycle it goes to backoff instead, because the event
// that might have helped would otherwise be missed.
func (q *Queue) AddUnschedulable(qp *QueuedPod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.inFlight[qp.key] != qp {
		return // deleted or bound meanwhile
	}
	delete(q.inFlight, qp.key)
	qp.backoffUntil = q.clock.Now().Add(q.backoffFor(qp.Attempts))
	if q.moveCycle >= qp.Cycle {
		q.backoff[qp.key] = qp
		return
	}
	qp.unschedulableAt = q.clock.Now()
	q.unschedulable[qp.key] = qp
}

// AddBackoff puts an in-flight pod whose attempt failed for another reason
// (API error, bind conflict) into backoff.
func (q *Queue) AddBackoff(qp *QueuedPod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.inFlight[qp.key] != qp {
		return
	}
	delete(q.inFlight, qp.key)
	qp.backoffUntil = q.clock.Now().Add(q.backoffFor(qp.Attempts))
	q.backoff[qp.key] = qp
}

// backoffFor is initialBackoff doubled per earlier attempt, capped.
func (q *Queue) backoffFor(attempts int) time.Duration {
	d := q.initialBackoff
	for i := 1; i < attempts && d < q.maxBackoff; i++ {
		d *= 2
	}
	return min(d, q.maxBackoff)
}

// MoveAllToActiveOrBackoff retries every unschedulable pod because the
// cluster changed (a node came or changed, a pod went away). Pods still
// within their backoff wait it out first.
func (q *Queue) MoveAllToActiveOrBackoff() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for key, qp := range q.unschedulable {
		delete(q.unschedulable, key)
		q.requeueLocked(qp)
	}
	q.moveCycle = q.cycle
}

func (q *Queue) requeueLocked(qp *QueuedPod) {
	if q.clock.Now().Before(qp.backoffUntil) {
		q.backoff[qp.key] = qp
		return
	}
	q.pushActive(qp)
}

// flushBackoff moves pods whose backoff has expired to active.
func (q *Queue) flushBackoff() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clock.Now()
	for key, qp := range q.backoff {
		if !now.Before(qp.backoffUntil) {
			delete(q.backoff, key)
			q.pushActive(qp)
		}
	}
}

// flushUnschedulable retries pods parked longer than unschedulableTimeout,
// in case an event that would have helped was missed.
func (q *Queue) flushUnschedulable() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clock.Now()
	for key, qp := range q.unschedulable {
		if now.Sub(qp.unschedulableAt) >= q.unschedulableTimeout {
			delete(q.unschedulable, key)
			q.requeueLocked(qp)
		}
	}
}

// Run flushes backoff every second and old unschedulable pods every 30
// seconds until ctx is done, then closes the queue.
func (q *Queue) Run(ctx context.Context) {
	backoffTick := q.clock.NewTicker(time.Second)
	defer backoffTick.Stop()
	unschedTick := q.clock.NewTicker(30 * time.Second)
	defer unschedTick.Stop()
	for {
		select {
		case <-ctx.Done():
			q.Close()
			return
		case <-backoffTick.C():
			q.flushBackoff()
		case <-unschedTick.C():
			q.flushUnschedulable()
		}
	}
}

// Close wakes Pop callers; Pop returns false from then on.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}

// Len returns the number of pods in active, backoff and unschedulable.
func (q *Queue) Len() (active, backoff, unschedulable int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.active), len(q.backoff), len(q.unschedulable)
}

// podHeap orders by priority (higher first), then creation time (older
// first), then name for a stable order.
type podHeap []*QueuedPod

func (h podHeap) Len() int { return len(h) }
func (h podHeap) Less(i, j int) bool {
	a, b := h[i].Info, h[j].Info
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	ta, tb := a.Pod.CreationTimestamp.Time, b.Pod.CreationTimestamp.Time
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	return h[i].key < h[j].key
}
func (h podHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *podHeap) Push(x any) {
	qp := x.(*QueuedPod)
	qp.index = len(*h)
	*h = append(*h, qp)
}
func (h *podHeap) Pop() any {
	old := *h
	qp := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	qp.index = -1
	return qp
}
