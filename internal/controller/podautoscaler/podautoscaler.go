package podautoscaler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	autoscalinglisters "k8s.io/client-go/listers/autoscaling/v2"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/lotse/lotse/internal/controller"
)

// Options tune the controller; zero fields take upstream's defaults (the
// kube-controller-manager flags of the same names).
type Options struct {
	// SyncPeriod is how often each HPA is reconciled (15s).
	SyncPeriod time.Duration
	// Tolerance is the ratio change ignored as noise (0.1).
	Tolerance float64
	// DownscaleStabilization is the scale-down window used without a
	// behavior or when the behavior leaves it unset (5m).
	DownscaleStabilization time.Duration
	// CPUInitializationPeriod distrusts CPU samples of just-started pods (5m).
	CPUInitializationPeriod time.Duration
	// InitialReadinessDelay is how long a starting pod may be not ready
	// before it counts as broken rather than starting (30s).
	InitialReadinessDelay time.Duration
	// Metrics supplies pod metrics; nil reads the API server's
	// metrics.k8s.io/v1beta1.
	Metrics MetricsSource
	// Workers is the number of HPAs synced at once (5).
	Workers int
}

func (o *Options) defaults() {
	if o.SyncPeriod <= 0 {
		o.SyncPeriod = 15 * time.Second
	}
	if o.Tolerance <= 0 {
		o.Tolerance = 0.1
	}
	if o.DownscaleStabilization <= 0 {
		o.DownscaleStabilization = 5 * time.Minute
	}
	if o.CPUInitializationPeriod <= 0 {
		o.CPUInitializationPeriod = 5 * time.Minute
	}
	if o.InitialReadinessDelay <= 0 {
		o.InitialReadinessDelay = 30 * time.Second
	}
	if o.Workers <= 0 {
		o.Workers = 5
	}
}

// Controller is the HorizontalPodAutoscaler controller.
type Controller struct {
	opts     Options
	client   kubernetes.Interface
	hpas     autoscalinglisters.HorizontalPodAutoscalerLister
	pods     corelisters.PodLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	scales   scales
	metrics  MetricsSource
	norm     *normalizer
	recorder record.EventRecorder
	events   record.EventBroadcaster
	clock    clock.Clock
	log      *slog.Logger
}

// New builds the controller with upstream's defaults.
func New(ctx *controller.Context) (controller.Controller, error) {
	return NewWithOptions(ctx, Options{})
}

// fixedInterval delays every requeue by the sync period: the HPA is a
// periodic loop, and the delaying queue keeps only the earliest pending
// add, so an HPA is reconciled about once per period however often it
// changes.
type fixedInterval time.Duration

func (f fixedInterval) When(string) time.Duration { return time.Duration(f) }
func (fixedInterval) Forget(string)               {}
func (fixedInterval) NumRequeues(string) int      { return 0 }

// NewWithOptions builds the controller with tuned options; tests use it to
// shorten the period and inject a fake MetricsSource.
func NewWithOptions(ctx *controller.Context, opts Options) (*Controller, error) {
	opts.defaults()
	hpaInf := ctx.Informers.Autoscaling().V2().HorizontalPodAutoscalers()
	podInf := ctx.Informers.Core().V1().Pods()
	broadcaster := record.NewBroadcaster()
	rest := ctx.Client.Discovery().RESTClient()
	metrics := opts.Metrics
	if metrics == nil {
		metrics = restMetrics{rest: rest}
	}
	c := &Controller{
		opts:   opts,
		client: ctx.Client,
		hpas:   hpaInf.Lister(),
		pods:   podInf.Lister(),
		synced: []cache.InformerSynced{hpaInf.Informer().HasSynced, podInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig[string](fixedInterval(opts.SyncPeriod),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "horizontalpodautoscaler", Clock: ctx.Clock}),
		scales:   scales{rest: rest, discovery: ctx.Client.Discovery()},
		metrics:  metrics,
		norm:     newNormalizer(opts.DownscaleStabilization, ctx.Clock.Now),
		events:   broadcaster,
		recorder: broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "horizontal-pod-autoscaler"}),
		clock:    ctx.Clock,
		log:      ctx.Logger.With("controller", "horizontalpodautoscaler"),
	}
	enqueue := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			// Rate-limited, not immediate: see fixedInterval.
			c.queue.AddRateLimited(key)
		}
	}
	_, err := hpaInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: func(obj any) {
			if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
				// Drop its pending sync's history; the next sync sees it gone.
				c.queue.Forget(key)
				c.norm.forget(key)
			}
		},
	})
	return c, err
}

