package storage

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// Event is one change to a stored object, as the watch cache saw it.
type Event struct {
	Type   watch.EventType // Added, Modified or Deleted
	Key    string
	Object runtime.Object // the new state; for Deleted the last state
	Rev    int64
	// Enc holds Object's encodings, shared by every watcher and list.
	Enc *Encodings

	// What selectors see of Object, and of the state before a Modified
	// event (whether the object entered or left a watch's selection).
	attrs, prevAttrs *Attrs
	// What etcd stored for Object (for Deleted: the last state), and the
	// revision its decoding carries: the event window keeps these
	// instead of the decoded object.
	stored    []byte
	storedRev int64
	ent       *entry // see entry
}

// entry is what the cache holds for e's object after e (not for
// Deleted), made once per event.
func (e *Event) entry() *entry {
	if e.ent == nil {
		e.ent = &entry{enc: e.Enc, rev: e.Rev, data: e.stored, attrs: e.attrs}
	}
	return e.ent
}

// retained returns what the event window keeps of e: its object as etcd
// stored it, to be decoded again for a watch that resumes from before
// the event (revived), rather than the decoded object and its encodings,
// which take about five times the space for a pod. An object whose
// stored bytes the event lacks is kept decoded.
func (e *Event) retained() *Event {
	r := &Event{Type: e.Type, Key: e.Key, Rev: e.Rev, attrs: e.attrs, prevAttrs: e.prevAttrs,
		stored: e.stored, storedRev: e.storedRev}
	if r.stored == nil {
		r.Object = e.Object
	}
	return r
}

// revived returns a retained event with its object decoded; an event
// whose object is decoded already is returned as it is.
func (e *Event) revived(c *codec) (*Event, error) {
	if e.Object != nil {
		return e, nil
	}
	obj, err := c.decode(e.stored, e.storedRev)
	if err != nil {
		return nil, err
	}
	r := *e
	r.Object = obj
	return &r, nil
}

// Encodings memoizes the serialized forms of one cached object, so that an
// object listed or watched by many clients is encoded once per format.
// A nil *Encodings memoizes nothing.
type Encodings struct {
	mu sync.Mutex
	m  map[string][]byte
}

