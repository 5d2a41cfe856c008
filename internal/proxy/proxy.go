package proxy

import (
	"bytes"
	"context"

	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	coreinformers "k8s.io/client-go/informers/core/v1"
	discoveryinformers "k8s.io/client-go/informers/discovery/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// Config configures a Proxy. The proxy does not touch sysctls; the caller
// must have turned on net.ipv4.ip_forward=1 (routing to pods) and, where
// pods share a Linux bridge, net.bridge.bridge-nf-call-iptables=1 (so that
// replies between pods on one bridge pass conntrack and get un-DNATed).
type Config struct {
	// NodeName selects the local endpoints for the Local traffic policies.
	NodeName string
	// NodeIPs are the addresses NodePorts answer on. Empty means every
	// local address except 127.0.0.0/8. IPv6 addresses are ignored.
	NodeIPs []netip.Addr
	// ClusterCIDR is the pod network. Service traffic from outside it is
	// masqueraded; invalid means "unknown" and disables that masquerade.
	ClusterCIDR netip.Prefix
	// Table is the nft table (family ip) the proxy owns; default "lotse".
	Table string
	// Run applies one nft script atomically. Default: `nft -f -`.
	Run func(ctx context.Context, script string) error
	// NetNS is an open file descriptor of the network namespace that Run
	// writes to, for what the proxy writes through netlink itself (the
	// endpoint maps of a full sync). 0: the current namespace.
	NetNS int
	// ClearConntrack deletes the UDP conntrack entries that match any of
	// the filters and says how many it deleted; see conntrack.go for when
	// it is called. Default: through netlink, in this network namespace.
	ClearConntrack func(ctx context.Context, filters []ConntrackFilter) (int, error)
	// MinSyncInterval is the least time between two syncs, so that a burst
	// of changes becomes one transaction. Default 100ms.
	MinSyncInterval time.Duration
	// RetryInterval is how long to wait after a failed write before the
	// full resync that follows it. Default 1s.
	RetryInterval time.Duration
	Logger        *slog.Logger

	// tables lists and fills the table besides nft; tests replace it.
	tables tableAccess
}

// Proxy programs Services into nftables. Create it with New, before the
// informer factory starts, and call Run once.
type Proxy struct {
	cfg     Config
	log     *slog.Logger
	build   builder
	svcs    corelisters.ServiceLister
	slices  cache.Indexer
	indexed bool // slices has the by-service index
	synced  []cache.InformerSynced

	mu    sync.Mutex
	dirty map[string]struct{} // "namespace/name" of Services to resync
	wake  chan struct{}

	// Owned by the Run goroutine.
	written  map[string]*serviceRules // what the table holds, per Service
	owners   map[string]string        // map+"\x00"+key → Service holding that element
	dispatch map[dispatchKey]struct{} // dispatch chains and maps in the table
	lastFull int                      // size of the last full script
	needFull bool
}

const sliceIndex = "lotse-proxy-service"

// New creates a Proxy and registers its event handlers on the informers.
func New(cfg Config, services coreinformers.ServiceInformer, slicesInf discoveryinformers.EndpointSliceInformer) *Proxy {
	if cfg.Table == "" {
		cfg.Table = "lotse"
	}
	if cfg.Run == nil {
		cfg.Run = runNft
	}
	if cfg.tables == nil {
		cfg.tables = netlinkTables{netns: cfg.NetNS}
	}
	if cfg.ClearConntrack == nil {
		cfg.ClearConntrack = netlinkConntrack(0)
	}
	if cfg.MinSyncInterval <= 0 {
		cfg.MinSyncInterval = 100 * time.Millisecond
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Proxy{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "proxy"),
		build:    builder{nodeName: cfg.NodeName, clusterCIDR: cfg.ClusterCIDR.Masked()},
		svcs:     services.Lister(),
		dirty:    map[string]struct{}{},
		wake:     make(chan struct{}, 1),
		written:  map[string]*serviceRules{},
		owners:   map[string]string{},
		dispatch: map[dispatchKey]struct{}{},
	}
	si, ei := services.Informer(), slicesInf.Informer()
	// The index makes "slices of this Service" a map lookup; without it a
	// full sync of n Services would scan all slices n times.
	if err := ei.AddIndexers(cache.Indexers{sliceIndex: sliceServiceIndex}); err != nil {
		p.log.Warn("endpointslice index unavailable, falling back to scans", "err", err)
	} else {
		p.indexed = true
	}
	p.slices = ei.GetIndexer()
	p.synced = []cache.InformerSynced{si.HasSynced, ei.HasSynced}
	si.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { p.markObj(obj) },
		UpdateFunc: func(old, obj any) {
			if !sameVersion(old, obj) {
				p.markObj(obj)
			}
		},
		DeleteFunc: func(obj any) { p.markObj(obj) },
	})
	ei.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { p.markSlice(obj) },
		UpdateFunc: func(old, obj any) {
			if !sameVersion(old, obj) {
				p.markSlice(old) // the service-name label may have changed
				p.markSlice(obj)
			}
		},
		DeleteFunc: func(obj any) { p.markSlice(obj) },
	})
	return p
}

