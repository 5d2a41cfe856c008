package agent

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestShouldRestart(t *testing.T) {
	tests := []struct {
		policy corev1.RestartPolicy
		code   int32
		want   bool
	}{
		{corev1.RestartPolicyAlways, 0, true},
		{corev1.RestartPolicyAlways, 1, true},
		{corev1.RestartPolicyOnFailure, 0, false},
		{corev1.RestartPolicyOnFailure, 137, true},
		{corev1.RestartPolicyNever, 0, false},
		{corev1.RestartPolicyNever, 1, false},
		{"", 0, true}, // unset means the default, Always
	}
	for _, tt := range tests {
		if got := shouldRestart(tt.policy, tt.code); got != tt.want {
			t.Errorf("shouldRestart(%q, %d) = %v, want %v", tt.policy, tt.code, got, tt.want)
		}
	}
}

// TestRestartBackoff follows one crashing container: the first restart
// is immediate, then the wait (counted from the exit) doubles from 10 s
// to at most 5 min.
func TestRestartBackoff(t *testing.T) {
	a := newTestAgent(t)
	const uid, name = "uid-1", "app"
	if w := a.inBackoff(uid, name, time.Now()); w != 0 {
		t.Fatalf("first restart waits %v, want 0", w)
	}
	if a.firstWarning(uid, name) {
		t.Error("firstWarning without a back-off")
	}
	for i, want := range []time.Duration{10, 20, 40, 80, 160, 300, 300, 300} {
		want *= time.Second
		a.noteRestart(uid, name)
		if got := a.backoffDelay(uid, name); got != want {
			t.Errorf("restart %d: delay %v, want %v", i+1, got, want)
		}
		if w := a.inBackoff(uid, name, time.Now()); w <= want-time.Second || w > want {
			t.Errorf("restart %d: inBackoff %v, want just under %v", i+1, w, want)
		}
		// One event per wait, however many syncs look at it.
		if !a.firstWarning(uid, name) {
			t.Errorf("restart %d: first look not reported", i+1)
		}
		if a.firstWarning(uid, name) {
			t.Errorf("restart %d: second look reported", i+1)
		}
	}
	if w := a.inBackoff(uid, "other", time.Now()); w != 0 {
		t.Errorf("another container waits %v", w)
	}
	if w := a.inBackoff("uid-2", name, time.Now()); w != 0 {
		t.Errorf("the same name in another pod waits %v", w)
	}
}

func TestBackoffExpiry(t *testing.T) {
	const uid, name = "uid-1", "app"
	tests := []struct {
		name      string
		age       time.Duration
		delay     time.Duration
		wantWait  bool
		wantDelay time.Duration // after the next restart
	}{
		{"wait over, still remembered", time.Minute, 40 * time.Second, false, 80 * time.Second},
		{"still waiting", 5 * time.Second, 40 * time.Second, true, 80 * time.Second},
		{"forgotten after 10 min", 11 * time.Minute, 5 * time.Minute, false, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAgent(t)
			a.backoff[backoffKey(uid, name)] = &backoffEntry{delay: tt.delay, last: time.Now().Add(-tt.age)}
			if w := a.inBackoff(uid, name, time.Now().Add(-tt.age)); (w > 0) != tt.wantWait {
				t.Errorf("inBackoff = %v, want waiting %v", w, tt.wantWait)
			}
			a.noteRestart(uid, name)
			if got := a.backoffDelay(uid, name); got != tt.wantDelay {
				t.Errorf("delay after restart = %v, want %v", got, tt.wantDelay)
			}
		})
	}
}

func TestPullBackoff(t *testing.T) {
	a := newTestAgent(t)
	if w := a.pullWait("uid-1", "app"); w != 0 {
		t.Fatalf("pullWait before any failure = %v", w)
	}
	for _, want := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second} {
		if got := a.pullBackoff("uid-1", "app"); got != want {
			t.Errorf("pullBackoff = %v, want %v", got, want)
		}
	}
	if w := a.pullWait("uid-1", "app"); w <= 39*time.Second || w > 40*time.Second {
		t.Errorf("pullWait = %v, want just under 40s", w)
	}
	// Pull and restart back-off are separate.
	if w := a.inBackoff("uid-1", "app", time.Now()); w != 0 {
		t.Errorf("restart back-off %v after pull failures", w)
	}
	a.noteRestart("uid-1", "app")
	a.forgetPullBackoff("uid-1", "app")
	if w := a.pullWait("uid-1", "app"); w != 0 {
		t.Errorf("pullWait after forgetPullBackoff = %v", w)
	}
	if d := a.backoffDelay("uid-1", "app"); d != 10*time.Second {
		t.Errorf("forgetPullBackoff dropped the restart back-off: %v", d)
	}
}

func TestForgetBackoff(t *testing.T) {
	a := newTestAgent(t)
	a.noteRestart("uid-1", "app")
	a.pullBackoff("uid-1", "app")
	a.noteRestart("uid-10", "app") // shares a prefix with uid-1
	a.noteRestart("uid-2", "app")
	a.forgetBackoff("uid-1")
	for key, want := range map[string]bool{"uid-1/app": false, "uid-1/pull:app": false, "uid-10/app": true, "uid-2/app": true} {
		if _, got := a.backoff[key]; got != want {
			t.Errorf("entry %s kept = %v, want %v", key, got, want)
		}
	}
}

// TestBackoffCountsFromExit: a container that ran longer than its
// back-off restarts at once, as upstream's IsInBackOffSince.
func TestBackoffCountsFromExit(t *testing.T) {
	a := newTestAgent(t)
	const uid, name = "uid-1", "app"
	a.noteRestart(uid, name) // delay 10 s from now
	if w := a.inBackoff(uid, name, time.Now().Add(-30*time.Second)); w != 0 {
		t.Errorf("exit 30 s ago with a 10 s back-off waits %v, want 0", w)
	}
	if w := a.inBackoff(uid, name, time.Now().Add(-4*time.Second)); w < 5*time.Second || w > 6*time.Second {
		t.Errorf("exit 4 s ago with a 10 s back-off waits %v, want about 6 s", w)
	}
}
