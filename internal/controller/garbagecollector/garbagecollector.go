package garbagecollector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/controller"
)

const (
	// resyncPeriod is how often discovery is read again for new kinds.
	resyncPeriod  = 30 * time.Second
	deleteWorkers = 5
	orphanWorkers = 2
)

// Controller is the garbage collector.
type Controller struct {
	metadata  metadata.Interface
	discovery discovery.DiscoveryInterface
	mapper    *restmapper.DeferredDiscoveryRESTMapper
	graph     *graph
	absent    *absentCache
	// attemptToDelete holds dependents whose owners may be gone, owners in
	// foreground deletion and virtual nodes to verify.
	attemptToDelete workqueue.TypedRateLimitingInterface[types.UID]
	// attemptToOrphan holds owners whose dependents must be orphaned.
	attemptToOrphan workqueue.TypedRateLimitingInterface[types.UID]
	// workerLock is held (read) by a worker per item and (write) while new
	// informers sync.
	workerLock sync.RWMutex
	monitors   map[schema.GroupVersionResource]*monitor
	period     time.Duration
	clock      clock.WithTicker
	log        *slog.Logger
}

// New builds the garbage collector; its informers start in Run.
func New(ctx *controller.Context) (controller.Controller, error) {
	if ctx.Metadata == nil || ctx.Client == nil {
		return nil, errors.New("garbagecollector: a client and a metadata client are required")
	}
	disc := ctx.Client.Discovery()
	queue := func(name string) workqueue.TypedRateLimitingInterface[types.UID] {
		return workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[types.UID](),
			workqueue.TypedRateLimitingQueueConfig[types.UID]{Name: name, Clock: ctx.Clock})
	}
	return &Controller{
		metadata:        ctx.Metadata,
		discovery:       disc,
		mapper:          restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc)),
		graph:           newGraph(),
		absent:          newAbsentCache(),
		attemptToDelete: queue("garbage_collector_attempt_to_delete"),
		attemptToOrphan: queue("garbage_collector_attempt_to_orphan"),
		monitors:        map[schema.GroupVersionResource]*monitor{},
		period:          resyncPeriod,
		clock:           ctx.Clock,
		log:             ctx.Logger.With("controller", "garbagecollector"),
	}, nil
}

// Run builds the graph from informers on every deletable resource, then
// collects garbage until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	defer utilruntime.HandleCrash()
	defer c.attemptToDelete.ShutDown()
	defer c.attemptToOrphan.ShutDown()

	var want map[schema.GroupVersionResource]schema.GroupVersionKind
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(context.Context) (bool, error) {
		var err error
		if want, err = c.deletableResources(); err != nil {
			c.log.Warn("discovering resources", "err", err)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return nil // ctx is done
	}
	synced, err := c.syncMonitors(ctx, want)
	if err != nil {
		return err
	}
	// Decisions need the whole graph: wait for every informer first.
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return nil
	}
	c.log.Info("garbage collector synced", "resources", len(c.monitors))
	go c.resyncLoop(ctx)
	for i := 0; i < deleteWorkers; i++ {
		go wait.UntilWithContext(ctx, func(ctx context.Context) {
			for c.next(ctx, c.attemptToDelete, c.attemptToDeleteItem) {
			}
		}, time.Second)
	}
	for i := 0; i < orphanWorkers; i++ {
		go wait.UntilWithContext(ctx, func(ctx context.Context) {
			for c.next(ctx, c.attemptToOrphan, c.orphanDependents) {
			}
		}, time.Second)
	}
	<-ctx.Done()
	return nil
}

func (c *Controller) enqueue(w work) {
	for _, uid := range w.del {
		c.attemptToDelete.Add(uid)
	}
	for _, uid := range w.orphan {
		c.attemptToOrphan.Add(uid)
	}
}

// errNotObserved asks to look at a virtual node again: its object exists
// but no informer has reported it yet.
var errNotObserved = errors.New("garbagecollector: object not yet observed")

func (c *Controller) next(ctx context.Context, q workqueue.TypedRateLimitingInterface[types.UID], sync func(context.Context, types.UID) error) bool {
	uid, quit := q.Get()
	if quit {
		return false
	}
	defer q.Done(uid)
	c.workerLock.RLock()
	err := sync(ctx, uid)
	c.workerLock.RUnlock()
	switch {
	case err == nil:
		// Handled; new events requeue it if anything changes.
		q.Forget(uid)
	case errors.Is(err, errNotObserved):
		// Not a failure, but nothing will requeue it: poll with backoff
		// until the informer catches up or the node is dropped.
		q.AddRateLimited(uid)
	default:
		c.log.Warn("collecting garbage", "uid", uid, "err", err)
		// Retry with backoff: the API may be briefly unavailable, or the
		// object changed under us.
		q.AddRateLimited(uid)
	}
	return true
}

