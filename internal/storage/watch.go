package storage

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// InitialEventsEndAnnotation marks the bookmark that ends the initial
// events of a watch-list request, as upstream names it.
const InitialEventsEndAnnotation = "k8s.io/initial-events-end"

// WatchOptions selects what a watch delivers.
type WatchOptions struct {
	Namespace       string
	ResourceVersion string
	// SendInitialEvents asks for synthetic ADDED events for the current
	// state first (nil: upstream's default for the resourceVersion given).
	SendInitialEvents *bool
	AllowBookmarks    bool
	// Match filters objects by what selectors see; nil matches all.
	Match func(Attrs) bool
	// BookmarkInterval is how often bookmarks are sent; 0 means 1 minute.
	BookmarkInterval time.Duration
	// Deadline is when the client's watch ends; a bookmark is sent shortly
	// before, as upstream does, so the client resumes from a recent revision.
	Deadline time.Time
}

// Watcher delivers watch events until stopped.
type Watcher interface {
	ResultChan() <-chan WatchEvent
	Stop()
}

// WatchEvent is a watch event with the shared encodings of its object
// (nil for bookmarks and errors).
type WatchEvent struct {
	watch.Event
	Enc *Encodings
}

// Watch starts a watch. Watches resume from any revision the cache still
// holds; older ones are served by etcd, and ErrExpired is returned when
// etcd has compacted that revision away.
func (r *Resource) Watch(ctx context.Context, opts WatchOptions) (Watcher, error) {
	var rv int64
	if opts.ResourceVersion != "" {
		v, err := strconv.ParseInt(opts.ResourceVersion, 10, 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%w: invalid resourceVersion %q", ErrInvalid, opts.ResourceVersion)
		}
		rv = v
	}
	initial := rv == 0
	if opts.SendInitialEvents != nil {
		initial = *opts.SendInitialEvents
	}
	c := r.cache
	if opts.ResourceVersion == "" || rv > 0 {
		want := rv
		if opts.ResourceVersion == "" {
			cur, err := r.store.CurrentRevision(ctx)
			if err != nil {
				return nil, err
			}
			want = cur
		}
		if err := c.waitFresh(ctx, want); err != nil {
			return nil, err
		}
	}
	w := &cacheWatcher{
		in:        make(chan watchItem, 1024),
		out:       make(chan WatchEvent),
		done:      make(chan struct{}),
		keyPrefix: r.prefix,
		match:     opts.Match,
		bookmarks: opts.AllowBookmarks,
		interval:  opts.BookmarkInterval,
		deadline:  opts.Deadline,
		codec:     r.codec,
		log:       r.store.log,
	}
	if r.spec.Namespaced && opts.Namespace != "" {
		w.keyPrefix += opts.Namespace + "/"
	}
	c.mu.Lock()
	var backlog []*Event
	start := c.rev
	if initial {
		keys := make([]string, 0, len(c.objects))
		for k := range c.objects {
			if strings.HasPrefix(k, w.keyPrefix) {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		backlog = make([]*Event, 0, len(keys))
		for _, k := range keys {
			e := c.objects[k]
			backlog = append(backlog, &Event{Type: watch.Added, Key: k, Rev: e.rev, Enc: e.enc, attrs: e.attrs, stored: e.data, storedRev: e.rev})
		}
	} else {
		if opts.ResourceVersion == "" {
			rv = start // no initial events asked for: from the current state on
		}
		events, ok := c.eventsAfterLocked(rv)
		if !ok {
			c.mu.Unlock()
			return r.watchEtcd(ctx, rv, w)
		}
		backlog = events
	}
	c.watchers[w] = struct{}{}
	c.mu.Unlock()

	endBookmark := initial && opts.SendInitialEvents != nil && *opts.SendInitialEvents && opts.AllowBookmarks
	go w.run(backlog, start, endBookmark)
	go func() {
		select {
		case <-ctx.Done():
			c.remove(w)
		case <-w.done:
		}
	}()
	return w, nil
}

// watchItem is one batch of the cache's events, shared by every watcher
// (a batch is what one etcd watch response brought), or none, and the
// revision the cache has reached with it.
type watchItem struct {
	events []*Event
	rev    int64
}

// cacheWatcher filters the cache's events for one client.
type cacheWatcher struct {
	in        chan watchItem
	out       chan WatchEvent
	done      chan struct{}
	stopOnce  sync.Once
	keyPrefix string
	match     func(Attrs) bool
	bookmarks bool
	interval  time.Duration
	deadline  time.Time
	codec     *codec
	log       *slog.Logger
}

func (w *cacheWatcher) ResultChan() <-chan WatchEvent { return w.out }

func (w *cacheWatcher) Stop() { w.terminate() }

func (w *cacheWatcher) terminate() { w.stopOnce.Do(func() { close(w.done) }) }

// send queues a batch of events without blocking; false means the
// watcher has fallen too far behind and must be ended (its client
// resumes). The queue counts batches, not events: an etcd response
// catching the cache up brings up to a thousand events at once, which
// would otherwise end every watcher, however fast, at the same moment.
func (w *cacheWatcher) send(events []*Event, rev int64) bool {
	select {
	case w.in <- watchItem{events: events, rev: rev}:
		return true
	case <-w.done:
		return true
	default:
		return false
	}
}

func (w *cacheWatcher) progress(rev int64) {
	select {
	case w.in <- watchItem{rev: rev}:
	default:
	}
}

func (w *cacheWatcher) run(backlog []*Event, start int64, endBookmark bool) {
	defer close(w.out)
	last := start
	for _, e := range backlog {
		if !w.deliver(e) {
			return
		}
		if e.Rev > last {
			last = e.Rev
		}
	}
	if endBookmark {
		if !w.emit(watch.Event{Type: watch.Bookmark, Object: w.bookmark(start, true)}) {
			return
		}
	}
	interval := w.interval
	if interval <= 0 {
		interval = time.Minute
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var beforeEnd <-chan time.Time
	if !w.deadline.IsZero() && w.bookmarks {
		t := time.NewTimer(max(time.Until(w.deadline)-2*time.Second, 0))
		defer t.Stop()
		beforeEnd = t.C
	}
	sent := last
	for {
		select {
		case <-beforeEnd:
			if !w.emit(watch.Event{Type: watch.Bookmark, Object: w.bookmark(last, false)}) {
				return
			}
			sent = last
		case it := <-w.in:
			for _, e := range it.events {
				if e.Rev <= last {
					continue // already delivered from the backlog
				}
				if !w.deliver(e) {
					return
				}
				last = e.Rev
			}
			last = max(last, it.rev)
		case <-ticker.C:
			if w.bookmarks && last > sent {
				if !w.emit(watch.Event{Type: watch.Bookmark, Object: w.bookmark(last, false)}) {
					return
				}
				sent = last
			}
		case <-w.done:
			return
		}
	}
}

func (w *cacheWatcher) bookmark(rev int64, initialEnd bool) runtime.Object {
	obj := w.codec.newObj()
	obj.GetObjectKind().SetGroupVersionKind(w.codec.gvk)
	acc, _ := meta.Accessor(obj)
	acc.SetResourceVersion(strconv.FormatInt(rev, 10))
	if initialEnd {
		acc.SetAnnotations(map[string]string{InitialEventsEndAnnotation: "true"})
	}
	return obj
}

func (w *cacheWatcher) matches(key string, a *Attrs) bool {
	if a == nil || !strings.HasPrefix(key, w.keyPrefix) {
		return false
	}
	return w.match == nil || w.match(*a)
}

// deliver turns a storage event into what this watcher should see: an
// object moving out of the selection is DELETED, one moving in is ADDED.
func (w *cacheWatcher) deliver(e *Event) bool {
	var typ watch.EventType
	switch e.Type {
	case watch.Added:
		if !w.matches(e.Key, e.attrs) {
			return true
		}
		typ = watch.Added
	case watch.Modified:
		cur, prev := w.matches(e.Key, e.attrs), w.matches(e.Key, e.prevAttrs)
		switch {
		case cur && prev:
			typ = watch.Modified
		case cur:
			typ = watch.Added
		case prev:
			typ = watch.Deleted
		default:
			return true
		}
	case watch.Deleted:
		if !w.matches(e.Key, e.attrs) {
			return true
		}
		typ = watch.Deleted
	}
	// The cache's objects and the events of its window are decoded
	// here, by the watch that needs them, not under the cache's lock.
	ev, err := e.revived(w.codec)
	if err != nil {
		w.log.Error("skipping undecodable event", "key", e.Key, "err", err)
		return true
	}
	return w.emitEnc(watch.Event{Type: typ, Object: ev.Object}, e.Enc)
}

func (w *cacheWatcher) emit(ev watch.Event) bool { return w.emitEnc(ev, nil) }

func (w *cacheWatcher) emitEnc(ev watch.Event, enc *Encodings) bool {
	select {
	case w.out <- WatchEvent{Event: ev, Enc: enc}:
		return true
	case <-w.done:
		return false
	}
}

// watchEtcd serves a watch from a revision older than the cache holds
// straight from etcd.
func (r *Resource) watchEtcd(ctx context.Context, rv int64, w *cacheWatcher) (Watcher, error) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	wch := r.store.client.Watch(wctx, r.prefix, clientv3.WithPrefix(), clientv3.WithRev(rv+1),
		clientv3.WithPrevKV(), clientv3.WithCreatedNotify())
	first, ok := <-wch
	if !ok {
		cancel()
		return nil, ctx.Err()
	}
	if first.CompactRevision != 0 || isCompacted(first.Err()) {
		cancel()
		return nil, ErrExpired
	}
	if err := first.Err(); err != nil {
		cancel()
		return nil, err
	}
	go func() {
		defer cancel()
		defer close(w.out)
		for {
			select {
			case resp, ok := <-wch:
				if ok && resp.CompactRevision != 0 {
					w.emit(watch.Event{Type: watch.Error, Object: expiredStatus(rv)})
					return
				}
				if !ok || resp.Err() != nil {
					return
				}
				for _, ev := range resp.Events {
					e := r.cache.toEvent(ev, nil)
					if e != nil && !w.deliver(e) {
						return
					}
				}
			case <-w.done:
				return
			}
		}
	}()
	return w, nil
}

// expiredStatus is the 410 a watch from a compacted revision ends with.
func expiredStatus(rv int64) *metav1.Status {
	return &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Code: http.StatusGone, Reason: metav1.StatusReasonExpired,
		Message: fmt.Sprintf("too old resource version: %d", rv),
	}
}
