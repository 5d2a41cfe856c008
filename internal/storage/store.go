package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Sentinel errors; handlers turn them into metav1.Status answers.
var (
	ErrNotFound = errors.New("storage: object not found")
	ErrExists   = errors.New("storage: object already exists")
	ErrConflict = errors.New("storage: object was modified")
	// ErrExpired means a resourceVersion or continue token refers to history
	// etcd has compacted away.
	ErrExpired = errors.New("storage: resource version too old")
	// ErrTooLarge means the encoded object exceeds what etcd accepts.
	ErrTooLarge = errors.New("storage: object too large")
	ErrStopped  = errors.New("storage: store stopped")
)

// MaxObjectBytes is the largest encoded object the store writes; etcd's
// default request limit is 1.5 MiB and a transaction carries some overhead.
const MaxObjectBytes = 1536*1024 - 4096

// ResourceSpec declares one stored resource.
type ResourceSpec struct {
	GroupResource schema.GroupResource
	Kind          schema.GroupVersionKind // the storage version
	Namespaced    bool
	// TTL, when set, deletes each object that long after its last write
	// (kube-apiserver's --event-ttl for events); it may live up to 5%
	// longer.
	TTL time.Duration
	// FieldLabels returns the kind's selectable fields of an object
	// besides metadata.name and metadata.namespace (nil: none), in a new
	// map the store keeps and adds those two to.
	FieldLabels func(obj runtime.Object) map[string]string
}

// Attrs are what label and field selectors see of an object: its labels,
// and its name, namespace and its kind's selectable fields. The cache
// computes them once per object state, not once per watch.
type Attrs struct {
	Labels labels.Set
	Fields fields.Set
}

func (r *Resource) attrs(obj runtime.Object) *Attrs {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return &Attrs{}
	}
	var f fields.Set
	if r.spec.FieldLabels != nil {
		f = r.spec.FieldLabels(obj) // a map of its own: one map per state, not two
	}
	if f == nil {
		f = make(fields.Set, 2)
	}
	f["metadata.name"], f["metadata.namespace"] = acc.GetName(), acc.GetNamespace()
	return &Attrs{Labels: acc.GetLabels(), Fields: f}
}

// Config configures a Store.
type Config struct {
	Client *clientv3.Client
	// Prefix of every key, "/registry" by default.
	Prefix    string
	Resources []ResourceSpec
	Logger    *slog.Logger
	// EventWindow is how many recent events each watch cache keeps to let
	// watchers resume; older resourceVersions are served from etcd, at a
	// cost of an etcd watch and a decode per event for each such watch.
	// The window keeps objects as stored (about 2.5 KB for a pod), so the
	// default, 16,384, is ~40 MB for a resource as busy as pods under
	// churn and covers seconds of it (30,000 pods' writes: ~12 s).
	EventWindow int
}

// Store is the etcd-backed object store with a watch cache per resource.
type Store struct {
	client    *clientv3.Client
	log       *slog.Logger
	resources map[schema.GroupResource]*Resource
	watchCtx  context.Context
	stop      context.CancelFunc
	wg        sync.WaitGroup
}

// New creates a store; Run starts its watch caches.
func New(cfg Config) (*Store, error) {
	if cfg.Client == nil {
		return nil, errors.New("storage: no etcd client")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "/registry"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.EventWindow <= 0 {
		cfg.EventWindow = 16384
	}
	s := &Store{client: cfg.Client, log: cfg.Logger, resources: map[schema.GroupResource]*Resource{}}
	for _, spec := range cfg.Resources {
		c, err := newCodec(spec.Kind)
		if err != nil {
			return nil, err
		}
		p := cfg.Prefix + "/"
		if spec.GroupResource.Group != "" {
			p += spec.GroupResource.Group + "/"
		}
		p += spec.GroupResource.Resource + "/"
		r := &Resource{store: s, spec: spec, codec: c, prefix: p}
		if spec.TTL > 0 {
			r.leases = &leases{client: cfg.Client, ttl: spec.TTL}
		}
		r.cache = newCache(r, cfg.EventWindow)
		s.resources[spec.GroupResource] = r
	}
	return s, nil
}

// Start launches one watch cache per resource; it returns at once. The
// caches stop when ctx is done or Stop is called.
func (s *Store) Start(ctx context.Context) {
	// All cache watches share one context without metadata, so they share
	// one etcd watch stream and RequestProgress reaches all of them.
	s.watchCtx, s.stop = context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		<-ctx.Done()
		s.stop()
	}()
	for _, r := range s.resources {
		s.wg.Add(1)
		go func(r *Resource) {
			defer s.wg.Done()
			r.cache.run(s.watchCtx)
		}(r)
	}
}