func sameVersion(a, b any) bool {
	ma, ok1 := a.(interface{ GetResourceVersion() string })
	mb, ok2 := b.(interface{ GetResourceVersion() string })
	return ok1 && ok2 && ma.GetResourceVersion() != "" && ma.GetResourceVersion() == mb.GetResourceVersion()
}

func sliceServiceIndex(obj any) ([]string, error) {
	s, ok := obj.(*discovery.EndpointSlice)
	if !ok {
		return nil, nil
	}
	name := s.Labels[discovery.LabelServiceName]
	if name == "" {
		return nil, nil
	}
	return []string{s.Namespace + "/" + name}, nil
}

func (p *Proxy) markObj(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err == nil {
		p.mark(key)
	}
}

func (p *Proxy) markSlice(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	keys, _ := sliceServiceIndex(obj)
	for _, k := range keys {
		p.mark(k)
	}
}

func (p *Proxy) mark(key string) {
	p.mu.Lock()
	p.dirty[key] = struct{}{}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run waits for the informers, writes the whole table, then applies changes
// as they come until ctx ends. It deletes the table on return.
func (p *Proxy) Run(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), p.synced...) {
		return fmt.Errorf("proxy: caches did not sync: %w", ctx.Err())
	}
	defer p.cleanup(ctx)
	p.needFull = true
	for {
		start := time.Now()
		wait := p.cfg.MinSyncInterval
		if err := p.sync(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// The table may now differ from what we think it holds;
			// rebuild it from scratch after a pause.
			p.log.Error("nft sync failed, will rebuild the table", "err", err)
			p.needFull = true
			wait = p.cfg.RetryInterval
		}
		if !p.needFull {
			select {
			case <-ctx.Done():
				return nil
			case <-p.wake:
			}
		}
		// Coalesce: whatever arrives during the pause joins this sync.
		if d := wait - time.Since(start); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
	}
}

// cleanup removes the table; ctx is already done, so it gets a short
// context of its own.
func (p *Proxy) cleanup(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	t := "ip " + p.cfg.Table
	// "add" first so that "delete" cannot fail on a missing table.
	if err := p.cfg.Run(cctx, "add table "+t+"\ndelete table "+t+"\n"); err != nil {
		p.log.Error("removing nft table", "table", p.cfg.Table, "err", err)
	}
}

// sync writes what changed: everything when needFull, else the dirty Services.
func (p *Proxy) sync(ctx context.Context) error {
	p.mu.Lock()
	dirty := p.dirty
	p.dirty = map[string]struct{}{}
	p.mu.Unlock()
	if p.needFull {
		return p.syncAll(ctx)
	}
	if len(dirty) == 0 {
		return nil
	}
	return p.syncServices(ctx, dirty)
}