// Run reconciles HPAs until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	c.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer c.events.Shutdown()
	return controller.RunWorkers(ctx, "podautoscaler", c.synced, c.opts.Workers, c.worker)
}

func (c *Controller) worker(ctx context.Context) {
	for {
		key, quit := c.queue.Get()
		if quit {
			return
		}
		deleted, err := c.sync(ctx, key)
		if err != nil {
			c.log.Warn("syncing horizontal pod autoscaler", "key", key, "err", err)
		}
		if !deleted {
			// Success or not, the HPA is looked at again one period later.
			c.queue.AddRateLimited(key)
		}
		c.queue.Done(key)
	}
}

// sync reconciles one HPA; deleted reports that it no longer exists.
func (c *Controller) sync(ctx context.Context, key string) (deleted bool, err error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return true, nil
	}
	hpa, err := c.hpas.HorizontalPodAutoscalers(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.norm.forget(key)
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return false, c.reconcile(ctx, key, hpa.DeepCopy())
}

// reconcile is upstream's reconcileAutoscaler: read the scale, compute the
// desired size, write the scale if it differs, and report status.
func (c *Controller) reconcile(ctx context.Context, key string, hpa *autoscalingv2.HorizontalPodAutoscaler) error {
	original := hpa.Status.DeepCopy()
	now := c.clock.Now()
	ref := hpa.Spec.ScaleTargetRef
	reference := fmt.Sprintf("%s/%s/%s", ref.Kind, hpa.Namespace, ref.Name)

	path, err := c.scales.path(hpa.Namespace, ref)
	var scale *autoscalingv1.Scale
	if err == nil {
		scale, err = c.scales.get(ctx, path)
		if err != nil {
			err = fmt.Errorf("failed to query scale subresource for %s: %w", reference, err)
		}
	}
	if err != nil {
		c.recorder.Event(hpa, corev1.EventTypeWarning, "FailedGetScale", err.Error())
		setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionFalse, "FailedGetScale", "the HPA controller was unable to get the target's current scale: "+err.Error(), now)
		if uerr := c.updateStatusIfNeeded(ctx, original, hpa); uerr != nil {
			utilruntime.HandleError(uerr)
		}
		return err
	}
	setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionTrue, "SucceededGetScale", "the HPA controller was able to get the target's current scale", now)

	current := scale.Spec.Replicas
	c.norm.recordInitial(key, current)
	minReplicas := int32(1)
	if hpa.Spec.MinReplicas != nil {
		minReplicas = *hpa.Spec.MinReplicas
	}

	var (
		desired      int32
		reason       string
		statuses     []autoscalingv2.MetricStatus
		rescale      bool
		metricsError error
	)
	switch {
	case current == 0 && minReplicas != 0:
		// Someone scaled the target to zero by hand: autoscaling is off
		// until they scale it up again.
		setCondition(hpa, autoscalingv2.ScalingActive, corev1.ConditionFalse, "ScalingDisabled", "scaling is disabled since the replica count of the target is zero", now)
	case current > hpa.Spec.MaxReplicas:
		desired, reason, rescale = hpa.Spec.MaxReplicas, "Current number of replicas above Spec.MaxReplicas", true
	case current < minReplicas:
		desired, reason, rescale = minReplicas, "Current number of replicas below Spec.MinReplicas", true
	default:
		var proposal int32
		var metric string
		proposal, metric, statuses, metricsError = c.computeReplicasForMetrics(ctx, hpa, scale, now)
		if metricsError != nil && proposal == -1 {
			c.setStatus(hpa, current, hpa.Status.DesiredReplicas, statuses, false, now)
			if err := c.updateStatusIfNeeded(ctx, original, hpa); err != nil {
				utilruntime.HandleError(err)
			}
			c.recorder.Event(hpa, corev1.EventTypeWarning, "FailedComputeMetricsReplicas", metricsError.Error())
			return fmt.Errorf("failed to compute desired number of replicas based on listed metrics for %s: %w", reference, metricsError)
		}
		desired = proposal
		switch {
		case desired > current:
			reason = metric + " above target"
		case desired < current:
			reason = "All metrics below target"
		}
		if hpa.Spec.Behavior == nil {
			desired = c.norm.normalize(hpa, key, current, desired, minReplicas)
		} else {
			desired = c.norm.normalizeWithBehavior(hpa, key, current, desired, minReplicas)
		}
		rescale = desired != current
	}

	if rescale {
		scale.Spec.Replicas = desired
		if err := c.scales.update(ctx, path, scale); err != nil {
			c.recorder.Eventf(hpa, corev1.EventTypeWarning, "FailedRescale", "New size: %d; reason: %s; error: %v", desired, reason, err)
			setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionFalse, "FailedUpdateScale", "the HPA controller was unable to update the target scale: "+err.Error(), now)
			c.setStatus(hpa, current, hpa.Status.DesiredReplicas, statuses, false, now)
			if uerr := c.updateStatusIfNeeded(ctx, original, hpa); uerr != nil {
				utilruntime.HandleError(uerr)
			}
			return fmt.Errorf("failed to rescale %s: %w", reference, err)
		}
		setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionTrue, "SucceededRescale", fmt.Sprintf("the HPA controller was able to update the target scale to %d", desired), now)
		c.recorder.Eventf(hpa, corev1.EventTypeNormal, "SuccessfulRescale", "New size: %d; reason: %s", desired, reason)
		c.norm.recordScale(hpa, key, current, desired)
		c.log.Info("rescaled", "hpa", key, "target", reference, "from", current, "to", desired, "reason", reason)
	} else {
		desired = current
	}
	c.setStatus(hpa, current, desired, statuses, rescale, now)
	if err := c.updateStatusIfNeeded(ctx, original, hpa); err != nil {
		return err
	}
	return metricsError
}

