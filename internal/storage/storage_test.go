package storage

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/lotse/lotse/internal/etcd"
)

// newTestStore starts a real embedded etcd and a store over configmaps.
func newTestStore(t *testing.T, window int) (*Store, *Resource) {
	t.Helper()
	return newTestStoreTTL(t, window, 0)
}

// newTestStoreTTL is newTestStore whose config maps expire after ttl.
func newTestStoreTTL(t *testing.T, window int, ttl time.Duration) (*Store, *Resource) {
	t.Helper()
	ctx := context.Background()
	member, err := etcd.Start(ctx, etcd.Config{DataDir: t.TempDir(), ClientURL: "http://127.0.0.1:0", PeerURL: "http://127.0.0.1:0", Unsafe: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { member.Close() })
	client, err := clientv3.New(clientv3.Config{Endpoints: member.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	s, err := New(Config{Client: client, EventWindow: window, Resources: []ResourceSpec{
		{GroupResource: corev1.Resource("configmaps"), Kind: corev1.SchemeGroupVersion.WithKind("ConfigMap"), Namespaced: true, TTL: ttl},
	}})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	s.Start(sctx)
	t.Cleanup(func() { cancel(); s.Stop() })
	if err := s.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	r, _ := s.Resource(corev1.Resource("configmaps"))
	return s, r
}

// cm is a config map whose value v is also its label v, for selectors.
func cm(ns, name, v string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"v": v}}, Data: map[string]string{"v": v}}
}

// setV sets a config map's value and label v.
func setV(obj runtime.Object, v string) {
	c := obj.(*corev1.ConfigMap)
	c.Data["v"], c.Labels["v"] = v, v
}

// labelled returns a Match for label v = value.
func labelled(value string) func(Attrs) bool {
	return func(a Attrs) bool { return a.Labels["v"] == value }
}

// items returns a list's items, decoded.
func items(t *testing.T, l *ListResult) []runtime.Object {
	t.Helper()
	out, err := l.Items()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func rvOf(obj runtime.Object) string { return obj.(*corev1.ConfigMap).ResourceVersion }

func TestCreateGetUpdateDelete(t *testing.T) {
	_, r := newTestStore(t, 100)
	ctx := context.Background()
	created, err := r.Create(ctx, "a", "x", cm("a", "x", "1"))
	if err != nil {
		t.Fatal(err)
	}
	if rvOf(created) == "" {
		t.Fatal("created object has no resourceVersion")
	}
	if _, err := r.Create(ctx, "a", "x", cm("a", "x", "1")); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: got %v, want ErrExists", err)
	}
	got, err := r.Get(ctx, "a", "x")
	if err != nil || rvOf(got) != rvOf(created) || got.(*corev1.ConfigMap).Data["v"] != "1" {
		t.Fatalf("get: %v %v", got, err)
	}
	updated, err := r.Update(ctx, "a", "x", func(cur runtime.Object) (runtime.Object, error) {
		cur.(*corev1.ConfigMap).Data["v"] = "2"
		return cur, nil
	})
	if err != nil || rvOf(updated) == rvOf(created) {
		t.Fatalf("update: %v rv %s", err, rvOf(updated))
	}
	same, err := r.Update(ctx, "a", "x", func(cur runtime.Object) (runtime.Object, error) { return cur, nil })
	if err != nil || rvOf(same) != rvOf(updated) {
		t.Fatalf("no-op update changed the resourceVersion: %v %s != %s", err, rvOf(same), rvOf(updated))
	}
	if _, err := r.Delete(ctx, "a", "x", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get(ctx, "a", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if _, err := r.Update(ctx, "a", "x", func(cur runtime.Object) (runtime.Object, error) { return cur, nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of missing object: %v", err)
	}
}

func TestListFromCacheAndPages(t *testing.T) {
	_, r := newTestStore(t, 100)
	ctx := context.Background()
	for i := 0; i < 25; i++ {
		ns := "a"
		if i%2 == 1 {
			ns = "b"
		}
		if _, err := r.Create(ctx, ns, fmt.Sprintf("cm-%02d", i), cm(ns, fmt.Sprintf("cm-%02d", i), "x")); err != nil {
			t.Fatal(err)
		}
	}
	all, err := r.List(ctx, ListOptions{})
	if err != nil || all.Len() != 25 {
		t.Fatalf("list all: %v %v", all, err)
	}
	inA, err := r.List(ctx, ListOptions{Namespace: "a"})
	if err != nil || inA.Len() != 13 {
		t.Fatalf("list a: %v %v", inA, err)
	}
	var names []string
	opts := ListOptions{Limit: 10}
	for page := 0; ; page++ {
		res, err := r.List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range items(t, res) {
			names = append(names, o.(*corev1.ConfigMap).Namespace+"/"+o.(*corev1.ConfigMap).Name)
		}
		if res.Continue == "" {
			break
		}
		if res.RemainingItemCount == nil || *res.RemainingItemCount != int64(25-len(names)) {
			t.Fatalf("page %d: remainingItemCount %v after %d items", page, res.RemainingItemCount, len(names))
		}
		opts.Continue = res.Continue
	}
	if len(names) != 25 {
		t.Fatalf("pages returned %d items: %v", len(names), names)
	}
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Fatalf("pages not in key order: %v", names)
		}
	}
	if _, err := r.List(ctx, ListOptions{Continue: "garbage"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad continue token: %v", err)
	}
}

func next(t *testing.T, w Watcher) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch closed")
		}
		return ev.Event
	case <-time.After(5 * time.Second):
		t.Fatal("no watch event in 5s")
	}
	return watch.Event{}
}

