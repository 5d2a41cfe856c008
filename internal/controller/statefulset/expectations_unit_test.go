package statefulset

import (
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestExpectations(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(0, 0))
	e := newExpectations(clk)
	steps := []struct {
		do   func()
		want bool
	}{
		{func() {}, true},
		{func() { e.expectCreate("ns/web", "web-0") }, false},
		{func() { e.created("ns/web", "web-1") }, false}, // another pod: still waiting
		{func() { e.created("ns/web", "web-0") }, true},
		{func() { e.expectDelete("ns/web", "uid-2") }, false},
		{func() { e.deleted("ns/other", "uid-2") }, false}, // another set
		{func() { e.deleted("ns/web", "uid-2") }, true},
		{func() { e.expectDelete("ns/web", "uid-3") }, false},
		{func() { clk.Step(expectationTTL + time.Second) }, true}, // a lost event must not wedge the set
		{func() { e.expectCreate("ns/web", "web-3"); e.forget("ns/web") }, true},
	}
	for i, s := range steps {
		s.do()
		if got := e.satisfied("ns/web"); got != s.want {
			t.Fatalf("step %d: satisfied = %v, want %v", i, got, s.want)
		}
	}
}
