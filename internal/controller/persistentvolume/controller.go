package persistentvolume

import (
	"context"
	"errors"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/lotse/lotse/internal/controller"
)

// name is upstream's name of the controller, which the manager registers
// it under; component is the event source upstream's events carry.
const (
	name      = "persistentvolume-binder"
	component = "persistentvolume-controller"
)

// resyncPeriod is how often every claim and volume is synced again, as
// upstream's controller does: it picks up what no event announces, such
// as a node that has since announced its local-path directory.
const resyncPeriod = 15 * time.Second

// Controller binds claims to volumes, reclaims released volumes and
// provisions local-path volumes.
type Controller struct {
	client   kubernetes.Interface
	volumes  corelisters.PersistentVolumeLister
	claims   corelisters.PersistentVolumeClaimLister
	classes  storagelisters.StorageClassLister
	nodes    corelisters.NodeLister
	synced   []cache.InformerSynced
	claimQ   workqueue.TypedRateLimitingInterface[string]
	volumeQ  workqueue.TypedRateLimitingInterface[string]
	events   record.EventBroadcaster
	recorder record.EventRecorder
	clock    clock.WithTicker
	log      *slog.Logger
}

// New builds the controller on the shared informers of PVs, PVCs,
// StorageClasses and Nodes.
func New(ctx *controller.Context) (controller.Controller, error) {
	pvInf := ctx.Informers.Core().V1().PersistentVolumes()
	pvcInf := ctx.Informers.Core().V1().PersistentVolumeClaims()
	scInf := ctx.Informers.Storage().V1().StorageClasses()
	nodeInf := ctx.Informers.Core().V1().Nodes()
	clk := ctx.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	broadcaster := record.NewBroadcaster()
	newQueue := func(what string) workqueue.TypedRateLimitingInterface[string] {
		return workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: what, Clock: clk})
	}
	c := &Controller{
		client:  ctx.Client,
		volumes: pvInf.Lister(), claims: pvcInf.Lister(), classes: scInf.Lister(), nodes: nodeInf.Lister(),
		synced: []cache.InformerSynced{pvInf.Informer().HasSynced, pvcInf.Informer().HasSynced,
			scInf.Informer().HasSynced, nodeInf.Informer().HasSynced},
		claimQ:   newQueue("claims"),
		volumeQ:  newQueue("volumes"),
		events:   broadcaster,
		recorder: broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component}),
		clock:    clk,
		log:      ctx.Logger.With("controller", name),
	}
	if _, err := pvcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueClaim,
		UpdateFunc: func(_, obj any) { c.enqueueClaim(obj) },
		DeleteFunc: c.claimDeleted,
	}); err != nil {
		return nil, err
	}
	_, err := pvInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.volumeChanged(nil, obj) },
		UpdateFunc: c.volumeChanged,
		DeleteFunc: func(obj any) { c.volumeChanged(nil, obj) },
	})
	return c, err
}

func (c *Controller) enqueueClaim(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		c.claimQ.Add(key)
	}
}

// claimDeleted syncs the volumes the claim held or was being bound to:
// they become Released.
func (c *Controller) claimDeleted(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	claim, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok {
		return
	}
	if claim.Spec.VolumeName != "" {
		c.volumeQ.Add(claim.Spec.VolumeName)
	}
	pvs, _ := c.volumes.List(labels.Everything())
	for _, pv := range pvs {
		if ref := pv.Spec.ClaimRef; ref != nil && ref.Namespace == claim.Namespace && ref.Name == claim.Name {
			c.volumeQ.Add(pv.Name)
		}
	}
}

// volumeChanged syncs the volume and the claim it refers to (which may
// have lost it, or wait for it to finish binding). A volume that just
// became Available may serve any waiting claim, so those are synced too.
func (c *Controller) volumeChanged(old, obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pv, ok := obj.(*corev1.PersistentVolume)
	if !ok {
		return
	}
	c.volumeQ.Add(pv.Name)
	if ref := pv.Spec.ClaimRef; ref != nil {
		c.claimQ.Add(ref.Namespace + "/" + ref.Name)
	}
	if pv.Status.Phase == corev1.VolumeAvailable && pv.Spec.ClaimRef == nil {
		if prev, ok := old.(*corev1.PersistentVolume); !ok || prev.Status.Phase != corev1.VolumeAvailable {
			c.enqueuePendingClaims()
		}
	}
}

// enqueuePendingClaims queues the claims not bound yet, including those
// that name a volume which may just have appeared.
func (c *Controller) enqueuePendingClaims() {
	claims, _ := c.claims.List(labels.Everything())
	for _, claim := range claims {
		if _, done := claim.Annotations[annBindCompleted]; !done {
			c.claimQ.Add(claim.Namespace + "/" + claim.Name)
		}
	}
}

func (c *Controller) enqueueAll() {
	claims, _ := c.claims.List(labels.Everything())
	for _, claim := range claims {
		c.claimQ.Add(claim.Namespace + "/" + claim.Name)
	}
	pvs, _ := c.volumes.List(labels.Everything())
	for _, pv := range pvs {
		c.volumeQ.Add(pv.Name)
	}
}

// Run makes sure the local-path class exists, then syncs claims and
// volumes with one worker each until ctx is done. One worker per queue
// keeps two claims from racing for the same volume in this process;
// optimistic concurrency on the volume settles races with anyone else.
func (c *Controller) Run(ctx context.Context) error {
	defer utilruntime.HandleCrash()
	defer c.claimQ.ShutDown()
	defer c.volumeQ.ShutDown()
	c.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer c.events.Shutdown()
	go c.ensureClass(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return errors.New(name + ": informers did not sync")
	}
	go wait.UntilWithContext(ctx, func(ctx context.Context) {
		controller.ProcessQueue(ctx, c.claimQ, c.log, "claim", c.syncClaim)
	}, time.Second)
	go wait.UntilWithContext(ctx, func(ctx context.Context) {
		controller.ProcessQueue(ctx, c.volumeQ, c.log, "volume", c.syncVolume)
	}, time.Second)
	ticker := c.clock.NewTicker(resyncPeriod)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C():
			c.enqueueAll()
		}
	}
}

// ensureClass creates the local-path StorageClass when it is missing,
// once per Run: a user who later edits it (say, to move the default
// annotation to another class) is not overruled until the next start.
// It retries failed API calls every second until ctx is done.
func (c *Controller) ensureClass(ctx context.Context) {
	for {
		_, err := c.client.StorageV1().StorageClasses().Get(ctx, ClassName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = c.client.StorageV1().StorageClasses().Create(ctx, LocalPathClass(), metav1.CreateOptions{})
			if err == nil {
				c.log.Info("created the default StorageClass", "class", ClassName)
			}
		}
		if err == nil || apierrors.IsAlreadyExists(err) {
			return
		}
		c.log.Warn("cannot ensure the local-path StorageClass; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-c.clock.After(time.Second):
		}
	}
}
