package controller

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// Context is what a controller is built from. Informers requested from
// Informers before the controllers run are started by the manager.
type Context struct {
	Client    kubernetes.Interface
	Metadata  metadata.Interface
	Informers informers.SharedInformerFactory
	Logger    *slog.Logger
	Clock     clock.WithTicker
	// RootCA is the PEM bundle that verifies the API server, which the
	// root CA publisher hands to pods.
	RootCA []byte
	// ClusterCIDR is the range the node IPAM controller gives nodes their
	// pod CIDRs from, in subnets of NodeCIDRMaskSize bits (0: 24 for
	// IPv4); without it nodes get none. ReservedPodCIDRs are never given
	// out (the server's own node's, before that node has registered).
	ClusterCIDR      netip.Prefix
	NodeCIDRMaskSize int
	ReservedPodCIDRs []netip.Prefix
}

// Controller is one control loop; Run blocks until ctx is done.
type Controller interface {
	Run(ctx context.Context) error
}

// Constructor builds a controller from the shared context.
type Constructor func(*Context) (Controller, error)

// ProcessQueue hands keys from queue to sync until the queue shuts down:
// a key whose sync failed comes back after the queue's rate-limited
// delay, a synced key's failure history is forgotten. Every controller's
// workers are this loop.
func ProcessQueue(ctx context.Context, queue workqueue.TypedRateLimitingInterface[string], log *slog.Logger, what string, sync func(context.Context, string) error) {
	for {
		key, quit := queue.Get()
		if quit {
			return
		}
		if err := sync(ctx, key); err != nil {
			log.Warn("sync failed; retrying", "what", what, "key", key, "err", err)
			queue.AddRateLimited(key)
		} else {
			queue.Forget(key)
		}
		queue.Done(key)
	}
}

// RunWorkers is the end of a queue-driven controller's Run: it waits until
// the informers have synced, then runs n copies of worker until ctx is
// done, each restarted a second after it returns early. It returns
// "<name>: informers did not sync" when ctx ends before the caches fill.
// The caller still shuts its queues down (a deferred ShutDown) so that
// the workers' Get returns once Run does.
func RunWorkers(ctx context.Context, name string, synced []cache.InformerSynced, n int, worker func(context.Context)) error {
	defer utilruntime.HandleCrash()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return errors.New(name + ": informers did not sync")
	}
	for i := 0; i < n; i++ {
		go wait.UntilWithContext(ctx, worker, time.Second)
	}
	<-ctx.Done()
	return nil
}

// ControllerUIDIndex indexes objects by the UID of their controller
// (the ownerReference with controller: true); objects without one are
// indexed under orphanKey(namespace). A controller that claims objects
// then looks at its own and the orphans of its namespace, not at every
// object of the namespace: with 1,000 ReplicaSets of 30 pods in one
// namespace that is 30 pods a sync instead of 30,000.
const ControllerUIDIndex = "controllerUID"

func orphanKey(namespace string) string { return "orphan/" + namespace }

func indexByControllerUID(obj any) ([]string, error) {
	o, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil
	}
	if ref := metav1.GetControllerOfNoCopy(o); ref != nil {
		return []string{string(ref.UID)}, nil
	}
	return []string{orphanKey(o.GetNamespace())}, nil
}

// AddControllerUIDIndex adds ControllerUIDIndex to a shared informer,
// once however many controllers ask for it.
func AddControllerUIDIndex(inf cache.SharedIndexInformer) error {
	if _, ok := inf.GetIndexer().GetIndexers()[ControllerUIDIndex]; ok {
		return nil
	}
	return inf.AddIndexers(cache.Indexers{ControllerUIDIndex: indexByControllerUID})
}

// ControlledOrOrphaned returns the objects of an informer with
// ControllerUIDIndex that owner controls, and those in its namespace that
// no one controls: every object owner could claim.
func ControlledOrOrphaned[T any](indexer cache.Indexer, owner metav1.Object) ([]T, error) {
	var out []T
	for _, key := range []string{string(owner.GetUID()), orphanKey(owner.GetNamespace())} {
		objs, err := indexer.ByIndex(ControllerUIDIndex, key)
		if err != nil {
			return nil, err
		}
		for _, obj := range objs {
			if t, ok := obj.(T); ok {
				out = append(out, t)
			}
		}
	}
	return out, nil
}

// ActiveNamespace reports whether the namespace exists and is not being
// deleted: the controllers that put an object into every namespace leave
// missing and terminating ones alone.
func ActiveNamespace(namespaces corelisters.NamespaceLister, name string) (bool, error) {
	ns, err := namespaces.Get(name)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return ns.DeletionTimestamp == nil && ns.Status.Phase != corev1.NamespaceTerminating, nil
}
