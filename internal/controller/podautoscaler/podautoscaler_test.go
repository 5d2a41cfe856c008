package podautoscaler_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/controller"
	"github.com/lotse/lotse/internal/controller/podautoscaler"
	"github.com/lotse/lotse/internal/testserver"
)

// fakeMetrics serves fixed CPU usage per pod, filtered by pod labels.
type fakeMetrics struct {
	mu   sync.Mutex
	pods map[string]fakePod
}

type fakePod struct {
	labels labels.Set
	cpu    string
}

func (f *fakeMetrics) PodMetrics(_ context.Context, _ string, sel labels.Selector) ([]podautoscaler.PodMetrics, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []podautoscaler.PodMetrics
	for name, p := range f.pods {
		if !sel.Matches(p.labels) {
			continue
		}
		out = append(out, podautoscaler.PodMetrics{
			Name: name, Timestamp: time.Now(), Window: 30 * time.Second,
			Containers: []podautoscaler.ContainerMetrics{{Name: "c", Usage: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(p.cpu)}}},
		})
	}
	return out, nil
}

func resources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{Requests: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi"),
	}}
}

func newSet(name string) *appsv1.ReplicaSet {
	l := map[string]string{"app": name}
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: l},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36", Resources: resources()}}},
			},
		},
	}
}

// runningPod creates a pod of the set that has been running and ready
// for an hour, as the replicaset controller and a node would have left it.
func runningPod(t *testing.T, s *testserver.Server, set, name string) {
	t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": set}},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36", Resources: resources()}}},
	}
	created, err := s.Client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	since := metav1.NewTime(time.Now().Add(-time.Hour))
	created.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, StartTime: &since,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: since}},
	}
	if _, err := s.Client.CoreV1().Pods("default").UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 15*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

func cond(h *autoscalingv2.HorizontalPodAutoscaler, t autoscalingv2.HorizontalPodAutoscalerConditionType) autoscalingv2.HorizontalPodAutoscalerCondition {
	for _, c := range h.Status.Conditions {
		if c.Type == t {
			return c
		}
	}
	return autoscalingv2.HorizontalPodAutoscalerCondition{}
}