func TestWatchResumeAndSelection(t *testing.T) {
	_, r := newTestStore(t, 100)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first, _ := r.Create(ctx, "a", "one", cm("a", "one", "1"))
	_, _ = r.Create(ctx, "a", "two", cm("a", "two", "1"))

	// Resume after the first create: exactly the second create follows.
	w, err := r.Watch(ctx, WatchOptions{ResourceVersion: rvOf(first)})
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, w); ev.Type != watch.Added || ev.Object.(*corev1.ConfigMap).Name != "two" {
		t.Fatalf("resumed watch got %s %v", ev.Type, ev.Object)
	}

	// A selection watch sees an object leave it as DELETED.
	sel, err := r.Watch(ctx, WatchOptions{Match: labelled("1")})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if ev := next(t, sel); ev.Type != watch.Added {
			t.Fatalf("initial event %d: %s", i, ev.Type)
		}
	}
	_, err = r.Update(ctx, "a", "one", func(cur runtime.Object) (runtime.Object, error) {
		setV(cur, "2")
		return cur, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, sel); ev.Type != watch.Deleted || ev.Object.(*corev1.ConfigMap).Name != "one" {
		t.Fatalf("object leaving the selection: got %s", ev.Type)
	}
	if ev := next(t, w); ev.Type != watch.Modified {
		t.Fatalf("unfiltered watch: got %s", ev.Type)
	}
}

// storeWithAStart is a test store holding one config map, whose
// resourceVersion the watches of a test start from.
func storeWithAStart(t *testing.T) (context.Context, *Resource, runtime.Object) {
	t.Helper()
	_, r := newTestStore(t, 100)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	start, err := r.Create(ctx, "a", "start", cm("a", "start", "0"))
	if err != nil {
		t.Fatal(err)
	}
	return ctx, r, start
}

