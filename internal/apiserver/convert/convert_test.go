package convert

import (
	"slices"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/diff"
	"sigs.k8s.io/randfill"
)

const rounds = 500

// newFiller returns a randfill.Filler whose values survive the JSON the
// conversions write into annotations: quantities in canonical form and times
// in whole seconds (the wire format of metav1.Time).
func newFiller(seed int64) *randfill.Filler {
	return randfill.NewWithSeed(seed).NilChance(0.3).NumElements(0, 3).Funcs(
		func(q *resource.Quantity, c randfill.Continue) {
			if c.Bool() {
				*q = *resource.NewQuantity(c.Int63n(1<<40), resource.BinarySI)
			} else {
				*q = *resource.NewMilliQuantity(c.Int63n(1<<20), resource.DecimalSI)
			}
		},
		func(t *metav1.Time, c randfill.Continue) {
			*t = metav1.Unix(c.Int63n(4e9), 0)
		},
		fillMetricSpec,
		fillMetricStatus,
	)
}

var (
	resourceNames = []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory}
	sourceTypes   = []autoscalingv2.MetricSourceType{
		autoscalingv2.ObjectMetricSourceType, autoscalingv2.PodsMetricSourceType,
		autoscalingv2.ResourceMetricSourceType, autoscalingv2.ContainerResourceMetricSourceType,
		autoscalingv2.ExternalMetricSourceType,
	}
)

// fillMetricSpec makes a metric whose target fields agree with its type, the
// shape validation demands; only such metrics have a v1 spelling.
func fillMetricSpec(m *autoscalingv2.MetricSpec, c randfill.Continue) {
	var id autoscalingv2.MetricIdentifier
	c.Fill(&id)
	q := func() *resource.Quantity { var v resource.Quantity; c.Fill(&v); return &v }
	maybeQ := func() *resource.Quantity {
		if c.Bool() {
			return q()
		}
		return nil
	}
	resourceTarget := func() autoscalingv2.MetricTarget {
		if c.Bool() {
			u := c.Int31n(200)
			return autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &u}
		}
		return autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: q()}
	}
	*m = autoscalingv2.MetricSpec{Type: sourceTypes[c.Intn(len(sourceTypes))]}
	switch m.Type {
	case autoscalingv2.ObjectMetricSourceType:
		t := autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: q(), AverageValue: maybeQ()}
		if t.AverageValue != nil {
			t.Type = autoscalingv2.AverageValueMetricType
		}
		m.Object = &autoscalingv2.ObjectMetricSource{Metric: id, Target: t}
		c.Fill(&m.Object.DescribedObject)
	case autoscalingv2.PodsMetricSourceType:
		m.Pods = &autoscalingv2.PodsMetricSource{Metric: id, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: q()}}
	case autoscalingv2.ResourceMetricSourceType:
		m.Resource = &autoscalingv2.ResourceMetricSource{Name: resourceNames[c.Intn(2)], Target: resourceTarget()}
	case autoscalingv2.ContainerResourceMetricSourceType:
		m.ContainerResource = &autoscalingv2.ContainerResourceMetricSource{Name: resourceNames[c.Intn(2)], Container: c.String(8), Target: resourceTarget()}
	case autoscalingv2.ExternalMetricSourceType:
		t := autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, Value: maybeQ(), AverageValue: maybeQ()}
		if t.Value != nil {
			t.Type = autoscalingv2.ValueMetricType
		}
		m.External = &autoscalingv2.ExternalMetricSource{Metric: id, Target: t}
	}
}

