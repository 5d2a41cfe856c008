package validation

import (
	"fmt"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/api/validation/path"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Bounds upstream puts on HPA scaling rules.
const (
	maxStabilizationWindowSeconds = 3600
	maxPolicyPeriodSeconds        = 1800
)

func replicaBounds(min *int32, max int32) field.ErrorList {
	var errs field.ErrorList
	if min != nil && *min < 1 {
		errs = append(errs, field.Invalid(specPath.Child("minReplicas"), *min, "must be greater than or equal to 1"))
	}
	if max < 1 {
		errs = append(errs, field.Invalid(specPath.Child("maxReplicas"), max, "must be greater than 0"))
	}
	if min != nil && max < *min {
		errs = append(errs, field.Invalid(specPath.Child("maxReplicas"), max, "must be greater than or equal to `minReplicas`"))
	}
	return errs
}

// scaleTargetRef checks the kind and name of the object an HPA scales; both
// end up in a URL path.
func scaleTargetRef(kind, name string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, f := range []struct{ name, value string }{{"kind", kind}, {"name", name}} {
		if f.value == "" {
			errs = append(errs, field.Required(fldPath.Child(f.name), ""))
		} else {
			errs = append(errs, invalidEach(fldPath.Child(f.name), f.value, path.IsValidPathSegmentName(f.value))...)
		}
	}
	return errs
}

func validateHPAv1(h *autoscalingv1.HorizontalPodAutoscaler) field.ErrorList {
	errs := replicaBounds(h.Spec.MinReplicas, h.Spec.MaxReplicas)
	errs = append(errs, scaleTargetRef(h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name, specPath.Child("scaleTargetRef"))...)
	if t := h.Spec.TargetCPUUtilizationPercentage; t != nil && *t < 1 {
		errs = append(errs, field.Invalid(specPath.Child("targetCPUUtilizationPercentage"), *t, "must be greater than 0"))
	}
	return errs
}

func validateHPAv2(h *autoscalingv2.HorizontalPodAutoscaler) field.ErrorList {
	spec := &h.Spec
	errs := replicaBounds(spec.MinReplicas, spec.MaxReplicas)
	errs = append(errs, scaleTargetRef(spec.ScaleTargetRef.Kind, spec.ScaleTargetRef.Name, specPath.Child("scaleTargetRef"))...)
	for i := range spec.Metrics {
		errs = append(errs, validateMetric(&spec.Metrics[i], specPath.Child("metrics").Index(i))...)
	}
	if b := spec.Behavior; b != nil {
		errs = append(errs, validateScalingRules(b.ScaleUp, specPath.Child("behavior", "scaleUp"))...)
		errs = append(errs, validateScalingRules(b.ScaleDown, specPath.Child("behavior", "scaleDown"))...)
	}
	return errs
}

func validateMetric(m *autoscalingv2.MetricSpec, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	var target *autoscalingv2.MetricTarget
	var targetPath *field.Path
	// need reports a missing source block for the metric's type.
	need := func(present bool, name string) {
		if !present {
			errs = append(errs, field.Required(fldPath.Child(name), "must populate information for the given metric source"))
		}
	}
	switch m.Type {
	case autoscalingv2.ObjectMetricSourceType:
		need(m.Object != nil, "object")
		if m.Object != nil {
			target, targetPath = &m.Object.Target, fldPath.Child("object", "target")
			errs = append(errs, metricName(m.Object.Metric.Name, fldPath.Child("object", "metric", "name"))...)
			errs = append(errs, scaleTargetRef(m.Object.DescribedObject.Kind, m.Object.DescribedObject.Name, fldPath.Child("object", "describedObject"))...)
		}
	case autoscalingv2.PodsMetricSourceType:
		need(m.Pods != nil, "pods")
		if m.Pods != nil {
			target, targetPath = &m.Pods.Target, fldPath.Child("pods", "target")
			errs = append(errs, metricName(m.Pods.Metric.Name, fldPath.Child("pods", "metric", "name"))...)
		}
	case autoscalingv2.ResourceMetricSourceType:
		need(m.Resource != nil, "resource")
		if m.Resource != nil {
			target, targetPath = &m.Resource.Target, fldPath.Child("resource", "target")
			if m.Resource.Name == "" {
				errs = append(errs, field.Required(fldPath.Child("resource", "name"), "must specify a resource name"))
			}
		}
	case autoscalingv2.ContainerResourceMetricSourceType:
		need(m.ContainerResource != nil, "containerResource")
		if m.ContainerResource != nil {
			target, targetPath = &m.ContainerResource.Target, fldPath.Child("containerResource", "target")
			if m.ContainerResource.Container == "" {
				errs = append(errs, field.Required(fldPath.Child("containerResource", "container"), "must specify a container"))
			}
		}
	case autoscalingv2.ExternalMetricSourceType:
		need(m.External != nil, "external")
		if m.External != nil {
			target, targetPath = &m.External.Target, fldPath.Child("external", "target")
			errs = append(errs, metricName(m.External.Metric.Name, fldPath.Child("external", "metric", "name"))...)
		}
	case "":
		return append(errs, field.Required(fldPath.Child("type"), "must specify a metric source type"))
	default:
		return append(errs, field.NotSupported(fldPath.Child("type"), m.Type, []autoscalingv2.MetricSourceType{
			autoscalingv2.ContainerResourceMetricSourceType, autoscalingv2.ExternalMetricSourceType, autoscalingv2.ObjectMetricSourceType,
			autoscalingv2.PodsMetricSourceType, autoscalingv2.ResourceMetricSourceType}))
	}
	if target != nil {
		errs = append(errs, validateMetricTarget(target, targetPath)...)
	}
	return errs
}

func metricName(name string, fldPath *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(fldPath, "must specify a metric name")}
	}
	return invalidEach(fldPath, name, path.IsValidPathSegmentName(name))
}

