package podautoscaler

import (
	"math"
	"sync"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
)

// Without a behavior, upstream never more than doubles (and always allows
// going to 4) in one step, and scale-down is stabilized over a window.
const (
	scaleUpLimitFactor  = 2.0
	scaleUpLimitMinimum = 4.0
)

type recommendation struct {
	replicas int32
	at       time.Time
}

type scaleEvent struct {
	change int32 // always positive: pods added, or pods removed
	at     time.Time
}

// history is what the controller remembers of one HPA between syncs: its
// recent unstabilized recommendations and the scale changes it made. Like
// upstream it lives in memory only, so a restart forgets it.
type history struct {
	recs       []recommendation
	ups, downs []scaleEvent
}

// normalizer bounds a metric-based proposal: stabilization windows, scale
// rate limits and min/max replicas, recording why in the HPA's conditions.
type normalizer struct {
	mu              sync.Mutex
	hist            map[string]*history
	downscaleWindow time.Duration // stabilization without a behavior, or when its window is unset
	now             func() time.Time
}

func newNormalizer(downscaleWindow time.Duration, now func() time.Time) *normalizer {
	return &normalizer{hist: map[string]*history{}, downscaleWindow: downscaleWindow, now: now}
}

func (n *normalizer) get(key string) *history {
	h := n.hist[key]
	if h == nil {
		h = &history{}
		n.hist[key] = h
	}
	return h
}

// recordInitial seeds the history with the current size so that a fresh
// controller does not scale down right away.
func (n *normalizer) recordInitial(key string, current int32) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if h := n.get(key); h.recs == nil {
		h.recs = []recommendation{{current, n.now()}}
	}
}

func (n *normalizer) forget(key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.hist, key)
}

// record stores a recommendation, reusing the slot of one older than
// every window in use so the list does not grow without bound.
func (h *history) record(r recommendation, stale func(time.Time) bool) {
	for i := range h.recs {
		if stale(h.recs[i].at) {
			h.recs[i] = r
			return
		}
	}
	h.recs = append(h.recs, r)
}

// normalize applies the legacy rules (no behavior): the highest
// recommendation of the downscale window wins, then min/max and the
// scale-up limit of max(2×current, 4).
func (n *normalizer) normalize(hpa *autoscalingv2.HorizontalPodAutoscaler, key string, current, desired, minReplicas int32) int32 {
	n.mu.Lock()
	now := n.now()
	cutoff := now.Add(-n.downscaleWindow)
	h := n.get(key)
	stabilized := desired
	for _, r := range h.recs {
		if !r.at.Before(cutoff) && r.replicas > stabilized {
			stabilized = r.replicas
		}
	}
	h.record(recommendation{desired, now}, func(t time.Time) bool { return t.Before(cutoff) })
	n.mu.Unlock()

	if stabilized != desired {
		setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionTrue, "ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation", now)
	} else {
		setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionTrue, "ReadyForNewScale", "recommended size matches current size", now)
	}
	final, reason, msg := limitLegacy(current, stabilized, minReplicas, hpa.Spec.MaxReplicas)
	setLimited(hpa, final != stabilized, reason, msg, now)
	return final
}

func setLimited(hpa *autoscalingv2.HorizontalPodAutoscaler, limited bool, reason, msg string, now time.Time) {
	status := corev1.ConditionFalse
	if limited {
		status = corev1.ConditionTrue
	}
	setCondition(hpa, autoscalingv2.ScalingLimited, status, reason, msg, now)
}

const withinRange = "the desired count is within the acceptable range"

func limitLegacy(current, desired, minReplicas, maxReplicas int32) (int32, string, string) {
	upLimit := int32(math.Max(scaleUpLimitFactor*float64(current), scaleUpLimitMinimum))
	maxAllowed, reason, msg := maxReplicas, "TooManyReplicas", "the desired replica count is more than the maximum replica count"
	if maxReplicas > upLimit {
		maxAllowed, reason, msg = upLimit, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"
	}
	switch {
	case desired < minReplicas:
		return minReplicas, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
	case desired > maxAllowed:
		return maxAllowed, reason, msg
	}
	return desired, "DesiredWithinRange", withinRange
}