// attemptToDeleteItem looks at one node: verifies a virtual owner, finishes
// a foreground deletion whose dependents are gone, or deletes a dependent
// whose owners are all gone.
func (c *Controller) attemptToDeleteItem(ctx context.Context, uid types.UID) error {
	v, ok := c.graph.view(uid)
	if !ok {
		return nil
	}
	if v.beingDeleted && !v.deletingDependents {
		return nil // already on its way out
	}
	if v.virtual && c.graph.forgetVirtual(uid) {
		return nil // nobody refers to it any more
	}
	res, ref, err := c.resourceFor(v.ref)
	if err != nil {
		return err
	}
	latest, err := res.Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || (err == nil && latest.UID != uid) {
		// The object is gone: its dependents lose an owner.
		return c.markAbsent(ref)
	}
	if err != nil {
		return err
	}
	if v.deletingDependents {
		return c.processDeletingDependents(ctx, v)
	}
	if err := c.collect(ctx, v, latest); err != nil {
		return err
	}
	if v.virtual {
		return errNotObserved
	}
	return nil
}

// markAbsent tells the graph that ref does not exist.
func (c *Controller) markAbsent(ref objectRef) error {
	c.absent.add(ref)
	w, requeue := c.graph.absent(ref)
	c.enqueue(w)
	if requeue {
		return errNotObserved
	}
	return nil
}

// collect applies the deletion rule to one dependent.
func (c *Controller) collect(ctx context.Context, v nodeView, latest *metav1.PartialObjectMetadata) error {
	owners := latest.GetOwnerReferences()
	if len(owners) == 0 {
		return nil
	}
	states := map[types.UID]ownerState{}
	for _, o := range owners {
		s, err := c.ownerState(ctx, o, v.ref.Namespace)
		if err != nil {
			return err
		}
		states[o.UID] = s
	}
	a := decide(owners, states, len(v.dependents) > 0, latest.GetFinalizers())
	switch a.kind {
	case removeRefs:
		c.log.Debug("removing owner references", "object", v.ref, "owners", a.uids)
		return c.removeOwnerRefs(ctx, v.ref, a.uids)
	case deleteObject:
		if a.policy == metav1.DeletePropagationForeground && v.dependentDeletingDependents() {
			// An owner waits for this object, and this object would wait
			// for a dependent that itself waits: likely a cycle of
			// blocking references, in which neither could finish. As
			// upstream, stop blocking the owners first (this can also
			// catch a chain that is no cycle, which then merely lets the
			// owner go before this object).
			c.log.Debug("unblocking owner references to break a foreground deletion cycle", "object", v.ref)
			if err := c.unblockOwnerRefs(ctx, v.ref); err != nil {
				return err
			}
		}
		c.log.Debug("deleting dependent", "object", v.ref, "policy", a.policy)
		return c.deleteObject(ctx, v.ref, latest.ResourceVersion, a.policy)
	}
	return nil
}

// ownerState looks up one owner live, as upstream does: the graph may lag.
func (c *Controller) ownerState(ctx context.Context, o metav1.OwnerReference, namespace string) (ownerState, error) {
	m, err := c.mapping(o.APIVersion, o.Kind)
	if err != nil {
		return 0, err
	}
	namespaced := m.Scope.Name() == meta.RESTScopeNameNamespace
	ref := refFromOwner(o, namespace)
	if !namespaced {
		ref.Namespace = ""
	}
	if namespaced && namespace == "" {
		// A cluster-scoped object cannot be owned by a namespaced one.
		return ownerDangling, nil
	}
	if c.absent.has(ref) {
		return ownerDangling, nil
	}
	owner, err := c.metadata.Resource(m.Resource).Namespace(ref.Namespace).Get(ctx, o.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		c.absent.add(ref)
		return ownerDangling, nil
	case err != nil:
		return 0, err
	case owner.UID != o.UID:
		c.absent.add(ref)
		return ownerDangling, nil
	case owner.DeletionTimestamp != nil && hasString(owner.Finalizers, metav1.FinalizerDeleteDependents):
		return ownerWaiting, nil
	}
	return ownerSolid, nil
}

// processDeletingDependents finishes a foreground deletion once no
// blocking dependent is left, and otherwise pushes the blocking ones.
func (c *Controller) processDeletingDependents(ctx context.Context, v nodeView) error {
	blocking := v.blocking()
	if len(blocking) == 0 {
		c.log.Debug("foreground deletion done", "object", v.ref)
		return c.removeFinalizer(ctx, v.ref, metav1.FinalizerDeleteDependents)
	}
	for _, d := range blocking {
		if !d.deletingDependents {
			c.attemptToDelete.Add(d.ref.UID)
		}
	}
	return nil
}

// orphanDependents removes an owner in orphan deletion from its
// dependents' ownerReferences, then lets the owner go.
func (c *Controller) orphanDependents(ctx context.Context, uid types.UID) error {
	v, ok := c.graph.view(uid)
	if !ok || !v.orphaning {
		return nil
	}
	var errs []error
	for _, d := range v.dependents {
		if err := c.removeOwnerRefs(ctx, d.ref, []types.UID{uid}); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("orphaning dependents of %s/%s: %w", v.ref.Namespace, v.ref.Name, err)
	}
	return c.removeFinalizer(ctx, v.ref, metav1.FinalizerOrphanDependents)
}