func validateMetricTarget(t *autoscalingv2.MetricTarget, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch t.Type {
	case autoscalingv2.UtilizationMetricType, autoscalingv2.ValueMetricType, autoscalingv2.AverageValueMetricType:
	case "":
		errs = append(errs, field.Required(fldPath.Child("type"), "must specify a metric target type"))
	default:
		errs = append(errs, field.Invalid(fldPath.Child("type"), t.Type, "must be either Utilization, Value, or AverageValue"))
	}
	positive := func(q *resource.Quantity, name string) {
		if q != nil && q.Sign() != 1 {
			errs = append(errs, field.Invalid(fldPath.Child(name), q, "must be positive"))
		}
	}
	positive(t.Value, "value")
	positive(t.AverageValue, "averageValue")
	if u := t.AverageUtilization; u != nil && *u < 1 {
		errs = append(errs, field.Invalid(fldPath.Child("averageUtilization"), *u, "must be greater than 0"))
	}
	return errs
}

func validateScalingRules(r *autoscalingv2.HPAScalingRules, fldPath *field.Path) field.ErrorList {
	if r == nil {
		return nil
	}
	var errs field.ErrorList
	if w := r.StabilizationWindowSeconds; w != nil {
		if *w < 0 {
			errs = append(errs, field.Invalid(fldPath.Child("stabilizationWindowSeconds"), *w, "must be greater than or equal to zero"))
		} else if *w > maxStabilizationWindowSeconds {
			errs = append(errs, field.Invalid(fldPath.Child("stabilizationWindowSeconds"), *w, fmt.Sprintf("must be less than or equal to %d", maxStabilizationWindowSeconds)))
		}
	}
	if r.SelectPolicy != nil {
		errs = append(errs, oneOf(*r.SelectPolicy, fldPath.Child("selectPolicy"),
			autoscalingv2.DisabledPolicySelect, autoscalingv2.MaxChangePolicySelect, autoscalingv2.MinChangePolicySelect)...)
	}
	if len(r.Policies) == 0 {
		errs = append(errs, field.Required(fldPath.Child("policies"), "must specify at least one Policy"))
	}
	for i, p := range r.Policies {
		idx := fldPath.Child("policies").Index(i)
		errs = append(errs, oneOf(p.Type, idx.Child("type"), autoscalingv2.PercentScalingPolicy, autoscalingv2.PodsScalingPolicy)...)
		if p.Value <= 0 {
			errs = append(errs, field.Invalid(idx.Child("value"), p.Value, "must be greater than zero"))
		}
		if p.PeriodSeconds <= 0 {
			errs = append(errs, field.Invalid(idx.Child("periodSeconds"), p.PeriodSeconds, "must be greater than zero"))
		} else if p.PeriodSeconds > maxPolicyPeriodSeconds {
			errs = append(errs, field.Invalid(idx.Child("periodSeconds"), p.PeriodSeconds, fmt.Sprintf("must be less than or equal to %d", maxPolicyPeriodSeconds)))
		}
	}
	return errs
}