// computeReplicasForMetrics proposes the largest size any metric asks
// for. It gives up (-1) when every metric failed, or when some failed and
// the rest would scale down — a missing metric must not shrink the target.
func (c *Controller) computeReplicasForMetrics(ctx context.Context, hpa *autoscalingv2.HorizontalPodAutoscaler, scale *autoscalingv1.Scale, now time.Time) (int32, string, []autoscalingv2.MetricStatus, error) {
	selector, err := c.parseSelector(hpa, scale.Status.Selector, now)
	if err != nil {
		return -1, "", nil, err
	}
	specs := hpa.Spec.Metrics
	statuses := make([]autoscalingv2.MetricStatus, len(specs))
	var (
		replicas       int32
		metric         string
		invalid        int
		firstErr       error
		firstCondition autoscalingv2.HorizontalPodAutoscalerCondition
	)
	for i, spec := range specs {
		proposal, name, cond, err := c.computeReplicasForMetric(ctx, hpa, spec, scale.Spec.Replicas, selector, &statuses[i], now)
		if err != nil {
			if invalid == 0 {
				firstErr, firstCondition = err, cond
			}
			invalid++
			continue
		}
		if replicas == 0 || proposal > replicas {
			replicas, metric = proposal, name
		}
	}
	if firstErr != nil {
		firstErr = fmt.Errorf("invalid metrics (%d invalid out of %d), first error is: %w", invalid, len(specs), firstErr)
	}
	if invalid >= len(specs) || (invalid > 0 && replicas < scale.Spec.Replicas) {
		setCondition(hpa, firstCondition.Type, firstCondition.Status, firstCondition.Reason, firstCondition.Message, now)
		return -1, "", statuses, firstErr
	}
	setCondition(hpa, autoscalingv2.ScalingActive, corev1.ConditionTrue, "ValidMetricFound", "the HPA was able to successfully calculate a replica count from "+metric, now)
	return replicas, metric, statuses, firstErr
}

func (c *Controller) parseSelector(hpa *autoscalingv2.HorizontalPodAutoscaler, s string, now time.Time) (labels.Selector, error) {
	if s == "" {
		const msg = "selector is required"
		c.recorder.Event(hpa, corev1.EventTypeWarning, "SelectorRequired", msg)
		setCondition(hpa, autoscalingv2.ScalingActive, corev1.ConditionFalse, "InvalidSelector", "the HPA target's scale is missing a selector", now)
		return nil, errors.New(msg)
	}
	sel, err := labels.Parse(s)
	if err != nil {
		msg := fmt.Sprintf("couldn't convert selector into a corresponding internal selector object: %v", err)
		c.recorder.Event(hpa, corev1.EventTypeWarning, "InvalidSelector", msg)
		setCondition(hpa, autoscalingv2.ScalingActive, corev1.ConditionFalse, "InvalidSelector", msg, now)
		return nil, errors.New(msg)
	}
	return sel, nil
}

