package slicetracker

import (
	"slices"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

func slice(uid string, rv string) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{UID: types.UID(uid), ResourceVersion: rv}}
}

func TestTracker(t *testing.T) {
	const key = "default/web"
	tests := []struct {
		name      string
		prepare   func(*Tracker)
		listed    []*discoveryv1.EndpointSlice
		wantStale bool
	}{
		{"nothing written", func(*Tracker) {}, []*discoveryv1.EndpointSlice{slice("a", "5")}, false},
		{"informer caught up", func(tr *Tracker) { tr.Wrote(key, slice("a", "7")) }, []*discoveryv1.EndpointSlice{slice("a", "7")}, false},
		{"informer newer", func(tr *Tracker) { tr.Wrote(key, slice("a", "7")) }, []*discoveryv1.EndpointSlice{slice("a", "9")}, false},
		{"informer behind an update", func(tr *Tracker) { tr.Wrote(key, slice("a", "7")) }, []*discoveryv1.EndpointSlice{slice("a", "6")}, true},
		{"created slice not seen yet", func(tr *Tracker) { tr.Wrote(key, slice("a", "7")) }, nil, true},
		{"deleted slice still listed", func(tr *Tracker) { tr.Deleted(key, slice("a", "7")) }, []*discoveryv1.EndpointSlice{slice("a", "7")}, true},
		{"deleted slice gone", func(tr *Tracker) { tr.Deleted(key, slice("a", "7")) }, nil, false},
		{"other owner's writes do not count", func(tr *Tracker) { tr.Wrote("default/other", slice("b", "7")) }, nil, false},
		{"forgotten", func(tr *Tracker) { tr.Wrote(key, slice("a", "7")); tr.Forget(key) }, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := New()
			tt.prepare(tr)
			if got := tr.Stale(key, tt.listed); got != tt.wantStale {
				t.Fatalf("Stale = %v, want %v", got, tt.wantStale)
			}
		})
	}
}

func TestNewsAndGone(t *testing.T) {
	const key = "default/web"
	tr := New()
	if !tr.News(key, slice("x", "3")) {
		t.Error("a slice the controller never wrote is news")
	}
	tr.Wrote(key, slice("a", "7"))
	if tr.News(key, slice("a", "7")) {
		t.Error("the echo of the controller's own write is news")
	}
	if !tr.News(key, slice("a", "8")) {
		t.Error("someone else's later write is not news")
	}
	tr.Deleted(key, slice("a", "8"))
	if tr.News(key, slice("a", "8")) || tr.Gone(key, slice("a", "8")) {
		t.Error("the controller's own deletion counted as news")
	}
	tr.Wrote(key, slice("b", "9"))
	if !tr.Gone(key, slice("b", "9")) {
		t.Error("a slice someone else deleted is not reported")
	}
	if len(tr.byKey) != 0 {
		t.Errorf("entries left after every slice went: %v", tr.byKey)
	}
}

func TestEventHandler(t *testing.T) {
	owned := func(uid, rv, owner string) *discoveryv1.EndpointSlice {
		s := slice(uid, rv)
		s.Labels = map[string]string{"owner": owner}
		return s
	}
	tr := New()
	var got []string
	h := tr.EventHandler(func(s *discoveryv1.EndpointSlice) string { return s.Labels["owner"] }, func(k string) { got = append(got, k) })
	tr.Wrote("web", owned("a", "7", "web"))
	h.OnAdd(owned("a", "7", "web"), false) // the echo of our own write
	h.OnAdd(owned("b", "3", ""), false)    // not ours
	h.OnUpdate(owned("a", "7", "web"), owned("a", "9", "api"))
	tr.Deleted("web", owned("c", "4", "web"))
	h.OnDelete(owned("c", "4", "web")) // our own deletion
	h.OnDelete(cache.DeletedFinalStateUnknown{Obj: owned("d", "5", "db")})
	if want := []string{"web", "api", "db"}; !slices.Equal(got, want) {
		t.Fatalf("enqueued %v, want %v", got, want)
	}
}
