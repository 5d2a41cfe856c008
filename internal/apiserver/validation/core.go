package validation

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var specPath = field.NewPath("spec")

// maxDataSize is the most a ConfigMap or Secret may hold (1 MiB), so that
// every object stays well under etcd's request limit.
const maxDataSize = 1 * 1024 * 1024

// podUpdatableFields is upstream's list in its pod update error message.
var podUpdatableFields = []string{
	"`spec.containers[*].image`",
	"`spec.initContainers[*].image`",
	"`spec.activeDeadlineSeconds`",
	"`spec.tolerations` (only additions to existing tolerations)",
	"`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
}

func validatePod(p *corev1.Pod) field.ErrorList {
	return validatePodSpec(&p.Spec, specPath)
}

// validatePodCreate refuses ephemeral containers in a new pod: they are
// added to a running pod through its ephemeralcontainers subresource.
func validatePodCreate(p *corev1.Pod) field.ErrorList {
	if len(p.Spec.EphemeralContainers) > 0 {
		return field.ErrorList{field.Forbidden(specPath.Child("ephemeralContainers"), "cannot be set on create")}
	}
	return nil
}

func validatePodUpdate(p, old *corev1.Pod) field.ErrorList {
	var errs field.ErrorList
	if len(p.Spec.Containers) != len(old.Spec.Containers) {
		return append(errs, field.Forbidden(specPath.Child("containers"), "pod updates may not add or remove containers"))
	}
	if len(p.Spec.InitContainers) != len(old.Spec.InitContainers) {
		return append(errs, field.Forbidden(specPath.Child("initContainers"), "pod updates may not add or remove containers"))
	}
	adsPath := specPath.Child("activeDeadlineSeconds")
	switch {
	case p.Spec.ActiveDeadlineSeconds != nil && old.Spec.ActiveDeadlineSeconds != nil && *old.Spec.ActiveDeadlineSeconds < *p.Spec.ActiveDeadlineSeconds:
		errs = append(errs, field.Invalid(adsPath, *p.Spec.ActiveDeadlineSeconds, "must be less than or equal to previous value"))
	case p.Spec.ActiveDeadlineSeconds == nil && old.Spec.ActiveDeadlineSeconds != nil:
		errs = append(errs, field.Invalid(adsPath, p.Spec.ActiveDeadlineSeconds, "must not update from a positive integer to nil value"))
	}
	errs = append(errs, onlyAddedTolerations(p.Spec.Tolerations, old.Spec.Tolerations, specPath.Child("tolerations"))...)
	if apiequality.Semantic.DeepEqual(p.Spec, old.Spec) {
		return errs
	}

	// Put the old values back into the fields that may change; whatever
	// still differs may not.
	munged := p.Spec.DeepCopy()
	for i := range munged.Containers {
		munged.Containers[i].Image = old.Spec.Containers[i].Image
	}
	for i := range munged.InitContainers {
		munged.InitContainers[i].Image = old.Spec.InitContainers[i].Image
	}
	munged.ActiveDeadlineSeconds = old.Spec.ActiveDeadlineSeconds
	munged.Tolerations = old.Spec.Tolerations
	// Scheduling gates may only be removed; the scheduler waits for that.
	if isSubset(munged.SchedulingGates, old.Spec.SchedulingGates) {
		munged.SchedulingGates = old.Spec.SchedulingGates
	}
	if g := old.Spec.TerminationGracePeriodSeconds; g != nil && *g < 0 &&
		munged.TerminationGracePeriodSeconds != nil && *munged.TerminationGracePeriodSeconds == 1 {
		munged.TerminationGracePeriodSeconds = g
	}
	if !apiequality.Semantic.DeepEqual(*munged, old.Spec) {
		diff := cmp.Diff(old.Spec, *munged)
		errs = append(errs, field.Forbidden(specPath, fmt.Sprintf("pod updates may not change fields other than %s\n%v", strings.Join(podUpdatableFields, ","), diff)))
	}
	return errs
}

func isSubset[T comparable](sub, of []T) bool {
	set := sets.New(of...)
	for _, x := range sub {
		if !set.Has(x) {
			return false
		}
	}
	return true
}

