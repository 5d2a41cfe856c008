package job

import (
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Pod re-creation back-off after failures, as upstream: 10 s, doubling with
// every failure since the last success, capped at 10 minutes.
const (
	defaultPodFailureBackoff = 10 * time.Second
	maxPodFailureBackoff     = 10 * time.Minute
)

// backoffRecord remembers a job's failures since its last success. It lives
// in memory only, as upstream's: a restarted controller forgets the delay.
type backoffRecord struct {
	failuresAfterLastSuccess int
	lastFailureTime          time.Time
}

type backoffStore struct {
	mu sync.Mutex
	m  map[string]backoffRecord
}

func newBackoffStore() *backoffStore { return &backoffStore{m: map[string]backoffRecord{}} }

func (s *backoffStore) get(key string) backoffRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[key]
}

func (s *backoffStore) set(key string, r backoffRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.failuresAfterLastSuccess == 0 {
		delete(s.m, key)
		return
	}
	s.m[key] = r
}

func (s *backoffStore) forget(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}

// next folds newly finished pods into a record: a success resets the
// count, and only failures that finished after the latest success count.
func (r backoffRecord) next(succeeded, failed []*corev1.Pod) backoffRecord {
	if len(succeeded) == 0 && len(failed) == 0 {
		return r
	}
	failed = sortedByFinish(failed)
	if len(succeeded) == 0 {
		return backoffRecord{
			failuresAfterLastSuccess: r.failuresAfterLastSuccess + len(failed),
			lastFailureTime:          finishedTime(failed[len(failed)-1]),
		}
	}
	succeeded = sortedByFinish(succeeded)
	lastSuccess := finishedTime(succeeded[len(succeeded)-1])
	var out backoffRecord
	for i := len(failed) - 1; i >= 0; i-- {
		t := finishedTime(failed[i])
		if !t.After(lastSuccess) {
			break
		}
		if out.failuresAfterLastSuccess == 0 {
			out.lastFailureTime = t
		}
		out.failuresAfterLastSuccess++
	}
	return out
}

// remaining is how long pod creation must still wait.
func (r backoffRecord) remaining(now time.Time, base, limit time.Duration) time.Duration {
	return backoffLeft(r.failuresAfterLastSuccess, r.lastFailureTime, now, base, limit)
}

// backoffLeft is base·2^(failures-1), capped at limit, minus the time
// since the last failure.
func backoffLeft(failures int, last, now time.Time, base, limit time.Duration) time.Duration {
	if failures <= 0 {
		return 0
	}
	d := base
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	if elapsed := now.Sub(last); elapsed < d {
		return d - elapsed
	}
	return 0
}

func sortedByFinish(pods []*corev1.Pod) []*corev1.Pod {
	out := append([]*corev1.Pod(nil), pods...)
	sort.SliceStable(out, func(i, j int) bool { return finishedTime(out[i]).Before(finishedTime(out[j])) })
	return out
}

// finishedTime is when a pod ended: its last container's exit when every
// container has exited, else when it stopped being Ready, else when its
// deletion began, else its creation.
func finishedTime(p *corev1.Pod) time.Time {
	var last time.Time
	all := len(p.Status.ContainerStatuses) > 0
	for _, cs := range p.Status.ContainerStatuses {
		t := cs.State.Terminated
		if t == nil {
			all = false
			break
		}
		if t.FinishedAt.After(last) {
			last = t.FinishedAt.Time
		}
	}
	if all && !last.IsZero() {
		return last
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionFalse && !c.LastTransitionTime.IsZero() {
			return c.LastTransitionTime.Time
		}
	}
	if p.DeletionTimestamp != nil {
		grace := time.Duration(0)
		if p.DeletionGracePeriodSeconds != nil {
			grace = time.Duration(*p.DeletionGracePeriodSeconds) * time.Second
		}
		return p.DeletionTimestamp.Add(-grace)
	}
	return p.CreationTimestamp.Time
}
