package endpointslicemirroring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/controller"
	"github.com/lotse/lotse/internal/controller/slicetracker"
)

// workers is upstream's default for --mirroring-concurrent-service-endpoint-syncs.
const workers = 5

// Event reasons on the Endpoints, as upstream.
const (
	reasonInvalidIPAddress         = "InvalidIPAddress"
	reasonTooManyAddressesToMirror = "TooManyAddressesToMirror"
)

// errStale makes a sync wait for the slice informer to catch up with the
// controller's own writes.
var errStale = errors.New("endpointslicemirroring: slice informer is behind this controller's writes")

// Controller mirrors the Endpoints of selectorless Services into slices.
// Its queue holds Endpoints keys, which are also the Services' keys.
type Controller struct {
	client    kubernetes.Interface
	services  corelisters.ServiceLister
	endpoints corelisters.EndpointsLister
	slices    discoverylisters.EndpointSliceLister
	synced    []cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]
	tracker   *slicetracker.Tracker
	maxPer    int
	events    record.EventBroadcaster
	recorder  record.EventRecorder
	log       *slog.Logger
}

// New builds the controller on the shared informers.
func New(ctx *controller.Context) (controller.Controller, error) {
	svcInf := ctx.Informers.Core().V1().Services()
	epInf := ctx.Informers.Core().V1().Endpoints()
	sliceInf := ctx.Informers.Discovery().V1().EndpointSlices()
	broadcaster := record.NewBroadcaster()
	c := &Controller{
		client:    ctx.Client,
		services:  svcInf.Lister(),
		endpoints: epInf.Lister(),
		slices:    sliceInf.Lister(),
		synced:    []cache.InformerSynced{svcInf.Informer().HasSynced, epInf.Informer().HasSynced, sliceInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "endpoint_slice_mirroring", Clock: ctx.Clock}),
		tracker:  slicetracker.New(),
		maxPer:   MaxEndpointsPerSubset,
		events:   broadcaster,
		recorder: broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "endpointslicemirroring-controller"}),
		log:      ctx.Logger.With("controller", "endpointslicemirroring"),
	}

	// Services matter when they are, or stop being, selectorless.
	onService := func(obj any) {
		if svc, ok := unwrap(obj).(*corev1.Service); ok && selectorless(svc) {
			c.enqueue(svc.Namespace, svc.Name)
		}
	}
	if _, err := svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onService,
		UpdateFunc: func(old, cur any) {
			o, n := old.(*corev1.Service), cur.(*corev1.Service)
			if selectorless(o) != selectorless(n) {
				c.enqueue(n.Namespace, n.Name)
			}
		},
		DeleteFunc: onService,
	}); err != nil {
		return nil, err
	}

	// Endpoints that opt out of mirroring are ignored, unless they just
	// opted out and their slices must go.
	onEndpoints := func(obj any) {
		if ep, ok := unwrap(obj).(*corev1.Endpoints); ok && shouldMirror(ep) {
			c.enqueue(ep.Namespace, ep.Name)
		}
	}
	if _, err := epInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onEndpoints,
		UpdateFunc: func(old, cur any) {
			o, n := old.(*corev1.Endpoints), cur.(*corev1.Endpoints)
			if shouldMirror(o) || shouldMirror(n) {
				c.enqueue(n.Namespace, n.Name)
			}
		},
		DeleteFunc: onEndpoints,
	}); err != nil {
		return nil, err
	}

	// Only mirrored slices matter, and only changes this controller did
	// not make itself: someone edited, relabelled or deleted one.
	_, err := sliceInf.Informer().AddEventHandler(c.tracker.EventHandler(endpointsKeyOf, c.queue.Add))
	return c, err
}

func unwrap(obj any) any {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return tomb.Obj
	}
	return obj
}

// selectorless reports whether a Service's endpoints are left to its
// users. As in internal/controller/endpointslice, an empty selector counts
// as none, so that every Service has exactly one publisher of slices.
func selectorless(svc *corev1.Service) bool { return len(svc.Spec.Selector) == 0 }