// errNoCustomMetrics answers metric types that need the custom or
// external metrics APIs, which lotse does not serve.
var errNoCustomMetrics = errors.New("the server could not find the requested resource (custom and external metrics APIs are not served)")

// computeReplicasForMetric proposes a size for one metric and fills its
// status; on failure it returns the ScalingActive condition to report.
func (c *Controller) computeReplicasForMetric(ctx context.Context, hpa *autoscalingv2.HorizontalPodAutoscaler, spec autoscalingv2.MetricSpec,
	current int32, selector labels.Selector, status *autoscalingv2.MetricStatus, now time.Time) (int32, string, autoscalingv2.HorizontalPodAutoscalerCondition, error) {
	fail := func(reason string, err error) (int32, string, autoscalingv2.HorizontalPodAutoscalerCondition, error) {
		c.recorder.Event(hpa, corev1.EventTypeWarning, reason, err.Error())
		return 0, "", autoscalingv2.HorizontalPodAutoscalerCondition{
			Type: autoscalingv2.ScalingActive, Status: corev1.ConditionFalse, Reason: reason,
			Message: "the HPA was unable to compute the replica count: " + err.Error(),
		}, err
	}
	switch {
	case spec.Type == autoscalingv2.ResourceMetricSourceType && spec.Resource != nil:
		r := spec.Resource
		proposal, value, name, err := c.resourceProposal(ctx, hpa.Namespace, current, r.Target, r.Name, "", selector, now)
		if err != nil {
			return fail("FailedGetResourceMetric", fmt.Errorf("failed to get %s resource metric value: %w", r.Name, err))
		}
		*status = autoscalingv2.MetricStatus{Type: spec.Type, Resource: &autoscalingv2.ResourceMetricStatus{Name: r.Name, Current: value}}
		return proposal, name, autoscalingv2.HorizontalPodAutoscalerCondition{}, nil
	case spec.Type == autoscalingv2.ContainerResourceMetricSourceType && spec.ContainerResource != nil:
		r := spec.ContainerResource
		proposal, value, name, err := c.resourceProposal(ctx, hpa.Namespace, current, r.Target, r.Name, r.Container, selector, now)
		if err != nil {
			return fail("FailedGetContainerResourceMetric", fmt.Errorf("failed to get %s container metric value: %w", r.Name, err))
		}
		*status = autoscalingv2.MetricStatus{Type: spec.Type, ContainerResource: &autoscalingv2.ContainerResourceMetricStatus{Name: r.Name, Container: r.Container, Current: value}}
		return proposal, name, autoscalingv2.HorizontalPodAutoscalerCondition{}, nil
	case spec.Type == autoscalingv2.PodsMetricSourceType:
		return fail("FailedGetPodsMetric", fmt.Errorf("failed to get pods metric value: %w", errNoCustomMetrics))
	case spec.Type == autoscalingv2.ObjectMetricSourceType:
		return fail("FailedGetObjectMetric", fmt.Errorf("failed to get object metric value: %w", errNoCustomMetrics))
	case spec.Type == autoscalingv2.ExternalMetricSourceType:
		return fail("FailedGetExternalMetric", fmt.Errorf("failed to get external metric value: %w", errNoCustomMetrics))
	}
	return fail("InvalidMetricSourceType", fmt.Errorf("unknown metric source type %q", spec.Type))
}