// normalizeWithBehavior applies spec.behavior: the proposal is held
// between the lowest recommendation of the scale-up window and the highest
// of the scale-down window, then limited by the policies' rates.
func (n *normalizer) normalizeWithBehavior(hpa *autoscalingv2.HorizontalPodAutoscaler, key string, current, desired, minReplicas int32) int32 {
	up, down := rulesOf(hpa.Spec.Behavior, n.downscaleWindow)
	n.mu.Lock()
	now := n.now()
	h := n.get(key)
	stabilized, reason, msg := stabilizeWithBehavior(h, now, up, down, current, desired)
	final, limReason, limMsg := limitWithBehavior(h, now, up, down, current, stabilized, minReplicas, hpa.Spec.MaxReplicas)
	n.mu.Unlock()

	if stabilized != desired {
		setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionTrue, reason, msg, now)
	} else {
		setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionTrue, "ReadyForNewScale", "recommended size matches current size", now)
	}
	setLimited(hpa, final != stabilized, limReason, limMsg, now)
	return final
}

// rulesOf completes the behavior the API server defaulted; only a nil
// scale-down window is left to the controller's own setting.
func rulesOf(b *autoscalingv2.HorizontalPodAutoscalerBehavior, downscaleWindow time.Duration) (up, down autoscalingv2.HPAScalingRules) {
	up = defaultScaleUp()
	down = defaultScaleDown()
	if b.ScaleUp != nil {
		up = fillRules(*b.ScaleUp, up)
	}
	if b.ScaleDown != nil {
		down = fillRules(*b.ScaleDown, down)
	}
	if down.StabilizationWindowSeconds == nil {
		w := int32(downscaleWindow / time.Second)
		down.StabilizationWindowSeconds = &w
	}
	return up, down
}

func defaultScaleUp() autoscalingv2.HPAScalingRules {
	return autoscalingv2.HPAScalingRules{
		StabilizationWindowSeconds: ptrTo(int32(0)),
		SelectPolicy:               ptrTo(autoscalingv2.MaxChangePolicySelect),
		Policies: []autoscalingv2.HPAScalingPolicy{
			{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15},
			{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
		},
	}
}

func defaultScaleDown() autoscalingv2.HPAScalingRules {
	return autoscalingv2.HPAScalingRules{
		SelectPolicy: ptrTo(autoscalingv2.MaxChangePolicySelect),
		Policies:     []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}},
	}
}

func fillRules(r, def autoscalingv2.HPAScalingRules) autoscalingv2.HPAScalingRules {
	if r.StabilizationWindowSeconds == nil {
		r.StabilizationWindowSeconds = def.StabilizationWindowSeconds
	}
	if r.SelectPolicy == nil {
		r.SelectPolicy = def.SelectPolicy
	}
	if r.Policies == nil {
		r.Policies = def.Policies
	}
	return r
}

func ptrTo[T any](v T) *T { return &v }

func window(r autoscalingv2.HPAScalingRules) time.Duration {
	if r.StabilizationWindowSeconds == nil {
		return 0
	}
	return time.Duration(*r.StabilizationWindowSeconds) * time.Second
}

// stabilizeWithBehavior clamps desired between the scale-up floor (the
// lowest recommendation in the up window) and the scale-down ceiling (the
// highest in the down window), starting from the current size, and
// records desired.
func stabilizeWithBehavior(h *history, now time.Time, up, down autoscalingv2.HPAScalingRules, current, desired int32) (int32, string, string) {
	upCutoff, downCutoff := now.Add(-window(up)), now.Add(-window(down))
	upRec, downRec := desired, desired
	for _, r := range h.recs {
		if r.at.After(upCutoff) {
			upRec = min(upRec, r.replicas)
		}
		if r.at.After(downCutoff) {
			downRec = max(downRec, r.replicas)
		}
	}
	out := max(current, upRec)
	out = min(out, downRec)
	h.record(recommendation{desired, now}, func(t time.Time) bool { return t.Before(upCutoff) && t.Before(downCutoff) })
	if desired >= current {
		return out, "ScaleUpStabilized", "recent recommendations were lower than current one, applying the lowest recent recommendation"
	}
	return out, "ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation"
}

// limitWithBehavior applies the scaling policies' rates and min/max.
func limitWithBehavior(h *history, now time.Time, up, down autoscalingv2.HPAScalingRules, current, desired, minReplicas, maxReplicas int32) (int32, string, string) {
	switch {
	case desired > current:
		limit := max(scaleUpLimit(current, h.ups, h.downs, up, now), current) // never below current while old events age out
		maxAllowed, reason, msg := maxReplicas, "TooManyReplicas", "the desired replica count is more than the maximum replica count"
		if maxAllowed > limit {
			maxAllowed, reason, msg = limit, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"
		}
		if desired > maxAllowed {
			return maxAllowed, reason, msg
		}
	case desired < current:
		limit := min(scaleDownLimit(current, h.ups, h.downs, down, now), current)
		minAllowed, reason, msg := minReplicas, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
		if minAllowed < limit {
			minAllowed, reason, msg = limit, "ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate"
		}
		if desired < minAllowed {
			return minAllowed, reason, msg
		}
	}
	return desired, "DesiredWithinRange", withinRange
}