// WaitReady blocks until every watch cache has loaded, or ctx ends.
func (s *Store) WaitReady(ctx context.Context) error {
	for _, r := range s.resources {
		select {
		case <-r.cache.ready:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Stop ends the watch caches and waits for them.
func (s *Store) Stop() {
	if s.stop != nil {
		s.stop()
	}
	s.wg.Wait()
}

// Resource returns the handle for one stored resource.
func (s *Store) Resource(gr schema.GroupResource) (*Resource, bool) {
	r, ok := s.resources[gr]
	return r, ok
}

// CurrentRevision returns etcd's current revision.
func (s *Store) CurrentRevision(ctx context.Context) (int64, error) {
	resp, err := s.client.Get(ctx, "/registry-revision-probe", clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}

// requestProgress asks etcd to tell every cache watch how far it is.
func (s *Store) requestProgress() error {
	return s.client.RequestProgress(s.watchCtx)
}

// Resource reads and writes the objects of one resource.
type Resource struct {
	store  *Store
	spec   ResourceSpec
	codec  *codec
	prefix string
	cache  *cache
	leases *leases // nil: objects do not expire
}

// put is the write of data at key, on the TTL's lease when objects expire.
func (r *Resource) put(ctx context.Context, key string, data []byte) (clientv3.Op, error) {
	// OpPut copies the value into the op; data is not modified after
	// encoding, so it need not be copied into a string first.
	value := unsafe.String(unsafe.SliceData(data), len(data))
	if r.leases == nil {
		return clientv3.OpPut(key, value), nil
	}
	id, err := r.leases.get(ctx)
	if err != nil {
		return clientv3.Op{}, err
	}
	return clientv3.OpPut(key, value, clientv3.WithLease(id)), nil
}

// Key is the etcd key of an object.
func (r *Resource) Key(namespace, name string) string {
	if r.spec.Namespaced {
		return r.prefix + namespace + "/" + name
	}
	return r.prefix + name
}

// NewObject returns an empty object of the storage kind.
func (r *Resource) NewObject() runtime.Object { return r.codec.newObj() }

// Get reads the current object from etcd.
func (r *Resource) Get(ctx context.Context, namespace, name string) (runtime.Object, error) {
	st, err := r.GetEncoded(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return st.Object()
}

// Stored is an object as etcd stores it, decoded when asked for, so that
// a read served from memoized encodings decodes nothing.
type Stored struct {
	data  []byte
	rev   int64
	codec *codec
	// Enc memoizes the object's encodings (nil: nothing memoized).
	Enc *Encodings
}

// Object decodes the object: a private one on each call.
func (s Stored) Object() (runtime.Object, error) { return s.codec.decode(s.data, s.rev) }

// GetEncoded is Get that leaves the object encoded, with its memoized
// encodings when the watch cache holds the very revision etcd returned,
// so that it need not be encoded for the client again.
func (r *Resource) GetEncoded(ctx context.Context, namespace, name string) (Stored, error) {
	key := r.Key(namespace, name)
	resp, err := r.store.client.Get(ctx, key)
	if err != nil {
		return Stored{}, err
	}
	if len(resp.Kvs) == 0 {
		return Stored{}, ErrNotFound
	}
	kv := resp.Kvs[0]
	st := Stored{data: kv.Value, rev: kv.ModRevision, codec: r.codec}
	if e, ok := r.cachedAt(key, kv.ModRevision); ok {
		st.Enc = e.enc
	}
	return st, nil
}

// GetCached reads the object from the watch cache, which may lag etcd
// slightly; for resourceVersion=0 reads.
func (r *Resource) GetCached(namespace, name string) (runtime.Object, error) {
	st, err := r.GetCachedEncoded(namespace, name)
	if err != nil {
		return nil, err
	}
	return st.Object()
}

// WaitCached waits until the watch cache has seen etcd revision rev, so
// that GetCached reflects every write up to it.
func (r *Resource) WaitCached(ctx context.Context, rev int64) error {
	if rev <= 0 {
		return nil
	}
	return r.cache.waitFresh(ctx, rev)
}

// GetCachedEncoded is GetCached that leaves the object encoded, with its
// memoized encodings.
func (r *Resource) GetCachedEncoded(namespace, name string) (Stored, error) {
	e, ok := r.cache.get(r.Key(namespace, name))
	if !ok {
		return Stored{}, ErrNotFound
	}
	return Stored{data: e.data, rev: e.rev, codec: r.codec, Enc: e.enc}, nil
}

// Create stores a new object and returns it with its resourceVersion. The
// store takes obj over: the caller must not use it afterwards.
func (r *Resource) Create(ctx context.Context, namespace, name string, obj runtime.Object) (runtime.Object, error) {
	data, canonical, err := r.encodeForWrite(obj)
	if err != nil {
		return nil, err
	}
	key := r.Key(namespace, name)
	resp, err := r.write(ctx, key, data, obj, canonical, []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)})
	if err != nil {
		return nil, err
	}
	if !resp.Succeeded {
		return nil, ErrExists
	}
	return stamped(obj, r.codec.gvk, resp.Header.Revision)
}

// encodeForWrite makes obj canonical (reporting whether it could) and
// encodes it for etcd, refusing what exceeds MaxObjectBytes.
func (r *Resource) encodeForWrite(obj runtime.Object) (data []byte, canonical bool, err error) {
	canonical = canonicalize(obj)
	if data, err = r.codec.encode(obj); err != nil {
		return nil, false, err
	}
	if len(data) > MaxObjectBytes {
		return nil, false, ErrTooLarge
	}
	return data, canonical, nil
}

// stamped returns obj as stored at rev without decoding it again: the
// caller's object (which Create and Update take over) with its
// resourceVersion and kind set.
func stamped(obj runtime.Object, gvk schema.GroupVersionKind, rev int64) (runtime.Object, error) {
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return obj, setRV(obj, rev)
}

// write stores data at key if conds hold, else runs orElse. While it
// does, the watch cache is offered obj, when canonical, so that it need
// not decode the write; a write that does not happen takes the offer back.
func (r *Resource) write(ctx context.Context, key string, data []byte, obj runtime.Object, canonical bool, conds []clientv3.Cmp, orElse ...clientv3.Op) (*clientv3.TxnResponse, error) {
	put, err := r.put(ctx, key, data)
	if err != nil {
		return nil, err
	}
	var offer *writtenObject
	if canonical && r.cache != nil {
		offer = r.cache.offer(key, data, obj)
	}
	resp, err := r.store.client.Txn(ctx).If(conds...).Then(put).Else(orElse...).Commit()
	if offer != nil && (err != nil || !resp.Succeeded) {
		r.cache.withdraw(key, offer)
	}
	return resp, err
}

// cachedAt returns the watch cache's entry for key when it holds revision
// rev, the one etcd just returned.
func (r *Resource) cachedAt(key string, rev int64) (*entry, bool) {
	e, ok := r.cache.get(key)
	return e, ok && e.rev == rev
}

// read returns key's current object, decoded, and its revision.
func (r *Resource) read(ctx context.Context, key string) (runtime.Object, int64, error) {
	resp, err := r.store.client.Get(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	return r.current(resp.Kvs)
}

// current returns the object of kvs, etcd's answer to a Get of a key,
// decoded, and its revision; ErrNotFound when etcd had no such key.
func (r *Resource) current(kvs []*mvccpb.KeyValue) (runtime.Object, int64, error) {
	if len(kvs) == 0 {
		return nil, 0, ErrNotFound
	}
	kv := kvs[0]
	obj, err := r.codec.decode(kv.Value, kv.ModRevision)
	return obj, kv.ModRevision, err
}

// cachedCopy returns the watch cache's object at key, decoded, and its
// revision; nil when the cache has none.
func (r *Resource) cachedCopy(key string) (runtime.Object, int64) {
	if r.cache == nil {
		return nil, 0
	}
	e, ok := r.cache.get(key)
	if !ok {
		return nil, 0
	}
	obj, err := e.object(r.codec)
	if err != nil {
		return nil, 0
	}
	return obj, e.rev
}

// fromCurrent runs one conditional write of key, Update's or Delete's,
// until it takes effect, as upstream's GuaranteedUpdate does with the
// cacher's copy. judge computes the object to write from the current one
// (it may refuse); commit writes it in one transaction conditional on the
// current object's revision, whose Else brings back the key's current
// state (orCurrent).
//
// The first attempt starts from the watch cache's object (decoded: a
// private copy), which is nearly always current: the write is then one etcd transaction, with
// no read before it. When the copy was stale, the transaction's answer is
// the state to retry from; when judge refused a copy that may be stale,
// etcd's object is judged again. fromCurrent returns the written object and
// its revision: the transaction's, or the current one when the
// transaction failed at that same revision (Update's condition that the
// value differs: a write that changes nothing).
func (r *Resource) fromCurrent(ctx context.Context, key string,
	judge func(cur runtime.Object) (runtime.Object, error),
	commit func(next runtime.Object, rev int64) (*clientv3.TxnResponse, error),
) (runtime.Object, int64, error) {
	cur, rev := r.cachedCopy(key)
	fromEtcd := false // cur is what etcd last answered, not the cache's copy
	for attempt := 0; ; attempt++ {
		if cur == nil {
			var err error
			if cur, rev, err = r.read(ctx, key); err != nil {
				return nil, 0, err
			}
			fromEtcd = true
		}
		next, err := judge(cur)
		if err != nil {
			if fromEtcd {
				return nil, 0, err
			}
			// A stale copy can fail a precondition the current
			// object meets.
			cur = nil
			continue
		}
		txn, err := commit(next, rev)
		if err != nil {
			return nil, 0, err
		}
		if txn.Succeeded {
			return next, txn.Header.Revision, nil
		}
		kvs := txn.Responses[0].GetResponseRange().Kvs
		if len(kvs) > 0 && kvs[0].ModRevision == rev {
			return next, rev, nil
		}
		if attempt > 100 {
			return nil, 0, ErrConflict
		}
		if cur, rev, err = r.current(kvs); err != nil {
			return nil, 0, err
		}
		fromEtcd = true
	}
}

// orCurrent is the Else branch of fromCurrent's transactions.
func orCurrent(key string) clientv3.Op { return clientv3.OpGet(key) }

// UpdateFunc computes the new object from the current one, which it may
// modify (it is a private copy). Returning an error aborts the update.
type UpdateFunc func(current runtime.Object) (runtime.Object, error)

// Update applies fn to the current object and writes the result if
// nothing changed in between; on a concurrent write it retries from the
// new state. An update that changes nothing writes nothing: the
// transaction also requires the value to differ. The object fn returns is
// the store's from then on, and is returned.
func (r *Resource) Update(ctx context.Context, namespace, name string, fn UpdateFunc) (runtime.Object, error) {
	key := r.Key(namespace, name)
	next, rev, err := r.fromCurrent(ctx, key, fn, func(next runtime.Object, rev int64) (*clientv3.TxnResponse, error) {
		data, canonical, err := r.encodeForWrite(next)
		if err != nil {
			return nil, err
		}
		return r.write(ctx, key, data, next, canonical, []clientv3.Cmp{
			clientv3.Compare(clientv3.ModRevision(key), "=", rev),
			clientv3.Compare(clientv3.Value(key), "!=", unsafe.String(unsafe.SliceData(data), len(data))),
		}, orCurrent(key))
	})
	if err != nil {
		return nil, err
	}
	return stamped(next, r.codec.gvk, rev)
}

// DeleteFunc may veto a delete after seeing the current object.
type DeleteFunc func(current runtime.Object) error

// Delete removes the object if check passes, retrying on concurrent
// writes, and returns its last state.
func (r *Resource) Delete(ctx context.Context, namespace, name string, check DeleteFunc) (runtime.Object, error) {
	key := r.Key(namespace, name)
	last, _, err := r.fromCurrent(ctx, key, func(cur runtime.Object) (runtime.Object, error) {
		if check != nil {
			if err := check(cur); err != nil {
				return nil, err
			}
		}
		return cur, nil
	}, func(_ runtime.Object, rev int64) (*clientv3.TxnResponse, error) {
		return r.store.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
			Then(clientv3.OpDelete(key)).
			Else(orCurrent(key)).
			Commit()
	})
	return last, err
}

// ListOptions selects what List returns.
type ListOptions struct {
	Namespace            string
	ResourceVersion      string
	ResourceVersionMatch string // "", "NotOlderThan" or "Exact"
	Limit                int64
	Continue             string
	// Match filters objects by what selectors see; nil matches all.
	Match func(Attrs) bool
}

// ListResult is one page of a list.
type ListResult struct {
	items              []listItem
	codec              *codec
	ResourceVersion    int64
	Continue           string
	RemainingItemCount *int64
}

// listItem is an object of a list: decoded (read from etcd), or as the
// watch cache holds it, decoded when asked for.
type listItem struct {
	obj  runtime.Object
	data []byte
	rev  int64
	enc  *Encodings
}

// Len is the number of items.
func (l *ListResult) Len() int { return len(l.items) }

// Item returns item i, a private object when it came from the watch
// cache (decoded on each call), else shared with the list.
func (l *ListResult) Item(i int) (runtime.Object, error) {
	if it := l.items[i]; it.obj != nil {
		return it.obj, nil
	}
	return l.codec.decode(l.items[i].data, l.items[i].rev)
}

// Encodings returns item i's memoized encodings (nil: none), with which a
// list served again needs neither decoding nor encoding.
func (l *ListResult) Encodings(i int) *Encodings { return l.items[i].enc }

// Items returns every item decoded.
func (l *ListResult) Items() ([]runtime.Object, error) {
	out := make([]runtime.Object, len(l.items))
	for i := range l.items {
		var err error
		if out[i], err = l.Item(i); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// List returns the matching objects sorted by key. Lists, and the first
// page of paginated ones, are served from the watch cache once it has
// caught up with etcd, as upstream's cache does since 1.34 (consistent
// reads from cache, and its snapshots for pages); the pages after the
// first, and exact-revision lists, read etcd at the revision the first
// page was served at.
func (r *Resource) List(ctx context.Context, opts ListOptions) (*ListResult, error) {
	var rv int64
	if opts.ResourceVersion != "" {
		v, err := strconv.ParseInt(opts.ResourceVersion, 10, 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%w: invalid resourceVersion %q", ErrInvalid, opts.ResourceVersion)
		}
		rv = v
	}
	switch {
	case opts.Continue != "":
		return r.listEtcd(ctx, opts, 0)
	case opts.ResourceVersionMatch == "Exact":
		return r.listEtcd(ctx, opts, rv)
	case opts.ResourceVersion == "0":
		// "Any" freshness: whatever the cache has, pagination ignored as upstream.
		opts.Limit = 0
		return r.cache.list(opts), nil
	}
	// Lists are consistent: the cache must have caught up with etcd's
	// current revision, which also satisfies any NotOlderThan revision.
	want, err := r.store.CurrentRevision(ctx)
	if err != nil {
		return nil, err
	}
	if rv > want {
		want = rv
	}
	if err := r.cache.waitFresh(ctx, want); err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			// The cache is behind; etcd answers instead.
			return r.listEtcd(ctx, opts, 0)
		}
		return nil, err
	}
	return r.cache.list(opts), nil
}

// ErrInvalid marks a malformed request parameter.
var ErrInvalid = errors.New("storage: invalid parameter")

// listEtcd serves a list, or one page of it, from etcd at revision rev
// (0: the current one, or the one in the continue token).
func (r *Resource) listEtcd(ctx context.Context, opts ListOptions, rev int64) (*ListResult, error) {
	start := r.prefix
	if r.spec.Namespaced && opts.Namespace != "" {
		start += opts.Namespace + "/"
	}
	end := clientv3.GetPrefixRangeEnd(start)
	from := start
	if opts.Continue != "" {
		tok, err := decodeContinue(opts.Continue)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		from = start + tok.Start
		if !strings.HasPrefix(from, start) || tok.RV <= 0 {
			return nil, fmt.Errorf("%w: invalid continue token", ErrInvalid)
		}
		rev = tok.RV
	}
	res := &ListResult{codec: r.codec}
	pageSize := opts.Limit
	if pageSize <= 0 || pageSize > 10000 {
		pageSize = 10000
	}
	for {
		ops := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(pageSize)}
		if rev > 0 {
			ops = append(ops, clientv3.WithRev(rev))
		}
		resp, err := r.store.client.Get(ctx, from, ops...)
		if err != nil {
			if isCompacted(err) {
				return nil, ErrExpired
			}
			return nil, err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for i, kv := range resp.Kvs {
			obj, err := r.codec.decode(kv.Value, kv.ModRevision)
			if err != nil {
				r.store.log.Error("skipping undecodable object", "key", string(kv.Key), "err", err)
				continue
			}
			if opts.Match != nil && !opts.Match(*r.attrs(obj)) {
				continue
			}
			res.items = append(res.items, listItem{obj: obj})
			if opts.Limit > 0 && int64(len(res.items)) == opts.Limit {
				more := resp.More || i < len(resp.Kvs)-1
				if more {
					res.Continue = continueAfter(rev, string(kv.Key), start)
					if opts.Match == nil {
						n := resp.Count - int64(i) - 1
						res.RemainingItemCount = &n
					}
				}
				res.ResourceVersion = rev
				return res, nil
			}
		}
		if !resp.More {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	res.ResourceVersion = rev
	return res, nil
}

func isCompacted(err error) bool {
	return err != nil && strings.Contains(err.Error(), "required revision has been compacted")
}

// freshTimeout bounds how long a consistent list waits for the cache.
const freshTimeout = 3 * time.Second
