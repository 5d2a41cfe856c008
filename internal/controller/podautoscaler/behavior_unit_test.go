package podautoscaler

import (
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

// step is one sync: after advancing the clock, the metrics propose
// desired for a target at current; the normalized size and the reasons
// of AbleToScale and ScalingLimited are checked.
type step struct {
	after         time.Duration
	current       int32
	desired       int32
	want          int32
	wantAble      string
	wantLimited   string
	limitedStatus corev1.ConditionStatus // False if empty
}

func policy(t autoscalingv2.HPAScalingPolicyType, value, period int32) autoscalingv2.HPAScalingPolicy {
	return autoscalingv2.HPAScalingPolicy{Type: t, Value: value, PeriodSeconds: period}
}

func rules(window int32, sel autoscalingv2.ScalingPolicySelect, policies ...autoscalingv2.HPAScalingPolicy) *autoscalingv2.HPAScalingRules {
	return &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &window, SelectPolicy: &sel, Policies: policies}
}

func TestNormalize(t *testing.T) {
	const (
		ready  = "ReadyForNewScale"
		within = "DesiredWithinRange"
		upStab = "ScaleUpStabilized"
		dnStab = "ScaleDownStabilized"
		upLim  = "ScaleUpLimit"
		dnLim  = "ScaleDownLimit"
	)
	max := autoscalingv2.MaxChangePolicySelect
	tests := []struct {
		name     string
		min, max int32
		behavior *autoscalingv2.HorizontalPodAutoscalerBehavior
		steps    []step
	}{
		{name: "no behavior: at most double, at least to 4", min: 1, max: 20, steps: []step{
			{current: 1, desired: 10, want: 4, wantAble: ready, wantLimited: upLim, limitedStatus: corev1.ConditionTrue},
			{current: 4, desired: 10, want: 8, wantAble: ready, wantLimited: upLim, limitedStatus: corev1.ConditionTrue},
			{current: 8, desired: 10, want: 10, wantAble: ready, wantLimited: within},
		}},
		{name: "no behavior: max and min replicas", min: 2, max: 8, steps: []step{
			{current: 5, desired: 20, want: 8, wantAble: ready, wantLimited: "TooManyReplicas", limitedStatus: corev1.ConditionTrue},
			// The 20 proposed a moment ago still holds within the window.
			{current: 8, desired: 1, want: 8, wantAble: dnStab, wantLimited: "TooManyReplicas", limitedStatus: corev1.ConditionTrue},
			{after: 6 * time.Minute, current: 8, desired: 1, want: 2, wantAble: ready, wantLimited: "TooFewReplicas", limitedStatus: corev1.ConditionTrue},
		}},
		{name: "no behavior: scale-down waits out the 5 minute window", min: 1, max: 10, steps: []step{
			{current: 5, desired: 5, want: 5, wantAble: ready, wantLimited: within},
			{after: time.Minute, current: 5, desired: 2, want: 5, wantAble: dnStab, wantLimited: within},
			{after: 3 * time.Minute, current: 5, desired: 3, want: 5, wantAble: dnStab, wantLimited: within},
			// The 5 has left the window; the 3 of a minute ago still holds.
			{after: 2*time.Minute + time.Second, current: 5, desired: 2, want: 3, wantAble: dnStab, wantLimited: within},
			{after: 3 * time.Minute, current: 3, desired: 2, want: 2, wantAble: ready, wantLimited: within},
		}},
		{name: "default behavior: 4 pods or 100% per 15s", min: 1, max: 50,
			behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{}, steps: []step{
				{current: 1, desired: 30, want: 5, wantAble: ready, wantLimited: upLim, limitedStatus: corev1.ConditionTrue},
				// Within the same period the start size is still 1.
				{after: 5 * time.Second, current: 5, desired: 30, want: 5, wantAble: ready, wantLimited: upLim, limitedStatus: corev1.ConditionTrue},
				{after: 15 * time.Second, current: 5, desired: 30, want: 10, wantAble: ready, wantLimited: upLim, limitedStatus: corev1.ConditionTrue},
			}},
		{name: "pods policy counts changes within its period", min: 1, max: 10,
			behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: rules(0, max, policy(autoscalingv2.PodsScalingPolicy, 1, 60))}, steps: []step{
				{current: 2, desired: 6, want: 3, wantAble: ready, wantLimited: upLim, limitedStatus: corev1.ConditionTrue},
				{after: 30 * time.Second, current: 3, desired: 6, want: 3, wantAble: ready, wantLimited: upLim, limitedStatus: corev1.ConditionTrue},
				{after: 31 * time.Second, current: 3, desired: 6, want: 4, wantAble: ready, wantLimited: upLim, limitedStatus: corev1.ConditionTrue},
			}},
		{name: "select Min takes the smaller change", min: 1, max: 10,
			behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: rules(0, autoscalingv2.MinChangePolicySelect,
				policy(autoscalingv2.PodsScalingPolicy, 4, 15), policy(autoscalingv2.PercentScalingPolicy, 100, 15))}, steps: []step{
				{current: 2, desired: 10, want: 4, wantAble: ready, wantLimited: upLim, limitedStatus: corev1.ConditionTrue},
			}},
		{name: "select Max takes the larger change", min: 1, max: 10,
			behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: rules(0, max,
				policy(autoscalingv2.PodsScalingPolicy, 4, 15), policy(autoscalingv2.PercentScalingPolicy, 100, 15))}, steps: []step{
				{current: 2, desired: 10, want: 6, wantAble: ready, wantLimited: upLim, limitedStatus: corev1.ConditionTrue},
			}},
		{name: "scale-down disabled", min: 1, max: 10,
			behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: rules(0, autoscalingv2.DisabledPolicySelect, policy(autoscalingv2.PercentScalingPolicy, 100, 15))}, steps: []step{
				{current: 5, desired: 1, want: 5, wantAble: ready, wantLimited: dnLim, limitedStatus: corev1.ConditionTrue},
			}},
		{name: "scale-down percent rounds down", min: 1, max: 10,
			behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: rules(0, max, policy(autoscalingv2.PercentScalingPolicy, 50, 60))}, steps: []step{
				{current: 9, desired: 1, want: 4, wantAble: ready, wantLimited: dnLim, limitedStatus: corev1.ConditionTrue},
				{after: 10 * time.Second, current: 4, desired: 1, want: 4, wantAble: ready, wantLimited: dnLim, limitedStatus: corev1.ConditionTrue},
				{after: 51 * time.Second, current: 4, desired: 1, want: 2, wantAble: ready, wantLimited: dnLim, limitedStatus: corev1.ConditionTrue},
			}},
		{name: "scale-up stabilization window", min: 1, max: 10,
			behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: rules(60, max, policy(autoscalingv2.PodsScalingPolicy, 10, 15))}, steps: []step{
				{current: 2, desired: 5, want: 2, wantAble: upStab, wantLimited: within},
				{after: 61 * time.Second, current: 2, desired: 5, want: 5, wantAble: ready, wantLimited: within},
			}},
		{name: "behavior without a scale-down window uses the 5 minute default", min: 1, max: 10,
			behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{}}, steps: []step{
				{current: 5, desired: 1, want: 5, wantAble: dnStab, wantLimited: within},
				{after: 5*time.Minute + time.Second, current: 5, desired: 1, want: 1, wantAble: ready, wantLimited: within},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(t0)
			n := newNormalizer(5*time.Minute, clk.Now)
			hpa := &autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				MinReplicas: &tt.min, MaxReplicas: tt.max, Behavior: tt.behavior,
			}}
			for i, s := range tt.steps {
				clk.Step(s.after)
				n.recordInitial("k", s.current)
				var got int32
				if tt.behavior == nil {
					got = n.normalize(hpa, "k", s.current, s.desired, tt.min)
				} else {
					got = n.normalizeWithBehavior(hpa, "k", s.current, s.desired, tt.min)
				}
				n.recordScale(hpa, "k", s.current, got)
				able := condition(hpa, autoscalingv2.AbleToScale)
				limited := condition(hpa, autoscalingv2.ScalingLimited)
				wantStatus := s.limitedStatus
				if wantStatus == "" {
					wantStatus = corev1.ConditionFalse
				}
				if got != s.want || able.Reason != s.wantAble || limited.Reason != s.wantLimited || limited.Status != wantStatus {
					t.Errorf("step %d: got %d (%s, %s %s), want %d (%s, %s %s)", i, got, able.Reason, limited.Reason, limited.Status,
						s.want, s.wantAble, s.wantLimited, wantStatus)
				}
			}
		})
	}
}

