package agent

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/qos"
)

// podEnv is what containers of one pod are configured from.
type podEnv struct {
	pod       *corev1.Pod
	podIP     string
	hostIP    string
	volumes   map[string]string // volume name -> host path
	hostsFile string
	sandbox   *runtimeapi.PodSandboxStatus
}

func (a *Agent) podDir(uid types.UID) string {
	return filepath.Join(a.cfg.Dir, "pods", string(uid))
}

// sandboxLogDir is where the runtime writes the pod's container logs,
// one file per container instance: <container>/<attempt>.log.
func (a *Agent) sandboxLogDir(pod *corev1.Pod) string {
	return filepath.Join(a.cfg.Dir, "logs", pod.Namespace+"_"+pod.Name+"_"+string(pod.UID))
}

func (a *Agent) sandboxConfig(pod *corev1.Pod, attempt uint32) *runtimeapi.PodSandboxConfig {
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: pod.Name, Namespace: pod.Namespace, Uid: string(pod.UID), Attempt: attempt},
		Hostname:     podHostname(pod),
		LogDirectory: a.sandboxLogDir(pod),
		DnsConfig:    dnsConfig(pod, a.cfg.ClusterDNS, a.cfg.ClusterDomain),
		Labels: map[string]string{
			labelPodName: pod.Name, labelPodNamespace: pod.Namespace, labelPodUID: string(pod.UID),
		},
		Annotations: map[string]string{},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: namespaceOptions(pod),
				Privileged:       podPrivileged(pod),
			},
			Sysctls: map[string]string{},
		},
	}
	for k, v := range pod.Labels {
		cfg.Labels[k] = v
	}
	for k, v := range pod.Annotations {
		cfg.Annotations[k] = v
	}
	if sc := pod.Spec.SecurityContext; sc != nil {
		for _, s := range sc.Sysctls {
			cfg.Linux.Sysctls[s.Name] = s.Value
		}
		if sc.RunAsUser != nil {
			cfg.Linux.SecurityContext.RunAsUser = &runtimeapi.Int64Value{Value: *sc.RunAsUser}
		}
		if sc.RunAsGroup != nil {
			cfg.Linux.SecurityContext.RunAsGroup = &runtimeapi.Int64Value{Value: *sc.RunAsGroup}
		}
		cfg.Linux.SecurityContext.SupplementalGroups = sc.SupplementalGroups
	}
	for _, c := range allContainers(pod) {
		for _, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			proto := runtimeapi.Protocol_TCP
			switch p.Protocol {
			case corev1.ProtocolUDP:
				proto = runtimeapi.Protocol_UDP
			case corev1.ProtocolSCTP:
				proto = runtimeapi.Protocol_SCTP
			}
			cfg.PortMappings = append(cfg.PortMappings, &runtimeapi.PortMapping{
				Protocol: proto, ContainerPort: p.ContainerPort, HostPort: p.HostPort, HostIp: p.HostIP,
			})
		}
	}
	return cfg
}

func (a *Agent) startSandbox(ctx context.Context, pod *corev1.Pod, attempt uint32) (*runtimeapi.PodSandbox, error) {
	if err := os.MkdirAll(a.sandboxLogDir(pod), 0o750); err != nil {
		return nil, err
	}
	cfg := a.sandboxConfig(pod, attempt)
	resp, err := a.runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandbox{Id: resp.PodSandboxId, Metadata: cfg.Metadata, State: runtimeapi.PodSandboxState_SANDBOX_READY}, nil
}

func podHostname(pod *corev1.Pod) string {
	if pod.Spec.HostNetwork {
		h, _ := os.Hostname()
		return h
	}
	if pod.Spec.Hostname != "" {
		return pod.Spec.Hostname
	}
	return truncate(pod.Name, 63)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return strings.TrimRight(s[:n], "-.")
	}
	return s
}

func namespaceOptions(pod *corev1.Pod) *runtimeapi.NamespaceOption {
	ns := &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD}
	if pod.Spec.HostNetwork {
		ns.Network = runtimeapi.NamespaceMode_NODE
	}
	if pod.Spec.HostPID {
		ns.Pid = runtimeapi.NamespaceMode_NODE
	} else if ptr.Deref(pod.Spec.ShareProcessNamespace, false) {
		ns.Pid = runtimeapi.NamespaceMode_POD
	}
	if pod.Spec.HostIPC {
		ns.Ipc = runtimeapi.NamespaceMode_NODE
	}
	return ns
}