// Get returns the object's encoding in format, calling encode the first
// time. Concurrent callers wait for one encoding instead of each making one.
func (e *Encodings) Get(format string, encode func() ([]byte, error)) ([]byte, error) {
	if e == nil {
		return encode()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if b, ok := e.m[format]; ok {
		return b, nil
	}
	b, err := encode()
	if err != nil {
		return nil, err
	}
	if e.m == nil {
		e.m = make(map[string][]byte, 2)
	}
	e.m[format] = b
	return b, nil
}

// entry is one cached object, as etcd stored it: a decoded object takes
// about five times the space (12 KB for a pod, 2.3 KB stored), and most
// cached objects are not read between their writes. Selectors look at
// attrs; reads decode data, in place of the copy a shared decoded object
// would need anyway before it is modified.
type entry struct {
	data  []byte // what etcd stores for the object
	rev   int64  // etcd's ModRevision of data
	enc   *Encodings
	attrs *Attrs
}

// object decodes the entry: a private object.
func (e *entry) object(c *codec) (runtime.Object, error) { return c.decode(e.data, e.rev) }

// cache mirrors one resource's objects from etcd and fans its changes out
// to watchers. Its events' objects are shared by every watcher and must
// not be modified.
type cache struct {
	r      *Resource
	window int

	mu      sync.RWMutex
	objects map[string]*entry
	rev     int64
	// ring holds the most recent events, oldest first, for resuming
	// watches, as retained (Event.retained).
	ring     []*Event
	ringHead int // index of the oldest event when the ring is full
	// oldest is the revision after which the ring holds every event.
	oldest   int64
	watchers map[*cacheWatcher]struct{}
	// advanced is closed and replaced whenever rev moves forward.
	advanced chan struct{}

	ready     chan struct{}
	readyOnce sync.Once

	// written holds, by key, objects this server is storing, in their
	// canonical form (canonical.go), until the watch brings their events:
	// the cache takes them instead of decoding etcd's copy.
	writtenMu sync.Mutex
	written   map[string]*writtenObject
}

// writtenObject is an object being stored and the bytes stored for it.
type writtenObject struct {
	data []byte
	obj  runtime.Object
}

// maxWritten bounds the written objects whose events never came (writes
// that failed without withdrawing, or that the cache relisted). It is far
// above the writes in flight: when a stream of writes runs the cache's
// watch behind, the objects waiting for their events are many, and
// forgetting them would make the cache decode each one, which would put
// it further behind.
const maxWritten = 1 << 16

func newCache(r *Resource, window int) *cache {
	return &cache{
		r:        r,
		window:   window,
		objects:  map[string]*entry{},
		watchers: map[*cacheWatcher]struct{}{},
		advanced: make(chan struct{}),
		ready:    make(chan struct{}),
		written:  map[string]*writtenObject{},
	}
}

// offer tells the cache, before a write, the bytes it will store at key
// and its canonical object. The cache takes a copy of obj's top level,
// whose kind and resourceVersion it sets; what obj points to it shares,
// so neither the writer nor anyone after may modify that.
func (c *cache) offer(key string, data []byte, obj runtime.Object) *writtenObject {
	w := &writtenObject{data: data, obj: topCopy(obj)}
	c.writtenMu.Lock()
	if len(c.written) >= maxWritten {
		clear(c.written)
	}
	c.written[key] = w
	c.writtenMu.Unlock()
	return w
}

// topCopy returns a copy of obj's top-level struct that shares everything
// it points to: enough to give it another resourceVersion or kind, which
// are held in the struct itself (every stored kind is a typed struct
// with ObjectMeta and TypeMeta as values), without copying the rest.
func topCopy(obj runtime.Object) runtime.Object {
	top := reflect.New(reflect.TypeOf(obj).Elem())
	top.Elem().Set(reflect.ValueOf(obj).Elem())
	return top.Interface().(runtime.Object)
}

// withdraw forgets an offer whose write did not happen.
func (c *cache) withdraw(key string, w *writtenObject) {
	c.writtenMu.Lock()
	if c.written[key] == w {
		delete(c.written, key)
	}
	c.writtenMu.Unlock()
}

// takeWritten returns the object offered for key, and the bytes of the
// offer (so that etcd's copy of them need not be kept), if value is what
// was stored for it.
func (c *cache) takeWritten(key string, value []byte) (runtime.Object, []byte, bool) {
	c.writtenMu.Lock()
	defer c.writtenMu.Unlock()
	w, ok := c.written[key]
	if !ok || !bytes.Equal(w.data, value) {
		return nil, nil, false
	}
	delete(c.written, key)
	return w.obj, w.data, true
}

// run keeps the cache in step with etcd until ctx ends, relisting when the
// etcd watch breaks off.
func (c *cache) run(ctx context.Context) {
	log := c.r.store.log.With("resource", c.r.spec.GroupResource.String())
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		rev, err := c.relist(ctx)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("watch cache list failed", "err", err)
				time.Sleep(backoff)
				backoff = min(2*backoff, 5*time.Second)
			}
			continue
		}
		backoff = 100 * time.Millisecond
		c.readyOnce.Do(func() { close(c.ready) })
		err = c.follow(ctx, rev+1)
		if ctx.Err() == nil {
			log.Info("watch cache restarting", "err", err)
		}
	}
	c.mu.Lock()
	for w := range c.watchers {
		w.terminate()
	}
	c.watchers = map[*cacheWatcher]struct{}{}
	c.mu.Unlock()
}

// relist loads every object at one revision and replaces the cache content.
// Watchers cannot be told what they missed, so they are ended and reconnect.
func (c *cache) relist(ctx context.Context) (int64, error) {
	objects := map[string]*entry{}
	end := clientv3.GetPrefixRangeEnd(c.r.prefix)
	from := c.r.prefix
	var rev int64
	for {
		ops := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(10000)}
		if rev > 0 {
			ops = append(ops, clientv3.WithRev(rev))
		}
		resp, err := c.r.store.client.Get(ctx, from, ops...)
		if err != nil {
			return 0, err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			obj, err := c.r.codec.decode(kv.Value, kv.ModRevision)
			if err != nil {
				c.r.store.log.Error("skipping undecodable object", "key", string(kv.Key), "err", err)
				continue
			}
			objects[string(kv.Key)] = &entry{enc: &Encodings{}, attrs: c.r.attrs(obj), rev: kv.ModRevision, data: kv.Value}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	c.writtenMu.Lock()
	clear(c.written)
	c.writtenMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	for w := range c.watchers {
		w.terminate()
	}
	c.watchers = map[*cacheWatcher]struct{}{}
	c.objects = objects
	c.ring = nil
	c.ringHead = 0
	c.oldest = rev
	c.setRevLocked(rev)
	return rev, nil
}

func (c *cache) setRevLocked(rev int64) {
	if rev <= c.rev {
		return
	}
	c.rev = rev
	close(c.advanced)
	c.advanced = make(chan struct{})
}

// follow applies etcd watch events from rev on until the watch fails.
//
// The watch does not ask for each event's previous state (WithPrevKV):
// the cache holds it. For etcd, a previous state is a database read per
// event in the loop that sends events, which under a stream of writes
// made that loop fall behind and catch up from the database, holding
// whole batches of events (hundreds of MB for 30,000 pods).
func (c *cache) follow(ctx context.Context, rev int64) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := c.r.store.client.Watch(wctx, c.r.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev),
		clientv3.WithProgressNotify())
	for resp := range wch {
		if err := resp.Err(); err != nil {
			return err
		}
		if resp.IsProgressNotify() {
			c.progress(resp.Header.Revision)
			continue
		}
		events := make([]*Event, 0, len(resp.Events))
		// An object's earlier event in the same response is its
		// previous state for the next, before the cache has it.
		batch := make(map[string]*entry, len(resp.Events))
		for _, ev := range resp.Events {
			if e := c.toEvent(ev, batch); e != nil {
				events = append(events, e)
				batch[e.Key] = e.entry() // the entry apply stores
			}
		}
		c.apply(events, resp.Header.Revision)
	}
	return errors.New("etcd watch closed")
}