// TestResumedWatchSeesWhatALiveWatchSaw replays, from the cache's event
// window, what live watches were sent (adds, updates moving an object out
// of and into a selection, deletes) and requires the same events, while
// the window holds the objects as stored rather than decoded.
func TestResumedWatchSeesWhatALiveWatchSaw(t *testing.T) {
	ctx, r, start := storeWithAStart(t)
	selected := labelled("1")
	watchFrom := func(match func(Attrs) bool) Watcher {
		w, err := r.Watch(ctx, WatchOptions{ResourceVersion: rvOf(start), Match: match})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	liveAll, liveSel := watchFrom(nil), watchFrom(selected)

	set := func(name, v string) {
		if _, err := r.Update(ctx, "a", name, func(cur runtime.Object) (runtime.Object, error) {
			setV(cur, v)
			return cur, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"x", "y"} {
		if _, err := r.Create(ctx, "a", name, cm("a", name, "1")); err != nil {
			t.Fatal(err)
		}
	}
	set("x", "2") // leaves the selection
	set("x", "1") // comes back
	set("y", "3")
	if _, err := r.Delete(ctx, "a", "x", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Delete(ctx, "a", "y", nil); err != nil {
		t.Fatal(err)
	}
	// x: Added, Modified twice, Deleted; y: Added, Modified, Deleted.
	// Selected: x Added, Deleted, Added, Deleted; y Added, Deleted (leaving).
	const all, sel = 7, 6
	collect := func(w Watcher, n int) []watch.Event {
		out := make([]watch.Event, n)
		for i := range out {
			out[i] = next(t, w)
		}
		return out
	}
	wantAll, wantSel := collect(liveAll, all), collect(liveSel, sel)

	r.cache.mu.RLock()
	for _, e := range r.cache.ring {
		if e.Object != nil {
			t.Errorf("the event window holds %s %s at %d decoded", e.Type, e.Key, e.Rev)
		}
	}
	r.cache.mu.RUnlock()

	for _, tc := range []struct {
		name  string
		match func(Attrs) bool
		want  []watch.Event
	}{{"all", nil, wantAll}, {"selected", selected, wantSel}} {
		got := collect(watchFrom(tc.match), len(tc.want))
		for i := range got {
			if got[i].Type != tc.want[i].Type || !equality.Semantic.DeepEqual(got[i].Object, tc.want[i].Object) {
				t.Errorf("%s, event %d: resumed %s %v, live %s %v", tc.name, i, got[i].Type, got[i].Object, tc.want[i].Type, tc.want[i].Object)
			}
		}
	}
}

// TestABigBatchKeepsWatchesGoing hands the watchers one batch of more
// events than a watcher queues (an etcd response catching the cache up
// brings up to a thousand): a watcher that keeps reading must get them
// all, not be ended for falling behind.
func TestABigBatchKeepsWatchesGoing(t *testing.T) {
	ctx, r, start := storeWithAStart(t)
	w, err := r.Watch(ctx, WatchOptions{ResourceVersion: rvOf(start)})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := strconv.ParseInt(rvOf(start), 10, 64)
	const n = 3000
	batch := make([]*Event, n)
	for i := range batch {
		obj := cm("a", fmt.Sprintf("b%d", i), "1")
		obj.ResourceVersion = strconv.FormatInt(base+1+int64(i), 10)
		batch[i] = &Event{Type: watch.Added, Key: r.Key("a", obj.Name), Object: obj, attrs: r.attrs(obj), Rev: base + 1 + int64(i)}
	}
	r.cache.apply(batch, base+n)
	for i := range n {
		if ev := next(t, w); ev.Object.(*corev1.ConfigMap).Name != fmt.Sprintf("b%d", i) {
			t.Fatalf("event %d: %s %s", i, ev.Type, ev.Object.(*corev1.ConfigMap).Name)
		}
	}
}

// TestEventsOfOneResponseChainTheirStates gives the cache an object's
// create, update and delete as one etcd watch response (as etcd sends a
// watch catching up): without previous states from etcd, each event's
// previous state must be the one before it in the response.
func TestEventsOfOneResponseChainTheirStates(t *testing.T) {
	_, r := newTestStore(t, 100)
	key := r.Key("a", "x")
	put := func(v string, created, rev int64) *clientv3.Event {
		data, err := r.codec.encode(cm("a", "x", v))
		if err != nil {
			t.Fatal(err)
		}
		return &clientv3.Event{Type: clientv3.EventTypePut, Kv: &mvccpb.KeyValue{Key: []byte(key), Value: data, CreateRevision: created, ModRevision: rev}}
	}
	batch := map[string]*entry{}
	var events []*Event
	for _, ev := range []*clientv3.Event{put("1", 100, 100), put("2", 100, 101),
		{Type: clientv3.EventTypeDelete, Kv: &mvccpb.KeyValue{Key: []byte(key), ModRevision: 102}}} {
		e := r.cache.toEvent(ev, batch)
		if e == nil {
			t.Fatalf("no event for %s at %d", ev.Type, ev.Kv.ModRevision)
		}
		batch[key] = e.entry()
		events = append(events, e)
	}
	value := func(obj runtime.Object) string {
		if obj == nil {
			return "none"
		}
		return obj.(*corev1.ConfigMap).Data["v"] + "@" + rvOf(obj)
	}
	label := func(a *Attrs) string {
		if a == nil {
			return "none"
		}
		return "label " + a.Labels["v"]
	}
	modified := events[1].retained()
	for _, c := range []struct {
		what      string
		typ, want watch.EventType
		got, obj  string
	}{
		{"create", events[0].Type, watch.Added, value(events[0].Object), "1@100"},
		{"update", events[1].Type, watch.Modified, label(events[1].prevAttrs), "label 1"},
		{"update, from the event window", modified.Type, watch.Modified, label(modified.prevAttrs), "label 1"},
		{"delete", events[2].Type, watch.Deleted, value(events[2].Object), "2@102"},
	} {
		if c.typ != c.want || c.got != c.obj {
			t.Errorf("%s: %s with %s, want %s with %s", c.what, c.typ, c.got, c.want, c.obj)
		}
	}
}

func TestWatchOlderThanCacheWindowUsesEtcd(t *testing.T) {
	_, r := newTestStore(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first, _ := r.Create(ctx, "a", "c0", cm("a", "c0", "1"))
	for i := 1; i < 6; i++ {
		if _, err := r.Create(ctx, "a", fmt.Sprintf("c%d", i), cm("a", fmt.Sprintf("c%d", i), "1")); err != nil {
			t.Fatal(err)
		}
	}
	// Let the cache see every event so the window has moved past first.
	if _, err := r.List(ctx, ListOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := r.Watch(ctx, WatchOptions{ResourceVersion: rvOf(first)})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 6; i++ {
		ev := next(t, w)
		if ev.Type != watch.Added || ev.Object.(*corev1.ConfigMap).Name != fmt.Sprintf("c%d", i) {
			t.Fatalf("event %d: %s %s", i, ev.Type, ev.Object.(*corev1.ConfigMap).Name)
		}
	}
}

func TestWatchListEndsInitialEventsWithBookmark(t *testing.T) {
	_, r := newTestStore(t, 100)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, _ = r.Create(ctx, "a", "one", cm("a", "one", "1"))
	yes := true
	w, err := r.Watch(ctx, WatchOptions{SendInitialEvents: &yes, AllowBookmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, w); ev.Type != watch.Added {
		t.Fatalf("got %s", ev.Type)
	}
	ev := next(t, w)
	if ev.Type != watch.Bookmark || ev.Object.(*corev1.ConfigMap).Annotations[InitialEventsEndAnnotation] != "true" {
		t.Fatalf("want initial-events-end bookmark, got %s %v", ev.Type, ev.Object)
	}
}

// TestUpdateStartsFromAPrivateCopyOfTheCache checks that an update that
// begins from the watch cache's object (same revision as etcd's) gets a
// copy: what the update function changes never reaches the cached object
// that lists, watches and GETs share.
func TestUpdateStartsFromAPrivateCopyOfTheCache(t *testing.T) {
	_, r := newTestStore(t, 100)
	ctx := context.Background()
	created, err := r.Create(ctx, "a", "x", cm("a", "x", "1"))
	if err != nil {
		t.Fatal(err)
	}
	var cached runtime.Object
	deadline := time.Now().Add(10 * time.Second)
	for {
		obj, err := r.GetCached("a", "x")
		if err == nil && rvOf(obj) == rvOf(created) {
			cached = obj
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the watch cache never saw the create")
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, err = r.Update(ctx, "a", "x", func(cur runtime.Object) (runtime.Object, error) {
		if cur == cached {
			t.Error("the update function got the cache's own object")
		}
		cur.(*corev1.ConfigMap).Data["v"] = "2"
		return cur, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v := cached.(*corev1.ConfigMap).Data["v"]; v != "1" {
		t.Fatalf("the cached object was changed by an update: v=%q", v)
	}
	got, err := r.Get(ctx, "a", "x")
	if err != nil || got.(*corev1.ConfigMap).Data["v"] != "2" {
		t.Fatalf("get after update: %v %v", got, err)
	}
}

// TestObjectsWithATTLExpire checks that a resource with a TTL (events)
// loses its objects that long after their last write, through etcd's
// lease, and that the watch cache sees them go.
func TestObjectsWithATTLExpire(t *testing.T) {
	s, r := newTestStoreTTL(t, 100, 2*time.Second)
	ctx := context.Background()
	client := s.client

	start := time.Now()
	for _, name := range []string{"a", "b"} {
		if _, err := r.Create(ctx, "ns", name, cm("ns", name, "1")); err != nil {
			t.Fatal(err)
		}
	}
	// Both share one lease.
	resp, err := client.Get(ctx, r.Key("ns", "a"))
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease == 0 {
		t.Fatalf("the object has no lease: %v %v", resp, err)
	}
	other, err := client.Get(ctx, r.Key("ns", "b"))
	if err != nil || len(other.Kvs) != 1 || other.Kvs[0].Lease != resp.Kvs[0].Lease {
		t.Fatalf("objects written together should share a lease: %v %v", other, err)
	}
	for {
		_, err := r.Get(ctx, "ns", "a")
		_, cacheErr := r.GetCached("ns", "b")
		if errors.Is(err, ErrNotFound) && errors.Is(cacheErr, ErrNotFound) {
			break
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("objects still there %v after their 2 s TTL (get: %v, cached: %v)", time.Since(start), err, cacheErr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("objects expired after %v, before their TTL", d)
	}
}

// A paginated list's first page comes from the watch cache, the rest from
// etcd at the first page's revision: together they are one snapshot,
// whatever is written between the pages.
func TestPagesAreOneSnapshot(t *testing.T) {
	_, r := newTestStore(t, 100)
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		name := fmt.Sprintf("cm-%02d", i)
		if _, err := r.Create(ctx, "a", name, cm("a", name, "1")); err != nil {
			t.Fatal(err)
		}
	}
	first, err := r.List(ctx, ListOptions{Namespace: "a", Limit: 4})
	if err != nil {
		t.Fatal(err)
	}
	if first.Len() != 4 || first.Continue == "" || first.RemainingItemCount == nil || *first.RemainingItemCount != 6 {
		t.Fatalf("first page: %d items, continue %q, remaining %v; want 4, a token, 6", first.Len(), first.Continue, first.RemainingItemCount)
	}
	if first.Encodings(0) == nil {
		t.Fatal("first page was not served from the watch cache (no memoized encodings)")
	}
	// Writes after the first page: a new object, a changed one and a
	// deleted one, all in the part still to come.
	if _, err := r.Create(ctx, "a", "cm-05a", cm("a", "cm-05a", "1")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Update(ctx, "a", "cm-06", setData("v", "2")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Delete(ctx, "a", "cm-07", nil); err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, o := range items(t, first) {
		names = append(names, o.(*corev1.ConfigMap).Name)
	}
	opts := ListOptions{Namespace: "a", Limit: 4, Continue: first.Continue}
	for {
		page, err := r.List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if page.ResourceVersion != first.ResourceVersion {
			t.Fatalf("page at revision %d, first page at %d", page.ResourceVersion, first.ResourceVersion)
		}
		for _, o := range items(t, page) {
			c := o.(*corev1.ConfigMap)
			if c.Data["v"] != "1" {
				t.Fatalf("%s has v=%s, a write made after the first page", c.Name, c.Data["v"])
			}
			names = append(names, c.Name)
		}
		if opts.Continue = page.Continue; opts.Continue == "" {
			break
		}
	}
	want := "cm-00 cm-01 cm-02 cm-03 cm-04 cm-05 cm-06 cm-07 cm-08 cm-09"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("pages gave %s, want the snapshot %s", got, want)
	}
	// With a selector the count of what remains is not given, as upstream.
	sel, err := r.List(ctx, ListOptions{Namespace: "a", Limit: 2, Match: func(Attrs) bool { return true }})
	if err != nil || sel.Continue == "" || sel.RemainingItemCount != nil {
		t.Fatalf("selected first page: continue %q, remaining %v, err %v", sel.Continue, sel.RemainingItemCount, err)
	}
}

// The first page from the cache is the first Limit keys of all that
// match, whatever order the objects were written in.
func TestFirstPageIsTheSmallestKeys(t *testing.T) {
	_, r := newTestStore(t, 100)
	ctx := context.Background()
	var names []string
	for _, i := range rand.Perm(60) {
		name := fmt.Sprintf("cm-%02d", i)
		if _, err := r.Create(ctx, "a", name, cm("a", name, strconv.Itoa(i%2))); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	odd := labelled("1")
	var oddNames []string
	for i, n := range names {
		if i%2 == 1 {
			oddNames = append(oddNames, n)
		}
	}
	for _, tc := range []struct {
		limit int64
		match func(Attrs) bool
		want  []string
	}{{1, nil, names}, {7, nil, names}, {59, nil, names}, {60, nil, names}, {61, nil, names}, {5, odd, oddNames}, {30, odd, oddNames}} {
		res, err := r.List(ctx, ListOptions{Namespace: "a", Limit: tc.limit, Match: tc.match})
		if err != nil {
			t.Fatal(err)
		}
		if res.Len() > 0 && res.Encodings(0) == nil {
			t.Fatal("not served from the watch cache")
		}
		var got []string
		for _, o := range items(t, res) {
			got = append(got, o.(*corev1.ConfigMap).Name)
		}
		n := min(int(tc.limit), len(tc.want))
		if !slices.Equal(got, tc.want[:n]) {
			t.Errorf("limit %d: page %v, want %v", tc.limit, got, tc.want[:n])
		}
		if more := n < len(tc.want); (res.Continue != "") != more {
			t.Errorf("limit %d: continue %q, want one: %v", tc.limit, res.Continue, more)
		}
		if tc.match == nil && n < len(tc.want) && (res.RemainingItemCount == nil || *res.RemainingItemCount != int64(len(tc.want)-n)) {
			t.Errorf("limit %d: remainingItemCount %v, want %d", tc.limit, res.RemainingItemCount, len(tc.want)-n)
		}
	}
}