func podPrivileged(pod *corev1.Pod) bool {
	for _, c := range allContainers(pod) {
		if c.SecurityContext != nil && ptr.Deref(c.SecurityContext.Privileged, false) {
			return true
		}
	}
	return false
}

// dnsConfig applies dnsPolicy and dnsConfig as the kubelet does:
// ClusterFirst (and ClusterFirstWithHostNet on the host network) points
// at the cluster DNS servers with the pod's namespace, svc and domain
// searched first and ndots:5; Default, ClusterFirst on the host network
// and any policy without cluster DNS configured use the node's resolvers.
func dnsConfig(pod *corev1.Pod, clusterDNS []string, domain string) *runtimeapi.DNSConfig {
	cfg := &runtimeapi.DNSConfig{}
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = corev1.DNSClusterFirst
	}
	if pod.Spec.HostNetwork && policy == corev1.DNSClusterFirst {
		policy = corev1.DNSDefault
	}
	if policy == corev1.DNSClusterFirstWithHostNet {
		policy = corev1.DNSClusterFirst
	}
	if policy == corev1.DNSClusterFirst && len(clusterDNS) == 0 {
		policy = corev1.DNSDefault
	}
	switch policy {
	case corev1.DNSDefault:
		cfg = hostDNS()
	case corev1.DNSClusterFirst:
		host := hostDNS()
		cfg.Servers = slices.Clone(clusterDNS)
		cfg.Searches = appendUnique([]string{pod.Namespace + ".svc." + domain, "svc." + domain, domain}, host.Searches...)
		cfg.Options = []string{"ndots:5"}
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		cfg.Servers = appendUnique(cfg.Servers, dc.Nameservers...)
		cfg.Searches = appendUnique(cfg.Searches, dc.Searches...)
		// A pod option replaces a host option of the same name.
		for _, o := range dc.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			cfg.Options = slices.DeleteFunc(cfg.Options, func(have string) bool {
				name, _, _ := strings.Cut(have, ":")
				return name == o.Name
			})
			cfg.Options = append(cfg.Options, opt)
		}
	}
	// resolv.conf's limits, as the kubelet applies them.
	if len(cfg.Servers) > 3 {
		cfg.Servers = cfg.Servers[:3]
	}
	if len(cfg.Searches) > 32 {
		cfg.Searches = cfg.Searches[:32]
	}
	return cfg
}

// appendUnique appends what list does not hold yet.
func appendUnique(list []string, add ...string) []string {
	for _, s := range add {
		if !slices.Contains(list, s) {
			list = append(list, s)
		}
	}
	return list
}

// hostDNS reads the node's /etc/resolv.conf, leaving out loopback
// resolvers that would not answer inside a pod's network namespace.
func hostDNS() *runtimeapi.DNSConfig {
	cfg := &runtimeapi.DNSConfig{}
	data, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return cfg
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if !strings.HasPrefix(f[1], "127.") && f[1] != "::1" {
				cfg.Servers = append(cfg.Servers, f[1])
			}
		case "search":
			cfg.Searches = f[1:]
		case "options":
			cfg.Options = f[1:]
		}
	}
	return cfg
}

// writeHostsFile writes the pod's /etc/hosts as the kubelet does: the
// loopback names and the pod's own name on its IP, plus hostAliases.
func (a *Agent) writeHostsFile(pod *corev1.Pod, podIP string) (string, error) {
	if pod.Spec.HostNetwork {
		return "", nil
	}
	var b strings.Builder
	b.WriteString("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
	if podIP != "" {
		name := podHostname(pod)
		if pod.Spec.Subdomain != "" {
			fmt.Fprintf(&b, "%s\t%s.%s.%s.svc.cluster.local\t%s\n", podIP, name, pod.Spec.Subdomain, pod.Namespace, name)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", podIP, name)
		}
	}
	for _, ha := range pod.Spec.HostAliases {
		fmt.Fprintf(&b, "%s\t%s\n", ha.IP, strings.Join(ha.Hostnames, "\t"))
	}
	path := filepath.Join(a.podDir(pod.UID), "etc-hosts")
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, []byte(b.String()), 0o644)
}

