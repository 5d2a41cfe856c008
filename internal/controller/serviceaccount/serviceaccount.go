package serviceaccount

import (
	"context"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/lotse/lotse/internal/controller"
)

// DefaultName is the ServiceAccount every namespace has.
const DefaultName = "default"

// Controller keeps the default ServiceAccount in every namespace.
type Controller struct {
	client     kubernetes.Interface
	namespaces corelisters.NamespaceLister
	accounts   corelisters.ServiceAccountLister
	synced     []cache.InformerSynced
	queue      workqueue.TypedRateLimitingInterface[string]
	log        *slog.Logger
}

// New builds the controller on the shared informers.
func New(ctx *controller.Context) (controller.Controller, error) {
	nsInf := ctx.Informers.Core().V1().Namespaces()
	saInf := ctx.Informers.Core().V1().ServiceAccounts()
	c := &Controller{
		client:     ctx.Client,
		namespaces: nsInf.Lister(),
		accounts:   saInf.Lister(),
		synced:     []cache.InformerSynced{nsInf.Informer().HasSynced, saInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "serviceaccount", Clock: ctx.Clock}),
		log: ctx.Logger.With("controller", "serviceaccount"),
	}
	_, err := nsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.enqueue(obj.(*corev1.Namespace).Name) },
		UpdateFunc: func(_, obj any) { c.enqueue(obj.(*corev1.Namespace).Name) },
	})
	if err != nil {
		return nil, err
	}
	_, err = saInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if sa, ok := obj.(*corev1.ServiceAccount); ok && sa.Name == DefaultName {
				c.enqueue(sa.Namespace)
			}
		},
	})
	return c, err
}

func (c *Controller) enqueue(namespace string) { c.queue.Add(namespace) }

// Run keeps the accounts with one worker until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	return controller.RunWorkers(ctx, "serviceaccount", c.synced, 1, c.worker)
}

func (c *Controller) worker(ctx context.Context) {
	controller.ProcessQueue(ctx, c.queue, c.log, "namespace", c.sync)
}

// sync creates the default ServiceAccount of an active namespace if missing.
func (c *Controller) sync(ctx context.Context, name string) error {
	if active, err := controller.ActiveNamespace(c.namespaces, name); !active || err != nil {
		return err
	}
	if _, err := c.accounts.ServiceAccounts(name).Get(DefaultName); err == nil {
		return nil
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: DefaultName}}
	_, err := c.client.CoreV1().ServiceAccounts(name).Create(ctx, sa, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) || apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
		return nil // there already, or the namespace is going away
	}
	return err
}