func onlyAddedTolerations(tolerations, old []corev1.Toleration, fldPath *field.Path) field.ErrorList {
	for _, o := range old {
		found := false
		for _, t := range tolerations {
			o.TolerationSeconds = t.TolerationSeconds // that one may change
			if reflect.DeepEqual(o, t) {
				found = true
				break
			}
		}
		if !found {
			return field.ErrorList{field.Forbidden(fldPath, "existing toleration can not be modified except its tolerationSeconds")}
		}
	}
	return nil
}

func validatePodTemplate(t *corev1.PodTemplate) field.ErrorList {
	return validatePodTemplateSpec(&t.Template, field.NewPath("template"))
}

func validateNamespace(ns *corev1.Namespace) field.ErrorList {
	var errs field.ErrorList
	for i, f := range ns.Spec.Finalizers {
		errs = append(errs, validateFinalizerName(string(f), specPath.Child("finalizers").Index(i))...)
	}
	return errs
}

func validateNamespaceUpdate(ns, old *corev1.Namespace) field.ErrorList {
	return nil
}

// validateFinalizerName accepts the built-in finalizers and any
// domain-qualified name.
func validateFinalizerName(name string, fldPath *field.Path) field.ErrorList {
	errs := qualifiedName(name, fldPath)
	if len(errs) > 0 {
		return errs
	}
	standard := name == string(corev1.FinalizerKubernetes) || name == metav1.FinalizerOrphanDependents || name == metav1.FinalizerDeleteDependents
	if !standard && !strings.Contains(name, "/") {
		errs = append(errs, field.Invalid(fldPath, name, "name is neither a standard finalizer name nor is it fully qualified"))
	}
	return errs
}

