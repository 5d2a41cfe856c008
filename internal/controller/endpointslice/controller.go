package endpointslice

import (
	"context"
	"errors"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/lotse/lotse/internal/controller"
	"github.com/lotse/lotse/internal/controller/slicetracker"
)

// Workers per loop and the retry budget of one Service, as upstream's
// defaults (--concurrent-service-endpoint-syncs, --concurrent-endpoint-syncs).
const (
	workers    = 5
	maxRetries = 15
)

// Controller runs the EndpointSlice and the Endpoints loops.
type Controller struct {
	client    kubernetes.Interface
	services  corelisters.ServiceLister
	pods      corelisters.PodLister
	nodes     corelisters.NodeLister
	slices    discoverylisters.EndpointSliceLister
	endpoints corelisters.EndpointsLister
	synced    []cache.InformerSynced

	// sliceQueue and endpointsQueue both carry Service keys.
	sliceQueue     workqueue.TypedRateLimitingInterface[string]
	endpointsQueue workqueue.TypedRateLimitingInterface[string]

	sliceTracker      *slicetracker.Tracker
	sliceTriggers     *triggerTracker
	endpointsTriggers *triggerTracker
	maxPerSlice       int

	events           record.EventBroadcaster
	sliceRecorder    record.EventRecorder
	endpointRecorder record.EventRecorder
	log              *slog.Logger
}

// New builds both loops on the shared informers.
func New(ctx *controller.Context) (controller.Controller, error) {
	svcInf := ctx.Informers.Core().V1().Services()
	podInf := ctx.Informers.Core().V1().Pods()
	nodeInf := ctx.Informers.Core().V1().Nodes()
	sliceInf := ctx.Informers.Discovery().V1().EndpointSlices()
	epInf := ctx.Informers.Core().V1().Endpoints()
	broadcaster := record.NewBroadcaster()
	queue := func(name string) workqueue.TypedRateLimitingInterface[string] {
		return workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: name, Clock: ctx.Clock})
	}
	c := &Controller{
		client:    ctx.Client,
		services:  svcInf.Lister(),
		pods:      podInf.Lister(),
		nodes:     nodeInf.Lister(),
		slices:    sliceInf.Lister(),
		endpoints: epInf.Lister(),
		synced: []cache.InformerSynced{svcInf.Informer().HasSynced, podInf.Informer().HasSynced,
			nodeInf.Informer().HasSynced, sliceInf.Informer().HasSynced, epInf.Informer().HasSynced},
		sliceQueue:        queue("endpoint_slice"),
		endpointsQueue:    queue("endpoint"),
		sliceTracker:      slicetracker.New(),
		sliceTriggers:     newTriggerTracker(),
		endpointsTriggers: newTriggerTracker(),
		maxPerSlice:       MaxEndpointsPerSlice,
		events:            broadcaster,
		sliceRecorder:     broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "endpoint-slice-controller"}),
		endpointRecorder:  broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "endpoint-controller"}),
		log:               ctx.Logger.With("controller", "endpointslice"),
	}

	enqueueService := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.sliceQueue.Add(key)
			c.endpointsQueue.Add(key)
		}
	}
	if _, err := svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueueService,
		UpdateFunc: func(_, obj any) { enqueueService(obj) },
		DeleteFunc: enqueueService,
	}); err != nil {
		return nil, err
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.enqueuePod(obj.(*corev1.Pod)) },
		UpdateFunc: func(old, obj any) {
			o, n := old.(*corev1.Pod), obj.(*corev1.Pod)
			if o.ResourceVersion == n.ResourceVersion {
				return // a resync: nothing changed
			}
			// Both label sets: a pod relabelled out of a selector must
			// leave that Service's endpoints.
			c.enqueuePod(o)
			c.enqueuePod(n)
		},
		DeleteFunc: func(obj any) {
			if pod, ok := unwrap(obj).(*corev1.Pod); ok {
				c.enqueuePod(pod)
			}
		},
	}); err != nil {
		return nil, err
	}
	// Only our own slices matter; an event that is the echo of our own
	// write needs no sync, a slice relabelled to another Service concerns
	// both.
	if _, err := sliceInf.Informer().AddEventHandler(c.sliceTracker.EventHandler(serviceKeyOf, c.sliceQueue.Add)); err != nil {
		return nil, err
	}
	// An Endpoints deleted under a live Service is put back.
	_, err := epInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			ep, ok := unwrap(obj).(*corev1.Endpoints)
			if !ok {
				return
			}
			if _, err := c.services.Services(ep.Namespace).Get(ep.Name); err == nil {
				c.endpointsQueue.Add(ep.Namespace + "/" + ep.Name)
			}
		},
	})
	return c, err
}

