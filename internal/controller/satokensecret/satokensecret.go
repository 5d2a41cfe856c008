package satokensecret

import (
	"context"
	"log/slog"
	"math"

	authenticationv1 "k8s.io/api/authentication/v1"
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

// tokenSeconds is the longest lifetime TokenRequest grants (2^32 s, about
// 136 years): legacy tokens do not expire; these end with their Secret.
const tokenSeconds = math.MaxUint32

// Controller fills in service account token Secrets.
type Controller struct {
	client   kubernetes.Interface
	rootCA   []byte
	secrets  corelisters.SecretLister
	informer cache.SharedIndexInformer
	queue    workqueue.TypedRateLimitingInterface[string]
	log      *slog.Logger
}

// New builds the controller. It watches only Secrets of the token type
// (an informer of its own, so that the shared cache holds no other
// Secrets for it).
func New(ctx *controller.Context) (controller.Controller, error) {
	inf := coreinformers.NewFilteredSecretInformer(ctx.Client, metav1.NamespaceAll, 0,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc},
		func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("type", string(corev1.SecretTypeServiceAccountToken)).String()
		})
	c := &Controller{
		client:   ctx.Client,
		rootCA:   ctx.RootCA,
		secrets:  corelisters.NewSecretLister(inf.GetIndexer()),
		informer: inf,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "serviceaccount-token", Clock: ctx.Clock}),
		log: ctx.Logger.With("controller", "serviceaccount-token"),
	}
	enqueue := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	})
	return c, err
}

// Run fills Secrets with one worker until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	go c.informer.Run(ctx.Done())
	return controller.RunWorkers(ctx, "serviceaccount-token", []cache.InformerSynced{c.informer.HasSynced}, 1, func(ctx context.Context) {
		controller.ProcessQueue(ctx, c.queue, c.log, "secret", c.sync)
	})
}

// sync gives a token Secret that has none its token, ca.crt and
// namespace. A Secret whose account does not exist is left alone (upstream
// deletes it; lotse does not delete what a user made).
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	secret, err := c.secrets.Secrets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	account := secret.Annotations[corev1.ServiceAccountNameKey]
	if account == "" || len(secret.Data[corev1.ServiceAccountTokenKey]) > 0 {
		return nil
	}
	sa, err := c.client.CoreV1().ServiceAccounts(ns).Get(ctx, account, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		c.log.Debug("token secret names a missing service account", "secret", key, "serviceaccount", account)
		return nil
	}
	if err != nil {
		return err
	}
	if uid := secret.Annotations[corev1.ServiceAccountUIDKey]; uid != "" && uid != string(sa.UID) {
		return nil // made for an account of that name that is gone
	}
	seconds := int64(tokenSeconds)
	tr, err := c.client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, account, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: &seconds,
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Secret", APIVersion: "v1", Name: secret.Name, UID: secret.UID},
		},
	}, metav1.CreateOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // the Secret or account went meanwhile
	}
	if err != nil {
		return err
	}
	secret = secret.DeepCopy()
	if secret.Data == nil {
		secret.Data = map[string][]byte{}
	}
	secret.Data[corev1.ServiceAccountTokenKey] = []byte(tr.Status.Token)
	secret.Data[corev1.ServiceAccountNamespaceKey] = []byte(ns)
	if len(c.rootCA) > 0 {
		secret.Data[corev1.ServiceAccountRootCAKey] = c.rootCA
	}
	secret.Annotations[corev1.ServiceAccountUIDKey] = string(sa.UID)
	_, err = c.client.CoreV1().Secrets(ns).Update(ctx, secret, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // changed or gone: the informer brings the new version
	}
	return err
}