// fillMetricStatus makes a current metric with the values the HPA
// controller reports for its type.
func fillMetricStatus(m *autoscalingv2.MetricStatus, c randfill.Continue) {
	var id autoscalingv2.MetricIdentifier
	c.Fill(&id)
	q := func() *resource.Quantity { var v resource.Quantity; c.Fill(&v); return &v }
	maybeQ := func() *resource.Quantity {
		if c.Bool() {
			return q()
		}
		return nil
	}
	maybeU := func() *int32 {
		if c.Bool() {
			u := c.Int31n(200)
			return &u
		}
		return nil
	}
	*m = autoscalingv2.MetricStatus{Type: sourceTypes[c.Intn(len(sourceTypes))]}
	switch m.Type {
	case autoscalingv2.ObjectMetricSourceType:
		m.Object = &autoscalingv2.ObjectMetricStatus{Metric: id, Current: autoscalingv2.MetricValueStatus{Value: q(), AverageValue: maybeQ()}}
		c.Fill(&m.Object.DescribedObject)
	case autoscalingv2.PodsMetricSourceType:
		m.Pods = &autoscalingv2.PodsMetricStatus{Metric: id, Current: autoscalingv2.MetricValueStatus{AverageValue: q()}}
	case autoscalingv2.ResourceMetricSourceType:
		m.Resource = &autoscalingv2.ResourceMetricStatus{Name: resourceNames[c.Intn(2)], Current: autoscalingv2.MetricValueStatus{AverageValue: q(), AverageUtilization: maybeU()}}
	case autoscalingv2.ContainerResourceMetricSourceType:
		m.ContainerResource = &autoscalingv2.ContainerResourceMetricStatus{Name: resourceNames[c.Intn(2)], Container: c.String(8), Current: autoscalingv2.MetricValueStatus{AverageValue: q(), AverageUtilization: maybeU()}}
	case autoscalingv2.ExternalMetricSourceType:
		m.External = &autoscalingv2.ExternalMetricStatus{Metric: id, Current: autoscalingv2.MetricValueStatus{Value: q(), AverageValue: maybeQ()}}
	}
}

// expectedV2RoundTrip is what a v2 object looks like after v2→v1→v2: the
// same, except that the CPU utilization target moves to the end of the
// metrics (upstream does the same), an empty metric list becomes the
// implied 80% CPU, and a behavior with neither direction set reads as none.
func expectedV2RoundTrip(in *autoscalingv2.HorizontalPodAutoscaler) *autoscalingv2.HorizontalPodAutoscaler {
	want := in.DeepCopy()
	want.TypeMeta = metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"}
	if i := cpuTargetIndex(want.Spec.Metrics); i >= 0 {
		cpu := want.Spec.Metrics[i]
		want.Spec.Metrics = append(slices.Delete(want.Spec.Metrics, i, i+1), cpu)
	}
	if len(want.Spec.Metrics) == 0 {
		want.Spec.Metrics = []autoscalingv2.MetricSpec{cpuUtilizationMetric(80)}
	}
	if b := want.Spec.Behavior; b != nil && b.ScaleUp == nil && b.ScaleDown == nil {
		want.Spec.Behavior = nil
	}
	return want
}

func TestHPARoundTripV2(t *testing.T) {
	f := newFiller(1)
	for i := range rounds {
		var in autoscalingv2.HorizontalPodAutoscaler
		f.Fill(&in)
		before := in.DeepCopy()

		v1 := HPAToV1(&in)
		got := HPAFromV1(v1)

		if !apiequality.Semantic.DeepEqual(&in, before) {
			t.Fatalf("round %d: HPAToV1 changed its input", i)
		}
		if want := expectedV2RoundTrip(&in); !apiequality.Semantic.DeepEqual(got, want) {
			t.Fatalf("round %d: v2→v1→v2 lost something:\n%s", i, diff.Diff(want, got))
		}
		if v1.APIVersion != "autoscaling/v1" || v1.Kind != "HorizontalPodAutoscaler" {
			t.Fatalf("round %d: v1 TypeMeta = %+v", i, v1.TypeMeta)
		}
		// After one trip the object is a fixed point: nothing accumulates
		// or moves on later trips.
		if again := HPAFromV1(HPAToV1(got)); !apiequality.Semantic.DeepEqual(again, got) {
			t.Fatalf("round %d: second round trip differs:\n%s", i, diff.Diff(got, again))
		}
	}
}

func i32(v int32) *int32 { return &v }