// changeInPeriod sums the changes made within the last period.
func changeInPeriod(periodSeconds int32, events []scaleEvent, now time.Time) int32 {
	cutoff := now.Add(-time.Duration(periodSeconds) * time.Second)
	var n int32
	for _, e := range events {
		if e.at.After(cutoff) {
			n += e.change
		}
	}
	return n
}

// scaleUpLimit is the largest size the scale-up policies allow now. Each
// policy measures from the size at the start of its period.
func scaleUpLimit(current int32, ups, downs []scaleEvent, rules autoscalingv2.HPAScalingRules, now time.Time) int32 {
	sel := selectPolicy(rules)
	if sel == autoscalingv2.DisabledPolicySelect {
		return current
	}
	pick, result := maxInt32, int32(math.MinInt32)
	if sel == autoscalingv2.MinChangePolicySelect {
		pick, result = minInt32, math.MaxInt32
	}
	for _, p := range rules.Policies {
		start := current - changeInPeriod(p.PeriodSeconds, ups, now) + changeInPeriod(p.PeriodSeconds, downs, now)
		var proposed int32
		switch p.Type {
		case autoscalingv2.PodsScalingPolicy:
			proposed = start + p.Value
		case autoscalingv2.PercentScalingPolicy:
			// Rounded up so that a small target can always grow.
			proposed = int32(math.Ceil(float64(start) * (1 + float64(p.Value)/100)))
		}
		result = pick(result, proposed)
	}
	return result
}

// scaleDownLimit is the smallest size the scale-down policies allow now.
func scaleDownLimit(current int32, ups, downs []scaleEvent, rules autoscalingv2.HPAScalingRules, now time.Time) int32 {
	sel := selectPolicy(rules)
	if sel == autoscalingv2.DisabledPolicySelect {
		return current
	}
	pick, result := minInt32, int32(math.MaxInt32)
	if sel == autoscalingv2.MinChangePolicySelect {
		pick, result = maxInt32, math.MinInt32
	}
	for _, p := range rules.Policies {
		start := current - changeInPeriod(p.PeriodSeconds, ups, now) + changeInPeriod(p.PeriodSeconds, downs, now)
		var proposed int32
		switch p.Type {
		case autoscalingv2.PodsScalingPolicy:
			proposed = start - p.Value
		case autoscalingv2.PercentScalingPolicy:
			proposed = int32(float64(start) * (1 - float64(p.Value)/100))
		}
		result = pick(result, proposed)
	}
	return result
}

// The built-in min and max cannot be passed as functions.
func minInt32(a, b int32) int32 { return min(a, b) }
func maxInt32(a, b int32) int32 { return max(a, b) }

func selectPolicy(r autoscalingv2.HPAScalingRules) autoscalingv2.ScalingPolicySelect {
	if r.SelectPolicy == nil {
		return autoscalingv2.MaxChangePolicySelect
	}
	return *r.SelectPolicy
}

// recordScale remembers a scale change for the rate policies; without a
// behavior nothing reads it, so nothing is kept.
func (n *normalizer) recordScale(hpa *autoscalingv2.HorizontalPodAutoscaler, key string, from, to int32) {
	if hpa.Spec.Behavior == nil || from == to {
		return
	}
	up, down := rulesOf(hpa.Spec.Behavior, n.downscaleWindow)
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.now()
	h := n.get(key)
	if to > from {
		h.ups = addEvent(h.ups, scaleEvent{to - from, now}, longestPeriod(up), now)
	} else {
		h.downs = addEvent(h.downs, scaleEvent{from - to, now}, longestPeriod(down), now)
	}
}

// addEvent appends e, reusing the slot of an event older than every
// policy period (it can no longer count).
func addEvent(events []scaleEvent, e scaleEvent, longest time.Duration, now time.Time) []scaleEvent {
	cutoff := now.Add(-longest)
	for i := range events {
		if events[i].at.Before(cutoff) {
			events[i] = e
			return events
		}
	}
	return append(events, e)
}

func longestPeriod(r autoscalingv2.HPAScalingRules) time.Duration {
	var longest int32
	for _, p := range r.Policies {
		longest = max(longest, p.PeriodSeconds)
	}
	return time.Duration(longest) * time.Second
}