// resourceProposal is upstream's computeStatusForResourceMetricGeneric:
// an AverageValue target compares mean usage, a Utilization target mean
// usage as a percentage of requests.
func (c *Controller) resourceProposal(ctx context.Context, namespace string, current int32, target autoscalingv2.MetricTarget,
	res corev1.ResourceName, container string, selector labels.Selector, now time.Time) (int32, autoscalingv2.MetricValueStatus, string, error) {
	var none autoscalingv2.MetricValueStatus
	if target.AverageValue == nil && target.AverageUtilization == nil {
		return 0, none, "", errors.New("invalid resource metric source: neither an average utilization target nor an average value (usage) target was set")
	}
	what := "utilization"
	if target.AverageValue != nil {
		what = "usage"
	}
	samples, pods, err := c.samples(ctx, namespace, selector, res, container)
	if err != nil {
		return 0, none, "", fmt.Errorf("failed to get %s %s: %w", res, what, err)
	}
	calc := calculator{tolerance: c.opts.Tolerance, cpuInitialization: c.opts.CPUInitializationPeriod, readinessDelay: c.opts.InitialReadinessDelay, now: now}
	if target.AverageValue != nil {
		proposal, avg, err := calc.averageValueReplicas(current, target.AverageValue.MilliValue(), res, pods, samples)
		if err != nil {
			return 0, none, "", fmt.Errorf("failed to get %s usage: %w", res, err)
		}
		return proposal, autoscalingv2.MetricValueStatus{AverageValue: resource.NewMilliQuantity(avg, resource.DecimalSI)}, string(res) + " resource", nil
	}
	proposal, util, raw, err := calc.utilizationReplicas(current, *target.AverageUtilization, res, container, pods, samples)
	if err != nil {
		return 0, none, "", fmt.Errorf("failed to get %s utilization: %w", res, err)
	}
	name := string(res) + " resource utilization (percentage of request)"
	if container != "" {
		name = string(res) + " container resource utilization (percentage of request)"
	}
	return proposal, autoscalingv2.MetricValueStatus{AverageUtilization: &util, AverageValue: resource.NewMilliQuantity(raw, resource.DecimalSI)}, name, nil
}

// samples fetches the metrics of the selected pods and the pods themselves.
func (c *Controller) samples(ctx context.Context, namespace string, selector labels.Selector, res corev1.ResourceName, container string) (map[string]sample, []*corev1.Pod, error) {
	pms, err := c.metrics.PodMetrics(ctx, namespace, selector)
	if err != nil {
		return nil, nil, fmt.Errorf("unable to get metrics for resource %s: unable to fetch metrics from resource metrics API: %w", res, err)
	}
	if len(pms) == 0 {
		return nil, nil, fmt.Errorf("unable to get metrics for resource %s: no metrics returned from resource metrics API", res)
	}
	samples, err := resourceSamples(pms, res, container)
	if err != nil {
		return nil, nil, fmt.Errorf("unable to get metrics for resource %s: %w", res, err)
	}
	pods, err := c.pods.Pods(namespace).List(selector)
	if err != nil {
		return nil, nil, fmt.Errorf("unable to get pods while calculating replica count: %w", err)
	}
	return samples, pods, nil
}

// setStatus rebuilds the status, keeping conditions and the last scale time.
func (c *Controller) setStatus(hpa *autoscalingv2.HorizontalPodAutoscaler, current, desired int32, statuses []autoscalingv2.MetricStatus, rescale bool, now time.Time) {
	hpa.Status = autoscalingv2.HorizontalPodAutoscalerStatus{
		CurrentReplicas: current,
		DesiredReplicas: desired,
		LastScaleTime:   hpa.Status.LastScaleTime,
		CurrentMetrics:  statuses,
		Conditions:      hpa.Status.Conditions,
	}
	if rescale {
		t := metav1.NewTime(now)
		hpa.Status.LastScaleTime = &t
	}
}

// updateStatusIfNeeded writes the status through the status subresource
// when it changed.
func (c *Controller) updateStatusIfNeeded(ctx context.Context, old *autoscalingv2.HorizontalPodAutoscalerStatus, hpa *autoscalingv2.HorizontalPodAutoscaler) error {
	if equality.Semantic.DeepEqual(old, &hpa.Status) {
		return nil
	}
	_, err := c.client.AutoscalingV2().HorizontalPodAutoscalers(hpa.Namespace).UpdateStatus(ctx, hpa, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // the informer brings the newer object; the next period retries
	}
	if err != nil {
		c.recorder.Event(hpa, corev1.EventTypeWarning, "FailedUpdateStatus", err.Error())
		return fmt.Errorf("failed to update status for %s: %w", hpa.Name, err)
	}
	return nil
}

// setCondition sets one condition, moving its transition time only when
// its status changes.
func setCondition(hpa *autoscalingv2.HorizontalPodAutoscaler, t autoscalingv2.HorizontalPodAutoscalerConditionType, status corev1.ConditionStatus, reason, msg string, now time.Time) {
	conds := hpa.Status.Conditions
	i := 0
	for i < len(conds) && conds[i].Type != t {
		i++
	}
	if i == len(conds) {
		conds = append(conds, autoscalingv2.HorizontalPodAutoscalerCondition{Type: t})
	}
	if conds[i].Status != status {
		conds[i].LastTransitionTime = metav1.NewTime(now)
	}
	conds[i].Status, conds[i].Reason, conds[i].Message = status, reason, msg
	hpa.Status.Conditions = conds
}
