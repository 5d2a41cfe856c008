package namespace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/lotse/lotse/internal/controller"
)

// Controller finalizes deleted namespaces.
type Controller struct {
	client    kubernetes.Interface
	metadata  metadata.Interface
	discovery discovery.DiscoveryInterface
	lister    corelisters.NamespaceLister
	synced    cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]
	log       *slog.Logger
}

// New builds the controller on the shared informers.
func New(ctx *controller.Context) (controller.Controller, error) {
	inf := ctx.Informers.Core().V1().Namespaces()
	c := &Controller{
		client:    ctx.Client,
		metadata:  ctx.Metadata,
		discovery: ctx.Client.Discovery(),
		lister:    inf.Lister(),
		synced:    inf.Informer().HasSynced,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "namespace", Clock: ctx.Clock}),
		log: ctx.Logger.With("controller", "namespace"),
	}
	enqueue := func(obj any) {
		if ns, ok := obj.(*corev1.Namespace); ok && ns.DeletionTimestamp != nil {
			c.queue.Add(ns.Name)
		}
	}
	_, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	})
	return c, err
}

// Run processes deleted namespaces with two workers until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	return controller.RunWorkers(ctx, "namespace", []cache.InformerSynced{c.synced}, 2, c.worker)
}

func (c *Controller) worker(ctx context.Context) {
	for c.next(ctx) {
	}
}

// errContentRemains asks for another pass once the remaining objects
// (pods in their grace period, objects with finalizers) may be gone.
var errContentRemains = errors.New("namespace: content remains")

func (c *Controller) next(ctx context.Context) bool {
	name, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(name)
	err := c.sync(ctx, name)
	switch {
	case err == nil:
		// Done with this namespace; forget its failure history.
		c.queue.Forget(name)
	case errors.Is(err, errContentRemains):
		// Not a failure: look again shortly, without growing backoff.
		c.queue.Forget(name)
		c.queue.AddAfter(name, 2*time.Second)
	default:
		c.log.Warn("syncing namespace", "namespace", name, "err", err)
		// Retry with backoff: the API may be briefly unavailable.
		c.queue.AddRateLimited(name)
	}
	return true
}

// sync deletes the content of a deleted namespace, then finalizes it.
func (c *Controller) sync(ctx context.Context, name string) error {
	ns, err := c.lister.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ns.DeletionTimestamp == nil || !hasFinalizer(ns) {
		return nil
	}
	remaining, err := c.deleteContent(ctx, name)
	if err != nil {
		return err
	}
	if len(remaining) > 0 {
		c.reportRemaining(ctx, ns, remaining)
		return errContentRemains
	}
	ns = ns.DeepCopy()
	var keep []corev1.FinalizerName
	for _, f := range ns.Spec.Finalizers {
		if f != corev1.FinalizerKubernetes {
			keep = append(keep, f)
		}
	}
	ns.Spec.Finalizers = keep
	_, err = c.client.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone already, or changed: the informer brings it back
	}
	return err
}

func hasFinalizer(ns *corev1.Namespace) bool {
	for _, f := range ns.Spec.Finalizers {
		if f == corev1.FinalizerKubernetes {
			return true
		}
	}
	return false
}

// deleteContent deletes every namespaced object in the namespace and
// returns how many of each resource are still there.
func (c *Controller) deleteContent(ctx context.Context, ns string) (map[string]int, error) {
	lists, err := c.discovery.ServerPreferredNamespacedResources()
	if err != nil && len(lists) == 0 {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	remaining := map[string]int{}
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range list.APIResources {
			if strings.Contains(r.Name, "/") || !has(r.Verbs, "list") || !has(r.Verbs, "deletecollection") {
				continue
			}
			res := c.metadata.Resource(gv.WithResource(r.Name)).Namespace(ns)
			items, err := res.List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, err
			}
			if len(items.Items) == 0 {
				continue
			}
			if err := res.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return nil, err
			}
			left, err := res.List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, err
			}
			if n := len(left.Items); n > 0 {
				remaining[r.Name+groupSuffix(gv.Group)] = n
			}
		}
	}
	return remaining, nil
}

func groupSuffix(group string) string {
	if group == "" {
		return ""
	}
	return "." + group
}

func has(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// reportRemaining sets the NamespaceContentRemaining condition, as
// upstream does, so `kubectl describe namespace` says what is left.
func (c *Controller) reportRemaining(ctx context.Context, ns *corev1.Namespace, remaining map[string]int) {
	var parts []string
	for r, n := range remaining {
		parts = append(parts, fmt.Sprintf("%s has %d resource instances", r, n))
	}
	sort.Strings(parts)
	msg := "Some resources are remaining: " + strings.Join(parts, ", ")
	ns = ns.DeepCopy()
	cond := corev1.NamespaceCondition{
		Type: corev1.NamespaceContentRemaining, Status: corev1.ConditionTrue,
		Reason: "SomeResourcesRemain", Message: msg, LastTransitionTime: metav1.Now(),
	}
	for i, existing := range ns.Status.Conditions {
		if existing.Type == cond.Type {
			if existing.Message == cond.Message && existing.Status == cond.Status {
				return
			}
			ns.Status.Conditions[i] = cond
			cond.Type = ""
		}
	}
	if cond.Type != "" {
		ns.Status.Conditions = append(ns.Status.Conditions, cond)
	}
	if _, err := c.client.CoreV1().Namespaces().UpdateStatus(ctx, ns, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
		c.log.Debug("reporting remaining content", "namespace", ns.Name, "err", err)
	}
}