func validateService(s *corev1.Service) field.ErrorList {
	var errs field.ErrorList
	spec := &s.Spec
	headless := spec.ClusterIP == corev1.ClusterIPNone

	errs = append(errs, oneOf(spec.Type, specPath.Child("type"),
		corev1.ServiceTypeClusterIP, corev1.ServiceTypeExternalName, corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort)...)
	if spec.Type == corev1.ServiceTypeExternalName {
		name := strings.TrimSuffix(spec.ExternalName, ".")
		if name == "" {
			errs = append(errs, field.Required(specPath.Child("externalName"), ""))
		} else {
			errs = append(errs, dns1123Subdomain(name, specPath.Child("externalName"))...)
		}
		if spec.ClusterIP != "" {
			errs = append(errs, field.Forbidden(specPath.Child("clusterIP"), "may not be set for ExternalName services"))
		}
	} else if len(spec.Ports) == 0 && !headless {
		errs = append(errs, field.Required(specPath.Child("ports"), ""))
	}
	if spec.ClusterIP != "" && spec.ClusterIP != corev1.ClusterIPNone && spec.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, validation.IsValidIP(specPath.Child("clusterIP"), spec.ClusterIP)...)
	}

	portNames := sets.New[string]()
	seen := map[corev1.ServicePort]bool{}
	for i := range spec.Ports {
		sp := &spec.Ports[i]
		idx := specPath.Child("ports").Index(i)
		switch {
		case sp.Name == "" && len(spec.Ports) > 1:
			errs = append(errs, field.Required(idx.Child("name"), ""))
		case sp.Name != "":
			errs = append(errs, dns1123Label(sp.Name, idx.Child("name"))...)
			if portNames.Has(sp.Name) {
				errs = append(errs, field.Duplicate(idx.Child("name"), sp.Name))
			}
			portNames.Insert(sp.Name)
		}
		errs = append(errs, invalidEach(idx.Child("port"), sp.Port, validation.IsValidPortNum(int(sp.Port)))...)
		errs = append(errs, oneOf(sp.Protocol, idx.Child("protocol"), corev1.ProtocolSCTP, corev1.ProtocolTCP, corev1.ProtocolUDP)...)
		errs = append(errs, portNumOrName(sp.TargetPort, idx.Child("targetPort"))...)
		if sp.NodePort != 0 {
			if spec.Type == corev1.ServiceTypeClusterIP {
				errs = append(errs, field.Forbidden(idx.Child("nodePort"), "may not be used when `type` is 'ClusterIP'"))
			} else {
				errs = append(errs, invalidEach(idx.Child("nodePort"), sp.NodePort, validation.IsValidPortNum(int(sp.NodePort)))...)
			}
		}
		key := corev1.ServicePort{Protocol: sp.Protocol, Port: sp.Port}
		if seen[key] {
			errs = append(errs, field.Duplicate(idx, key))
		}
		seen[key] = true
	}

	errs = append(errs, validateLabels(spec.Selector, specPath.Child("selector"))...)
	errs = append(errs, oneOf(spec.SessionAffinity, specPath.Child("sessionAffinity"), corev1.ServiceAffinityClientIP, corev1.ServiceAffinityNone)...)
	if spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		c := spec.SessionAffinityConfig
		cfgPath := specPath.Child("sessionAffinityConfig", "clientIP", "timeoutSeconds")
		if c == nil || c.ClientIP == nil || c.ClientIP.TimeoutSeconds == nil {
			errs = append(errs, field.Required(cfgPath, "when `sessionAffinity` is ClientIP"))
		} else if t := *c.ClientIP.TimeoutSeconds; t <= 0 || t > 86400 {
			errs = append(errs, field.Invalid(cfgPath, t, "must be greater than 0 and less than 86400"))
		}
	} else if spec.SessionAffinityConfig != nil {
		errs = append(errs, field.Invalid(specPath.Child("sessionAffinityConfig"), spec.SessionAffinityConfig, "must not be set when `sessionAffinity` is None"))
	}

	externallyAccessible := spec.Type == corev1.ServiceTypeNodePort || spec.Type == corev1.ServiceTypeLoadBalancer ||
		(spec.Type == corev1.ServiceTypeClusterIP && len(spec.ExternalIPs) > 0)
	if !externallyAccessible {
		if spec.ExternalTrafficPolicy != "" {
			errs = append(errs, field.Invalid(specPath.Child("externalTrafficPolicy"), spec.ExternalTrafficPolicy, "may only be set for externally-accessible services"))
		}
	} else {
		errs = append(errs, oneOf(spec.ExternalTrafficPolicy, specPath.Child("externalTrafficPolicy"),
			corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal)...)
	}
	if spec.Type != corev1.ServiceTypeExternalName {
		if spec.InternalTrafficPolicy == nil {
			errs = append(errs, field.Required(specPath.Child("internalTrafficPolicy"), ""))
		} else {
			errs = append(errs, oneOf(*spec.InternalTrafficPolicy, specPath.Child("internalTrafficPolicy"),
				corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal)...)
		}
	}
	if spec.IPFamilyPolicy != nil {
		errs = append(errs, oneOf(*spec.IPFamilyPolicy, specPath.Child("ipFamilyPolicy"),
			corev1.IPFamilyPolicySingleStack, corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack)...)
	}
	for i, ip := range spec.ExternalIPs {
		errs = append(errs, validation.IsValidIP(specPath.Child("externalIPs").Index(i), ip)...)
	}
	return errs
}

func validateServiceUpdate(s, old *corev1.Service) field.ErrorList {
	// An allocated cluster IP stays with the service for its lifetime. An
	// empty one means "keep it": the handler copies the old value in, as
	// upstream does for clients that PUT a service without it.
	needsIP := func(s *corev1.Service) bool { return s.Spec.Type != corev1.ServiceTypeExternalName }
	if needsIP(s) && needsIP(old) && old.Spec.ClusterIP != "" && s.Spec.ClusterIP != "" && s.Spec.ClusterIP != old.Spec.ClusterIP {
		return immutable(s.Spec.ClusterIP, old.Spec.ClusterIP, specPath.Child("clusterIP"))
	}
	return nil
}