// toEvent turns an etcd event into the cache's. The previous state is
// batch's entry for the key, else the cache's; a watch that asked etcd
// for previous states (one served from etcd, older than the cache) has
// etcd's copy decoded when the cache holds another revision.
func (c *cache) toEvent(ev *clientv3.Event, batch map[string]*entry) *Event {
	key := string(ev.Kv.Key)
	e := &Event{Key: key, Rev: ev.Kv.ModRevision}
	prev := batch[key]
	if prev == nil {
		c.mu.RLock()
		prev = c.objects[key]
		c.mu.RUnlock()
	}
	if kv := ev.PrevKv; kv != nil && (prev == nil || prev.rev != kv.ModRevision) {
		prev = nil
		if obj, err := c.r.codec.decode(kv.Value, kv.ModRevision); err == nil {
			prev = &entry{attrs: c.r.attrs(obj), rev: kv.ModRevision, data: kv.Value}
		}
	}
	if prev != nil {
		e.prevAttrs = prev.attrs
	}
	switch ev.Type {
	case clientv3.EventTypeDelete:
		if prev == nil {
			return nil
		}
		// A deleted object reports the deletion's revision, as upstream does.
		obj, err := c.r.codec.decode(prev.data, ev.Kv.ModRevision)
		if err != nil {
			c.r.store.log.Error("skipping undecodable object", "key", key, "err", err)
			return nil
		}
		e.Type, e.Object, e.Enc, e.attrs = watch.Deleted, obj, &Encodings{}, prev.attrs
		e.stored, e.storedRev = prev.data, ev.Kv.ModRevision
	default:
		obj, data, ok := c.takeWritten(key, ev.Kv.Value)
		if ok {
			// As the decode below would stamp it.
			obj.GetObjectKind().SetGroupVersionKind(c.r.codec.gvk)
			_ = setRV(obj, ev.Kv.ModRevision)
		} else {
			var err error
			if obj, err = c.r.codec.decode(ev.Kv.Value, ev.Kv.ModRevision); err != nil {
				c.r.store.log.Error("skipping undecodable object", "key", key, "err", err)
				return nil
			}
			data = ev.Kv.Value
		}
		e.Object, e.Enc, e.attrs = obj, &Encodings{}, c.r.attrs(obj)
		e.stored, e.storedRev = data, ev.Kv.ModRevision
		if ev.IsCreate() {
			e.Type, e.prevAttrs = watch.Added, nil
		} else {
			e.Type = watch.Modified
		}
	}
	return e
}

// apply records events in the cache and hands them to the watchers.
func (c *cache) apply(events []*Event, rev int64) {
	c.mu.Lock()
	for _, e := range events {
		if e.Type == watch.Deleted {
			delete(c.objects, e.Key)
		} else {
			c.objects[e.Key] = e.entry()
		}
		c.push(e)
	}
	c.setRevLocked(rev)
	watchers := make([]*cacheWatcher, 0, len(c.watchers))
	for w := range c.watchers {
		watchers = append(watchers, w)
	}
	c.mu.Unlock()
	for _, w := range watchers {
		if len(events) == 0 {
			w.progress(rev)
		} else if !w.send(events, rev) {
			c.remove(w)
		}
	}
}