// endpointsKeyOf is the key of the Endpoints a mirrored slice belongs to,
// or "" for slices of other managers.
func endpointsKeyOf(s *discoveryv1.EndpointSlice) string {
	name := s.Labels[discoveryv1.LabelServiceName]
	if name == "" || s.Labels[discoveryv1.LabelManagedBy] != ControllerName {
		return ""
	}
	return s.Namespace + "/" + name
}

func (c *Controller) enqueue(namespace, name string) { c.queue.Add(namespace + "/" + name) }

// Run mirrors with five workers until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	c.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer c.events.Shutdown()
	return controller.RunWorkers(ctx, "endpointslicemirroring", c.synced, workers, func(ctx context.Context) {
		controller.ProcessQueue(ctx, c.queue, c.log, "endpoints", c.sync)
	})
}

// sync makes the mirrored slices of one Endpoints key match it: none
// unless the Endpoints exists, may be mirrored, and belongs to an
// existing Service without a selector.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // not a key this controller queued; retrying cannot help
	}
	existing, err := c.slices.EndpointSlices(ns).List(labels.SelectorFromSet(labels.Set{
		discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: ControllerName,
	}))
	if err != nil {
		return err
	}
	// Even slices that are to go wait for the informer: a slice this
	// controller created a moment ago may not be listed yet, and would
	// outlive its Service otherwise (the Endpoints, its owner, stays).
	if c.tracker.Stale(key, existing) {
		return errStale
	}
	ep, err := c.endpoints.Endpoints(ns).Get(name)
	if apierrors.IsNotFound(err) || (err == nil && !shouldMirror(ep)) {
		return c.deleteSlices(ctx, key, existing)
	}
	if err != nil {
		return err
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) || (err == nil && !selectorless(svc)) {
		// The regular EndpointSlice controller publishes Services with
		// a selector; their Endpoints are that controller's output.
		return c.deleteSlices(ctx, key, existing)
	}
	if err != nil {
		return err
	}

	m := desiredSlices(ep, c.maxPer)
	if m.invalid > 0 {
		c.recorder.Eventf(ep, corev1.EventTypeWarning, reasonInvalidIPAddress,
			"Skipped %d invalid IP addresses when mirroring to EndpointSlices", m.invalid)
	}
	if m.overCap > 0 {
		c.recorder.Eventf(ep, corev1.EventTypeWarning, reasonTooManyAddressesToMirror,
			"A max of %d addresses can be mirrored to EndpointSlices per Endpoints subset. %d addresses were skipped", c.maxPer, m.overCap)
	}
	p := planSlices(m.slices, existing)
	if p.empty() {
		return nil
	}
	return c.apply(ctx, key, ep, p)
}

// apply writes a plan: creates, then updates, then deletes, so that the
// Service is never without slices in between.
func (c *Controller) apply(ctx context.Context, key string, ep *corev1.Endpoints, p plan) error {
	api := c.client.DiscoveryV1().EndpointSlices(ep.Namespace)
	// An Endpoints being deleted gets no new slices: they would race the
	// garbage collector.
	if ep.DeletionTimestamp == nil {
		for _, s := range p.create {
			got, err := api.Create(ctx, s, metav1.CreateOptions{})
			if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
				return nil // creates keep failing until the namespace is gone
			}
			if err != nil {
				return fmt.Errorf("creating EndpointSlice for Endpoints %s: %w", key, err)
			}
			c.tracker.Wrote(key, got)
		}
	}
	for _, s := range p.update {
		got, err := api.Update(ctx, s, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("updating EndpointSlice %s for Endpoints %s: %w", s.Name, key, err)
		}
		c.tracker.Wrote(key, got)
	}
	return c.deleteSlices(ctx, key, p.remove)
}

func (c *Controller) deleteSlices(ctx context.Context, key string, slices []*discoveryv1.EndpointSlice) error {
	for _, s := range slices {
		err := c.client.DiscoveryV1().EndpointSlices(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: ptr.To(s.UID)},
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting EndpointSlice %s of Endpoints %s: %w", s.Name, key, err)
		}
		c.tracker.Deleted(key, s)
	}
	return nil
}