// syncAll rebuilds the table. Most of a big table is its endpoint maps'
// elements, which nft is slow to parse, so the dispatch chains and their
// maps come first, in a new generation that no traffic reaches yet, and
// the elements go into the maps through netlink; then one nft transaction
// rewrites everything else, its verdict maps sending traffic to the new
// dispatch chains, and another deletes what is left of the old table.
// Traffic sees the old table until the rewrite commits and the new one
// after it, never a half-written one.
func (p *Proxy) syncAll(ctx context.Context) error {
	start := time.Now()
	svcs, err := p.svcs.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("proxy: listing services: %w", err)
	}
	old, err := p.cfg.tables.objects(ctx, p.cfg.Table)
	if err != nil {
		return err
	}
	// The lowest generation not in the table (leftovers of a failed sync
	// included).
	used := map[int]bool{}
	for prefix, names := range map[string][]string{endpointMapPrefix: old.sets, dispatchChainPrefix: old.chains} {
		for _, name := range names {
			if g, ok := generation(name, prefix); ok {
				used[g] = true
			}
		}
	}
	p.build.gen = 0
	for used[p.build.gen] {
		p.build.gen++
	}

	written := make(map[string]*serviceRules, len(svcs))
	owners := map[string]string{}
	dispatch := map[dispatchKey]struct{}{}
	keys := make([]string, 0, len(svcs))
	bySvc := make(map[string]*v1.Service, len(svcs))
	for _, s := range svcs {
		k := s.Namespace + "/" + s.Name
		keys = append(keys, k)
		bySvc[k] = s
	}
	slices.Sort(keys) // first Service by name wins a contested map element
	all := make([]*serviceRules, 0, len(keys))
	var stale []ConntrackFilter
	for _, k := range keys {
		r := p.build.service(bySvc[k], p.slicesOf(k))
		claim(owners, k, r, p.log)
		stale = append(stale, staleConntrack(p.written[k], r)...)
		if r.empty() {
			continue
		}
		all = append(all, r)
		written[k] = r
		maps.Copy(dispatch, r.dispatch)
	}
	for k, old := range p.written {
		if _, ok := bySvc[k]; !ok {
			stale = append(stale, staleConntrack(old, nil)...) // Service deleted
		}
	}

	// The new dispatch chains and endpoint maps, filled, reached by
	// nothing yet. (In one transaction with the rules that use them:
	// nft 1.0.6 cannot add a rule that looks up a typeof map of an
	// earlier transaction, "conflicting protocols specified".)
	t := "ip " + p.cfg.Table
	built := time.Since(start)
	var w strings.Builder
	w.WriteString("add table " + t + "\n")
	for _, d := range sortedDispatch(dispatch) {
		writeDispatchMaps(&w, p.cfg.Table, d)
		writeDispatchChain(&w, p.cfg.Table, d)
	}
	if err := p.cfg.Run(ctx, w.String()); err != nil {
		return err
	}
	if err := p.cfg.tables.addElements(ctx, p.cfg.Table, endpointElements(all, dispatch)); err != nil {
		return err
	}

	// The switch, one transaction: what the new table keeps of the old is
	// emptied and refilled, the rest of the new table comes, and nothing
	// is deleted. Traffic that crosses the commit must find its way in
	// either table: a packet keeps the generation of the rules it started
	// with through the chains it jumps to, but a map is looked up with
	// the generation current at that instant, and a deleted map's elements
	// are gone from the next. So maps a packet of the old table may still
	// look up (the old dispatch chains' endpoint maps) stay as they are,
	// verdict maps get the same keys back, and chains are the same chains:
	// a base chain deleted and added again would even be called twice for
	// a packet crossing the commit, the new (still empty) one first.
	want := tableNames(all)
	w.Reset()
	w.Grow(p.lastFull + p.lastFull/8) // the script is megabytes: grow it once
	for _, c := range old.chains {
		if want[c] {
			fmt.Fprintf(&w, "flush chain %s %s\n", t, c)
		}
	}
	for _, s := range old.sets {
		if want[s] {
			kind := "set"
			if old.maps[s] {
				kind = "map"
			}
			fmt.Fprintf(&w, "flush %s %s %s\n", kind, t, s)
		}
	}
	writeBase(&w, p.cfg.Table, p.cfg.NodeIPs, p.build.clusterCIDR)
	writeFull(&w, p.cfg.Table, all)
	if err := p.cfg.Run(ctx, w.String()); err != nil {
		return err
	}
	full := w.Len()

	// Then what the new table does not have goes (rules first, then the
	// maps whose elements jump to chains, then the chains): nothing of the
	// table in force reaches it any more.
	w.Reset()
	var gone []string
	for _, c := range old.chains {
		if !want[c] {
			gone = append(gone, c)
			fmt.Fprintf(&w, "flush chain %s %s\n", t, c)
		}
	}
	for _, s := range old.sets {
		if !want[s] {
			fmt.Fprintf(&w, "delete set %s %s\n", t, s)
		}
	}
	for _, c := range gone {
		fmt.Fprintf(&w, "delete chain %s %s\n", t, c)
	}
	if w.Len() > 0 {
		if err := p.cfg.Run(ctx, w.String()); err != nil {
			return err
		}
	}
	p.clearConntrack(ctx, stale)
	p.written, p.owners, p.dispatch, p.needFull, p.lastFull = written, owners, dispatch, false, full
	p.log.Info("nft full sync", "services", len(written), "bytes", full, "build", built, "total", time.Since(start))
	return nil
}