// TestScalesUpThroughTheScaleSubresource runs the controller against the
// real API server with faked metrics: a ReplicaSet at 90% of its CPU
// request against a 50% target is scaled from 1 to 2, and the HPA's
// status, conditions and events say so.
func TestScalesUpThroughTheScaleSubresource(t *testing.T) {
	s := testserver.Start(t, testserver.Options{DisableScheduler: true, Controllers: []string{"garbagecollector", "namespace", "serviceaccount"}}) // the test runs its own autoscaler
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	metrics := &fakeMetrics{pods: map[string]fakePod{
		"web-a": {labels: labels.Set{"app": "web"}, cpu: "90m"},
		"db-a":  {labels: labels.Set{"app": "db"}, cpu: "10m"},
	}}
	factory := informers.NewSharedInformerFactory(s.Client, 0)
	c, err := podautoscaler.NewWithOptions(&controller.Context{
		Client: s.Client, Informers: factory, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: clock.RealClock{},
	}, podautoscaler.Options{SyncPeriod: 200 * time.Millisecond, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	for _, set := range []string{"web", "db"} {
		if _, err := s.Client.AppsV1().ReplicaSets("default").Create(ctx, newSet(set), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		runningPod(t, s, set, set+"-a")
	}

	// As `kubectl autoscale rs web --min=1 --max=5 --cpu-percent=50` would.
	web := &autoscalingv1.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web"},
			MinReplicas:    ptr.To(int32(1)), MaxReplicas: 5, TargetCPUUtilizationPercentage: ptr.To(int32(50)),
		},
	}
	if _, err := s.Client.AutoscalingV1().HorizontalPodAutoscalers("default").Create(ctx, web, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A memory target whose pods report no memory: the metric fails.
	db := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "db"},
			MaxReplicas:    3,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceMemory, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(int32(60))},
			}}},
		},
	}
	// And one whose target does not exist.
	ghost := db.DeepCopy()
	ghost.Name, ghost.Spec.ScaleTargetRef.Name = "ghost", "ghost"
	for _, h := range []*autoscalingv2.HorizontalPodAutoscaler{db, ghost} {
		if _, err := s.Client.AutoscalingV2().HorizontalPodAutoscalers("default").Create(ctx, h, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	hpas := s.Client.AutoscalingV2().HorizontalPodAutoscalers("default")
	waitFor(t, "the ReplicaSet scaled to 2", func() bool {
		rs, err := s.Client.AppsV1().ReplicaSets("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && *rs.Spec.Replicas == 2
	})
	waitFor(t, "the HPA status", func() bool {
		h, err := hpas.Get(ctx, "web", metav1.GetOptions{})
		return err == nil && h.Status.DesiredReplicas == 2 && h.Status.LastScaleTime != nil
	})
	h, _ := hpas.Get(ctx, "web", metav1.GetOptions{})
	if m := h.Status.CurrentMetrics; len(m) != 1 || m[0].Resource == nil || *m[0].Resource.Current.AverageUtilization != 90 || m[0].Resource.Current.AverageValue.MilliValue() != 90 {
		t.Errorf("currentMetrics = %+v, want cpu at 90%% (90m)", m)
	}
	for typ, reason := range map[autoscalingv2.HorizontalPodAutoscalerConditionType]string{
		autoscalingv2.AbleToScale: "", autoscalingv2.ScalingActive: "ValidMetricFound", autoscalingv2.ScalingLimited: "DesiredWithinRange",
	} {
		c := cond(h, typ)
		if c.Type == "" || (reason != "" && c.Reason != reason) {
			t.Errorf("condition %s = %+v, want reason %q", typ, c, reason)
		}
	}
	if c := cond(h, autoscalingv2.AbleToScale); c.Status != corev1.ConditionTrue {
		t.Errorf("AbleToScale = %+v", c)
	}
	v1, err := s.Client.AutoscalingV1().HorizontalPodAutoscalers("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil || v1.Status.CurrentCPUUtilizationPercentage == nil || *v1.Status.CurrentCPUUtilizationPercentage != 90 {
		t.Errorf("v1 view: %+v %v", v1.Status, err)
	}
	waitFor(t, "a SuccessfulRescale event", func() bool {
		ev, err := s.Client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=web,reason=SuccessfulRescale"})
		return err == nil && len(ev.Items) > 0 &&
			ev.Items[0].Message == "New size: 2; reason: cpu resource utilization (percentage of request) above target"
	})

	waitFor(t, "db's failed metric reported", func() bool {
		h, err := hpas.Get(ctx, "db", metav1.GetOptions{})
		if err != nil {
			return false
		}
		c := cond(h, autoscalingv2.ScalingActive)
		return c.Status == corev1.ConditionFalse && c.Reason == "FailedGetResourceMetric" &&
			strings.HasPrefix(c.Message, "the HPA was unable to compute the replica count: failed to get memory resource metric value") &&
			h.Status.CurrentReplicas == 1
	})
	waitFor(t, "ghost's missing target reported", func() bool {
		h, err := hpas.Get(ctx, "ghost", metav1.GetOptions{})
		if err != nil {
			return false
		}
		c := cond(h, autoscalingv2.AbleToScale)
		return c.Status == corev1.ConditionFalse && c.Reason == "FailedGetScale"
	})
	if rs, _ := s.Client.AppsV1().ReplicaSets("default").Get(ctx, "db", metav1.GetOptions{}); *rs.Spec.Replicas != 1 {
		t.Errorf("db was scaled to %d without a metric", *rs.Spec.Replicas)
	}
	waitFor(t, "a FailedGetResourceMetric event", func() bool {
		ev, err := s.Client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=db,reason=FailedGetResourceMetric"})
		return err == nil && len(ev.Items) > 0
	})

	// Scaling the target to zero by hand switches autoscaling off.
	// The controllers write the status meanwhile: retry a stale scale.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		scale, err := s.Client.AppsV1().ReplicaSets("default").GetScale(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		scale.Spec.Replicas = 0
		_, err = s.Client.AppsV1().ReplicaSets("default").UpdateScale(ctx, "web", scale, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ScalingDisabled", func() bool {
		h, err := hpas.Get(ctx, "web", metav1.GetOptions{})
		return err == nil && cond(h, autoscalingv2.ScalingActive).Reason == "ScalingDisabled" && h.Status.CurrentReplicas == 0
	})
	if rs, _ := s.Client.AppsV1().ReplicaSets("default").Get(ctx, "web", metav1.GetOptions{}); *rs.Spec.Replicas != 0 {
		t.Errorf("a target scaled to zero was scaled back to %d", *rs.Spec.Replicas)
	}
}

// TestReadsTheMetricsAPI runs the controller on the API server's own
// metrics.k8s.io, which has no samples without node agents: the HPA must
// say so rather than scale.
func TestReadsTheMetricsAPI(t *testing.T) {
	s := testserver.Start(t, testserver.Options{DisableScheduler: true, Controllers: []string{"garbagecollector", "namespace", "serviceaccount"}}) // the test runs its own autoscaler
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory := informers.NewSharedInformerFactory(s.Client, 0)
	c, err := podautoscaler.NewWithOptions(&controller.Context{
		Client: s.Client, Informers: factory, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: clock.RealClock{},
	}, podautoscaler.Options{SyncPeriod: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	if _, err := s.Client.AppsV1().ReplicaSets("default").Create(ctx, newSet("web"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	runningPod(t, s, "web", "web-a")
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web"},
			MaxReplicas:    3,
		},
	}
	if _, err := s.Client.AutoscalingV2().HorizontalPodAutoscalers("default").Create(ctx, hpa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const want = "the HPA was unable to compute the replica count: failed to get cpu resource metric value: failed to get cpu utilization: " +
		"unable to get metrics for resource cpu: no metrics returned from resource metrics API"
	var last autoscalingv2.HorizontalPodAutoscalerCondition
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 15*time.Second, true, func(context.Context) (bool, error) {
		h, err := s.Client.AutoscalingV2().HorizontalPodAutoscalers("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = cond(h, autoscalingv2.ScalingActive)
		return last.Message == want && cond(h, autoscalingv2.AbleToScale).Reason == "SucceededGetScale", nil
	})
	if err != nil {
		t.Fatalf("ScalingActive = %+v, want message %q", last, want)
	}
}
