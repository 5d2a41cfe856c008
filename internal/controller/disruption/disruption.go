package disruption

import (
	"context"
	"errors"
	"log/slog"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/lotse/lotse/internal/controller"
)

// Controller is the disruption controller.
type Controller struct {
	client  kubernetes.Interface
	budgets policylisters.PodDisruptionBudgetLister
	pods    corelisters.PodLister
	owners  owners
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
	// staleQueue holds pods whose DisruptionTarget condition goes stale.
	staleQueue workqueue.TypedRateLimitingInterface[string]
	recorder   record.EventRecorder
	events     record.EventBroadcaster
	clock      clock.Clock
	log        *slog.Logger
}

// New builds the controller on the shared informers.
func New(ctx *controller.Context) (controller.Controller, error) {
	pdbInf := ctx.Informers.Policy().V1().PodDisruptionBudgets()
	podInf := ctx.Informers.Core().V1().Pods()
	rsInf := ctx.Informers.Apps().V1().ReplicaSets()
	dInf := ctx.Informers.Apps().V1().Deployments()
	ssInf := ctx.Informers.Apps().V1().StatefulSets()
	broadcaster := record.NewBroadcaster()
	c := &Controller{
		client:  ctx.Client,
		budgets: pdbInf.Lister(),
		pods:    podInf.Lister(),
		owners: owners{
			replicaSets:  rsInf.Lister(),
			deployments:  dInf.Lister(),
			statefulSets: ssInf.Lister(),
		},
		synced: []cache.InformerSynced{
			pdbInf.Informer().HasSynced, podInf.Informer().HasSynced, rsInf.Informer().HasSynced,
			dInf.Informer().HasSynced, ssInf.Informer().HasSynced,
		},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "disruption", Clock: ctx.Clock}),
		staleQueue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "stale_pod_disruption", Clock: ctx.Clock}),
		events:   broadcaster,
		recorder: broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "controllermanager"}),
		clock:    ctx.Clock,
		log:      ctx.Logger.With("controller", "disruption"),
	}

	enqueueBudget := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
	if _, err := pdbInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueueBudget,
		UpdateFunc: func(_, obj any) { enqueueBudget(obj) },
		DeleteFunc: enqueueBudget,
	}); err != nil {
		return nil, err
	}

	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			c.enqueuePod(obj)
			c.enqueueStale(obj)
		},
		UpdateFunc: func(old, obj any) {
			// Both: a relabelled pod leaves one budget and joins another.
			c.enqueuePod(old)
			c.enqueuePod(obj)
			c.enqueueStale(obj)
		},
		DeleteFunc: func(obj any) { c.enqueuePod(obj) },
	}); err != nil {
		return nil, err
	}

	// A workload's replicas are the denominator of percentage and
	// maxUnavailable budgets, so a scale change (or a workload appearing
	// after its pods) must recompute them. Upstream waits for a resync;
	// lotse reacts at once.
	scaled := []cache.SharedIndexInformer{rsInf.Informer(), dInf.Informer(), ssInf.Informer()}
	// ReplicationControllers only if the server has them: an informer on
	// a resource that is not served never syncs and would stall the
	// controller. Without them, budgets over their pods fail safe.
	if servesReplicationControllers(ctx.Client) {
		rcInf := ctx.Informers.Core().V1().ReplicationControllers()
		c.owners.rcs = rcInf.Lister()
		c.synced = append(c.synced, rcInf.Informer().HasSynced)
		scaled = append(scaled, rcInf.Informer())
	}
	for _, inf := range scaled {
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) { c.enqueueScaled(obj) },
			UpdateFunc: func(old, obj any) {
				if scaleOf(old) != scaleOf(obj) {
					c.enqueueScaled(obj)
				}
			},
			DeleteFunc: func(obj any) { c.enqueueScaled(obj) },
		}); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func servesReplicationControllers(client kubernetes.Interface) bool {
	list, err := client.Discovery().ServerResourcesForGroupVersion("v1")
	if err != nil {
		return false
	}
	for _, r := range list.APIResources {
		if r.Name == "replicationcontrollers" {
			return true
		}
	}
	return false
}