func unwrap(obj any) any {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return tomb.Obj
	}
	return obj
}

// serviceKeyOf is the key of the Service a slice this controller manages
// belongs to, or "" for slices managed by someone else.
func serviceKeyOf(s *discoveryv1.EndpointSlice) string {
	name := s.Labels[discoveryv1.LabelServiceName]
	if name == "" || s.Labels[discoveryv1.LabelManagedBy] != ControllerName {
		return ""
	}
	return s.Namespace + "/" + name
}

// enqueuePod queues every Service whose selector matches the pod.
func (c *Controller) enqueuePod(pod *corev1.Pod) {
	services, err := c.services.Services(pod.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, svc := range services {
		if len(svc.Spec.Selector) == 0 {
			continue
		}
		if labels.SelectorFromValidatedSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
			key := svc.Namespace + "/" + svc.Name
			c.sliceQueue.Add(key)
			c.endpointsQueue.Add(key)
		}
	}
}

// Run syncs Services with five workers per loop until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	defer utilruntime.HandleCrash()
	defer c.sliceQueue.ShutDown()
	defer c.endpointsQueue.ShutDown()
	c.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer c.events.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return errors.New("endpointslice: informers did not sync")
	}
	c.queueLeftoverEndpoints()
	for i := 0; i < workers; i++ {
		go wait.UntilWithContext(ctx, func(ctx context.Context) {
			c.work(ctx, c.sliceQueue, "endpoint slices", c.syncSlices)
		}, time.Second)
		go wait.UntilWithContext(ctx, func(ctx context.Context) {
			c.work(ctx, c.endpointsQueue, "endpoints", c.syncEndpoints)
		}, time.Second)
	}
	<-ctx.Done()
	return nil
}

// queueLeftoverEndpoints queues the Endpoints this controller wrote, so
// that those whose Service went away while it was not running are
// deleted. Endpoints written by anyone else are never touched.
func (c *Controller) queueLeftoverEndpoints() {
	all, err := c.endpoints.List(labels.SelectorFromSet(labels.Set{EndpointsManagedBy: EndpointsControllerName}))
	if err != nil {
		return
	}
	for _, ep := range all {
		c.endpointsQueue.Add(ep.Namespace + "/" + ep.Name)
	}
}

func (c *Controller) work(ctx context.Context, q workqueue.TypedRateLimitingInterface[string], what string, sync func(context.Context, string) error) {
	for {
		key, quit := q.Get()
		if quit {
			return
		}
		err := sync(ctx, key)
		switch {
		case err == nil:
			// Synced; forget the key's failure history.
			q.Forget(key)
		case q.NumRequeues(key) < maxRetries:
			c.log.Debug("syncing "+what, "service", key, "err", err)
			// Retry with backoff: the informer may be stale or the API busy.
			q.AddRateLimited(key)
		default:
			c.log.Warn("syncing "+what+": retry budget exceeded, dropping the service", "service", key, "err", err)
			// Give up as upstream does; the next event on the Service
			// or its pods queues it afresh.
			q.Forget(key)
		}
		q.Done(key)
	}
}