func condition(hpa *autoscalingv2.HorizontalPodAutoscaler, t autoscalingv2.HorizontalPodAutoscalerConditionType) autoscalingv2.HorizontalPodAutoscalerCondition {
	for _, c := range hpa.Status.Conditions {
		if c.Type == t {
			return c
		}
	}
	return autoscalingv2.HorizontalPodAutoscalerCondition{}
}

func TestSetConditionKeepsTransitionTime(t *testing.T) {
	hpa := &autoscalingv2.HorizontalPodAutoscaler{}
	setCondition(hpa, autoscalingv2.ScalingActive, corev1.ConditionTrue, "ValidMetricFound", "a", t0)
	setCondition(hpa, autoscalingv2.ScalingActive, corev1.ConditionTrue, "ValidMetricFound", "b", t0.Add(time.Minute))
	if c := condition(hpa, autoscalingv2.ScalingActive); !c.LastTransitionTime.Time.Equal(t0) || c.Message != "b" {
		t.Errorf("unchanged status moved the transition time or kept the old message: %+v", c)
	}
	setCondition(hpa, autoscalingv2.ScalingActive, corev1.ConditionFalse, "FailedGetResourceMetric", "c", t0.Add(2*time.Minute))
	if c := condition(hpa, autoscalingv2.ScalingActive); !c.LastTransitionTime.Time.Equal(t0.Add(2*time.Minute)) || len(hpa.Status.Conditions) != 1 {
		t.Errorf("a status change did not move the transition time: %+v", hpa.Status.Conditions)
	}
}
