package endpointslice

import (
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Labels and limits of the legacy Endpoints objects, as upstream.
const (
	// EndpointsManagedBy marks the Endpoints this controller writes.
	EndpointsManagedBy = "endpoints.kubernetes.io/managed-by"
	// EndpointsControllerName is the value of EndpointsManagedBy.
	EndpointsControllerName = "endpoint-controller"
	// MaxEndpointsAddresses caps the addresses of one Endpoints object;
	// beyond it the object is truncated and annotated over-capacity.
	MaxEndpointsAddresses = 1000
)

// endpointsAddress is one pod's entry in an Endpoints object.
type endpointsAddress struct {
	addr  corev1.EndpointAddress
	ready bool
	ports []corev1.EndpointPort
}

// desiredSubsets computes the subsets of a Service's Endpoints: one subset
// per distinct set of ports, holding ready addresses and not-ready ones.
// Terminating pods are left out unless the Service publishes not-ready
// addresses, which also makes every address ready.
func desiredSubsets(svc *corev1.Service, pods []*corev1.Pod) []corev1.EndpointSubset {
	family := corev1.IPv4Protocol
	if len(svc.Spec.IPFamilies) > 0 || clusterIPSet(svc) {
		family = families(svc)[0]
	}
	var addrs []endpointsAddress
	for _, pod := range pods {
		if !shouldPublish(pod, svc.Spec.PublishNotReadyAddresses) {
			continue
		}
		fam := family
		if len(svc.Spec.IPFamilies) == 0 && !clusterIPSet(svc) {
			// A headless Service with no families takes the pod's own.
			fam = ipFamily(podIPs(pod)[0])
		}
		ip, ok := podIPOfFamily(pod, fam)
		if !ok {
			continue
		}
		a := endpointsAddress{
			addr: corev1.EndpointAddress{
				IP:        ip,
				Hostname:  hostnameFor(pod, svc),
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
			},
			ready: svc.Spec.PublishNotReadyAddresses || podReady(pod),
		}
		if pod.Spec.NodeName != "" {
			a.addr.NodeName = &pod.Spec.NodeName
		}
		if !headlessWithoutPorts(svc) {
			for i := range svc.Spec.Ports {
				sp := &svc.Spec.Ports[i]
				n, err := findPort(pod, sp)
				if err != nil {
					continue
				}
				proto := sp.Protocol
				if proto == "" {
					proto = corev1.ProtocolTCP
				}
				a.ports = append(a.ports, corev1.EndpointPort{Name: sp.Name, Port: n, Protocol: proto, AppProtocol: sp.AppProtocol})
			}
			if len(a.ports) == 0 {
				continue // the pod offers none of the Service's ports
			}
		}
		addrs = append(addrs, a)
	}
	return packSubsets(addrs)
}

// packSubsets groups addresses by their set of ports and sorts everything,
// so that equal inputs give equal objects.
func packSubsets(addrs []endpointsAddress) []corev1.EndpointSubset {
	byPorts := map[string]*corev1.EndpointSubset{}
	for _, a := range addrs {
		ports := append([]corev1.EndpointPort(nil), a.ports...)
		sortPorts(ports)
		k := endpointsPortsKey(ports)
		s := byPorts[k]
		if s == nil {
			s = &corev1.EndpointSubset{Ports: ports}
			byPorts[k] = s
		}
		if a.ready {
			s.Addresses = append(s.Addresses, a.addr)
		} else {
			s.NotReadyAddresses = append(s.NotReadyAddresses, a.addr)
		}
	}
	keys := make([]string, 0, len(byPorts))
	for k := range byPorts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]corev1.EndpointSubset, 0, len(keys))
	for _, k := range keys {
		s := byPorts[k]
		sortAddresses(s.Addresses)
		sortAddresses(s.NotReadyAddresses)
		out = append(out, *s)
	}
	return out
}

func sortPorts(ports []corev1.EndpointPort) {
	sort.Slice(ports, func(i, j int) bool {
		a, b := ports[i], ports[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Port != b.Port {
			return a.Port < b.Port
		}
		return a.Protocol < b.Protocol
	})
}

func endpointsPortsKey(ports []corev1.EndpointPort) string {
	parts := make([]string, 0, len(ports))
	for _, p := range ports {
		app := ""
		if p.AppProtocol != nil {
			app = *p.AppProtocol
		}
		parts = append(parts, fmt.Sprintf("%s/%s/%d/%s", p.Name, p.Protocol, p.Port, app))
	}
	return strings.Join(parts, ";")
}

// sortAddresses orders addresses by IP (numerically), then by pod UID.
func sortAddresses(addrs []corev1.EndpointAddress) {
	uid := func(a corev1.EndpointAddress) types.UID {
		if a.TargetRef == nil {
			return ""
		}
		return a.TargetRef.UID
	}
	sort.Slice(addrs, func(i, j int) bool {
		a, _ := netip.ParseAddr(addrs[i].IP)
		b, _ := netip.ParseAddr(addrs[j].IP)
		if c := a.Compare(b); c != 0 {
			return c < 0
		}
		return uid(addrs[i]) < uid(addrs[j])
	})
}

// truncateSubsets caps the addresses at max, as upstream: if the ready
// addresses alone exceed it, only ready addresses are kept, shared among
// the subsets in proportion to their size; otherwise all ready addresses
// stay and the not-ready ones fill what is left in proportion. It
// reports whether anything was cut.
func truncateSubsets(subsets []corev1.EndpointSubset, max int) ([]corev1.EndpointSubset, bool) {
	ready, notReady := 0, 0
	for _, s := range subsets {
		ready += len(s.Addresses)
		notReady += len(s.NotReadyAddresses)
	}
	if ready+notReady <= max {
		return subsets, false
	}
	cutReady := ready > max
	room, total := max-ready, notReady
	if cutReady {
		room, total = max, ready
	}
	left := room
	out := make([]corev1.EndpointSubset, 0, len(subsets))
	for _, s := range subsets {
		n := len(s.NotReadyAddresses)
		if cutReady {
			n = len(s.Addresses)
		}
		// Rounding up gives the earlier subsets their full share; the
		// last takes what remains.
		take := min(int(math.Ceil(float64(n)/float64(total)*float64(room))), left)
		cut := corev1.EndpointSubset{Ports: s.Ports}
		if cutReady {
			cut.Addresses = s.Addresses[:take]
		} else {
			cut.Addresses, cut.NotReadyAddresses = s.Addresses, s.NotReadyAddresses[:take]
		}
		left -= take
		if len(cut.Addresses)+len(cut.NotReadyAddresses) > 0 {
			out = append(out, cut) // validation refuses empty subsets
		}
	}
	return out, true
}

// endpointsLabels are the labels of a Service's Endpoints: the Service's
// own, the headless marker when it has no cluster IP, the manager, and
// skip-mirror (the mirroring controller is for Endpoints users write).
func endpointsLabels(svc *corev1.Service) map[string]string {
	out := map[string]string{}
	for k, v := range svc.Labels {
		out[k] = v
	}
	delete(out, corev1.IsHeadlessService)
	if !clusterIPSet(svc) {
		out[corev1.IsHeadlessService] = ""
	}
	out[EndpointsManagedBy] = EndpointsControllerName
	out[discoveryv1.LabelSkipMirror] = "true"
	return out
}