// progress notes that etcd has nothing newer for this resource up to rev.
func (c *cache) progress(rev int64) {
	c.mu.Lock()
	c.setRevLocked(rev)
	watchers := make([]*cacheWatcher, 0, len(c.watchers))
	for w := range c.watchers {
		watchers = append(watchers, w)
	}
	c.mu.Unlock()
	for _, w := range watchers {
		w.progress(rev)
	}
}

func (c *cache) push(e *Event) {
	e = e.retained()
	if len(c.ring) < c.window {
		c.ring = append(c.ring, e)
		return
	}
	c.oldest = c.ring[c.ringHead].Rev
	c.ring[c.ringHead] = e
	c.ringHead = (c.ringHead + 1) % len(c.ring)
}

// eventsAfter returns the retained events newer than rev, oldest first,
// and false when events after rev have already left the ring. They must
// be revived before they are delivered.
func (c *cache) eventsAfterLocked(rev int64) ([]*Event, bool) {
	if rev < c.oldest {
		return nil, false
	}
	var out []*Event
	n := len(c.ring)
	for i := 0; i < n; i++ {
		e := c.ring[(c.ringHead+i)%n]
		if e.Rev > rev {
			out = append(out, e)
		}
	}
	return out, true
}

func (c *cache) get(key string) (*entry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.objects[key]
	return e, ok
}

// waitFresh waits until the cache has seen etcd revision rev.
func (c *cache) waitFresh(ctx context.Context, rev int64) error {
	ctx, cancel := context.WithTimeout(ctx, freshTimeout)
	defer cancel()
	select {
	case <-c.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	asked := false
	for {
		c.mu.RLock()
		cur, ch := c.rev, c.advanced
		c.mu.RUnlock()
		if cur >= rev {
			return nil
		}
		if !asked {
			// Nothing may change this resource for a while; etcd tells the
			// watch how far it is when asked.
			_ = c.r.store.requestProgress()
			asked = true
		}
		select {
		case <-ch:
		case <-time.After(100 * time.Millisecond):
			asked = false
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// list returns the cached objects matching opts, sorted by key. A page
// (opts.Limit) keeps only the first Limit keys while it scans, so that
// the first 500 of 150,000 pods cost a scan, not a sort of them all.
func (c *cache) list(opts ListOptions) *ListResult {
	prefix := c.r.prefix
	if c.r.spec.Namespaced && opts.Namespace != "" {
		prefix += opts.Namespace + "/"
	}
	var kept keyedEntries // a whole list's matches, or a page's heap
	var matched int64
	c.mu.RLock()
	if opts.Limit <= 0 {
		kept = make(keyedEntries, 0, len(c.objects))
	}
	for k, e := range c.objects {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if opts.Match != nil && !opts.Match(*e.attrs) {
			continue
		}
		matched++
		switch {
		case opts.Limit <= 0:
			kept = append(kept, keyedEntry{k, e})
		case int64(len(kept)) < opts.Limit:
			heap.Push(&kept, keyedEntry{k, e})
		case k < kept[0].key:
			kept[0] = keyedEntry{k, e}
			heap.Fix(&kept, 0)
		}
	}
	rev := c.rev
	c.mu.RUnlock()
	slices.SortFunc(kept, func(a, b keyedEntry) int { return strings.Compare(a.key, b.key) })
	res := &ListResult{codec: c.r.codec, ResourceVersion: rev}
	if opts.Limit > 0 && matched > opts.Limit {
		// The pages after this one are read from etcd at rev, where
		// they are what follows this page in the cache's state at rev.
		res.Continue = continueAfter(rev, kept[len(kept)-1].key, prefix)
		if opts.Match == nil {
			n := matched - opts.Limit
			res.RemainingItemCount = &n
		}
	}
	res.items = make([]listItem, len(kept))
	for i, m := range kept {
		res.items[i] = listItem{data: m.data, rev: m.rev, enc: m.enc}
	}
	return res
}

type keyedEntry struct {
	key string
	*entry
}

// keyedEntries is a max-heap by key: the page's last key is at the top,
// the one a smaller key replaces.
type keyedEntries []keyedEntry

func (h keyedEntries) Len() int           { return len(h) }
func (h keyedEntries) Less(i, j int) bool { return h[i].key > h[j].key }
func (h keyedEntries) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *keyedEntries) Push(x any)        { *h = append(*h, x.(keyedEntry)) }
func (h *keyedEntries) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (c *cache) remove(w *cacheWatcher) {
	c.mu.Lock()
	delete(c.watchers, w)
	c.mu.Unlock()
	w.terminate()
}
