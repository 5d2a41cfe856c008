package agent

import (
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Restart and image pull back-off, as upstream: 10 s doubling to 5 min,
// forgotten once a container has run cleanly for 10 min.
const (
	backoffInitial = 10 * time.Second
	backoffMax     = 5 * time.Minute
	backoffReset   = 2 * backoffMax
)

type backoffEntry struct {
	delay time.Duration
	last  time.Time
	// warned is set once the BackOff event of this wait was sent.
	warned bool
}

func backoffKey(uid types.UID, name string) string { return string(uid) + "/" + name }

// inBackoff is how long a restart of the container that ended at
// finished must still wait: the back-off counts from the exit, as
// upstream's.
func (a *Agent) inBackoff(uid types.UID, name string, finished time.Time) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.backoff[backoffKey(uid, name)]
	if e == nil {
		return 0
	}
	if time.Since(e.last) > backoffReset {
		delete(a.backoff, backoffKey(uid, name))
		return 0
	}
	return max(time.Until(finished.Add(e.delay)), 0)
}

func (a *Agent) backoffDelay(uid types.UID, name string) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e := a.backoff[backoffKey(uid, name)]; e != nil {
		return e.delay
	}
	return 0
}

// noteRestart records a restart: the next one waits twice as long.
func (a *Agent) noteRestart(uid types.UID, name string) {
	a.bump(backoffKey(uid, name))
}

// pullBackoff records a failed image pull and says when to try again.
func (a *Agent) pullBackoff(uid types.UID, name string) time.Duration {
	return a.bump(backoffKey(uid, "pull:"+name))
}

// pullWait is how long an image pull for the container must still wait.
func (a *Agent) pullWait(uid types.UID, name string) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e := a.backoff[backoffKey(uid, "pull:"+name)]; e != nil {
		return time.Until(e.last.Add(e.delay))
	}
	return 0
}

func (a *Agent) bump(key string) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.backoff[key]
	if e == nil || time.Since(e.last) > backoffReset {
		e = &backoffEntry{}
		a.backoff[key] = e
	}
	if e.delay == 0 {
		e.delay = backoffInitial
	} else {
		e.delay = min(2*e.delay, backoffMax)
	}
	e.last = time.Now()
	e.warned = false
	return e.delay
}

func (a *Agent) forgetPullBackoff(uid types.UID, name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.backoff, backoffKey(uid, "pull:"+name))
}

func (a *Agent) forgetBackoff(uid types.UID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k := range a.backoff {
		if strings.HasPrefix(k, string(uid)+"/") {
			delete(a.backoff, k)
		}
	}
}

// firstWarning reports whether this is the first look at the current
// back-off wait, so that it is announced by one event, not every sync.
func (a *Agent) firstWarning(uid types.UID, name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.backoff[backoffKey(uid, name)]
	if e == nil || e.warned {
		return false
	}
	e.warned = true
	return true
}
