package ingress

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

const (
	// ControllerName is the spec.controller of the IngressClasses this
	// controller serves.
	ControllerName = "lotse.dev/ingress"
	// DefaultClassName is the IngressClass the controller creates.
	DefaultClassName = "lotse"

	// legacyClassAnnotation predates spec.ingressClassName; when present it
	// takes precedence, as it does for the upstream controllers.
	legacyClassAnnotation = "kubernetes.io/ingress.class"

	// rebuildInterval bounds how often the routing table is rebuilt, so a
	// burst of EndpointSlice changes costs one rebuild.
	rebuildInterval = 100 * time.Millisecond

	sliceByServiceIndex = "ingress-service"
)

// Config configures a Controller.
type Config struct {
	// Client ensures the IngressClass and writes Ingress status.
	Client kubernetes.Interface
	// ClassName is the IngressClass served and created; default "lotse".
	ClassName string
	// Addresses are written to status.loadBalancer.ingress[].ip (or
	// .hostname if not an IP) of the Ingresses it serves: the nodes' IPs.
	// Empty leaves status alone.
	Addresses []string
	Logger    *slog.Logger
}

// Controller keeps a routing table from the Ingresses of its class and
// proxies requests by it.
type Controller struct {
	cfg   Config
	log   *slog.Logger
	clock clock.Clock

	ingresses    networkinglisters.IngressLister
	classes      networkinglisters.IngressClassLister
	services     corelisters.ServiceLister
	slices       discoverylisters.EndpointSliceLister
	sliceIndexer cache.Indexer // nil if the index could not be added
	secrets      corelisters.SecretLister
	synced       []cache.InformerSynced
	factory      informers.SharedInformerFactory

	table  atomic.Pointer[table]
	kick   chan struct{}
	status workqueue.TypedRateLimitingInterface[string]
	lb     networkingv1.IngressLoadBalancerStatus

	transport   *http.Transport
	bufferPool  httputil.BufferPool
	defaultCert *tls.Certificate

	// certCache holds parsed Secrets by namespace/name; only the rebuild
	// goroutine touches it.
	certCache map[string]cachedCert
	certSeen  map[string]bool
}

type cachedCert struct {
	resourceVersion string
	cert            *tls.Certificate
}

// New creates a Controller and registers the informers it needs with
// factory; Run starts them.
func New(cfg Config, factory informers.SharedInformerFactory) *Controller {
	if cfg.ClassName == "" {
		cfg.ClassName = DefaultClassName
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Controller{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "ingress"),
		clock:      clock.RealClock{},
		factory:    factory,
		kick:       make(chan struct{}, 1),
		lb:         loadBalancerStatus(cfg.Addresses),
		transport:  newTransport(),
		bufferPool: newBufferPool(),
		certCache:  map[string]cachedCert{},
		certSeen:   map[string]bool{},
		status: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "ingress-status"}),
	}
	c.table.Store(emptyTable())
	cert, err := selfSignedCert(c.clock.Now())
	if err != nil {
		c.log.Error("cannot generate the default TLS certificate", "err", err)
	} else {
		c.defaultCert = cert
	}

	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.trigger() },
		UpdateFunc: func(any, any) { c.trigger() },
		DeleteFunc: func(any) { c.trigger() },
	}
	ing := factory.Networking().V1().Ingresses()
	cls := factory.Networking().V1().IngressClasses()
	svc := factory.Core().V1().Services()
	eps := factory.Discovery().V1().EndpointSlices()
	sec := factory.Core().V1().Secrets()
	c.ingresses, c.classes, c.services, c.slices, c.secrets =
		ing.Lister(), cls.Lister(), svc.Lister(), eps.Lister(), sec.Lister()
	for _, inf := range []cache.SharedIndexInformer{ing.Informer(), cls.Informer(), svc.Informer(), eps.Informer(), sec.Informer()} {
		// Errors only when the informer was stopped, which New's caller
		// cannot have done yet.
		_, _ = inf.AddEventHandler(handler)
		c.synced = append(c.synced, inf.HasSynced)
	}
	// Index slices by Service so a rebuild does not scan a namespace per
	// backend; an informer someone already started refuses new indexers,
	// and then we fall back to the lister.
	if err := eps.Informer().AddIndexers(cache.Indexers{sliceByServiceIndex: sliceServiceKey}); err == nil {
		c.sliceIndexer = eps.Informer().GetIndexer()
	}
	return c
}

