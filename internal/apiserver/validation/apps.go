package validation

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"slices"
)

// replicatedTemplate checks the pod template of a controller whose pods run
// forever: they must restart Always and may not have a deadline.
func replicatedTemplate(sel *metav1.LabelSelector, t *corev1.PodTemplateSpec, kind string, fldPath *field.Path) field.ErrorList {
	errs := selectorMatchesTemplate(sel, t.Labels, fldPath)
	errs = append(errs, validatePodTemplateSpec(t, fldPath)...)
	if t.Spec.RestartPolicy != corev1.RestartPolicyAlways && t.Spec.RestartPolicy != "" {
		errs = append(errs, field.NotSupported(fldPath.Child("spec", "restartPolicy"), t.Spec.RestartPolicy, []corev1.RestartPolicy{corev1.RestartPolicyAlways}))
	}
	if t.Spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Forbidden(fldPath.Child("spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in "+kind+" is not Supported"))
	}
	return errs
}

// requiredSelector checks a selector that must be present and non-empty.
func requiredSelector(sel *metav1.LabelSelector, kind string, fldPath *field.Path) field.ErrorList {
	if sel == nil {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	errs := labelSelector(sel, fldPath)
	if emptySelector(sel) {
		errs = append(errs, field.Invalid(fldPath, sel, "empty selector is invalid for "+kind))
	}
	return errs
}

func replicas(r *int32, fldPath *field.Path) field.ErrorList {
	return nonNegativePtr(r, fldPath)
}

func validateDeployment(d *appsv1.Deployment) field.ErrorList {
	spec := &d.Spec
	errs := replicas(spec.Replicas, specPath.Child("replicas"))
	errs = append(errs, requiredSelector(spec.Selector, "deployment", specPath.Child("selector"))...)
	errs = append(errs, replicatedTemplate(spec.Selector, &spec.Template, "ReplicaSet", specPath.Child("template"))...)

	strategyPath := specPath.Child("strategy")
	switch spec.Strategy.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if spec.Strategy.RollingUpdate != nil {
			errs = append(errs, field.Forbidden(strategyPath.Child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'"))
		}
	case appsv1.RollingUpdateDeploymentStrategyType:
		ru := spec.Strategy.RollingUpdate
		ruPath := strategyPath.Child("rollingUpdate")
		if ru == nil {
			errs = append(errs, field.Required(ruPath, "this should be defaulted and never be nil"))
			break
		}
		if ru.MaxUnavailable != nil {
			errs = append(errs, intOrPercent(*ru.MaxUnavailable, ruPath.Child("maxUnavailable"))...)
		}
		if ru.MaxSurge != nil {
			errs = append(errs, intOrPercent(*ru.MaxSurge, ruPath.Child("maxSurge"))...)
		}
		if intOrPercentValue(ru.MaxUnavailable) == 0 && intOrPercentValue(ru.MaxSurge) == 0 {
			errs = append(errs, field.Invalid(ruPath.Child("maxUnavailable"), ru.MaxUnavailable, "may not be 0 when `maxSurge` is 0"))
		}
		errs = append(errs, notMoreThan100Percent(ru.MaxUnavailable, ruPath.Child("maxUnavailable"))...)
	default:
		errs = append(errs, field.NotSupported(strategyPath.Child("type"), spec.Strategy.Type,
			[]appsv1.DeploymentStrategyType{appsv1.RecreateDeploymentStrategyType, appsv1.RollingUpdateDeploymentStrategyType}))
	}

	errs = append(errs, nonNegative(int64(spec.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	errs = append(errs, nonNegativePtr(spec.RevisionHistoryLimit, specPath.Child("revisionHistoryLimit"))...)
	if p := spec.ProgressDeadlineSeconds; p != nil {
		errs = append(errs, nonNegative(int64(*p), specPath.Child("progressDeadlineSeconds"))...)
		if *p <= spec.MinReadySeconds {
			errs = append(errs, field.Invalid(specPath.Child("progressDeadlineSeconds"), *p, "must be greater than minReadySeconds"))
		}
	}
	return errs
}

// In apps/v1 a controller's selector is fixed at creation: changing it
// would orphan the pods it already owns.
func validateDeploymentUpdate(d, old *appsv1.Deployment) field.ErrorList {
	return immutable(d.Spec.Selector, old.Spec.Selector, specPath.Child("selector"))
}

func validateReplicaSet(rs *appsv1.ReplicaSet) field.ErrorList {
	spec := &rs.Spec
	errs := replicas(spec.Replicas, specPath.Child("replicas"))
	errs = append(errs, nonNegative(int64(spec.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	// Upstream says "deployment" here too.
	errs = append(errs, requiredSelector(spec.Selector, "deployment", specPath.Child("selector"))...)
	return append(errs, replicatedTemplate(spec.Selector, &spec.Template, "ReplicaSet", specPath.Child("template"))...)
}

func validateReplicaSetUpdate(rs, old *appsv1.ReplicaSet) field.ErrorList {
	return immutable(rs.Spec.Selector, old.Spec.Selector, specPath.Child("selector"))
}

func validateDaemonSet(ds *appsv1.DaemonSet) field.ErrorList {
	spec := &ds.Spec
	errs := requiredSelector(spec.Selector, "daemonset", specPath.Child("selector"))
	tPath := specPath.Child("template")
	errs = append(errs, selectorMatchesTemplate(spec.Selector, spec.Template.Labels, tPath)...)
	errs = append(errs, validatePodTemplateSpec(&spec.Template, tPath)...)
	if rp := spec.Template.Spec.RestartPolicy; rp != corev1.RestartPolicyAlways && rp != "" {
		errs = append(errs, field.NotSupported(tPath.Child("spec", "restartPolicy"), rp, []corev1.RestartPolicy{corev1.RestartPolicyAlways}))
	}
	if a := spec.Template.Spec.ActiveDeadlineSeconds; a != nil {
		errs = append(errs, field.Invalid(tPath.Child("spec", "activeDeadlineSeconds"), *a, "activeDeadlineSeconds must be nil for daemons"))
	}
	errs = append(errs, nonNegative(int64(spec.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	errs = append(errs, nonNegativePtr(spec.RevisionHistoryLimit, specPath.Child("revisionHistoryLimit"))...)

	usPath := specPath.Child("updateStrategy")
	switch spec.UpdateStrategy.Type {
	case appsv1.OnDeleteDaemonSetStrategyType:
	case appsv1.RollingUpdateDaemonSetStrategyType:
		ru := spec.UpdateStrategy.RollingUpdate
		ruPath := usPath.Child("rollingUpdate")
		if ru == nil {
			errs = append(errs, field.Required(ruPath, ""))
			break
		}
		if ru.MaxUnavailable != nil {
			errs = append(errs, intOrPercent(*ru.MaxUnavailable, ruPath.Child("maxUnavailable"))...)
		}
		if ru.MaxSurge != nil {
			errs = append(errs, intOrPercent(*ru.MaxSurge, ruPath.Child("maxSurge"))...)
		}
		errs = append(errs, notMoreThan100Percent(ru.MaxUnavailable, ruPath.Child("maxUnavailable"))...)
		errs = append(errs, notMoreThan100Percent(ru.MaxSurge, ruPath.Child("maxSurge"))...)
		// A daemon pod either dies before its replacement starts or after;
		// exactly one of the two knobs says which.
		hasUnavailable, hasSurge := intOrPercentValue(ru.MaxUnavailable) != 0, intOrPercentValue(ru.MaxSurge) != 0
		switch {
		case hasUnavailable && hasSurge:
			errs = append(errs, field.Invalid(ruPath.Child("maxSurge"), ru.MaxSurge, "may not be set when maxUnavailable is non-zero"))
		case !hasUnavailable && !hasSurge:
			errs = append(errs, field.Required(ruPath.Child("maxUnavailable"), "cannot be 0 when maxSurge is 0"))
		}
	default:
		errs = append(errs, field.NotSupported(usPath.Child("type"), spec.UpdateStrategy.Type,
			[]appsv1.DaemonSetUpdateStrategyType{appsv1.OnDeleteDaemonSetStrategyType, appsv1.RollingUpdateDaemonSetStrategyType}))
	}
	return errs
}

func validateDaemonSetUpdate(ds, old *appsv1.DaemonSet) field.ErrorList {
	return immutable(ds.Spec.Selector, old.Spec.Selector, specPath.Child("selector"))
}

func validateStatefulSet(ss *appsv1.StatefulSet) field.ErrorList {
	spec := &ss.Spec
	var errs field.ErrorList
	if spec.ServiceName != "" {
		errs = append(errs, dns1123Label(spec.ServiceName, specPath.Child("serviceName"))...)
	}
	errs = append(errs, oneOf(spec.PodManagementPolicy, specPath.Child("podManagementPolicy"),
		appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement)...)

	usPath := specPath.Child("updateStrategy")
	switch spec.UpdateStrategy.Type {
	case appsv1.OnDeleteStatefulSetStrategyType:
		if spec.UpdateStrategy.RollingUpdate != nil {
			errs = append(errs, field.Invalid(usPath.Child("rollingUpdate"), spec.UpdateStrategy.RollingUpdate, "only allowed for updateStrategy 'RollingUpdate'"))
		}
	case appsv1.RollingUpdateStatefulSetStrategyType:
		if ru := spec.UpdateStrategy.RollingUpdate; ru != nil {
			errs = append(errs, nonNegativePtr(ru.Partition, usPath.Child("rollingUpdate", "partition"))...)
			if ru.MaxUnavailable != nil {
				mu := usPath.Child("rollingUpdate", "maxUnavailable")
				errs = append(errs, intOrPercent(*ru.MaxUnavailable, mu)...)
				if intOrPercentValue(ru.MaxUnavailable) == 0 {
					errs = append(errs, field.Invalid(mu, *ru.MaxUnavailable, "cannot be 0"))
				}
				errs = append(errs, notMoreThan100Percent(ru.MaxUnavailable, mu)...)
			}
		}
	default:
		errs = append(errs, field.NotSupported(usPath.Child("type"), spec.UpdateStrategy.Type,
			[]appsv1.StatefulSetUpdateStrategyType{appsv1.RollingUpdateStatefulSetStrategyType, appsv1.OnDeleteStatefulSetStrategyType}))
	}
	if rp := spec.PersistentVolumeClaimRetentionPolicy; rp != nil {
		p := specPath.Child("persistentVolumeClaimRetentionPolicy")
		errs = append(errs, oneOf(rp.WhenDeleted, p.Child("whenDeleted"),
			appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType)...)
		errs = append(errs, oneOf(rp.WhenScaled, p.Child("whenScaled"),
			appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType)...)
	}
	if o := spec.Ordinals; o != nil {
		errs = append(errs, nonNegative(int64(o.Start), specPath.Child("ordinals", "start"))...)
	}
	errs = append(errs, replicas(spec.Replicas, specPath.Child("replicas"))...)
	errs = append(errs, nonNegative(int64(spec.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	errs = append(errs, nonNegativePtr(spec.RevisionHistoryLimit, specPath.Child("revisionHistoryLimit"))...)
	errs = append(errs, requiredSelector(spec.Selector, "statefulset", specPath.Child("selector"))...)
	errs = append(errs, replicatedTemplate(spec.Selector, withClaimVolumes(spec), "StatefulSet", specPath.Child("template"))...)
	for i := range spec.VolumeClaimTemplates {
		idx := specPath.Child("volumeClaimTemplates").Index(i)
		pvc := &spec.VolumeClaimTemplates[i]
		if pvc.Name == "" {
			errs = append(errs, field.Required(idx.Child("metadata", "name"), ""))
		} else {
			errs = append(errs, dns1123Subdomain(pvc.Name, idx.Child("metadata", "name"))...)
		}
		errs = append(errs, validatePVCSpec(&pvc.Spec, idx.Child("spec"))...)
	}
	return errs
}

// withClaimVolumes is the set's pod template with a volume for each claim
// template it does not already name, as the controller gives its pods:
// containers mount claim templates by name.
func withClaimVolumes(spec *appsv1.StatefulSetSpec) *corev1.PodTemplateSpec {
	if len(spec.VolumeClaimTemplates) == 0 {
		return &spec.Template
	}
	t := spec.Template.DeepCopy()
	for _, pvc := range spec.VolumeClaimTemplates {
		if !slices.ContainsFunc(t.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == pvc.Name }) {
			t.Spec.Volumes = append(t.Spec.Volumes, corev1.Volume{Name: pvc.Name, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: pvc.Name}}})
		}
	}
	return t
}

func validateStatefulSetUpdate(ss, old *appsv1.StatefulSet) field.ErrorList {
	// Everything but these may not change once the set exists; the pods'
	// identities and volumes are derived from the rest.
	clone := ss.Spec.DeepCopy()
	clone.Replicas = old.Spec.Replicas
	clone.Template = old.Spec.Template
	clone.UpdateStrategy = old.Spec.UpdateStrategy
	clone.MinReadySeconds = old.Spec.MinReadySeconds
	clone.Ordinals = old.Spec.Ordinals
	clone.RevisionHistoryLimit = old.Spec.RevisionHistoryLimit
	clone.PersistentVolumeClaimRetentionPolicy = old.Spec.PersistentVolumeClaimRetentionPolicy
	if !apiequality.Semantic.DeepEqual(*clone, old.Spec) {
		return field.ErrorList{field.Forbidden(specPath, "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")}
	}
	return nil
}

func validateControllerRevision(r *appsv1.ControllerRevision) field.ErrorList {
	return nonNegative(r.Revision, field.NewPath("revision"))
}

func validateControllerRevisionUpdate(r, old *appsv1.ControllerRevision) field.ErrorList {
	return immutable(r.Data, old.Data, field.NewPath("data"))
}