// containerConfig turns a container of the pod into the runtime's
// configuration.
func (a *Agent) containerConfig(pod *corev1.Pod, c *corev1.Container, env *podEnv, image string, attempt uint32) (*runtimeapi.ContainerConfig, error) {
	vars, err := a.containerEnv(pod, c, env)
	if err != nil {
		return nil, err
	}
	lookup := map[string]string{}
	for _, kv := range vars {
		lookup[kv.Key] = string(kv.Value)
	}
	expandAll := func(in []string) []string {
		out := make([]string, len(in))
		for i, s := range in {
			out[i] = expand(s, lookup)
		}
		return out
	}
	mounts, err := a.containerMounts(pod, c, env, attempt, lookup)
	if err != nil {
		return nil, err
	}
	cfg := &runtimeapi.ContainerConfig{
		Metadata:   &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: attempt},
		Image:      &runtimeapi.ImageSpec{Image: image, UserSpecifiedImage: c.Image},
		Command:    expandAll(c.Command),
		Args:       expandAll(c.Args),
		WorkingDir: c.WorkingDir,
		Envs:       vars,
		Mounts:     mounts,
		LogPath:    filepath.Join(c.Name, strconv.Itoa(int(attempt))+".log"),
		Stdin:      c.Stdin,
		StdinOnce:  c.StdinOnce,
		Tty:        c.TTY,
		Labels: map[string]string{
			labelPodName: pod.Name, labelPodNamespace: pod.Namespace, labelPodUID: string(pod.UID), labelContainerName: c.Name,
		},
		Annotations: map[string]string{
			"io.kubernetes.container.restartCount":           strconv.Itoa(int(attempt)),
			"io.kubernetes.container.terminationMessagePath": c.TerminationMessagePath,
			"io.kubernetes.pod.terminationGracePeriod":       strconv.FormatInt(ptr.Deref(pod.Spec.TerminationGracePeriodSeconds, 30), 10),
		},
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources:       a.linuxResources(pod, c),
			SecurityContext: securityContext(pod, c),
		},
	}
	return cfg, nil
}

// linuxResources maps requests and limits to cgroup settings as the
// kubelet does: shares from the cpu request, CFS quota from the cpu
// limit, the memory limit, and an OOM score by QoS class.
func (a *Agent) linuxResources(pod *corev1.Pod, c *corev1.Container) *runtimeapi.LinuxContainerResources {
	const period = 100000
	r := &runtimeapi.LinuxContainerResources{CpuPeriod: period}
	milli := c.Resources.Requests.Cpu().MilliValue()
	if milli == 0 && !c.Resources.Limits.Cpu().IsZero() {
		milli = c.Resources.Limits.Cpu().MilliValue()
	}
	r.CpuShares = max(milli*1024/1000, 2)
	if lim := c.Resources.Limits.Cpu(); !lim.IsZero() {
		r.CpuQuota = max(lim.MilliValue()*period/1000, 1000)
	}
	if lim := c.Resources.Limits.Memory(); !lim.IsZero() {
		r.MemoryLimitInBytes = lim.Value()
	}
	switch qosClass(pod) {
	case corev1.PodQOSGuaranteed:
		r.OomScoreAdj = -997
	case corev1.PodQOSBestEffort:
		r.OomScoreAdj = 1000
	default:
		capacity := readMeminfo()["MemTotal"]
		req := c.Resources.Requests.Memory().Value()
		adj := int64(1000)
		if capacity > 0 {
			adj = 1000 - 1000*req/capacity
		}
		r.OomScoreAdj = min(max(adj, 3), 999)
	}
	return r
}