func TestHPAToV1(t *testing.T) {
	mem := resource.MustParse("1Gi")
	selectMax := autoscalingv2.MaxChangePolicySelect
	cpu50 := cpuUtilizationMetric(50)
	memAvg := autoscalingv2.MetricSpec{
		Type:     autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceMemory, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &mem}},
	}
	tests := []struct {
		name       string
		in         autoscalingv2.HorizontalPodAutoscaler
		wantTarget *int32
		wantCur    *int32
		wantAnn    map[string]string
	}{
		{
			name:       "cpu only needs no annotation",
			in:         autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{Metrics: []autoscalingv2.MetricSpec{cpu50}}},
			wantTarget: i32(50),
		},
		{
			name: "other metrics go to the annotation in order",
			in:   autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{Metrics: []autoscalingv2.MetricSpec{memAvg, cpu50}}},
			wantAnn: map[string]string{
				MetricsAnnotation: `[{"type":"Resource","resource":{"name":"memory","targetAverageValue":"1Gi"}}]`,
			},
			wantTarget: i32(50),
		},
		{
			name: "only the last cpu utilization becomes the target",
			in:   autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{Metrics: []autoscalingv2.MetricSpec{cpuUtilizationMetric(70), cpu50}}},
			wantAnn: map[string]string{
				MetricsAnnotation: `[{"type":"Resource","resource":{"name":"cpu","targetAverageUtilization":70}}]`,
			},
			wantTarget: i32(50),
		},
		{
			name: "behavior uses upstream's field names",
			in: autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				Metrics: []autoscalingv2.MetricSpec{cpu50},
				Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: &autoscalingv2.HPAScalingRules{
					StabilizationWindowSeconds: i32(0), SelectPolicy: &selectMax,
					Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15}},
				}},
			}},
			wantTarget: i32(50),
			wantAnn: map[string]string{
				BehaviorAnnotation: `{"ScaleUp":{"StabilizationWindowSeconds":0,"SelectPolicy":"Max","Policies":[{"Type":"Pods","Value":4,"PeriodSeconds":15}],"Tolerance":null},"ScaleDown":null}`,
			},
		},
		{
			name: "status: cpu percentage and all current metrics",
			in: autoscalingv2.HorizontalPodAutoscaler{
				Spec: autoscalingv2.HorizontalPodAutoscalerSpec{Metrics: []autoscalingv2.MetricSpec{cpu50}},
				Status: autoscalingv2.HorizontalPodAutoscalerStatus{
					CurrentMetrics: []autoscalingv2.MetricStatus{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
						Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: i32(33), AverageValue: resource.NewMilliQuantity(120, resource.DecimalSI)},
					}}},
					Conditions: []autoscalingv2.HorizontalPodAutoscalerCondition{{Type: autoscalingv2.AbleToScale, Status: corev1.ConditionTrue, Reason: "ReadyForNewScale", LastTransitionTime: metav1.Unix(0, 0)}},
				},
			},
			wantTarget: i32(50),
			wantCur:    i32(33),
			wantAnn: map[string]string{
				CurrentMetricsAnnotation: `[{"type":"Resource","resource":{"name":"cpu","currentAverageUtilization":33,"currentAverageValue":"120m"}}]`,
				ConditionsAnnotation:     `[{"type":"AbleToScale","status":"True","lastTransitionTime":"1970-01-01T00:00:00Z","reason":"ReadyForNewScale"}]`,
			},
		},
		{
			name: "stale round-trip annotations are dropped, others kept",
			in: autoscalingv2.HorizontalPodAutoscaler{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{MetricsAnnotation: "junk", BehaviorAnnotation: "{}", "team": "a"}},
				Spec:       autoscalingv2.HorizontalPodAutoscalerSpec{Metrics: []autoscalingv2.MetricSpec{cpu50}},
			},
			wantTarget: i32(50),
			wantAnn:    map[string]string{"team": "a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := HPAToV1(&tt.in)
			if !apiequality.Semantic.DeepEqual(got.Spec.TargetCPUUtilizationPercentage, tt.wantTarget) {
				t.Errorf("target = %v, want %v", got.Spec.TargetCPUUtilizationPercentage, tt.wantTarget)
			}
			if !apiequality.Semantic.DeepEqual(got.Status.CurrentCPUUtilizationPercentage, tt.wantCur) {
				t.Errorf("current = %v, want %v", got.Status.CurrentCPUUtilizationPercentage, tt.wantCur)
			}
			if !apiequality.Semantic.DeepEqual(got.Annotations, tt.wantAnn) {
				t.Errorf("annotations:\n%s", diff.Diff(tt.wantAnn, got.Annotations))
			}
		})
	}
}

