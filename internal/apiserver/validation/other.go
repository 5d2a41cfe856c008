package validation

import (
	"fmt"
	"net"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Limits on one EndpointSlice, so that each stays small to watch.
const (
	maxEndpointsPerSlice = 1000
	maxPortsPerSlice     = 100
	maxAddresses         = 100
)

func validateEndpointSlice(es *discoveryv1.EndpointSlice) field.ErrorList {
	errs := oneOf(es.AddressType, field.NewPath("addressType"),
		discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN)
	epPath := field.NewPath("endpoints")
	if len(es.Endpoints) > maxEndpointsPerSlice {
		errs = append(errs, field.TooMany(epPath, len(es.Endpoints), maxEndpointsPerSlice))
	}
	for i, ep := range es.Endpoints {
		idx := epPath.Index(i)
		addrPath := idx.Child("addresses")
		switch {
		case len(ep.Addresses) == 0:
			errs = append(errs, field.Required(addrPath, "must contain at least 1 address"))
		case len(ep.Addresses) > maxAddresses:
			errs = append(errs, field.TooMany(addrPath, len(ep.Addresses), maxAddresses))
		}
		for j, a := range ep.Addresses {
			errs = append(errs, endpointAddress(es.AddressType, a, addrPath.Index(j))...)
		}
		if ep.Hostname != nil {
			errs = append(errs, dns1123Label(*ep.Hostname, idx.Child("hostname"))...)
		}
		if ep.NodeName != nil {
			errs = append(errs, dns1123Subdomain(*ep.NodeName, idx.Child("nodeName"))...)
		}
	}
	portsPath := field.NewPath("ports")
	if len(es.Ports) > maxPortsPerSlice {
		errs = append(errs, field.TooMany(portsPath, len(es.Ports), maxPortsPerSlice))
	}
	names := sets.New[string]()
	for i, p := range es.Ports {
		idx := portsPath.Index(i)
		if p.Name != nil && *p.Name != "" {
			errs = append(errs, dns1123Label(*p.Name, idx.Child("name"))...)
		}
		if p.Name != nil {
			if names.Has(*p.Name) {
				errs = append(errs, field.Duplicate(idx.Child("name"), *p.Name))
			}
			names.Insert(*p.Name)
		}
		if p.Protocol == nil {
			errs = append(errs, field.Required(idx.Child("protocol"), ""))
		} else {
			errs = append(errs, oneOf(*p.Protocol, idx.Child("protocol"), corev1.ProtocolSCTP, corev1.ProtocolTCP, corev1.ProtocolUDP)...)
		}
		if p.Port != nil {
			errs = append(errs, invalidEach(idx.Child("port"), *p.Port, validation.IsValidPortNum(int(*p.Port)))...)
		}
	}
	return errs
}

func endpointAddress(t discoveryv1.AddressType, a string, fldPath *field.Path) field.ErrorList {
	ip := net.ParseIP(a)
	switch t {
	case discoveryv1.AddressTypeIPv4:
		if ip == nil || ip.To4() == nil || strings.Contains(a, ":") {
			return field.ErrorList{field.Invalid(fldPath, a, "must be a valid IPv4 address")}
		}
	case discoveryv1.AddressTypeIPv6:
		if ip == nil || !strings.Contains(a, ":") {
			return field.ErrorList{field.Invalid(fldPath, a, "must be a valid IPv6 address")}
		}
	case discoveryv1.AddressTypeFQDN:
		return validation.IsFullyQualifiedDomainName(fldPath, a)
	}
	return nil
}

func validateEndpointSliceUpdate(es, old *discoveryv1.EndpointSlice) field.ErrorList {
	return immutable(es.AddressType, old.AddressType, field.NewPath("addressType"))
}

func validateLease(l *coordinationv1.Lease) field.ErrorList {
	var errs field.ErrorList
	if d := l.Spec.LeaseDurationSeconds; d != nil && *d <= 0 {
		errs = append(errs, field.Invalid(specPath.Child("leaseDurationSeconds"), *d, "must be greater than 0"))
	}
	return append(errs, nonNegativePtr(l.Spec.LeaseTransitions, specPath.Child("leaseTransitions"))...)
}

func validatePDB(pdb *policyv1.PodDisruptionBudget) field.ErrorList {
	spec := &pdb.Spec
	var errs field.ErrorList
	if spec.MinAvailable != nil && spec.MaxUnavailable != nil {
		errs = append(errs, field.Invalid(specPath, spec, "minAvailable and maxUnavailable cannot be both set"))
	}
	for _, f := range []struct {
		name  string
		value *intOrStr
	}{{"minAvailable", spec.MinAvailable}, {"maxUnavailable", spec.MaxUnavailable}} {
		if f.value != nil {
			errs = append(errs, intOrPercent(*f.value, specPath.Child(f.name))...)
			errs = append(errs, notMoreThan100Percent(f.value, specPath.Child(f.name))...)
		}
	}
	errs = append(errs, labelSelector(spec.Selector, specPath.Child("selector"))...)
	if p := spec.UnhealthyPodEvictionPolicy; p != nil {
		errs = append(errs, oneOf(*p, specPath.Child("unhealthyPodEvictionPolicy"), policyv1.AlwaysAllow, policyv1.IfHealthyBudget)...)
	}
	return errs
}

func validatePolicyRules(rules []rbacv1.PolicyRule, namespaced bool) field.ErrorList {
	var errs field.ErrorList
	for i, r := range rules {
		idx := field.NewPath("rules").Index(i)
		if len(r.Verbs) == 0 {
			errs = append(errs, field.Required(idx.Child("verbs"), "verbs must contain at least one value"))
		}
		if len(r.NonResourceURLs) > 0 {
			if namespaced {
				errs = append(errs, field.Invalid(idx.Child("nonResourceURLs"), r.NonResourceURLs, "namespaced rules cannot apply to non-resource URLs"))
			}
			if len(r.APIGroups) > 0 || len(r.Resources) > 0 || len(r.ResourceNames) > 0 {
				errs = append(errs, field.Invalid(idx.Child("nonResourceURLs"), r.NonResourceURLs, "rules cannot apply to both regular resources and non-resource URLs"))
			}
			continue
		}
		if len(r.APIGroups) == 0 {
			errs = append(errs, field.Required(idx.Child("apiGroups"), "resource rules must supply at least one api group"))
		}
		if len(r.Resources) == 0 {
			errs = append(errs, field.Required(idx.Child("resources"), "resource rules must supply at least one resource"))
		}
	}
	return errs
}

func validateRole(r *rbacv1.Role) field.ErrorList {
	return validatePolicyRules(r.Rules, true)
}

func validateClusterRole(r *rbacv1.ClusterRole) field.ErrorList {
	errs := validatePolicyRules(r.Rules, false)
	if a := r.AggregationRule; a != nil {
		p := field.NewPath("aggregationRule", "clusterRoleSelectors")
		if len(a.ClusterRoleSelectors) == 0 {
			errs = append(errs, field.Required(p, "at least one clusterRoleSelector required if aggregationRule is non-nil"))
		}
		for i := range a.ClusterRoleSelectors {
			errs = append(errs, labelSelector(&a.ClusterRoleSelectors[i], p.Index(i))...)
		}
	}
	return errs
}

func validateBinding(ref rbacv1.RoleRef, subjects []rbacv1.Subject, namespaced bool) field.ErrorList {
	var errs field.ErrorList
	refPath := field.NewPath("roleRef")
	if ref.APIGroup != rbacv1.GroupName {
		errs = append(errs, field.NotSupported(refPath.Child("apiGroup"), ref.APIGroup, []string{rbacv1.GroupName}))
	}
	if namespaced {
		errs = append(errs, oneOf(ref.Kind, refPath.Child("kind"), "Role", "ClusterRole")...)
	} else {
		errs = append(errs, oneOf(ref.Kind, refPath.Child("kind"), "ClusterRole")...)
	}
	if ref.Name == "" {
		errs = append(errs, field.Required(refPath.Child("name"), ""))
	} else {
		errs = append(errs, invalidEach(refPath.Child("name"), ref.Name, path.IsValidPathSegmentName(ref.Name))...)
	}
	for i, s := range subjects {
		idx := field.NewPath("subjects").Index(i)
		if s.Name == "" {
			errs = append(errs, field.Required(idx.Child("name"), ""))
		}
		switch s.Kind {
		case rbacv1.ServiceAccountKind:
			if s.Name != "" {
				errs = append(errs, invalidEach(idx.Child("name"), s.Name, apivalidation.ValidateServiceAccountName(s.Name, false))...)
			}
			if s.APIGroup != "" {
				errs = append(errs, field.NotSupported(idx.Child("apiGroup"), s.APIGroup, []string{""}))
			}
			if !namespaced && s.Namespace == "" {
				errs = append(errs, field.Required(idx.Child("namespace"), ""))
			}
		case rbacv1.UserKind, rbacv1.GroupKind:
			if s.APIGroup != rbacv1.GroupName {
				errs = append(errs, field.NotSupported(idx.Child("apiGroup"), s.APIGroup, []string{rbacv1.GroupName}))
			}
		default:
			errs = append(errs, field.NotSupported(idx.Child("kind"), s.Kind, []string{rbacv1.ServiceAccountKind, rbacv1.UserKind, rbacv1.GroupKind}))
		}
	}
	return errs
}

func validateRoleBinding(b *rbacv1.RoleBinding) field.ErrorList {
	return validateBinding(b.RoleRef, b.Subjects, true)
}

func validateClusterRoleBinding(b *rbacv1.ClusterRoleBinding) field.ErrorList {
	return validateBinding(b.RoleRef, b.Subjects, false)
}

// A binding's role is part of its identity: granting other permissions
// takes a new binding (and the escalation check that comes with it).
func roleRefUpdate(ref, old rbacv1.RoleRef) field.ErrorList {
	if ref != old {
		return field.ErrorList{field.Invalid(field.NewPath("roleRef"), ref, "cannot change roleRef")}
	}
	return nil
}

func validateRoleBindingUpdate(b, old *rbacv1.RoleBinding) field.ErrorList {
	return roleRefUpdate(b.RoleRef, old.RoleRef)
}

func validateClusterRoleBindingUpdate(b, old *rbacv1.ClusterRoleBinding) field.ErrorList {
	return roleRefUpdate(b.RoleRef, old.RoleRef)
}

// validateEventsEvent applies the strict rules of events.k8s.io/v1.
func validateEventsEvent(e *eventsv1.Event) field.ErrorList {
	var errs field.ErrorList
	if e.EventTime.Time.IsZero() {
		errs = append(errs, field.Required(field.NewPath("eventTime"), ""))
	}
	if e.Type != corev1.EventTypeNormal && e.Type != corev1.EventTypeWarning {
		errs = append(errs, field.Invalid(field.NewPath("type"), "", fmt.Sprintf("has invalid value: %v", e.Type)))
	}
	if e.Regarding.Namespace == "" && e.Namespace != "default" && e.Namespace != "kube-system" {
		errs = append(errs, field.Invalid(field.NewPath("regarding", "namespace"), e.Regarding.Namespace, "does not match event.namespace"))
	}
	errs = append(errs, reportingFields(e.ReportingController, e.ReportingInstance, e.Action, e.Reason, e.Note, "reportingController", "note")...)
	unset := []struct {
		name string
		set  bool
	}{
		{"deprecatedFirstTimestamp", !e.DeprecatedFirstTimestamp.IsZero()},
		{"deprecatedLastTimestamp", !e.DeprecatedLastTimestamp.IsZero()},
		{"deprecatedCount", e.DeprecatedCount != 0},
		{"deprecatedSource", e.DeprecatedSource != (corev1.EventSource{})},
	}
	for _, f := range unset {
		if f.set {
			errs = append(errs, field.Invalid(field.NewPath(f.name), "", "needs to be unset"))
		}
	}
	if s := e.Series; s != nil {
		if s.Count < 2 {
			errs = append(errs, field.Invalid(field.NewPath("series", "count"), s.Count, "should be at least 2"))
		}
		if s.LastObservedTime.Time.IsZero() {
			errs = append(errs, field.Required(field.NewPath("series", "lastObservedTime"), ""))
		}
	}
	return errs
}

func validateEventsEventUpdate(e, old *eventsv1.Event) field.ErrorList {
	var errs field.ErrorList
	fixed := []struct {
		name     string
		new, old any
	}{
		{"regarding", e.Regarding, old.Regarding},
		{"related", e.Related, old.Related},
		{"reason", e.Reason, old.Reason},
		{"note", e.Note, old.Note},
		{"type", e.Type, old.Type},
		{"eventTime", e.EventTime, old.EventTime},
		{"action", e.Action, old.Action},
		{"reportingController", e.ReportingController, old.ReportingController},
		{"reportingInstance", e.ReportingInstance, old.ReportingInstance},
	}
	for _, f := range fixed {
		errs = append(errs, immutable(f.new, f.old, field.NewPath(f.name))...)
	}
	return errs
}

// Priorities above this are reserved for the built-in system classes.
const highestUserPriority = int32(1_000_000_000)

var systemPriorityClasses = map[string]int32{
	"system-node-critical":    2_000_001_000,
	"system-cluster-critical": 2_000_000_000,
}

func validatePriorityClass(pc *schedulingv1.PriorityClass) field.ErrorList {
	var errs field.ErrorList
	if strings.HasPrefix(pc.Name, "system-") {
		if v, ok := systemPriorityClasses[pc.Name]; !ok || v != pc.Value {
			errs = append(errs, field.Forbidden(metadataPath.Child("name"), "priority class names with 'system-' prefix are reserved for system use only"))
		}
	} else if pc.Value > highestUserPriority {
		errs = append(errs, field.Forbidden(field.NewPath("value"), fmt.Sprintf("maximum allowed value of a user defined priority is %v", highestUserPriority)))
	}
	if pc.PreemptionPolicy != nil {
		errs = append(errs, oneOf(*pc.PreemptionPolicy, field.NewPath("preemptionPolicy"), corev1.PreemptLowerPriority, corev1.PreemptNever)...)
	}
	return errs
}

func validatePriorityClassUpdate(pc, old *schedulingv1.PriorityClass) field.ErrorList {
	var errs field.ErrorList
	if pc.Value != old.Value {
		errs = append(errs, field.Forbidden(field.NewPath("value"), "may not be changed in an update."))
	}
	return append(errs, immutable(pc.PreemptionPolicy, old.PreemptionPolicy, field.NewPath("preemptionPolicy"))...)
}

func validateStorageClass(sc *storagev1.StorageClass) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("provisioner")
	if sc.Provisioner == "" {
		errs = append(errs, field.Required(p, ""))
	} else {
		errs = append(errs, invalidEach(p, sc.Provisioner, validation.IsQualifiedName(strings.ToLower(sc.Provisioner)))...)
	}
	if sc.ReclaimPolicy != nil {
		errs = append(errs, oneOf(*sc.ReclaimPolicy, field.NewPath("reclaimPolicy"), corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRetain)...)
	}
	if sc.VolumeBindingMode != nil {
		errs = append(errs, oneOf(*sc.VolumeBindingMode, field.NewPath("volumeBindingMode"), storagev1.VolumeBindingImmediate, storagev1.VolumeBindingWaitForFirstConsumer)...)
	}
	return errs
}

func validateStorageClassUpdate(sc, old *storagev1.StorageClass) field.ErrorList {
	var errs field.ErrorList
	if !apiequalityDeep(sc.Parameters, old.Parameters) {
		errs = append(errs, field.Forbidden(field.NewPath("parameters"), "updates to parameters are forbidden."))
	}
	if sc.Provisioner != old.Provisioner {
		errs = append(errs, field.Forbidden(field.NewPath("provisioner"), "updates to provisioner are forbidden."))
	}
	if !apiequalityDeep(sc.ReclaimPolicy, old.ReclaimPolicy) {
		errs = append(errs, field.Forbidden(field.NewPath("reclaimPolicy"), "updates to reclaimPolicy are forbidden."))
	}
	return append(errs, immutable(sc.VolumeBindingMode, old.VolumeBindingMode, field.NewPath("volumeBindingMode"))...)
}