// enqueuePod queues every budget in the pod's namespace that selects it.
func (c *Controller) enqueuePod(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	budgets, err := c.budgets.PodDisruptionBudgets(pod.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, pdb := range budgets {
		if selects(pdb, pod) {
			c.queue.Add(pdb.Namespace + "/" + pdb.Name)
		}
	}
}

// selects reports whether a policy/v1 budget covers pod: an empty
// selector covers every pod of the namespace, a missing one none.
func selects(pdb *policyv1.PodDisruptionBudget, pod *corev1.Pod) bool {
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	return err == nil && sel.Matches(labels.Set(pod.Labels))
}

// scaleOf is a workload's spec.replicas, -1 for anything else.
func scaleOf(obj any) int32 {
	switch o := obj.(type) {
	case *appsv1.ReplicaSet:
		return replicas(o.Spec.Replicas)
	case *appsv1.Deployment:
		return replicas(o.Spec.Replicas)
	case *appsv1.StatefulSet:
		return replicas(o.Spec.Replicas)
	case *corev1.ReplicationController:
		return replicas(o.Spec.Replicas)
	}
	return -1
}

// enqueueScaled queues the budgets of the workload's namespace whose
// numbers depend on workload scale. Which pods a workload controls is not
// looked up: scale changes are rare and budgets per namespace few.
func (c *Controller) enqueueScaled(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	budgets, err := c.budgets.PodDisruptionBudgets(m.GetNamespace()).List(labels.Everything())
	if err != nil {
		return
	}
	for _, pdb := range budgets {
		if usesScale(pdb) {
			c.queue.Add(pdb.Namespace + "/" + pdb.Name)
		}
	}
}

// usesScale: only an integer minAvailable is independent of the scale of
// the pods' controllers.
func usesScale(pdb *policyv1.PodDisruptionBudget) bool {
	return pdb.Spec.MaxUnavailable != nil || (pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.Type == intstr.String)
}

// Run keeps budgets current with two workers, and clears stale
// DisruptionTarget pod conditions with one, until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	defer utilruntime.HandleCrash()
	defer c.queue.ShutDown()
	defer c.staleQueue.ShutDown()
	c.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer c.events.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return errors.New("disruption: informers did not sync")
	}
	for i := 0; i < 2; i++ {
		go wait.UntilWithContext(ctx, c.worker, time.Second)
	}
	go wait.UntilWithContext(ctx, c.staleWorker, time.Second)
	<-ctx.Done()
	return nil
}

func (c *Controller) worker(ctx context.Context) {
	controller.ProcessQueue(ctx, c.queue, c.log, "pod disruption budget", c.sync)
}

// sync brings one budget's status up to date.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pdb, err := c.budgets.PodDisruptionBudgets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	err = c.trySync(ctx, pdb)
	if err == nil || apierrors.IsConflict(err) {
		// A conflict is a newer budget on its way through the informer,
		// not a failure to compute: retry without failing safe.
		return err
	}
	if fsErr := c.writeStatus(ctx, pdb, failSafe(pdb, err, c.clock.Now())); fsErr != nil {
		return fsErr
	}
	return err
}

func (c *Controller) trySync(ctx context.Context, pdb *policyv1.PodDisruptionBudget) error {
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		c.recorder.Eventf(pdb, corev1.EventTypeWarning, "NoPods", "Failed to get pods: %v", err)
		return err
	}
	pods, err := c.pods.Pods(pdb.Namespace).List(sel)
	if err != nil {
		c.recorder.Eventf(pdb, corev1.EventTypeWarning, "NoPods", "Failed to get pods: %v", err)
		return err
	}
	if len(pods) == 0 {
		c.recorder.Event(pdb, corev1.EventTypeNormal, "NoPods", "No matching pods found")
	}
	now := c.clock.Now()
	out, err := c.owners.compute(pdb, pods, now)
	if err != nil {
		c.recorder.Eventf(pdb, corev1.EventTypeWarning, "CalculateExpectedPodCountFailed", "Failed to calculate the number of expected pods: %v", err)
		return err
	}
	if len(out.unmanaged) > 0 {
		c.recorder.Eventf(pdb, corev1.EventTypeWarning, "UnmanagedPods", "Pods selected by this PodDisruptionBudget (selector: %v) were found "+
			"to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. "+
			"To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value.", pdb.Spec.Selector)
	}
	for _, pod := range out.notDeleted {
		c.recorder.Eventf(pod, corev1.EventTypeWarning, "NotDeleted", "Pod was expected by PDB %s/%s to be deleted but it wasn't", pdb.Namespace, pdb.Name)
	}
	if err := c.writeStatus(ctx, pdb, out.status); err != nil {
		return err
	}
	if !out.recheck.IsZero() {
		// An entry of status.disruptedPods lapses then; no event says so.
		c.queue.AddAfter(pdb.Namespace+"/"+pdb.Name, out.recheck.Sub(now))
	}
	return nil
}

// writeStatus writes status through the status subresource if it differs
// from what the budget has.
func (c *Controller) writeStatus(ctx context.Context, pdb *policyv1.PodDisruptionBudget, status policyv1.PodDisruptionBudgetStatus) error {
	if equality.Semantic.DeepEqual(&status, &pdb.Status) {
		return nil
	}
	next := pdb.DeepCopy()
	next.Status = status
	_, err := c.client.PolicyV1().PodDisruptionBudgets(pdb.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil // deleted meanwhile
	}
	return err
}