// Paths the kubelet masks or makes read-only in unprivileged containers.
var (
	defaultMaskedPaths = []string{"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"}
	defaultReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

func securityContext(pod *corev1.Pod, c *corev1.Container) *runtimeapi.LinuxContainerSecurityContext {
	sc := &runtimeapi.LinuxContainerSecurityContext{
		NamespaceOptions: namespaceOptions(pod),
		MaskedPaths:      defaultMaskedPaths,
		ReadonlyPaths:    defaultReadonlyPaths,
	}
	if psc := pod.Spec.SecurityContext; psc != nil {
		if psc.RunAsUser != nil {
			sc.RunAsUser = &runtimeapi.Int64Value{Value: *psc.RunAsUser}
		}
		if psc.RunAsGroup != nil {
			sc.RunAsGroup = &runtimeapi.Int64Value{Value: *psc.RunAsGroup}
		}
		sc.SupplementalGroups = psc.SupplementalGroups
		if psc.FSGroup != nil {
			sc.SupplementalGroups = append(sc.SupplementalGroups, *psc.FSGroup)
		}
	}
	csc := c.SecurityContext
	if csc == nil {
		return sc
	}
	if csc.RunAsUser != nil {
		sc.RunAsUser = &runtimeapi.Int64Value{Value: *csc.RunAsUser}
	}
	if csc.RunAsGroup != nil {
		sc.RunAsGroup = &runtimeapi.Int64Value{Value: *csc.RunAsGroup}
	}
	sc.ReadonlyRootfs = ptr.Deref(csc.ReadOnlyRootFilesystem, false)
	sc.Privileged = ptr.Deref(csc.Privileged, false)
	sc.NoNewPrivs = !ptr.Deref(csc.AllowPrivilegeEscalation, true)
	if sc.Privileged {
		sc.MaskedPaths, sc.ReadonlyPaths = nil, nil
	}
	if caps := csc.Capabilities; caps != nil {
		sc.Capabilities = &runtimeapi.Capability{}
		// As the kubelet: names as written; containerd adds "CAP_".
		for _, c := range caps.Add {
			sc.Capabilities.AddCapabilities = append(sc.Capabilities.AddCapabilities, string(c))
		}
		for _, c := range caps.Drop {
			sc.Capabilities.DropCapabilities = append(sc.Capabilities.DropCapabilities, string(c))
		}
	}
	return sc
}

// qosClass is the class the API server recorded, or computed here for a
// pod that has none yet.
func qosClass(pod *corev1.Pod) corev1.PodQOSClass {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass
	}
	return qos.Class(pod)
}

// containerEnv resolves env and envFrom: later entries win, env over
// envFrom, $(VAR) references expanded against what came before.
func (a *Agent) containerEnv(pod *corev1.Pod, c *corev1.Container, env *podEnv) ([]*runtimeapi.KeyValue, error) {
	ctx := context.Background()
	vals := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = v
	}
	// The services' variables come first; envFrom and env override them.
	for _, kv := range a.serviceEnv(pod) {
		set(kv[0], kv[1])
	}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, err := a.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, from.ConfigMapRef.Name, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) && ptr.Deref(from.ConfigMapRef.Optional, false) {
					continue
				}
				return nil, fmt.Errorf("configmap %q not found", from.ConfigMapRef.Name)
			}
			for k, v := range cm.Data {
				set(from.Prefix+k, v)
			}
		case from.SecretRef != nil:
			s, err := a.client.CoreV1().Secrets(pod.Namespace).Get(ctx, from.SecretRef.Name, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) && ptr.Deref(from.SecretRef.Optional, false) {
					continue
				}
				return nil, fmt.Errorf("secret %q not found", from.SecretRef.Name)
			}
			for k, v := range s.Data {
				set(from.Prefix+k, string(v))
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expand(e.Value, vals))
			continue
		}
		v, skip, err := a.envValueFrom(ctx, pod, c, env, e.ValueFrom)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if !skip {
			set(e.Name, v)
		}
	}
	out := make([]*runtimeapi.KeyValue, 0, len(order))
	for _, k := range order {
		out = append(out, &runtimeapi.KeyValue{Key: k, Value: []byte(vals[k])})
	}
	return out, nil
}

