package agent

import (
	"context"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
)

// resyncPeriod is how often a worker syncs its pod without being woken:
// it catches whatever no event announced (a configMap volume's source
// changing, say).
const resyncPeriod = 10 * time.Second

// podWorker drives one pod (by UID) through its life on this node.
type podWorker struct {
	uid       types.UID
	namespace string
	name      string
	wake      chan struct{}
	cancel    context.CancelFunc
	done      chan struct{}
	// next is when the worker wants to sync again without an event
	// (back-off expiry, a probe's period).
	mu   sync.Mutex
	next time.Time
}

// wakePod makes the pod's worker sync soon, starting one if needed.
func (a *Agent) wakePod(uid types.UID, namespace, name string) {
	a.mu.Lock()
	w := a.workers[string(uid)]
	if w == nil {
		ctx, cancel := context.WithCancel(context.Background())
		w = &podWorker{uid: uid, namespace: namespace, name: name, wake: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
		a.workers[string(uid)] = w
		go a.runWorker(ctx, w)
	}
	a.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (a *Agent) wake(uid string) {
	a.mu.Lock()
	w := a.workers[uid]
	a.mu.Unlock()
	if w != nil {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// syncAgain asks the worker to sync again after d at the latest.
func (w *podWorker) syncAgain(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	at := time.Now().Add(d)
	if w.next.IsZero() || at.Before(w.next) {
		w.next = at
	}
}

func (a *Agent) runWorker(ctx context.Context, w *podWorker) {
	defer close(w.done)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-timer.C:
		}
		w.mu.Lock()
		w.next = time.Time{}
		w.mu.Unlock()
		finished, err := a.syncPod(ctx, w)
		if err != nil && ctx.Err() == nil {
			if !apierrors.IsConflict(err) {
				a.log.Warn("pod sync failed", "pod", w.namespace+"/"+w.name, "err", err)
			}
			w.syncAgain(time.Second)
		}
		if finished {
			a.mu.Lock()
			if a.workers[string(w.uid)] == w {
				delete(a.workers, string(w.uid))
			}
			a.mu.Unlock()
			a.probes.forget(w.uid)
			a.forgetBackoff(w.uid)
			a.forgetTokens(w.uid)
			return
		}
		w.syncAgain(resyncPeriod)
		w.mu.Lock()
		d := time.Until(w.next)
		w.mu.Unlock()
		timer.Reset(max(d, 0))
	}
}

// stopWorkers ends every worker; containers keep running.
func (a *Agent) stopWorkers() {
	a.mu.Lock()
	workers := make([]*podWorker, 0, len(a.workers))
	for _, w := range a.workers {
		workers = append(workers, w)
	}
	a.mu.Unlock()
	for _, w := range workers {
		w.cancel()
		<-w.done
	}
}