func validateEndpoints(e *corev1.Endpoints) field.ErrorList {
	var errs field.ErrorList
	for i, ss := range e.Subsets {
		idx := field.NewPath("subsets").Index(i)
		for j, a := range ss.Addresses {
			errs = append(errs, validation.IsValidIP(idx.Child("addresses").Index(j).Child("ip"), a.IP)...)
		}
		for j, a := range ss.NotReadyAddresses {
			errs = append(errs, validation.IsValidIP(idx.Child("notReadyAddresses").Index(j).Child("ip"), a.IP)...)
		}
		for j, p := range ss.Ports {
			pp := idx.Child("ports").Index(j)
			if p.Name != "" {
				errs = append(errs, dns1123Label(p.Name, pp.Child("name"))...)
			} else if len(ss.Ports) > 1 {
				errs = append(errs, field.Required(pp.Child("name"), ""))
			}
			errs = append(errs, invalidEach(pp.Child("port"), p.Port, validation.IsValidPortNum(int(p.Port)))...)
			errs = append(errs, oneOf(p.Protocol, pp.Child("protocol"), corev1.ProtocolSCTP, corev1.ProtocolTCP, corev1.ProtocolUDP)...)
		}
	}
	return errs
}

func validateConfigMap(c *corev1.ConfigMap) field.ErrorList {
	var errs field.ErrorList
	size := 0
	for _, k := range sortedKeys(c.Data) {
		p := field.NewPath("data").Key(k)
		errs = append(errs, invalidEach(p, k, validation.IsConfigMapKey(k))...)
		if _, dup := c.BinaryData[k]; dup {
			errs = append(errs, field.Invalid(p, k, "duplicate of key present in binaryData"))
		}
		size += len(c.Data[k])
	}
	for _, k := range sortedKeys(c.BinaryData) {
		p := field.NewPath("binaryData").Key(k)
		errs = append(errs, invalidEach(p, k, validation.IsConfigMapKey(k))...)
		if _, dup := c.Data[k]; dup {
			errs = append(errs, field.Invalid(p, k, "duplicate of key present in data"))
		}
		size += len(c.BinaryData[k])
	}
	if size > maxDataSize {
		errs = append(errs, field.TooLong(field.NewPath(""), "", maxDataSize))
	}
	return errs
}

func validateConfigMapUpdate(c, old *corev1.ConfigMap) field.ErrorList {
	return immutableData(c.Immutable, old.Immutable, []any{c.Data, c.BinaryData}, []any{old.Data, old.BinaryData}, []string{"data", "binaryData"})
}

// immutableData enforces `immutable: true` on ConfigMaps and Secrets: once
// set it stays set and the data may not change.
func immutableData(now, was *bool, data, oldData []any, names []string) field.ErrorList {
	if was == nil || !*was {
		return nil
	}
	const msg = "field is immutable when `immutable` is set"
	var errs field.ErrorList
	if now == nil || !*now {
		errs = append(errs, field.Forbidden(field.NewPath("immutable"), msg))
	}
	for i := range data {
		if !reflect.DeepEqual(data[i], oldData[i]) {
			errs = append(errs, field.Forbidden(field.NewPath(names[i]), msg))
		}
	}
	return errs
}

func validateSecret(s *corev1.Secret) field.ErrorList {
	var errs field.ErrorList
	dataPath := field.NewPath("data")
	size := 0
	for _, k := range sortedKeys(s.Data) {
		errs = append(errs, invalidEach(dataPath.Key(k), k, validation.IsConfigMapKey(k))...)
		size += len(s.Data[k])
	}
	if size > maxDataSize {
		errs = append(errs, field.TooLong(dataPath, "", maxDataSize))
	}
	requireKey := func(key string) {
		if _, ok := s.Data[key]; !ok {
			errs = append(errs, field.Required(dataPath.Key(key), ""))
		}
	}
	switch s.Type {
	case corev1.SecretTypeServiceAccountToken:
		if s.Annotations[corev1.ServiceAccountNameKey] == "" {
			errs = append(errs, field.Required(metadataPath.Child("annotations").Key(corev1.ServiceAccountNameKey), ""))
		}
	case corev1.SecretTypeDockercfg:
		requireKey(corev1.DockerConfigKey)
		errs = append(errs, jsonKey(s.Data, corev1.DockerConfigKey, dataPath)...)
	case corev1.SecretTypeDockerConfigJson:
		requireKey(corev1.DockerConfigJsonKey)
		errs = append(errs, jsonKey(s.Data, corev1.DockerConfigJsonKey, dataPath)...)
	case corev1.SecretTypeBasicAuth:
		if len(s.Data[corev1.BasicAuthUsernameKey]) == 0 && len(s.Data[corev1.BasicAuthPasswordKey]) == 0 {
			errs = append(errs, field.Required(dataPath.Key(corev1.BasicAuthUsernameKey), ""),
				field.Required(dataPath.Key(corev1.BasicAuthPasswordKey), ""))
		}
	case corev1.SecretTypeSSHAuth:
		if len(s.Data[corev1.SSHAuthPrivateKey]) == 0 {
			errs = append(errs, field.Required(dataPath.Key(corev1.SSHAuthPrivateKey), ""))
		}
	case corev1.SecretTypeTLS:
		requireKey(corev1.TLSCertKey)
		requireKey(corev1.TLSPrivateKeyKey)
	}
	return errs
}