func sliceServiceKey(obj any) ([]string, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	name := s.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return nil, nil
	}
	return []string{s.Namespace + "/" + name}, nil
}

// trigger asks for a rebuild; requests coalesce while one is pending.
func (c *Controller) trigger() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Handler returns the proxy.
func (c *Controller) Handler() http.Handler { return http.HandlerFunc(c.serveHTTP) }

// Run starts the informers, ensures the IngressClass, and keeps the routing
// table and the Ingress statuses current until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	c.factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		if ctx.Err() != nil {
			return nil // stopped before we were ready: not a failure
		}
		return fmt.Errorf("ingress: caches did not sync: %w", context.Cause(ctx))
	}
	c.log.Info("ingress controller started", "class", c.cfg.ClassName, "addresses", c.cfg.Addresses)

	var wg sync.WaitGroup
	defer wg.Wait()
	defer c.status.ShutDown()
	wg.Go(func() { c.ensureClassLoop(ctx) })
	wg.Go(func() {
		for c.processStatus(ctx) {
		}
	})

	c.trigger()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.kick:
		}
		c.rebuild()
		// Let changes pile up for a moment: one rebuild covers them all.
		select {
		case <-ctx.Done():
			return nil
		case <-c.clock.After(rebuildInterval):
		}
	}
}

// rebuild builds a new table from the caches and swaps it in.
func (c *Controller) rebuild() {
	start := c.clock.Now()
	all, err := c.ingresses.List(labels.Everything())
	if err != nil {
		c.log.Error("listing ingresses", "err", err)
		return
	}
	classes, isDefault := c.ourClasses()
	var served []*networkingv1.Ingress
	for _, ing := range all {
		if isServed(ing, classes, isDefault) {
			served = append(served, ing)
		}
	}
	t := buildTable(served, (*listerSources)(c), c.newEndpointProxy)
	c.table.Store(t)
	c.pruneCertCache()
	c.log.Debug("routing table rebuilt", "ingresses", len(served), "took", c.clock.Since(start))

	if len(c.lb.Ingress) == 0 {
		return
	}
	for _, ing := range served {
		if !lbEqual(ing.Status.LoadBalancer, c.lb) {
			c.status.Add(ing.Namespace + "/" + ing.Name)
		}
	}
}

// ourClasses returns the IngressClass names this controller serves and
// whether one of them is marked as the cluster default.
func (c *Controller) ourClasses() (map[string]bool, bool) {
	names := map[string]bool{c.cfg.ClassName: true}
	isDefault := false
	list, _ := c.classes.List(labels.Everything())
	for _, ic := range list {
		if ic.Spec.Controller != ControllerName {
			// Our class name taken over by another controller is theirs.
			delete(names, ic.Name)
			continue
		}
		names[ic.Name] = true
		if ic.Annotations[networkingv1.AnnotationIsDefaultIngressClass] == "true" {
			isDefault = true
		}
	}
	return names, isDefault
}

// isServed reports whether an Ingress belongs to one of our classes: by the
// legacy annotation if present, else by spec.ingressClassName, else only if
// our class is the default.
func isServed(ing *networkingv1.Ingress, classes map[string]bool, isDefault bool) bool {
	if a, ok := ing.Annotations[legacyClassAnnotation]; ok {
		return classes[a]
	}
	if ing.Spec.IngressClassName != nil {
		return classes[*ing.Spec.IngressClassName]
	}
	return isDefault
}

