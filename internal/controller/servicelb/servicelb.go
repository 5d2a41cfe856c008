package servicelb

import (
	"context"
	"log/slog"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/lotse/lotse/internal/controller"
)

// Controller fills status.loadBalancer of LoadBalancer Services.
type Controller struct {
	client   kubernetes.Interface
	services corelisters.ServiceLister
	nodes    corelisters.NodeLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	log      *slog.Logger
}

// New builds the controller.
func New(ctx *controller.Context) (controller.Controller, error) {
	svcInf, nodeInf := ctx.Informers.Core().V1().Services(), ctx.Informers.Core().V1().Nodes()
	c := &Controller{
		client: ctx.Client, services: svcInf.Lister(), nodes: nodeInf.Lister(),
		synced: []cache.InformerSynced{svcInf.Informer().HasSynced, nodeInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "servicelb"}),
		log: ctx.Logger.With("controller", "servicelb"),
	}
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
	_, err := svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, obj any) { enqueue(obj) },
	})
	if err != nil {
		return nil, err
	}
	// Any node change may change every balancer's addresses.
	all := func(any) { c.enqueueAll() }
	_, err = nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: all, DeleteFunc: all,
		UpdateFunc: func(old, cur any) {
			o, n := old.(*corev1.Node), cur.(*corev1.Node)
			if isReady(o) != isReady(n) || !equality.Semantic.DeepEqual(o.Status.Addresses, n.Status.Addresses) {
				c.enqueueAll()
			}
		},
	})
	return c, err
}

func (c *Controller) enqueueAll() {
	svcs, _ := c.services.List(labels.Everything())
	for _, s := range svcs {
		if served(s) {
			c.queue.Add(s.Namespace + "/" + s.Name)
		}
	}
}

// Run syncs until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	return controller.RunWorkers(ctx, "servicelb", c.synced, 1, func(ctx context.Context) {
		controller.ProcessQueue(ctx, c.queue, c.log, "service", c.sync)
	})
}

// served reports whether the Service is a balancer this controller
// answers: type LoadBalancer with no other implementation named.
func served(s *corev1.Service) bool {
	return s.Spec.Type == corev1.ServiceTypeLoadBalancer && s.Spec.LoadBalancerClass == nil
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var want []corev1.LoadBalancerIngress
	if served(svc) {
		nodes, err := c.nodes.List(labels.Everything())
		if err != nil {
			return err
		}
		vip := corev1.LoadBalancerIPModeVIP
		for _, ip := range Addresses(nodes) {
			want = append(want, corev1.LoadBalancerIngress{IP: ip, IPMode: &vip})
		}
	} else if svc.Spec.LoadBalancerClass != nil || len(svc.Status.LoadBalancer.Ingress) == 0 {
		// Another implementation's balancer, or nothing to clear.
		return nil
	}
	if equality.Semantic.DeepEqual(svc.Status.LoadBalancer.Ingress, want) {
		return nil
	}
	svc = svc.DeepCopy()
	svc.Status.LoadBalancer.Ingress = want
	_, err = c.client.CoreV1().Services(ns).UpdateStatus(ctx, svc, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// Addresses are the InternalIPs of the Ready nodes, sorted; all nodes'
// when none is Ready, so a balancer never loses its address while the
// cluster restarts.
func Addresses(nodes []*corev1.Node) []string {
	var ready, all []string
	for _, n := range nodes {
		for _, a := range n.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			all = append(all, a.Address)
			if isReady(n) {
				ready = append(ready, a.Address)
			}
		}
	}
	if len(ready) == 0 {
		ready = all
	}
	slices.Sort(ready)
	return slices.Compact(ready)
}

func isReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
