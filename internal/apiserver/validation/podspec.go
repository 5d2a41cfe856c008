package validation

import (
	"fmt"
	"math"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validatePodTemplateSpec checks a pod template's labels, annotations and spec.
func validatePodTemplateSpec(t *corev1.PodTemplateSpec, fldPath *field.Path) field.ErrorList {
	metaPath := fldPath.Child("metadata")
	errs := validateLabels(t.Labels, metaPath.Child("labels"))
	errs = append(errs, validateAnnotations(t.Annotations, metaPath.Child("annotations"))...)
	// Ephemeral containers are added to running pods, one at a time.
	if len(t.Spec.EphemeralContainers) > 0 {
		errs = append(errs, field.Forbidden(fldPath.Child("spec", "ephemeralContainers"), "ephemeral containers not allowed in pod template"))
	}
	return append(errs, validatePodSpec(&t.Spec, fldPath.Child("spec"))...)
}

func validatePodSpec(spec *corev1.PodSpec, fldPath *field.Path) field.ErrorList {
	volumes, errs := validateVolumes(spec.Volumes, fldPath.Child("volumes"))

	names := sets.New[string]()
	if len(spec.Containers) == 0 {
		errs = append(errs, field.Required(fldPath.Child("containers"), ""))
	}
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		idx := fldPath.Child("initContainers").Index(i)
		errs = append(errs, validateContainer(c, volumes, names, idx)...)
		if c.RestartPolicy != nil && *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			errs = append(errs, field.NotSupported(idx.Child("restartPolicy"), *c.RestartPolicy, []corev1.ContainerRestartPolicy{corev1.ContainerRestartPolicyAlways}))
		}
		// Only sidecars (restartPolicy Always) may have these probes: a
		// plain init container runs to completion before anything is ready.
		if c.RestartPolicy == nil {
			probes := []struct {
				name  string
				probe *corev1.Probe
			}{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}, {"startupProbe", c.StartupProbe}}
			for _, p := range probes {
				if p.probe != nil {
					errs = append(errs, field.Forbidden(idx.Child(p.name), "may not be set for init containers without restartPolicy=Always"))
				}
			}
		}
	}
	for i := range spec.Containers {
		c := &spec.Containers[i]
		idx := fldPath.Child("containers").Index(i)
		errs = append(errs, validateContainer(c, volumes, names, idx)...)
		if c.RestartPolicy != nil {
			errs = append(errs, field.Forbidden(idx.Child("restartPolicy"), "may not be set for non-init containers"))
		}
		if c.LivenessProbe != nil && c.LivenessProbe.SuccessThreshold != 1 {
			errs = append(errs, field.Invalid(idx.Child("livenessProbe", "successThreshold"), c.LivenessProbe.SuccessThreshold, "must be 1"))
		}
		if c.StartupProbe != nil && c.StartupProbe.SuccessThreshold != 1 {
			errs = append(errs, field.Invalid(idx.Child("startupProbe", "successThreshold"), c.StartupProbe.SuccessThreshold, "must be 1"))
		}
	}
	// Only init and app containers can be an ephemeral container's target.
	targets := names.Clone()
	for i := range spec.EphemeralContainers {
		ec := &spec.EphemeralContainers[i]
		idx := fldPath.Child("ephemeralContainers").Index(i)
		c := corev1.Container(ec.EphemeralContainerCommon)
		errs = append(errs, validateContainer(&c, volumes, names, idx)...)
		errs = append(errs, validateEphemeralOnly(ec, targets, idx)...)
	}
	if spec.HostNetwork {
		errs = append(errs, hostNetworkPorts(spec.Containers, fldPath.Child("containers"))...)
		errs = append(errs, hostNetworkPorts(spec.InitContainers, fldPath.Child("initContainers"))...)
	}

	errs = append(errs, oneOf(spec.RestartPolicy, fldPath.Child("restartPolicy"),
		corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever)...)
	errs = append(errs, oneOf(spec.DNSPolicy, fldPath.Child("dnsPolicy"),
		corev1.DNSClusterFirstWithHostNet, corev1.DNSClusterFirst, corev1.DNSDefault, corev1.DNSNone)...)
	if spec.DNSPolicy == corev1.DNSNone && spec.DNSConfig == nil {
		errs = append(errs, field.Required(fldPath.Child("dnsConfig"), "must provide `dnsConfig` when `dnsPolicy` is None"))
	}
	errs = append(errs, validateLabels(spec.NodeSelector, fldPath.Child("nodeSelector"))...)
	if spec.ServiceAccountName != "" {
		errs = append(errs, invalidEach(fldPath.Child("serviceAccountName"), spec.ServiceAccountName,
			apivalidation.ValidateServiceAccountName(spec.ServiceAccountName, false))...)
	}
	if spec.NodeName != "" {
		errs = append(errs, dns1123Subdomain(spec.NodeName, fldPath.Child("nodeName"))...)
	}
	if spec.Hostname != "" {
		errs = append(errs, dns1123Label(spec.Hostname, fldPath.Child("hostname"))...)
	}
	if spec.Subdomain != "" {
		errs = append(errs, dns1123Label(spec.Subdomain, fldPath.Child("subdomain"))...)
	}
	if d := spec.ActiveDeadlineSeconds; d != nil && (*d < 1 || *d > math.MaxInt32) {
		errs = append(errs, field.Invalid(fldPath.Child("activeDeadlineSeconds"), *d, validation.InclusiveRangeError(1, math.MaxInt32)))
	}
	if spec.PriorityClassName != "" {
		errs = append(errs, dns1123Subdomain(spec.PriorityClassName, fldPath.Child("priorityClassName"))...)
	}
	for i, s := range spec.ImagePullSecrets {
		if s.Name == "" {
			errs = append(errs, field.Required(fldPath.Child("imagePullSecrets").Index(i).Child("name"), ""))
		}
	}
	errs = append(errs, validateTolerations(spec.Tolerations, fldPath.Child("tolerations"))...)
	errs = append(errs, validateTopologySpread(spec.TopologySpreadConstraints, fldPath.Child("topologySpreadConstraints"))...)
	if sc := spec.SecurityContext; sc != nil {
		p := fldPath.Child("securityContext")
		errs = append(errs, idRange(sc.RunAsUser, p.Child("runAsUser"), validation.IsValidUserID)...)
		errs = append(errs, idRange(sc.RunAsGroup, p.Child("runAsGroup"), validation.IsValidGroupID)...)
		errs = append(errs, idRange(sc.FSGroup, p.Child("fsGroup"), validation.IsValidGroupID)...)
		for i, g := range sc.SupplementalGroups {
			errs = append(errs, idRange(&g, p.Child("supplementalGroups").Index(i), validation.IsValidGroupID)...)
		}
	}
	return errs
}