// mapping resolves apiVersion and kind to a resource.
func (c *Controller) mapping(apiVersion, kind string) (*meta.RESTMapping, error) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return nil, err
	}
	return c.mapper.RESTMapping(gv.WithKind(kind).GroupKind(), gv.Version)
}

// resourceFor is the client for ref's resource, in ref's namespace when
// the resource is namespaced; the returned ref has no namespace when the
// resource is cluster-scoped.
func (c *Controller) resourceFor(ref objectRef) (metadata.ResourceInterface, objectRef, error) {
	m, err := c.mapping(ref.APIVersion, ref.Kind)
	if err != nil {
		return nil, ref, err
	}
	if m.Scope.Name() != meta.RESTScopeNameNamespace {
		ref.Namespace = ""
	}
	return c.metadata.Resource(m.Resource).Namespace(ref.Namespace), ref, nil
}

// deleteObject deletes ref if it is still the object we decided on.
func (c *Controller) deleteObject(ctx context.Context, ref objectRef, rv string, policy metav1.DeletionPropagation) error {
	res, _, err := c.resourceFor(ref)
	if err != nil {
		return err
	}
	uid := ref.UID
	err = res.Delete(ctx, ref.Name, metav1.DeleteOptions{
		Preconditions:     &metav1.Preconditions{UID: &uid, ResourceVersion: &rv},
		PropagationPolicy: &policy,
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// metaPatch is a JSON merge patch of metadata whose uid and
// resourceVersion make it fail with a conflict if the object changed.
type metaPatch struct {
	Metadata struct {
		UID             types.UID                `json:"uid"`
		ResourceVersion string                   `json:"resourceVersion"`
		OwnerReferences *[]metav1.OwnerReference `json:"ownerReferences,omitempty"`
		Finalizers      *[]string                `json:"finalizers,omitempty"`
	} `json:"metadata"`
}

// patchLatest reads ref, lets change edit the patch (false: nothing to
// do), and applies it; it retries on conflict.
func (c *Controller) patchLatest(ctx context.Context, ref objectRef, change func(*metav1.PartialObjectMetadata, *metaPatch) bool) error {
	res, _, err := c.resourceFor(ref)
	if err != nil {
		return err
	}
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cur, err := res.Get(ctx, ref.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || (err == nil && cur.UID != ref.UID) {
			return nil // gone: nothing to patch
		}
		if err != nil {
			return err
		}
		var p metaPatch
		p.Metadata.UID, p.Metadata.ResourceVersion = cur.UID, cur.ResourceVersion
		if !change(cur, &p) {
			return nil
		}
		body, err := json.Marshal(p)
		if err != nil {
			return err
		}
		_, err = res.Patch(ctx, ref.Name, types.MergePatchType, body, metav1.PatchOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
}

// removeOwnerRefs drops the references to uids from ref's ownerReferences.
func (c *Controller) removeOwnerRefs(ctx context.Context, ref objectRef, uids []types.UID) error {
	return c.patchLatest(ctx, ref, func(cur *metav1.PartialObjectMetadata, p *metaPatch) bool {
		kept := withoutOwners(cur.OwnerReferences, uids)
		if len(kept) == len(cur.OwnerReferences) {
			return false
		}
		if kept == nil {
			kept = []metav1.OwnerReference{}
		}
		p.Metadata.OwnerReferences = &kept
		return true
	})
}

// unblockOwnerRefs sets blockOwnerDeletion to false on ref's owner
// references.
func (c *Controller) unblockOwnerRefs(ctx context.Context, ref objectRef) error {
	return c.patchLatest(ctx, ref, func(cur *metav1.PartialObjectMetadata, p *metaPatch) bool {
		refs := slices.Clone(cur.OwnerReferences)
		changed := false
		for i := range refs {
			if ptr.Deref(refs[i].BlockOwnerDeletion, false) {
				refs[i].BlockOwnerDeletion = ptr.To(false)
				changed = true
			}
		}
		p.Metadata.OwnerReferences = &refs
		return changed
	})
}

// removeFinalizer drops one finalizer from ref; the API server deletes
// the object when it was the last.
func (c *Controller) removeFinalizer(ctx context.Context, ref objectRef, finalizer string) error {
	return c.patchLatest(ctx, ref, func(cur *metav1.PartialObjectMetadata, p *metaPatch) bool {
		if !hasString(cur.Finalizers, finalizer) {
			return false
		}
		kept := []string{}
		for _, f := range cur.Finalizers {
			if f != finalizer {
				kept = append(kept, f)
			}
		}
		p.Metadata.Finalizers = &kept
		return true
	})
}

// absentCache remembers identities verified absent. UIDs are never reused,
// so an entry never goes stale; the cache is cleared when it grows large.
type absentCache struct {
	mu  sync.Mutex
	set map[objectRef]struct{}
}

const absentCacheSize = 10000

func newAbsentCache() *absentCache { return &absentCache{set: map[objectRef]struct{}{}} }

func (a *absentCache) add(ref objectRef) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.set) >= absentCacheSize {
		a.set = map[objectRef]struct{}{}
	}
	a.set[ref] = struct{}{}
}

func (a *absentCache) has(ref objectRef) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.set[ref]
	return ok
}