// ensureClassLoop creates the IngressClass, retrying with backoff while the
// API server is unavailable.
func (c *Controller) ensureClassLoop(ctx context.Context) {
	delay := time.Second
	for {
		err := c.ensureClass(ctx)
		if err == nil {
			return
		}
		c.log.Warn("cannot ensure IngressClass, will retry", "class", c.cfg.ClassName, "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return
		case <-c.clock.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// ensureClass creates our IngressClass as the default class if it does not
// exist. An existing one is left as it is, so a user may take the default
// annotation away.
func (c *Controller) ensureClass(ctx context.Context) error {
	api := c.cfg.Client.NetworkingV1().IngressClasses()
	_, err := api.Get(ctx, c.cfg.ClassName, metav1.GetOptions{})
	if err == nil || !apierrors.IsNotFound(err) {
		return err
	}
	ic := &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        c.cfg.ClassName,
			Annotations: map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"},
			Labels:      map[string]string{"app.kubernetes.io/managed-by": "lotse"},
		},
		Spec: networkingv1.IngressClassSpec{Controller: ControllerName},
	}
	_, err = api.Create(ctx, ic, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err == nil {
		c.log.Info("created IngressClass", "class", c.cfg.ClassName)
	}
	return err
}

// processStatus handles one status key; false once the queue is shut down.
func (c *Controller) processStatus(ctx context.Context) bool {
	key, quit := c.status.Get()
	if quit {
		return false
	}
	defer c.status.Done(key)
	if err := c.syncStatus(ctx, key); err != nil {
		c.log.Warn("updating ingress status", "ingress", key, "err", err)
		// Conflicts and API hiccups are transient: retry with backoff.
		c.status.AddRateLimited(key)
		return true
	}
	// Done with this key: the next failure starts from the shortest delay.
	c.status.Forget(key)
	return true
}

// syncStatus writes our addresses into a served Ingress's status if they
// differ from what is there.
func (c *Controller) syncStatus(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // not a key we made; nothing to retry
	}
	ing, err := c.ingresses.Ingresses(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !c.table.Load().served[key] || lbEqual(ing.Status.LoadBalancer, c.lb) {
		return nil
	}
	upd := ing.DeepCopy()
	upd.Status.LoadBalancer = *c.lb.DeepCopy()
	_, err = c.cfg.Client.NetworkingV1().Ingresses(ns).UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func loadBalancerStatus(addrs []string) networkingv1.IngressLoadBalancerStatus {
	var st networkingv1.IngressLoadBalancerStatus
	for _, a := range addrs {
		if net.ParseIP(a) != nil {
			st.Ingress = append(st.Ingress, networkingv1.IngressLoadBalancerIngress{IP: a})
		} else {
			st.Ingress = append(st.Ingress, networkingv1.IngressLoadBalancerIngress{Hostname: a})
		}
	}
	return st
}

// lbEqual compares the addresses only; ports and errors are not ours to set.
func lbEqual(a, b networkingv1.IngressLoadBalancerStatus) bool {
	if len(a.Ingress) != len(b.Ingress) {
		return false
	}
	for i := range a.Ingress {
		if a.Ingress[i].IP != b.Ingress[i].IP || a.Ingress[i].Hostname != b.Ingress[i].Hostname || len(a.Ingress[i].Ports) != 0 {
			return false
		}
	}
	return true
}

// listerSources reads the informer caches for buildTable.
type listerSources Controller

func (s *listerSources) service(ns, name string) *corev1.Service {
	svc, err := s.services.Services(ns).Get(name)
	if err != nil {
		return nil
	}
	return svc
}

func (s *listerSources) endpointSlices(ns, service string) []*discoveryv1.EndpointSlice {
	if s.sliceIndexer != nil {
		objs, err := s.sliceIndexer.ByIndex(sliceByServiceIndex, ns+"/"+service)
		if err == nil {
			out := make([]*discoveryv1.EndpointSlice, 0, len(objs))
			for _, o := range objs {
				if sl, ok := o.(*discoveryv1.EndpointSlice); ok {
					out = append(out, sl)
				}
			}
			return out
		}
	}
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: service})
	out, _ := s.slices.EndpointSlices(ns).List(sel)
	return out
}

func (s *listerSources) certificate(ns, name string) *tls.Certificate {
	key := ns + "/" + name
	s.certSeen[key] = true
	sec, err := s.secrets.Secrets(ns).Get(name)
	if err != nil {
		delete(s.certCache, key)
		return nil
	}
	if cc, ok := s.certCache[key]; ok && cc.resourceVersion == sec.ResourceVersion {
		return cc.cert
	}
	// Parsed once per Secret version, and a bad one logged once.
	cert, err := certFromSecret(sec)
	if err != nil {
		s.log.Warn("ignoring TLS secret", "secret", key, "err", err)
	}
	s.certCache[key] = cachedCert{resourceVersion: sec.ResourceVersion, cert: cert}
	return cert
}

// pruneCertCache drops parsed Secrets the last build did not look at.
func (c *Controller) pruneCertCache() {
	for k := range c.certCache {
		if !c.certSeen[k] {
			delete(c.certCache, k)
		}
	}
	clear(c.certSeen)
}

func certFromSecret(sec *corev1.Secret) (*tls.Certificate, error) {
	crt, key := sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey]
	if len(crt) == 0 || len(key) == 0 {
		return nil, errors.New("secret has no tls.crt or tls.key")
	}
	cert, err := tls.X509KeyPair(crt, key)
	if err != nil {
		return nil, err
	}
	return &cert, nil
}