func jsonKey(data map[string][]byte, key string, dataPath *field.Path) field.ErrorList {
	b, ok := data[key]
	if !ok {
		return nil
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		return field.ErrorList{field.Invalid(dataPath.Key(key), "<secret contents redacted>", err.Error())}
	}
	return nil
}

func validateSecretUpdate(s, old *corev1.Secret) field.ErrorList {
	errs := immutable(s.Type, old.Type, field.NewPath("type"))
	return append(errs, immutableData(s.Immutable, old.Immutable, []any{s.Data}, []any{old.Data}, []string{"data"})...)
}

func validateNode(n *corev1.Node) field.ErrorList {
	var errs field.ErrorList
	for i, cidr := range n.Spec.PodCIDRs {
		errs = append(errs, validation.IsValidCIDR(specPath.Child("podCIDRs").Index(i), cidr)...)
	}
	if n.Spec.PodCIDR != "" && len(n.Spec.PodCIDRs) > 0 && n.Spec.PodCIDR != n.Spec.PodCIDRs[0] {
		errs = append(errs, field.Invalid(specPath.Child("podCIDR"), n.Spec.PodCIDR, "must match the first element of podCIDRs"))
	}
	type taintKey struct {
		key    string
		effect corev1.TaintEffect
	}
	seen := map[taintKey]bool{}
	for i, t := range n.Spec.Taints {
		idx := specPath.Child("taints").Index(i)
		if t.Key == "" {
			errs = append(errs, field.Required(idx.Child("key"), ""))
		} else {
			errs = append(errs, labelName(t.Key, idx.Child("key"))...)
		}
		errs = append(errs, invalidEach(idx.Child("value"), t.Value, validation.IsValidLabelValue(t.Value))...)
		errs = append(errs, oneOf(t.Effect, idx.Child("effect"), corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute)...)
		k := taintKey{t.Key, t.Effect}
		if seen[k] {
			errs = append(errs, field.Invalid(idx, t, "taints must be unique by key and effect pair"))
		}
		seen[k] = true
	}
	for _, name := range sortedNames(n.Status.Capacity) {
		errs = append(errs, nonNegativeQuantity(n.Status.Capacity[name], field.NewPath("status", "capacity").Key(string(name)))...)
	}
	for _, name := range sortedNames(n.Status.Allocatable) {
		errs = append(errs, nonNegativeQuantity(n.Status.Allocatable[name], field.NewPath("status", "allocatable").Key(string(name)))...)
	}
	return errs
}

func validateNodeUpdate(n, old *corev1.Node) field.ErrorList {
	var errs field.ErrorList
	// Pod CIDRs and the provider ID are assigned once.
	if len(old.Spec.PodCIDRs) > 0 && !reflect.DeepEqual(n.Spec.PodCIDRs, old.Spec.PodCIDRs) {
		errs = append(errs, field.Forbidden(specPath.Child("podCIDRs"), "node updates may not change podCIDR except from \"\" to valid"))
	}
	if old.Spec.ProviderID != "" && n.Spec.ProviderID != old.Spec.ProviderID {
		errs = append(errs, field.Forbidden(specPath.Child("providerID"), "node updates may not change providerID except from \"\" to valid"))
	}
	return errs
}