func idRange(id *int64, fldPath *field.Path, check func(int64) []string) field.ErrorList {
	if id == nil {
		return nil
	}
	return invalidEach(fldPath, *id, check(*id))
}

func hostNetworkPorts(cs []corev1.Container, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i := range cs {
		for j, p := range cs[i].Ports {
			if p.HostPort != p.ContainerPort {
				errs = append(errs, field.Invalid(fldPath.Index(i).Child("ports").Index(j).Child("containerPort"), p.ContainerPort, "must match `hostPort` when `hostNetwork` is true"))
			}
		}
	}
	return errs
}

// validateContainer checks what every kind of container has in common.
// names collects container names across init, regular and ephemeral
// containers, which share one namespace.
func validateContainer(c *corev1.Container, volumes sets.Set[string], names sets.Set[string], fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	namePath := fldPath.Child("name")
	switch {
	case c.Name == "":
		errs = append(errs, field.Required(namePath, ""))
	case names.Has(c.Name):
		errs = append(errs, field.Duplicate(namePath, c.Name))
	default:
		errs = append(errs, dns1123Label(c.Name, namePath)...)
	}
	names.Insert(c.Name)

	if c.Image == "" {
		errs = append(errs, field.Required(fldPath.Child("image"), ""))
	} else if strings.TrimSpace(c.Image) != c.Image {
		errs = append(errs, field.Invalid(fldPath.Child("image"), c.Image, "must not have leading or trailing whitespace"))
	}
	errs = append(errs, oneOf(c.ImagePullPolicy, fldPath.Child("imagePullPolicy"),
		corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever)...)
	switch c.TerminationMessagePolicy {
	case corev1.TerminationMessageReadFile, corev1.TerminationMessageFallbackToLogsOnError:
	case "":
		errs = append(errs, field.Required(fldPath.Child("terminationMessagePolicy"), "must be 'File' or 'FallbackToLogsOnError'"))
	default:
		errs = append(errs, field.Invalid(fldPath.Child("terminationMessagePolicy"), c.TerminationMessagePolicy, "must be 'File' or 'FallbackToLogsOnError'"))
	}

	errs = append(errs, validateContainerPorts(c.Ports, fldPath.Child("ports"))...)
	errs = append(errs, validateEnv(c.Env, fldPath.Child("env"))...)
	for i, e := range c.EnvFrom {
		idx := fldPath.Child("envFrom").Index(i)
		switch {
		case e.ConfigMapRef != nil && e.SecretRef != nil:
			errs = append(errs, field.Invalid(idx, "", "may not have more than one field specified at a time"))
		case e.ConfigMapRef != nil && e.ConfigMapRef.Name == "":
			errs = append(errs, field.Required(idx.Child("configMapRef", "name"), ""))
		case e.SecretRef != nil && e.SecretRef.Name == "":
			errs = append(errs, field.Required(idx.Child("secretRef", "name"), ""))
		case e.ConfigMapRef == nil && e.SecretRef == nil:
			errs = append(errs, field.Invalid(idx, "", "must specify one of: `configMapRef` or `secretRef`"))
		}
	}
	errs = append(errs, validateVolumeMounts(c.VolumeMounts, volumes, fldPath.Child("volumeMounts"))...)
	errs = append(errs, validateResources(&c.Resources, fldPath.Child("resources"))...)
	errs = append(errs, validateProbe(c.LivenessProbe, fldPath.Child("livenessProbe"))...)
	errs = append(errs, validateProbe(c.ReadinessProbe, fldPath.Child("readinessProbe"))...)
	errs = append(errs, validateProbe(c.StartupProbe, fldPath.Child("startupProbe"))...)
	if l := c.Lifecycle; l != nil {
		errs = append(errs, validateLifecycleHandler(l.PostStart, fldPath.Child("lifecycle", "postStart"))...)
		errs = append(errs, validateLifecycleHandler(l.PreStop, fldPath.Child("lifecycle", "preStop"))...)
	}
	if sc := c.SecurityContext; sc != nil {
		p := fldPath.Child("securityContext")
		errs = append(errs, idRange(sc.RunAsUser, p.Child("runAsUser"), validation.IsValidUserID)...)
		errs = append(errs, idRange(sc.RunAsGroup, p.Child("runAsGroup"), validation.IsValidGroupID)...)
		if sc.Privileged != nil && *sc.Privileged && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
			errs = append(errs, field.Invalid(p, sc, "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"))
		}
	}
	return errs
}

