package garbagecollector

import (
	"reflect"
	"sort"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func cmRef(name string, uid types.UID) objectRef {
	return objectRef{APIVersion: "v1", Kind: "ConfigMap", Name: name, Namespace: "ns", UID: uid}
}

func secretRef(name string, uid types.UID) objectRef {
	return objectRef{APIVersion: "v1", Kind: "Secret", Name: name, Namespace: "ns", UID: uid}
}

func owns(r objectRef, block bool) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: r.APIVersion, Kind: r.Kind, Name: r.Name, UID: r.UID, BlockOwnerDeletion: &block}
}

func sorted(uids []types.UID) []types.UID {
	if len(uids) == 0 {
		return nil
	}
	out := append([]types.UID(nil), uids...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	// Duplicates are harmless in a workqueue; compare sets.
	dedup := out[:1]
	for _, u := range out[1:] {
		if u != dedup[len(dedup)-1] {
			dedup = append(dedup, u)
		}
	}
	return dedup
}

var (
	owner  = cmRef("owner", "o")
	other  = cmRef("other", "x")
	depA   = secretRef("a", "a")
	depB   = secretRef("b", "b")
	orphan = []string{metav1.FinalizerOrphanDependents}
	fg     = []string{metav1.FinalizerDeleteDependents}
)

// TestGraphObserve replays informer events and checks the graph's shape
// and what it queues after the last event.
func TestGraphObserve(t *testing.T) {
	cases := []struct {
		name   string
		events []observation
		// want after the last event
		del, orphan []types.UID
		virtual     []types.UID               // nodes that must be virtual
		dependents  map[types.UID][]types.UID // owner -> dependents
		absentNodes []types.UID
	}{{
		name:       "dependent first makes a virtual owner to verify",
		events:     []observation{{ref: depA, owners: []metav1.OwnerReference{owns(owner, false)}}},
		del:        []types.UID{"o"},
		virtual:    []types.UID{"o"},
		dependents: map[types.UID][]types.UID{"o": {"a"}},
	}, {
		name: "observing the owner makes it real",
		events: []observation{
			{ref: depA, owners: []metav1.OwnerReference{owns(owner, false)}},
			{ref: owner},
		},
		dependents: map[types.UID][]types.UID{"o": {"a"}},
	}, {
		name: "owner observed under other coordinates checks its dependents",
		events: []observation{
			{ref: depA, owners: []metav1.OwnerReference{owns(owner, false)}},
			{ref: cmRef("renamed", "o")},
		},
		del:        []types.UID{"a"},
		dependents: map[types.UID][]types.UID{"o": {"a"}},
	}, {
		name: "deleted owner queues its dependents",
		events: []observation{
			{ref: owner},
			{ref: depA, owners: []metav1.OwnerReference{owns(owner, false)}},
			{ref: depB, owners: []metav1.OwnerReference{owns(owner, false), owns(other, false)}},
			{ref: owner, gone: true},
		},
		del:         []types.UID{"a", "b"},
		absentNodes: []types.UID{"o"},
		virtual:     []types.UID{"x"},
		dependents:  map[types.UID][]types.UID{"x": {"b"}},
	}, {
		name: "dropping a reference detaches and forgets an unneeded virtual owner",
		events: []observation{
			{ref: depA, owners: []metav1.OwnerReference{owns(owner, false)}},
			{ref: depA},
		},
		absentNodes: []types.UID{"o"},
	}, {
		name: "foreground deletion queues the owner and its dependents",
		events: []observation{
			{ref: owner},
			{ref: depA, owners: []metav1.OwnerReference{owns(owner, true)}},
			{ref: depB, owners: []metav1.OwnerReference{owns(owner, false)}},
			{ref: owner, deleting: true, finalizers: fg},
		},
		del:        []types.UID{"a", "b", "o"},
		dependents: map[types.UID][]types.UID{"o": {"a", "b"}},
	}, {
		name: "foreground deletion queues only on the transition",
		events: []observation{
			{ref: owner},
			{ref: depA, owners: []metav1.OwnerReference{owns(owner, true)}},
			{ref: owner, deleting: true, finalizers: fg},
			{ref: owner, deleting: true, finalizers: fg},
		},
		dependents: map[types.UID][]types.UID{"o": {"a"}},
	}, {
		name: "a deleted dependent wakes an owner waiting in the foreground",
		events: []observation{
			{ref: owner, deleting: true, finalizers: fg},
			{ref: depA, owners: []metav1.OwnerReference{owns(owner, true)}},
			{ref: depA, gone: true},
		},
		del: []types.UID{"o"},
	}, {
		name: "unblocking a reference wakes an owner waiting in the foreground",
		events: []observation{
			{ref: owner, deleting: true, finalizers: fg},
			{ref: depA, owners: []metav1.OwnerReference{owns(owner, true)}},
			{ref: depA, owners: []metav1.OwnerReference{owns(owner, false)}},
		},
		del:        []types.UID{"o"},
		dependents: map[types.UID][]types.UID{"o": {"a"}},
	}, {
		name: "a new dependent of an owner in foreground deletion is looked at",
		events: []observation{
			{ref: owner, deleting: true, finalizers: fg},
			{ref: depA, owners: []metav1.OwnerReference{owns(owner, false)}},
		},
		del:        []types.UID{"a"},
		dependents: map[types.UID][]types.UID{"o": {"a"}},
	}, {
		name: "orphan finalizer queues the owner for orphaning",
		events: []observation{
			{ref: owner},
			{ref: depA, owners: []metav1.OwnerReference{owns(owner, false)}},
			{ref: owner, deleting: true, finalizers: orphan},
		},
		orphan:     []types.UID{"o"},
		dependents: map[types.UID][]types.UID{"o": {"a"}},
	}, {
		name: "a reference across namespaces is checked",
		events: []observation{
			{ref: owner},
			{ref: objectRef{APIVersion: "v1", Kind: "Secret", Name: "a", Namespace: "elsewhere", UID: "a"},
				owners: []metav1.OwnerReference{owns(owner, false)}},
		},
		del:        []types.UID{"a"},
		dependents: map[types.UID][]types.UID{"o": {"a"}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newGraph()
			var w work
			for _, ev := range tc.events {
				w = g.observe(ev)
			}
			if got := sorted(w.del); !reflect.DeepEqual(got, sorted(tc.del)) {
				t.Errorf("attempt to delete %v, want %v", got, sorted(tc.del))
			}
			if got := sorted(w.orphan); !reflect.DeepEqual(got, sorted(tc.orphan)) {
				t.Errorf("attempt to orphan %v, want %v", got, sorted(tc.orphan))
			}
			for _, uid := range tc.virtual {
				if _, ok := g.nodes[uid]; !ok {
					t.Errorf("virtual node %s missing from the graph", uid)
				}
			}
			for uid, n := range g.nodes {
				if want := hasUID(tc.virtual, uid); n.virtual != want {
					t.Errorf("node %s virtual = %v, want %v", uid, n.virtual, want)
				}
			}
			for owner, want := range tc.dependents {
				n, ok := g.nodes[owner]
				if !ok {
					t.Errorf("owner %s missing from the graph", owner)
					continue
				}
				if got := sorted(keys(n.dependents)); !reflect.DeepEqual(got, sorted(want)) {
					t.Errorf("dependents of %s = %v, want %v", owner, got, want)
				}
			}
			for _, uid := range tc.absentNodes {
				if _, ok := g.nodes[uid]; ok {
					t.Errorf("node %s should not be in the graph", uid)
				}
			}
		})
	}
}

func hasUID(list []types.UID, u types.UID) bool {
	for _, v := range list {
		if v == u {
			return true
		}
	}
	return false
}

// TestGraphAbsent checks what a live lookup that finds no owner does.
func TestGraphAbsent(t *testing.T) {
	wrongKind := objectRef{APIVersion: "v1", Kind: "Secret", Name: "owner", Namespace: "ns", UID: "o"}
	cases := []struct {
		name     string
		events   []observation
		absent   objectRef
		del      []types.UID
		requeue  bool
		stays    bool
		newIdent objectRef // the virtual node's identity afterwards, if it stays
	}{{
		name:   "a virtual owner verified absent is removed and its dependents queued",
		events: []observation{{ref: depA, owners: []metav1.OwnerReference{owns(owner, false)}}, {ref: depB, owners: []metav1.OwnerReference{owns(owner, false)}}},
		absent: owner,
		del:    []types.UID{"a", "b"},
	}, {
		name: "dependents naming other coordinates keep the virtual node, to be verified under them",
		events: []observation{
			{ref: depA, owners: []metav1.OwnerReference{owns(owner, false)}},
			{ref: depB, owners: []metav1.OwnerReference{owns(wrongKind, false)}},
		},
		absent:   owner,
		del:      []types.UID{"a"},
		requeue:  true,
		stays:    true,
		newIdent: wrongKind,
	}, {
		name: "an observed node is not removed by a lookup under other coordinates",
		events: []observation{
			{ref: owner},
			{ref: depA, owners: []metav1.OwnerReference{owns(wrongKind, false)}},
			{ref: depB, owners: []metav1.OwnerReference{owns(owner, false)}},
		},
		absent: wrongKind,
		del:    []types.UID{"a"},
		stays:  true,
	}, {
		name: "a cluster-scoped identity matches dependents in any namespace",
		events: []observation{
			{ref: depA, owners: []metav1.OwnerReference{owns(owner, false)}},
			{ref: objectRef{APIVersion: "v1", Kind: "Secret", Name: "b", Namespace: "other", UID: "b"}, owners: []metav1.OwnerReference{owns(owner, false)}},
		},
		absent: objectRef{APIVersion: "v1", Kind: "ConfigMap", Name: "owner", UID: "o"},
		del:    []types.UID{"a", "b"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newGraph()
			for _, ev := range tc.events {
				g.observe(ev)
			}
			w, requeue := g.absent(tc.absent)
			if got := sorted(w.del); !reflect.DeepEqual(got, sorted(tc.del)) {
				t.Errorf("attempt to delete %v, want %v", got, sorted(tc.del))
			}
			if requeue != tc.requeue {
				t.Errorf("requeue = %v, want %v", requeue, tc.requeue)
			}
			n, ok := g.nodes[tc.absent.UID]
			if ok != tc.stays {
				t.Fatalf("node in graph = %v, want %v", ok, tc.stays)
			}
			if ok && n.virtual && n.ref != tc.newIdent {
				t.Errorf("virtual node identity %+v, want %+v", n.ref, tc.newIdent)
			}
		})
	}
}

func TestViewBlocking(t *testing.T) {
	g := newGraph()
	g.observe(observation{ref: owner, deleting: true, finalizers: fg})
	g.observe(observation{ref: depA, owners: []metav1.OwnerReference{owns(owner, true)}})
	g.observe(observation{ref: depB, owners: []metav1.OwnerReference{owns(owner, false)}})
	v, ok := g.view("o")
	if !ok || !v.deletingDependents || !v.beingDeleted || v.orphaning {
		t.Fatalf("view = %+v, %v", v, ok)
	}
	b := v.blocking()
	if len(b) != 1 || b[0].ref.UID != "a" {
		t.Fatalf("blocking = %+v, want only a", b)
	}
}