// validateCoreEvent applies upstream's checks for core/v1 events, which
// are lenient for backwards compatibility with old clients.
func validateCoreEvent(e *corev1.Event) field.ErrorList {
	var errs field.ErrorList
	nsPath := field.NewPath("involvedObject", "namespace")
	if e.EventTime.Time.IsZero() {
		if e.InvolvedObject.Namespace == "" {
			if e.Namespace != metav1.NamespaceNone && e.Namespace != metav1.NamespaceDefault {
				errs = append(errs, field.Invalid(nsPath, e.InvolvedObject.Namespace, "does not match event.namespace"))
			}
		} else if e.Namespace != e.InvolvedObject.Namespace {
			errs = append(errs, field.Invalid(nsPath, e.InvolvedObject.Namespace, "does not match event.namespace"))
		}
		return errs
	}
	if e.InvolvedObject.Namespace == "" && e.Namespace != metav1.NamespaceDefault && e.Namespace != metav1.NamespaceSystem {
		errs = append(errs, field.Invalid(nsPath, e.InvolvedObject.Namespace, "does not match event.namespace"))
	}
	return append(errs, reportingFields(e.ReportingController, e.ReportingInstance, e.Action, e.Reason, e.Message,
		"reportingComponent", "message")...)
}

// reportingFields checks what a new-style event must carry.
func reportingFields(controller, instance, action, reason, note, controllerField, noteField string) field.ErrorList {
	var errs field.ErrorList
	if controller == "" {
		errs = append(errs, field.Required(field.NewPath(controllerField), ""))
	} else {
		errs = append(errs, qualifiedName(controller, field.NewPath(controllerField))...)
	}
	limited := []struct {
		name, value string
		max         int
	}{{"reportingInstance", instance, 128}, {"action", action, 128}, {"reason", reason, 128}}
	for _, f := range limited {
		if f.value == "" {
			errs = append(errs, field.Required(field.NewPath(f.name), ""))
		} else if len(f.value) > f.max {
			errs = append(errs, field.Invalid(field.NewPath(f.name), "", fmt.Sprintf("can have at most %d characters", f.max)))
		}
	}
	if len(note) > 1024 {
		errs = append(errs, field.Invalid(field.NewPath(noteField), "", "can have at most 1024 characters"))
	}
	return errs
}

func validateCoreEventUpdate(e, old *corev1.Event) field.ErrorList {
	return nil
}

func validateServiceAccount(sa *corev1.ServiceAccount) field.ErrorList {
	var errs field.ErrorList
	for i, s := range sa.ImagePullSecrets {
		if s.Name == "" {
			errs = append(errs, field.Required(field.NewPath("imagePullSecrets").Index(i).Child("name"), ""))
		}
	}
	return errs
}

func validateLimitRange(l *corev1.LimitRange) field.ErrorList {
	var errs field.ErrorList
	for i, item := range l.Spec.Limits {
		idx := specPath.Child("limits").Index(i)
		errs = append(errs, oneOf(item.Type, idx.Child("type"),
			corev1.LimitTypePod, corev1.LimitTypeContainer, corev1.LimitTypePersistentVolumeClaim)...)
		lists := []struct {
			name string
			list corev1.ResourceList
		}{{"max", item.Max}, {"min", item.Min}, {"default", item.Default}, {"defaultRequest", item.DefaultRequest}, {"maxLimitRequestRatio", item.MaxLimitRequestRatio}}
		for _, l := range lists {
			for _, name := range sortedNames(l.list) {
				p := idx.Child(l.name).Key(string(name))
				errs = append(errs, qualifiedName(string(name), p)...)
				errs = append(errs, nonNegativeQuantity(l.list[name], p)...)
			}
		}
		for _, name := range sortedNames(item.Min) {
			min := item.Min[name]
			if max, ok := item.Max[name]; ok && min.Cmp(max) > 0 {
				errs = append(errs, field.Invalid(idx.Child("min").Key(string(name)), min, fmt.Sprintf("min value %s is greater than max value %s", min.String(), max.String())))
			}
		}
		for _, name := range sortedNames(item.DefaultRequest) {
			req := item.DefaultRequest[name]
			if def, ok := item.Default[name]; ok && req.Cmp(def) > 0 {
				errs = append(errs, field.Invalid(idx.Child("defaultRequest").Key(string(name)), req, fmt.Sprintf("default request value %s is greater than default limit value %s", req.String(), def.String())))
			}
			if max, ok := item.Max[name]; ok && req.Cmp(max) > 0 {
				errs = append(errs, field.Invalid(idx.Child("defaultRequest").Key(string(name)), req, fmt.Sprintf("default request value %s is greater than max value %s", req.String(), max.String())))
			}
		}
		for _, name := range sortedNames(item.Default) {
			def := item.Default[name]
			if max, ok := item.Max[name]; ok && def.Cmp(max) > 0 {
				errs = append(errs, field.Invalid(idx.Child("default").Key(string(name)), def, fmt.Sprintf("default value %s is greater than max value %s", def.String(), max.String())))
			}
			if min, ok := item.Min[name]; ok && min.Cmp(def) > 0 {
				errs = append(errs, field.Invalid(idx.Child("default").Key(string(name)), def, fmt.Sprintf("min value %s is greater than default value %s", min.String(), def.String())))
			}
		}
	}
	return errs
}