func validateContainerPorts(ports []corev1.ContainerPort, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := sets.New[string]()
	for i, p := range ports {
		idx := fldPath.Index(i)
		if p.Name != "" {
			errs = append(errs, portName(p.Name, idx.Child("name"))...)
			if names.Has(p.Name) {
				errs = append(errs, field.Duplicate(idx.Child("name"), p.Name))
			}
			names.Insert(p.Name)
		}
		if p.ContainerPort == 0 {
			errs = append(errs, field.Required(idx.Child("containerPort"), ""))
		} else {
			errs = append(errs, invalidEach(idx.Child("containerPort"), p.ContainerPort, validation.IsValidPortNum(int(p.ContainerPort)))...)
		}
		if p.HostPort != 0 {
			errs = append(errs, invalidEach(idx.Child("hostPort"), p.HostPort, validation.IsValidPortNum(int(p.HostPort)))...)
		}
		errs = append(errs, oneOf(p.Protocol, idx.Child("protocol"), corev1.ProtocolSCTP, corev1.ProtocolTCP, corev1.ProtocolUDP)...)
	}
	return errs
}

func validateEnv(env []corev1.EnvVar, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, e := range env {
		idx := fldPath.Index(i)
		if e.Name == "" {
			errs = append(errs, field.Required(idx.Child("name"), ""))
		} else {
			errs = append(errs, invalidEach(idx.Child("name"), e.Name, validation.IsRelaxedEnvVarName(e.Name))...)
		}
		vf := e.ValueFrom
		if vf == nil {
			continue
		}
		vfPath := idx.Child("valueFrom")
		n := 0
		if vf.FieldRef != nil {
			n++
			if vf.FieldRef.FieldPath == "" {
				errs = append(errs, field.Required(vfPath.Child("fieldRef", "fieldPath"), ""))
			}
		}
		if vf.ResourceFieldRef != nil {
			n++
			if vf.ResourceFieldRef.Resource == "" {
				errs = append(errs, field.Required(vfPath.Child("resourceFieldRef", "resource"), ""))
			}
		}
		if r := vf.ConfigMapKeyRef; r != nil {
			n++
			errs = append(errs, keyRef(r.Name, r.Key, vfPath.Child("configMapKeyRef"))...)
		}
		if r := vf.SecretKeyRef; r != nil {
			n++
			errs = append(errs, keyRef(r.Name, r.Key, vfPath.Child("secretKeyRef"))...)
		}
		if vf.FileKeyRef != nil {
			n++
		}
		switch {
		case n == 0:
			errs = append(errs, field.Invalid(vfPath, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
		case e.Value != "":
			errs = append(errs, field.Invalid(vfPath, "", "may not be specified when `value` is not empty"))
		case n > 1:
			errs = append(errs, field.Invalid(vfPath, "", "may not have more than one field specified at a time"))
		}
	}
	return errs
}

func keyRef(name, key string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if name == "" {
		errs = append(errs, field.Required(fldPath.Child("name"), ""))
	}
	if key == "" {
		errs = append(errs, field.Required(fldPath.Child("key"), ""))
	} else {
		errs = append(errs, invalidEach(fldPath.Child("key"), key, validation.IsConfigMapKey(key))...)
	}
	return errs
}

func validateVolumeMounts(mounts []corev1.VolumeMount, volumes sets.Set[string], fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	paths := sets.New[string]()
	for i, m := range mounts {
		idx := fldPath.Index(i)
		if m.Name == "" {
			errs = append(errs, field.Required(idx.Child("name"), ""))
		} else if !volumes.Has(m.Name) {
			errs = append(errs, field.NotFound(idx.Child("name"), m.Name))
		}
		if m.MountPath == "" {
			errs = append(errs, field.Required(idx.Child("mountPath"), ""))
		} else if paths.Has(m.MountPath) {
			errs = append(errs, field.Invalid(idx.Child("mountPath"), m.MountPath, "must be unique"))
		}
		paths.Insert(m.MountPath)
		if m.SubPath != "" {
			errs = append(errs, localDescendingPath(m.SubPath, idx.Child("subPath"))...)
		}
		if m.SubPath != "" && m.SubPathExpr != "" {
			errs = append(errs, field.Invalid(idx.Child("subPathExpr"), m.SubPathExpr, "subPathExpr and subPath are mutually exclusive"))
		}
	}
	return errs
}

// Resource names a container may ask for without a domain prefix.
var standardContainerResources = sets.New[corev1.ResourceName](corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage)

func isHugePages(name corev1.ResourceName) bool {
	return strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix)
}

// isNative reports a resource Kubernetes itself defines: no domain, or the
// kubernetes.io domain.
func isNative(name corev1.ResourceName) bool {
	s := string(name)
	return !strings.Contains(s, "/") || strings.Contains(s, corev1.ResourceDefaultNamespacePrefix)
}

// overcommitAllowed reports whether a request may be below its limit; for
// extended resources and huge pages the two must be equal.
func overcommitAllowed(name corev1.ResourceName) bool {
	return isNative(name) && !isHugePages(name)
}

func validateResourceName(name corev1.ResourceName, fldPath *field.Path) field.ErrorList {
	s := string(name)
	errs := qualifiedName(s, fldPath)
	if len(errs) > 0 {
		return errs
	}
	if !strings.Contains(s, "/") {
		if !standardContainerResources.Has(name) && !isHugePages(name) {
			errs = append(errs, field.Invalid(fldPath, s, "must be a standard resource for containers"))
		}
	} else if !isNative(name) && strings.HasPrefix(s, "requests.") {
		errs = append(errs, field.Invalid(fldPath, s, "doesn't follow extended resource name standard"))
	}
	return errs
}

func validateResources(r *corev1.ResourceRequirements, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	limPath, reqPath := fldPath.Child("limits"), fldPath.Child("requests")
	for _, name := range sortedNames(r.Limits) {
		q := r.Limits[name]
		p := limPath.Key(string(name))
		errs = append(errs, validateResourceName(name, p)...)
		errs = append(errs, resourceQuantity(name, q, p)...)
	}
	for _, name := range sortedNames(r.Requests) {
		q := r.Requests[name]
		p := reqPath.Key(string(name))
		errs = append(errs, validateResourceName(name, p)...)
		errs = append(errs, resourceQuantity(name, q, p)...)
		limit, ok := r.Limits[name]
		switch {
		case ok && q.Cmp(limit) != 0 && !overcommitAllowed(name):
			errs = append(errs, field.Invalid(reqPath, q.String(), fmt.Sprintf("must be equal to %s limit of %s", name, limit.String())))
		case ok && q.Cmp(limit) > 0:
			errs = append(errs, field.Invalid(reqPath, q.String(), fmt.Sprintf("must be less than or equal to %s limit of %s", name, limit.String())))
		case !ok && !overcommitAllowed(name):
			errs = append(errs, field.Required(limPath, "Limit must be set for non overcommitable resources"))
		}
	}
	return errs
}

func resourceQuantity(name corev1.ResourceName, q resource.Quantity, fldPath *field.Path) field.ErrorList {
	errs := nonNegativeQuantity(q, fldPath)
	// Everything but CPU and memory-like byte counts is counted in whole units.
	if !isNative(name) && q.MilliValue()%1000 != 0 {
		errs = append(errs, field.Invalid(fldPath, q, isNotIntegerMsg))
	}
	return errs
}

func validateProbe(p *corev1.Probe, fldPath *field.Path) field.ErrorList {
	if p == nil {
		return nil
	}
	errs := validateHandler(&p.ProbeHandler, fldPath)
	errs = append(errs, nonNegative(int64(p.InitialDelaySeconds), fldPath.Child("initialDelaySeconds"))...)
	errs = append(errs, nonNegative(int64(p.TimeoutSeconds), fldPath.Child("timeoutSeconds"))...)
	errs = append(errs, nonNegative(int64(p.PeriodSeconds), fldPath.Child("periodSeconds"))...)
	errs = append(errs, nonNegative(int64(p.SuccessThreshold), fldPath.Child("successThreshold"))...)
	errs = append(errs, nonNegative(int64(p.FailureThreshold), fldPath.Child("failureThreshold"))...)
	if g := p.TerminationGracePeriodSeconds; g != nil && *g <= 0 {
		errs = append(errs, field.Invalid(fldPath.Child("terminationGracePeriodSeconds"), *g, "must be greater than 0"))
	}
	return errs
}

// validateHandler checks that a probe names exactly one way to check and
// that the one it names is complete.
func validateHandler(h *corev1.ProbeHandler, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	n := 0
	more := func(name string) {
		n++
		if n > 1 {
			errs = append(errs, field.Forbidden(fldPath.Child(name), "may not specify more than 1 handler type"))
		}
	}
	if h.Exec != nil {
		more("exec")
		errs = append(errs, validateExec(h.Exec, fldPath.Child("exec"))...)
	}
	if h.HTTPGet != nil {
		more("httpGet")
		errs = append(errs, validateHTTPGet(h.HTTPGet, fldPath.Child("httpGet"))...)
	}
	if h.TCPSocket != nil {
		more("tcpSocket")
		errs = append(errs, portNumOrName(h.TCPSocket.Port, fldPath.Child("tcpSocket", "port"))...)
	}
	if h.GRPC != nil {
		more("grpc")
		errs = append(errs, invalidEach(fldPath.Child("grpc", "port"), h.GRPC.Port, validation.IsValidPortNum(int(h.GRPC.Port)))...)
	}
	if n == 0 {
		errs = append(errs, field.Required(fldPath, "must specify a handler type"))
	}
	return errs
}

func validateLifecycleHandler(h *corev1.LifecycleHandler, fldPath *field.Path) field.ErrorList {
	if h == nil {
		return nil
	}
	var errs field.ErrorList
	n := 0
	more := func(name string) {
		n++
		if n > 1 {
			errs = append(errs, field.Forbidden(fldPath.Child(name), "may not specify more than 1 handler type"))
		}
	}
	if h.Exec != nil {
		more("exec")
		errs = append(errs, validateExec(h.Exec, fldPath.Child("exec"))...)
	}
	if h.HTTPGet != nil {
		more("httpGet")
		errs = append(errs, validateHTTPGet(h.HTTPGet, fldPath.Child("httpGet"))...)
	}
	if h.TCPSocket != nil {
		more("tcpSocket")
		errs = append(errs, portNumOrName(h.TCPSocket.Port, fldPath.Child("tcpSocket", "port"))...)
	}
	if h.Sleep != nil {
		more("sleep")
		errs = append(errs, nonNegative(h.Sleep.Seconds, fldPath.Child("sleep", "seconds"))...)
	}
	if n == 0 {
		errs = append(errs, field.Required(fldPath, "must specify a handler type"))
	}
	return errs
}

func validateExec(e *corev1.ExecAction, fldPath *field.Path) field.ErrorList {
	if len(e.Command) == 0 {
		return field.ErrorList{field.Required(fldPath.Child("command"), "")}
	}
	return nil
}

func validateHTTPGet(h *corev1.HTTPGetAction, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if h.Path == "" {
		errs = append(errs, field.Required(fldPath.Child("path"), ""))
	}
	errs = append(errs, portNumOrName(h.Port, fldPath.Child("port"))...)
	errs = append(errs, oneOf(h.Scheme, fldPath.Child("scheme"), corev1.URISchemeHTTP, corev1.URISchemeHTTPS)...)
	for i, hdr := range h.HTTPHeaders {
		errs = append(errs, invalidEach(fldPath.Child("httpHeaders").Index(i).Child("name"), hdr.Name, validation.IsHTTPHeaderName(hdr.Name))...)
	}
	return errs
}

func validateTolerations(ts []corev1.Toleration, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, t := range ts {
		idx := fldPath.Index(i)
		if t.Key != "" {
			errs = append(errs, labelName(t.Key, idx.Child("key"))...)
		}
		if t.Key == "" && t.Operator != corev1.TolerationOpExists {
			errs = append(errs, field.Invalid(idx.Child("operator"), t.Operator, "operator must be Exists when `key` is empty, which means \"match all values and all keys\""))
		}
		if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
			errs = append(errs, field.Invalid(idx.Child("effect"), t.Effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
		}
		switch t.Operator {
		case corev1.TolerationOpEqual, "":
			errs = append(errs, invalidEach(idx.Child("operator"), t.Value, validation.IsValidLabelValue(t.Value))...)
		case corev1.TolerationOpExists:
			if t.Value != "" {
				errs = append(errs, field.Invalid(idx.Child("operator"), t, "value must be empty when `operator` is 'Exists'"))
			}
		default:
			errs = append(errs, field.NotSupported(idx.Child("operator"), t.Operator, []corev1.TolerationOperator{corev1.TolerationOpEqual, corev1.TolerationOpExists}))
		}
		errs = append(errs, optionalOneOf(t.Effect, idx.Child("effect"), corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute)...)
	}
	return errs
}

func validateTopologySpread(cs []corev1.TopologySpreadConstraint, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, c := range cs {
		idx := fldPath.Index(i)
		if c.MaxSkew <= 0 {
			errs = append(errs, field.Invalid(idx.Child("maxSkew"), c.MaxSkew, "must be greater than zero"))
		}
		if c.TopologyKey == "" {
			errs = append(errs, field.Required(idx.Child("topologyKey"), "can not be empty"))
		} else {
			errs = append(errs, labelName(c.TopologyKey, idx.Child("topologyKey"))...)
		}
		errs = append(errs, oneOf(c.WhenUnsatisfiable, idx.Child("whenUnsatisfiable"), corev1.DoNotSchedule, corev1.ScheduleAnyway)...)
		errs = append(errs, labelSelector(c.LabelSelector, idx.Child("labelSelector"))...)
	}
	return errs
}

// validateVolumes returns the set of volume names for the mount checks.
func validateVolumes(vols []corev1.Volume, fldPath *field.Path) (sets.Set[string], field.ErrorList) {
	var errs field.ErrorList
	names := sets.New[string]()
	for i := range vols {
		v := &vols[i]
		idx := fldPath.Index(i)
		errs = append(errs, validateVolumeSource(&v.VolumeSource, idx)...)
		if v.Name == "" {
			errs = append(errs, field.Required(idx.Child("name"), ""))
		} else {
			errs = append(errs, dns1123Label(v.Name, idx.Child("name"))...)
		}
		if names.Has(v.Name) {
			errs = append(errs, field.Duplicate(idx.Child("name"), v.Name))
		}
		names.Insert(v.Name)
	}
	return names, errs
}

// setSources returns the JSON names of the volume types a source sets. All
// fields of VolumeSource are pointers, one per volume type.
func setSources(src any) []string {
	v := reflect.ValueOf(src).Elem()
	var set []string
	for i := 0; i < v.NumField(); i++ {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			set = append(set, name)
		}
	}
	return set
}

func validateVolumeSource(src *corev1.VolumeSource, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	set := setSources(src)
	if len(set) == 0 {
		return field.ErrorList{field.Required(fldPath, "must specify a volume type")}
	}
	for _, name := range set[1:] {
		errs = append(errs, field.Forbidden(fldPath.Child(name), "may not specify more than 1 volume type"))
	}
	if h := src.HostPath; h != nil {
		p := fldPath.Child("hostPath")
		if h.Path == "" {
			errs = append(errs, field.Required(p.Child("path"), ""))
		}
		if h.Type != nil {
			errs = append(errs, optionalOneOf(*h.Type, p.Child("type"), corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory,
				corev1.HostPathFileOrCreate, corev1.HostPathFile, corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev)...)
		}
	}
	if e := src.EmptyDir; e != nil && e.SizeLimit != nil {
		errs = append(errs, nonNegativeQuantity(*e.SizeLimit, fldPath.Child("emptyDir", "sizeLimit"))...)
	}
	if s := src.Secret; s != nil {
		p := fldPath.Child("secret")
		if s.SecretName == "" {
			errs = append(errs, field.Required(p.Child("secretName"), ""))
		}
		errs = append(errs, fileMode(s.DefaultMode, p.Child("defaultMode"))...)
		errs = append(errs, keyToPaths(s.Items, p.Child("items"))...)
	}
	if c := src.ConfigMap; c != nil {
		p := fldPath.Child("configMap")
		if c.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		}
		errs = append(errs, fileMode(c.DefaultMode, p.Child("defaultMode"))...)
		errs = append(errs, keyToPaths(c.Items, p.Child("items"))...)
	}
	if c := src.PersistentVolumeClaim; c != nil && c.ClaimName == "" {
		errs = append(errs, field.Required(fldPath.Child("persistentVolumeClaim", "claimName"), ""))
	}
	if n := src.NFS; n != nil {
		if n.Server == "" {
			errs = append(errs, field.Required(fldPath.Child("nfs", "server"), ""))
		}
		if n.Path == "" {
			errs = append(errs, field.Required(fldPath.Child("nfs", "path"), ""))
		}
	}
	if d := src.DownwardAPI; d != nil {
		p := fldPath.Child("downwardAPI")
		errs = append(errs, fileMode(d.DefaultMode, p.Child("defaultMode"))...)
		for i, item := range d.Items {
			ip := p.Child("items").Index(i)
			if item.Path == "" {
				errs = append(errs, field.Required(ip.Child("path"), ""))
			}
			errs = append(errs, localDescendingPath(item.Path, ip.Child("path"))...)
			errs = append(errs, fileMode(item.Mode, ip.Child("mode"))...)
		}
	}
	if pr := src.Projected; pr != nil {
		p := fldPath.Child("projected")
		errs = append(errs, fileMode(pr.DefaultMode, p.Child("defaultMode"))...)
		for i, s := range pr.Sources {
			sp := p.Child("sources").Index(i)
			if len(setSources(&s)) > 1 {
				errs = append(errs, field.Forbidden(sp, "may not specify more than 1 volume type per source"))
			}
			if s.Secret != nil {
				errs = append(errs, keyToPaths(s.Secret.Items, sp.Child("secret", "items"))...)
			}
			if s.ConfigMap != nil {
				errs = append(errs, keyToPaths(s.ConfigMap.Items, sp.Child("configMap", "items"))...)
			}
			if t := s.ServiceAccountToken; t != nil {
				if t.Path == "" {
					errs = append(errs, field.Required(sp.Child("serviceAccountToken", "path"), ""))
				}
				if t.ExpirationSeconds != nil && *t.ExpirationSeconds < 600 {
					errs = append(errs, field.Invalid(sp.Child("serviceAccountToken", "expirationSeconds"), *t.ExpirationSeconds, "may not specify a duration less than 10 minutes"))
				}
			}
		}
	}
	if e := src.Ephemeral; e != nil {
		p := fldPath.Child("ephemeral")
		if e.VolumeClaimTemplate == nil {
			errs = append(errs, field.Required(p.Child("volumeClaimTemplate"), ""))
		} else {
			errs = append(errs, validatePVCSpec(&e.VolumeClaimTemplate.Spec, p.Child("volumeClaimTemplate", "spec"))...)
		}
	}
	return errs
}

func keyToPaths(items []corev1.KeyToPath, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, it := range items {
		idx := fldPath.Index(i)
		if it.Key == "" {
			errs = append(errs, field.Required(idx.Child("key"), ""))
		}
		if it.Path == "" {
			errs = append(errs, field.Required(idx.Child("path"), ""))
		}
		errs = append(errs, localDescendingPath(it.Path, idx.Child("path"))...)
		errs = append(errs, fileMode(it.Mode, idx.Child("mode"))...)
	}
	return errs
}