func TestHPAFromV1(t *testing.T) {
	tests := []struct {
		name        string
		in          autoscalingv1HPA
		wantMetrics []autoscalingv2.MetricSpec
		wantCurrent []autoscalingv2.MetricStatus
		wantAnn     map[string]string
		wantBehav   bool
	}{
		{
			name:        "target becomes a cpu utilization metric",
			in:          v1HPA(i32(60), nil, nil),
			wantMetrics: []autoscalingv2.MetricSpec{cpuUtilizationMetric(60)},
		},
		{
			name:        "no target means the 80% default",
			in:          v1HPA(nil, nil, nil),
			wantMetrics: []autoscalingv2.MetricSpec{cpuUtilizationMetric(80)},
		},
		{
			name:        "current percentage becomes a current metric",
			in:          v1HPA(nil, i32(42), nil),
			wantMetrics: []autoscalingv2.MetricSpec{cpuUtilizationMetric(80)},
			wantCurrent: []autoscalingv2.MetricStatus{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
				Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: i32(42)},
			}}},
		},
		{
			name: "annotation metrics come before the target",
			in: v1HPA(i32(60), nil, map[string]string{
				MetricsAnnotation: `[{"type":"Pods","pods":{"metricName":"qps","targetAverageValue":"10"}}]`,
				"keep":            "me",
			}),
			wantMetrics: []autoscalingv2.MetricSpec{
				{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
					Metric: autoscalingv2.MetricIdentifier{Name: "qps"},
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: resource.NewQuantity(10, resource.DecimalSI)},
				}},
				cpuUtilizationMetric(60),
			},
			wantAnn: map[string]string{"keep": "me"},
		},
		{
			name: "malformed annotations are ignored and removed",
			in: v1HPA(i32(60), nil, map[string]string{
				MetricsAnnotation: `{not json`, CurrentMetricsAnnotation: `7`, ConditionsAnnotation: `"x"`, BehaviorAnnotation: `[]`,
			}),
			wantMetrics: []autoscalingv2.MetricSpec{cpuUtilizationMetric(60)},
		},
		{
			name:        "behavior in lower-case keys is read too",
			in:          v1HPA(i32(60), nil, map[string]string{BehaviorAnnotation: `{"scaleDown":{"stabilizationWindowSeconds":30}}`}),
			wantMetrics: []autoscalingv2.MetricSpec{cpuUtilizationMetric(60)},
			wantBehav:   true,
		},
		{
			name:        "empty behavior is no behavior",
			in:          v1HPA(i32(60), nil, map[string]string{BehaviorAnnotation: `{"ScaleUp":null,"ScaleDown":null}`}),
			wantMetrics: []autoscalingv2.MetricSpec{cpuUtilizationMetric(60)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.in.DeepCopy()
			got := HPAFromV1(&tt.in)
			if !apiequality.Semantic.DeepEqual(&tt.in, before) {
				t.Error("HPAFromV1 changed its input")
			}
			if got.APIVersion != "autoscaling/v2" || got.Kind != "HorizontalPodAutoscaler" {
				t.Errorf("TypeMeta = %+v", got.TypeMeta)
			}
			if !apiequality.Semantic.DeepEqual(got.Spec.Metrics, tt.wantMetrics) {
				t.Errorf("metrics:\n%s", diff.Diff(tt.wantMetrics, got.Spec.Metrics))
			}
			if !apiequality.Semantic.DeepEqual(got.Status.CurrentMetrics, tt.wantCurrent) {
				t.Errorf("current metrics:\n%s", diff.Diff(tt.wantCurrent, got.Status.CurrentMetrics))
			}
			if !apiequality.Semantic.DeepEqual(got.Annotations, tt.wantAnn) {
				t.Errorf("annotations:\n%s", diff.Diff(tt.wantAnn, got.Annotations))
			}
			if (got.Spec.Behavior != nil) != tt.wantBehav {
				t.Errorf("behavior = %+v, want set: %v", got.Spec.Behavior, tt.wantBehav)
			}
			if tt.wantBehav && *got.Spec.Behavior.ScaleDown.StabilizationWindowSeconds != 30 {
				t.Errorf("behavior = %+v", got.Spec.Behavior.ScaleDown)
			}
			if got.Spec.ScaleTargetRef.Name != "web" || got.Spec.MaxReplicas != 5 || *got.Spec.MinReplicas != 2 {
				t.Errorf("spec basics lost: %+v", got.Spec)
			}
		})
	}
}