func (a *Agent) envValueFrom(ctx context.Context, pod *corev1.Pod, c *corev1.Container, env *podEnv, from *corev1.EnvVarSource) (value string, skip bool, err error) {
	switch {
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		cm, err := a.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			if apierrors.IsNotFound(err) && ptr.Deref(ref.Optional, false) {
				return "", true, nil
			}
			return "", false, fmt.Errorf("configmap %q not found", ref.Name)
		}
		v, ok := cm.Data[ref.Key]
		if !ok {
			if ptr.Deref(ref.Optional, false) {
				return "", true, nil
			}
			return "", false, fmt.Errorf("couldn't find key %s in ConfigMap %s/%s", ref.Key, pod.Namespace, ref.Name)
		}
		return v, false, nil
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		s, err := a.client.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			if apierrors.IsNotFound(err) && ptr.Deref(ref.Optional, false) {
				return "", true, nil
			}
			return "", false, fmt.Errorf("secret %q not found", ref.Name)
		}
		v, ok := s.Data[ref.Key]
		if !ok {
			if ptr.Deref(ref.Optional, false) {
				return "", true, nil
			}
			return "", false, fmt.Errorf("couldn't find key %s in Secret %s/%s", ref.Key, pod.Namespace, ref.Name)
		}
		return string(v), false, nil
	case from.FieldRef != nil:
		v, err := podField(pod, from.FieldRef.FieldPath, env)
		return v, false, err
	case from.ResourceFieldRef != nil:
		v, err := a.resourceField(pod, c, from.ResourceFieldRef)
		return v, false, err
	}
	return "", true, nil
}

// podField answers a downward API fieldRef.
func podField(pod *corev1.Pod, path string, env *podEnv) (string, error) {
	if k, ok := strings.CutPrefix(path, "metadata.labels['"); ok {
		return pod.Labels[strings.TrimSuffix(k, "']")], nil
	}
	if k, ok := strings.CutPrefix(path, "metadata.annotations['"); ok {
		return pod.Annotations[strings.TrimSuffix(k, "']")], nil
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.hostIPs":
		return env.hostIP, nil
	case "status.podIP", "status.podIPs":
		return env.podIP, nil
	}
	return "", fmt.Errorf("unsupported fieldPath %q", path)
}

// formatMap renders labels or annotations as the downward API does:
// key="value" lines, sorted.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = fmt.Sprintf("%s=%q", k, m[k])
	}
	return strings.Join(lines, "\n")
}

// resourceField answers a resourceFieldRef; an unset limit is the node's
// allocatable, as upstream.
func (a *Agent) resourceField(pod *corev1.Pod, c *corev1.Container, ref *corev1.ResourceFieldSelector) (string, error) {
	target := c
	if ref.ContainerName != "" {
		if target = findContainer(pod, ref.ContainerName); target == nil {
			return "", fmt.Errorf("no container %q", ref.ContainerName)
		}
	}
	var q resource.Quantity
	kind, name, _ := strings.Cut(ref.Resource, ".")
	res := corev1.ResourceName(name)
	switch kind {
	case "limits":
		q = target.Resources.Limits[res]
		if q.IsZero() {
			// An unset limit is the node's allocatable, as upstream.
			if alloc, ok := a.allocatable()[res]; ok {
				q = alloc
			}
		}
	case "requests":
		q = target.Resources.Requests[res]
	default:
		return "", fmt.Errorf("unsupported resource %q", ref.Resource)
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if res == corev1.ResourceCPU {
		// Rounded up, as upstream.
		return strconv.FormatInt((q.MilliValue()+divisor.MilliValue()-1)/divisor.MilliValue(), 10), nil
	}
	return strconv.FormatInt((q.Value()+divisor.Value()-1)/divisor.Value(), 10), nil
}

// expand replaces $(NAME) with its value where NAME is known; $$ is a
// literal $; unknown references stay as written, as upstream.
func expand(s string, vals map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString("$(")
				i++
				continue
			}
			name := s[i+2 : i+2+end]
			if v, ok := vals[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// checkNonRoot enforces runAsNonRoot as the kubelet does: with no
// runAsUser, the image's user must be numeric and not 0.
func (a *Agent) checkNonRoot(ctx context.Context, pod *corev1.Pod, c *corev1.Container, image string) error {
	nonRoot, uid := false, (*int64)(nil)
	if psc := pod.Spec.SecurityContext; psc != nil {
		nonRoot, uid = ptr.Deref(psc.RunAsNonRoot, false), psc.RunAsUser
	}
	if csc := c.SecurityContext; csc != nil {
		if csc.RunAsNonRoot != nil {
			nonRoot = *csc.RunAsNonRoot
		}
		if csc.RunAsUser != nil {
			uid = csc.RunAsUser
		}
	}
	if !nonRoot {
		return nil
	}
	where := fmt.Sprintf("(pod: %q, container: %s)", pod.Name+"_"+pod.Namespace+"("+string(pod.UID)+")", c.Name)
	if uid != nil {
		if *uid == 0 {
			return fmt.Errorf("container's runAsUser breaks non-root policy %s", where)
		}
		return nil
	}
	st, err := a.images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: image}})
	if err != nil || st.Image == nil {
		return fmt.Errorf("cannot verify the image's user is non-root %s", where)
	}
	if st.Image.Uid != nil {
		if st.Image.Uid.Value == 0 {
			return fmt.Errorf("container has runAsNonRoot and image will run as root %s", where)
		}
		return nil
	}
	if st.Image.Username == "" || st.Image.Username == "root" {
		return fmt.Errorf("container has runAsNonRoot and image will run as root %s", where)
	}
	return fmt.Errorf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root %s", st.Image.Username, where)
}