func validateResourceQuota(q *corev1.ResourceQuota) field.ErrorList {
	var errs field.ErrorList
	for _, name := range sortedNames(q.Spec.Hard) {
		p := specPath.Child("hard").Key(string(name))
		errs = append(errs, qualifiedName(string(name), p)...)
		errs = append(errs, nonNegativeQuantity(q.Spec.Hard[name], p)...)
	}
	for i, s := range q.Spec.Scopes {
		errs = append(errs, oneOf(s, specPath.Child("scopes").Index(i),
			corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating, corev1.ResourceQuotaScopeBestEffort,
			corev1.ResourceQuotaScopeNotBestEffort, corev1.ResourceQuotaScopePriorityClass, corev1.ResourceQuotaScopeCrossNamespacePodAffinity,
			corev1.ResourceQuotaScopeVolumeAttributesClass)...)
	}
	return errs
}

var accessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOnce, corev1.ReadWriteOncePod}

func validateAccessModes(modes []corev1.PersistentVolumeAccessMode, fldPath *field.Path, requiredMsg string) field.ErrorList {
	var errs field.ErrorList
	if len(modes) == 0 {
		errs = append(errs, field.Required(fldPath, requiredMsg))
	}
	for _, m := range modes {
		errs = append(errs, oneOf(m, fldPath, accessModes...)...)
	}
	if len(modes) > 1 && sets.New(modes...).Has(corev1.ReadWriteOncePod) {
		errs = append(errs, field.Forbidden(fldPath, "may not use ReadWriteOncePod with other access modes"))
	}
	return errs
}

func positiveQuantity(q resource.Quantity, fldPath *field.Path) field.ErrorList {
	if q.Sign() <= 0 {
		return field.ErrorList{field.Invalid(fldPath, q.String(), "must be greater than zero")}
	}
	return nil
}

func validatePersistentVolume(pv *corev1.PersistentVolume) field.ErrorList {
	spec := &pv.Spec
	errs := validateAccessModes(spec.AccessModes, specPath.Child("accessModes"), "")
	errs = append(errs, oneOf(spec.PersistentVolumeReclaimPolicy, specPath.Child("persistentVolumeReclaimPolicy"),
		corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRecycle, corev1.PersistentVolumeReclaimRetain)...)
	capPath := specPath.Child("capacity")
	if len(spec.Capacity) == 0 {
		errs = append(errs, field.Required(capPath, ""))
	} else if _, ok := spec.Capacity[corev1.ResourceStorage]; !ok || len(spec.Capacity) > 1 {
		errs = append(errs, field.NotSupported(capPath, spec.Capacity, []corev1.ResourceName{corev1.ResourceStorage}))
	}
	for _, name := range sortedNames(spec.Capacity) {
		errs = append(errs, positiveQuantity(spec.Capacity[name], capPath.Key(string(name)))...)
	}
	set := setSources(&spec.PersistentVolumeSource)
	if len(set) == 0 {
		errs = append(errs, field.Required(specPath, "must specify a volume type"))
	}
	for _, name := range set[min(1, len(set)):] {
		errs = append(errs, field.Forbidden(specPath.Child(name), "may not specify more than 1 volume type"))
	}
	if h := spec.HostPath; h != nil && h.Path == "" {
		errs = append(errs, field.Required(specPath.Child("hostPath", "path"), ""))
	}
	if l := spec.Local; l != nil {
		if l.Path == "" {
			errs = append(errs, field.Required(specPath.Child("local", "path"), ""))
		}
		if spec.NodeAffinity == nil {
			errs = append(errs, field.Required(specPath.Child("nodeAffinity"), "Local volume requires node affinity"))
		}
	}
	if c := spec.CSI; c != nil {
		if c.Driver == "" {
			errs = append(errs, field.Required(specPath.Child("csi", "driver"), ""))
		}
		if c.VolumeHandle == "" {
			errs = append(errs, field.Required(specPath.Child("csi", "volumeHandle"), ""))
		}
	}
	if spec.StorageClassName != "" {
		errs = append(errs, dns1123Subdomain(spec.StorageClassName, specPath.Child("storageClassName"))...)
	}
	if spec.VolumeMode != nil {
		errs = append(errs, oneOf(*spec.VolumeMode, specPath.Child("volumeMode"), corev1.PersistentVolumeBlock, corev1.PersistentVolumeFilesystem)...)
	}
	return errs
}