// syncServices writes one transaction for the given Services only.
func (p *Proxy) syncServices(ctx context.Context, keys map[string]struct{}) error {
	start := time.Now()
	sorted := sortedKeys(keys)
	next := make(map[string]*serviceRules, len(sorted))
	// p.owners and p.dispatch are updated in place: if the write fails,
	// the full resync that follows rebuilds them.
	owners := p.owners
	// Dispatch chains are shared and kept until the next full sync; new
	// ones go first, since the Services' map elements and rules need them.
	var shared, w strings.Builder
	var stale []ConntrackFilter
	for _, k := range sorted {
		svc, err := p.getService(k)
		if err != nil {
			return err
		}
		release(owners, k, p.written[k])
		r := p.build.service(svc, p.slicesOf(k))
		claim(owners, k, r, p.log)
		for _, d := range sortedDispatch(r.dispatch) {
			if _, ok := p.dispatch[d]; !ok {
				writeDispatchMaps(&shared, p.cfg.Table, d)
				writeDispatchChain(&shared, p.cfg.Table, d)
				p.dispatch[d] = struct{}{}
			}
		}
		writeDiff(&w, p.cfg.Table, p.written[k], r)
		stale = append(stale, staleConntrack(p.written[k], r)...)
		next[k] = r
	}
	script := shared.String() + w.String()
	if script != "" {
		if err := p.cfg.Run(ctx, script); err != nil {
			return err
		}
	}
	// Also when nothing was written: a terminating endpoint that stops
	// serving while others are ready changes no rule, yet flows still on
	// it are stale.
	p.clearConntrack(ctx, stale)
	for k, r := range next {
		if r.empty() {
			delete(p.written, k)
		} else {
			p.written[k] = r
		}
	}
	p.log.Debug("nft partial sync", "services", len(sorted), "bytes", len(script), "took", time.Since(start))
	return nil
}

func (p *Proxy) getService(key string) (*v1.Service, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil, nil
	}
	svc, err := p.svcs.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return svc, err
}

func (p *Proxy) slicesOf(key string) []*discovery.EndpointSlice {
	var objs []any
	if p.indexed {
		objs, _ = p.slices.ByIndex(sliceIndex, key)
	} else {
		for _, o := range p.slices.List() {
			if ks, _ := sliceServiceIndex(o); len(ks) == 1 && ks[0] == key {
				objs = append(objs, o)
			}
		}
	}
	out := make([]*discovery.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		if s, ok := o.(*discovery.EndpointSlice); ok {
			out = append(out, s)
		}
	}
	// Stable order, so that the endpoint order in numgen maps (and so the
	// rules compared between syncs) does not depend on the cache.
	slices.SortFunc(out, func(a, b *discovery.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// claim records r's map elements as owned by svc. An element already owned
// by another Service (two Services claiming one external IP and port) is
// dropped from r, since nft maps hold one verdict per key.
func claim(owners map[string]string, svc string, r *serviceRules, log *slog.Logger) {
	for m, elems := range r.elems {
		for k := range elems {
			id := m + "\x00" + k
			if o, ok := owners[id]; ok && o != svc {
				log.Warn("service address conflict, ignoring", "service", svc, "owner", o, "map", m, "key", k)
				delete(elems, k)
				continue
			}
			owners[id] = svc
		}
		if len(elems) == 0 {
			delete(r.elems, m)
		}
	}
}

// release gives up the map elements svc held in what was last written.
func release(owners map[string]string, svc string, written *serviceRules) {
	if written == nil {
		return
	}
	for m, elems := range written.elems {
		for k := range elems {
			if id := m + "\x00" + k; owners[id] == svc {
				delete(owners, id)
			}
		}
	}
}

// runNft is the default Config.Run.
func runNft(ctx context.Context, script string) error {
	cmd := exec.CommandContext(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return &NftError{Err: err, Stderr: stderr.String()}
	}
	return nil
}

// NftError is a failed `nft -f` run with what nft printed.
type NftError struct {
	Err    error
	Stderr string
}

func (e *NftError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if len(msg) > 2000 {
		msg = msg[:2000] + "..."
	}
	return fmt.Sprintf("proxy: nft: %v: %s", e.Err, msg)
}

func (e *NftError) Unwrap() error { return e.Err }

// tableNames are the names of the chains and sets a full sync writes for
// rules, besides the new generation's dispatch chains and endpoint maps.
func tableNames(rules []*serviceRules) map[string]bool {
	names := map[string]bool{setNodePortIPs: true}
	for _, c := range baseChains {
		names[c.name] = true
	}
	for _, c := range fixedChains {
		names[c] = true
	}
	for _, s := range fixedSets {
		names[s.name] = true
	}
	for _, r := range rules {
		for c := range r.chains {
			names[c] = true
		}
		for s := range r.sets {
			names[s] = true
		}
	}
	return names
}