// serviceEnv is the environment upstream gives every container about the
// services that exist when it starts: the `kubernetes` service always,
// and, with enableServiceLinks, every service of the pod's namespace that
// has a cluster IP — {NAME}_SERVICE_HOST/_PORT and the Docker link style
// {NAME}_PORT_{port}_{PROTO}... variables.
func (a *Agent) serviceEnv(pod *corev1.Pod) [][2]string {
	if a.services == nil {
		return nil
	}
	var svcs []*corev1.Service
	if ptr.Deref(pod.Spec.EnableServiceLinks, true) {
		if list, err := a.services.Services(pod.Namespace).List(labels.Everything()); err == nil {
			svcs = list
		}
	}
	if pod.Namespace != metav1.NamespaceDefault || !ptr.Deref(pod.Spec.EnableServiceLinks, true) {
		if k, err := a.services.Services(metav1.NamespaceDefault).Get("kubernetes"); err == nil {
			svcs = append(svcs, k)
		}
	}
	slices.SortFunc(svcs, func(x, y *corev1.Service) int { return strings.Compare(x.Name, y.Name) })
	var out [][2]string
	for _, svc := range svcs {
		ip := svc.Spec.ClusterIP
		if ip == "" || ip == corev1.ClusterIPNone || len(svc.Spec.Ports) == 0 {
			continue
		}
		name := strings.ToUpper(strings.ReplaceAll(svc.Name, "-", "_"))
		first := svc.Spec.Ports[0]
		out = append(out, [2]string{name + "_SERVICE_HOST", ip}, [2]string{name + "_SERVICE_PORT", strconv.Itoa(int(first.Port))})
		for _, p := range svc.Spec.Ports {
			if p.Name != "" {
				out = append(out, [2]string{name + "_SERVICE_PORT_" + strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_")), strconv.Itoa(int(p.Port))})
			}
		}
		proto := strings.ToLower(string(first.Protocol))
		if proto == "" {
			proto = "tcp"
		}
		out = append(out, [2]string{name + "_PORT", fmt.Sprintf("%s://%s", proto, net.JoinHostPort(ip, strconv.Itoa(int(first.Port))))})
		for _, p := range svc.Spec.Ports {
			pr := string(p.Protocol)
			if pr == "" {
				pr = "TCP"
			}
			prefix := fmt.Sprintf("%s_PORT_%d_%s", name, p.Port, strings.ToUpper(pr))
			out = append(out,
				[2]string{prefix, fmt.Sprintf("%s://%s", strings.ToLower(pr), net.JoinHostPort(ip, strconv.Itoa(int(p.Port))))},
				[2]string{prefix + "_PROTO", strings.ToLower(pr)},
				[2]string{prefix + "_PORT", strconv.Itoa(int(p.Port))},
				[2]string{prefix + "_ADDR", ip})
		}
	}
	return out
}