func validatePersistentVolumeUpdate(pv, old *corev1.PersistentVolume) field.ErrorList {
	var errs field.ErrorList
	if !apiequality.Semantic.DeepEqual(pv.Spec.PersistentVolumeSource, old.Spec.PersistentVolumeSource) {
		diff := cmp.Diff(old.Spec.PersistentVolumeSource, pv.Spec.PersistentVolumeSource)
		errs = append(errs, field.Forbidden(specPath.Child("persistentvolumesource"), "spec.persistentvolumesource is immutable after creation\n"+diff))
	}
	errs = append(errs, immutable(pv.Spec.VolumeMode, old.Spec.VolumeMode, field.NewPath("volumeMode"))...)
	if old.Spec.NodeAffinity != nil {
		errs = append(errs, immutable(pv.Spec.NodeAffinity, old.Spec.NodeAffinity, specPath.Child("nodeAffinity"))...)
	}
	return errs
}

func validatePersistentVolumeClaim(pvc *corev1.PersistentVolumeClaim) field.ErrorList {
	return validatePVCSpec(&pvc.Spec, specPath)
}

func validatePVCSpec(spec *corev1.PersistentVolumeClaimSpec, fldPath *field.Path) field.ErrorList {
	errs := validateAccessModes(spec.AccessModes, fldPath.Child("accessModes"), "at least 1 access mode is required")
	errs = append(errs, labelSelector(spec.Selector, fldPath.Child("selector"))...)
	// Upstream reports the storage request at "resources[storage]".
	storagePath := fldPath.Child("resources").Key(string(corev1.ResourceStorage))
	if q, ok := spec.Resources.Requests[corev1.ResourceStorage]; !ok {
		errs = append(errs, field.Required(storagePath, ""))
	} else {
		errs = append(errs, positiveQuantity(q, storagePath)...)
	}
	if spec.StorageClassName != nil && *spec.StorageClassName != "" {
		errs = append(errs, dns1123Subdomain(*spec.StorageClassName, fldPath.Child("storageClassName"))...)
	}
	if spec.VolumeMode != nil {
		errs = append(errs, oneOf(*spec.VolumeMode, fldPath.Child("volumeMode"), corev1.PersistentVolumeBlock, corev1.PersistentVolumeFilesystem)...)
	}
	return errs
}

func validatePersistentVolumeClaimUpdate(pvc, old *corev1.PersistentVolumeClaim) field.ErrorList {
	// Only the storage request (resizing) and the attributes class may
	// change; the binder fills in volumeName once.
	munged := pvc.Spec.DeepCopy()
	munged.Resources.Requests = old.Spec.Resources.Requests
	munged.VolumeAttributesClassName = old.Spec.VolumeAttributesClassName
	if old.Spec.VolumeName == "" {
		munged.VolumeName = ""
	}
	if old.Spec.StorageClassName == nil && old.Spec.VolumeName == "" {
		// A claim made before any default class existed gets one later
		// (upstream's retroactive default StorageClass assignment).
		munged.StorageClassName = nil
	}
	if !apiequality.Semantic.DeepEqual(*munged, old.Spec) {
		diff := cmp.Diff(old.Spec, *munged)
		return field.ErrorList{field.Forbidden(specPath, "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n"+diff)}
	}
	return nil
}
