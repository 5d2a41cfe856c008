package rootcacert

import (
	"context"
	"errors"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/lotse/lotse/internal/controller"
)

// Name is the ConfigMap published in every namespace, and Key its one key.
const (
	Name = "kube-root-ca.crt"
	Key  = "ca.crt"
)

// description is the annotation upstream puts on the ConfigMap.
const description = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."

// Controller keeps kube-root-ca.crt in every active namespace.
type Controller struct {
	client     kubernetes.Interface
	rootCA     string
	namespaces corelisters.NamespaceLister
	configMaps corelisters.ConfigMapLister
	cmInformer cache.SharedIndexInformer
	synced     []cache.InformerSynced
	queue      workqueue.TypedRateLimitingInterface[string]
	log        *slog.Logger
}

// New builds the controller. It watches only the ConfigMaps named
// kube-root-ca.crt (an informer of its own, so that the shared cache does
// not hold every ConfigMap of the cluster).
func New(ctx *controller.Context) (controller.Controller, error) {
	if len(ctx.RootCA) == 0 {
		return nil, errors.New("rootcacert: no root CA to publish (the kubeconfig has no certificate-authority data)")
	}
	nsInf := ctx.Informers.Core().V1().Namespaces()
	cmInf := coreinformers.NewFilteredConfigMapInformer(ctx.Client, metav1.NamespaceAll, 0,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc},
		func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", Name).String()
		})
	c := &Controller{
		client:     ctx.Client,
		rootCA:     string(ctx.RootCA),
		namespaces: nsInf.Lister(),
		configMaps: corelisters.NewConfigMapLister(cmInf.GetIndexer()),
		cmInformer: cmInf,
		synced:     []cache.InformerSynced{nsInf.Informer().HasSynced, cmInf.HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "root-ca-cert-publisher", Clock: ctx.Clock}),
		log: ctx.Logger.With("controller", "root-ca-cert-publisher"),
	}
	if _, err := nsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.queue.Add(obj.(*corev1.Namespace).Name) },
		UpdateFunc: func(_, obj any) { c.queue.Add(obj.(*corev1.Namespace).Name) },
	}); err != nil {
		return nil, err
	}
	requeue := func(obj any) {
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		if cm, ok := obj.(*corev1.ConfigMap); ok {
			c.queue.Add(cm.Namespace)
		}
	}
	_, err := cmInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) { requeue(obj) },
		DeleteFunc: requeue,
	})
	return c, err
}

// Run publishes with one worker until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	go c.cmInformer.Run(ctx.Done())
	return controller.RunWorkers(ctx, "root-ca-cert-publisher", c.synced, 1, func(ctx context.Context) {
		controller.ProcessQueue(ctx, c.queue, c.log, "namespace", c.sync)
	})
}

// sync makes the namespace's kube-root-ca.crt hold exactly the CA.
func (c *Controller) sync(ctx context.Context, name string) error {
	if active, err := controller.ActiveNamespace(c.namespaces, name); !active || err != nil {
		return err
	}
	cm, err := c.configMaps.ConfigMaps(name).Get(Name)
	if apierrors.IsNotFound(err) {
		_, err = c.client.CoreV1().ConfigMaps(name).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: Name, Annotations: map[string]string{"kubernetes.io/description": description}},
			Data:       map[string]string{Key: c.rootCA},
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) || apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
			return nil // the informer will tell us, or the namespace is going away
		}
		return err
	}
	if err != nil {
		return err
	}
	if len(cm.Data) == 1 && cm.Data[Key] == c.rootCA && len(cm.BinaryData) == 0 && cm.Annotations["kubernetes.io/description"] == description {
		return nil
	}
	cm = cm.DeepCopy()
	cm.Data, cm.BinaryData = map[string]string{Key: c.rootCA}, nil
	if cm.Annotations == nil {
		cm.Annotations = map[string]string{}
	}
	cm.Annotations["kubernetes.io/description"] = description
	_, err = c.client.CoreV1().ConfigMaps(name).Update(ctx, cm, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil // deleted meanwhile: the delete event requeues
	}
	return err
}
