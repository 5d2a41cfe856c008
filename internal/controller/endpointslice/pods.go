package endpointslice

import (
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// podReady reports whether the pod's Ready condition is True.
func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podTriggerTime is when the pod last changed in a way that matters to its
// endpoints: the last transition of its Ready condition, as upstream.
func podTriggerTime(pod *corev1.Pod) time.Time {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

// shouldPublish reports whether a pod belongs in a Service's endpoints at
// all: it has an address and has not finished; pods being deleted count
// only when includeTerminating.
func shouldPublish(pod *corev1.Pod, includeTerminating bool) bool {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	if pod.Status.PodIP == "" && len(pod.Status.PodIPs) == 0 {
		return false
	}
	return includeTerminating || pod.DeletionTimestamp == nil
}

// podIPs lists the pod's addresses, falling back to the singular field.
func podIPs(pod *corev1.Pod) []string {
	var out []string
	for _, ip := range pod.Status.PodIPs {
		out = append(out, ip.IP)
	}
	if len(out) == 0 && pod.Status.PodIP != "" {
		out = append(out, pod.Status.PodIP)
	}
	return out
}

// podIPOfFamily returns the pod's first address of the family, if any.
func podIPOfFamily(pod *corev1.Pod, family corev1.IPFamily) (string, bool) {
	for _, ip := range podIPs(pod) {
		if ipFamily(ip) == family {
			return ip, true
		}
	}
	return "", false
}

func ipFamily(ip string) corev1.IPFamily {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	if a.Is4() || a.Is4In6() {
		return corev1.IPv4Protocol
	}
	return corev1.IPv6Protocol
}

// findPort resolves a Service port's targetPort on one pod: a number is
// taken as is, a name is looked up among the ports of the pod's containers
// and sidecars (restartable init containers) with the same protocol. Pods
// of one Service may resolve a name to different numbers.
func findPort(pod *corev1.Pod, sp *corev1.ServicePort) (int32, error) {
	tp := sp.TargetPort
	if tp.Type == intstr.Int {
		if tp.IntVal == 0 {
			return sp.Port, nil // not defaulted (an object built in a test)
		}
		return tp.IntVal, nil
	}
	proto := sp.Protocol
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	match := func(cs []corev1.Container, sidecarsOnly bool) (int32, bool) {
		for _, c := range cs {
			if sidecarsOnly && (c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways) {
				continue
			}
			for _, p := range c.Ports {
				pp := p.Protocol
				if pp == "" {
					pp = corev1.ProtocolTCP
				}
				if p.Name == tp.StrVal && pp == proto {
					return p.ContainerPort, true
				}
			}
		}
		return 0, false
	}
	if n, ok := match(pod.Spec.Containers, false); ok {
		return n, nil
	}
	if n, ok := match(pod.Spec.InitContainers, true); ok {
		return n, nil
	}
	return 0, fmt.Errorf("no container port named %q (%s) in pod %s", tp.StrVal, proto, pod.Name)
}

// hostnameFor is the DNS hostname the pod publishes under a headless
// Service: set when the pod's subdomain names the Service.
func hostnameFor(pod *corev1.Pod, svc *corev1.Service) string {
	if pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name && pod.Namespace == svc.Namespace {
		return pod.Spec.Hostname
	}
	return ""
}

// clusterIPSet reports whether the Service has a virtual IP (is not headless).
func clusterIPSet(svc *corev1.Service) bool {
	return svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone
}

// headlessWithoutPorts is the one kind of Service whose endpoints carry
// no ports at all.
func headlessWithoutPorts(svc *corev1.Service) bool {
	return len(svc.Spec.Ports) == 0 && svc.Spec.ClusterIP == corev1.ClusterIPNone
}

// families are the IP families the Service serves, primary first.
func families(svc *corev1.Service) []corev1.IPFamily {
	if len(svc.Spec.IPFamilies) > 0 {
		return svc.Spec.IPFamilies
	}
	if clusterIPSet(svc) {
		if f := ipFamily(svc.Spec.ClusterIP); f != "" {
			return []corev1.IPFamily{f}
		}
	}
	return []corev1.IPFamily{corev1.IPv4Protocol}
}