// expectedEventRoundTrip: the two Event shapes carry the same fields, so a
// round trip changes nothing but TypeMeta.
func TestEventRoundTrip(t *testing.T) {
	f := newFiller(2)
	for i := range rounds {
		var core corev1.Event
		f.Fill(&core)
		before := core.DeepCopy()
		ev := EventToEventsV1(&core)
		back := EventFromEventsV1(ev)
		if !apiequality.Semantic.DeepEqual(&core, before) {
			t.Fatalf("round %d: EventToEventsV1 changed its input", i)
		}
		want := core.DeepCopy()
		want.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Event"}
		if !apiequality.Semantic.DeepEqual(back, want) {
			t.Fatalf("round %d: core→events→core:\n%s", i, diff.Diff(want, back))
		}

		var events eventsv1.Event
		f.Fill(&events)
		got := EventToEventsV1(EventFromEventsV1(&events))
		wantEv := events.DeepCopy()
		wantEv.TypeMeta = metav1.TypeMeta{APIVersion: "events.k8s.io/v1", Kind: "Event"}
		if !apiequality.Semantic.DeepEqual(got, wantEv) {
			t.Fatalf("round %d: events→core→events:\n%s", i, diff.Diff(wantEv, got))
		}
	}
}

func TestEventFieldMapping(t *testing.T) {
	now := metav1.NewMicroTime(time.Unix(1700000000, 123000).UTC())
	core := &corev1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: "web.1", Namespace: "default"},
		InvolvedObject:      corev1.ObjectReference{Kind: "Pod", Name: "web"},
		Related:             &corev1.ObjectReference{Kind: "Node", Name: "n1"},
		Reason:              "Pulled",
		Message:             "image pulled",
		Source:              corev1.EventSource{Component: "kubelet", Host: "n1"},
		FirstTimestamp:      metav1.Unix(1, 0),
		LastTimestamp:       metav1.Unix(2, 0),
		Count:               3,
		Type:                corev1.EventTypeNormal,
		EventTime:           now,
		Series:              &corev1.EventSeries{Count: 4, LastObservedTime: now},
		Action:              "Pull",
		ReportingController: "lotse.io/agent",
		ReportingInstance:   "agent-n1",
	}
	ev := EventToEventsV1(core)
	checks := []struct {
		name      string
		got, want any
	}{
		{"apiVersion", ev.APIVersion, "events.k8s.io/v1"},
		{"kind", ev.Kind, "Event"},
		{"note", ev.Note, "image pulled"},
		{"regarding", ev.Regarding, core.InvolvedObject},
		{"related", *ev.Related, *core.Related},
		{"reportingController", ev.ReportingController, "lotse.io/agent"},
		{"reportingInstance", ev.ReportingInstance, "agent-n1"},
		{"deprecatedSource", ev.DeprecatedSource, core.Source},
		{"deprecatedFirstTimestamp", ev.DeprecatedFirstTimestamp, core.FirstTimestamp},
		{"deprecatedLastTimestamp", ev.DeprecatedLastTimestamp, core.LastTimestamp},
		{"deprecatedCount", ev.DeprecatedCount, int32(3)},
		{"eventTime", ev.EventTime, now},
		{"series", *ev.Series, eventsv1.EventSeries{Count: 4, LastObservedTime: now}},
		{"action", ev.Action, "Pull"},
		{"reason", ev.Reason, "Pulled"},
		{"type", ev.Type, "Normal"},
		{"name", ev.Name, "web.1"},
	}
	for _, c := range checks {
		if !apiequality.Semantic.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// The result shares no memory with the input.
	ev.Related.Name = "changed"
	ev.Series.Count = 99
	if core.Related.Name != "n1" || core.Series.Count != 4 {
		t.Error("EventToEventsV1 result aliases its input")
	}
	if back := EventFromEventsV1(ev); back.APIVersion != "v1" || back.Kind != "Event" {
		t.Errorf("core TypeMeta = %+v", back.TypeMeta)
	}
}
