package endpointslice

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// ControllerName is the value of the endpointslice.kubernetes.io/managed-by
// label on the slices this controller writes; it leaves all others alone.
const ControllerName = "endpointslice-controller.k8s.io"

// MaxEndpointsPerSlice is how many endpoints one slice holds, upstream's
// default for --max-endpoints-per-slice.
const MaxEndpointsPerSlice = 100

var serviceKind = corev1.SchemeGroupVersion.WithKind("Service")

// endpointGroup is the desired endpoints that share one set of ports; each
// group is kept in slices of its own.
type endpointGroup struct {
	ports     []discoveryv1.EndpointPort
	endpoints map[string]discoveryv1.Endpoint // by endpointKey
}

// nodeLookup returns a node's zone label and whether the node exists.
type nodeLookup func(name string) (zone string, found bool)

// desiredEndpoints groups the Service's pods of one address family by the
// ports they resolve to. Pods on nodes that do not exist are left out
// (unless the Service publishes not-ready addresses) and named in missing,
// so that the caller retries once the node shows up.
func desiredEndpoints(svc *corev1.Service, pods []*corev1.Pod, addrType discoveryv1.AddressType, nodes nodeLookup) (groups map[string]*endpointGroup, missing []string) {
	groups = map[string]*endpointGroup{}
	family := corev1.IPFamily(addrType)
	for _, pod := range pods {
		// Terminating pods stay, marked terminating, so that proxies can
		// drain them.
		if !shouldPublish(pod, true) {
			continue
		}
		ip, ok := podIPOfFamily(pod, family)
		if !ok {
			continue
		}
		zone, found := "", true
		if pod.Spec.NodeName != "" {
			zone, found = nodes(pod.Spec.NodeName)
		}
		if !found && !svc.Spec.PublishNotReadyAddresses {
			missing = append(missing, pod.Spec.NodeName)
			continue
		}
		ports := slicePorts(svc, pod)
		pk := portsKey(ports)
		g := groups[pk]
		if g == nil {
			g = &endpointGroup{ports: ports, endpoints: map[string]discoveryv1.Endpoint{}}
			groups[pk] = g
		}
		ep := podEndpoint(svc, pod, ip, zone)
		g.endpoints[endpointKey(&ep)] = ep
	}
	return groups, missing
}

// slicePorts resolves the Service's ports on one pod; ports the pod does
// not have are left out, as upstream.
func slicePorts(svc *corev1.Service, pod *corev1.Pod) []discoveryv1.EndpointPort {
	out := []discoveryv1.EndpointPort{}
	if headlessWithoutPorts(svc) {
		return out
	}
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
		out = append(out, discoveryv1.EndpointPort{
			Name: ptr.To(sp.Name), Port: ptr.To(n), Protocol: ptr.To(proto), AppProtocol: sp.AppProtocol,
		})
	}
	return out
}

// podEndpoint is the endpoint of one pod. Ready is never true for a
// terminating pod unless the Service publishes not-ready addresses;
// serving follows the pod's readiness regardless.
func podEndpoint(svc *corev1.Service, pod *corev1.Pod, ip, zone string) discoveryv1.Endpoint {
	serving := podReady(pod)
	terminating := pod.DeletionTimestamp != nil
	ep := discoveryv1.Endpoint{
		Addresses: []string{ip},
		Conditions: discoveryv1.EndpointConditions{
			Ready:       ptr.To(svc.Spec.PublishNotReadyAddresses || (serving && !terminating)),
			Serving:     ptr.To(serving),
			Terminating: ptr.To(terminating),
		},
		TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
	}
	if pod.Spec.NodeName != "" {
		ep.NodeName = ptr.To(pod.Spec.NodeName)
	}
	if zone != "" {
		ep.Zone = ptr.To(zone)
	}
	if h := hostnameFor(pod, svc); h != "" {
		ep.Hostname = ptr.To(h)
	}
	return ep
}

// endpointKey identifies an endpoint across syncs: its addresses, its pod
// and its hostname. Conditions and topology may change under one key.
func endpointKey(ep *discoveryv1.Endpoint) string {
	var b strings.Builder
	b.WriteString(strings.Join(ep.Addresses, ","))
	if ep.TargetRef != nil {
		fmt.Fprintf(&b, "|%s/%s", ep.TargetRef.Namespace, ep.TargetRef.Name)
	}
	if ep.Hostname != nil {
		fmt.Fprintf(&b, "|%s", *ep.Hostname)
	}
	return b.String()
}

// portsKey identifies a set of ports regardless of their order.
func portsKey(ports []discoveryv1.EndpointPort) string {
	keys := make([]string, 0, len(ports))
	for _, p := range ports {
		keys = append(keys, fmt.Sprintf("%s/%s/%d/%s", ptr.Deref(p.Name, ""), ptr.Deref(p.Protocol, corev1.ProtocolTCP),
			ptr.Deref(p.Port, 0), ptr.Deref(p.AppProtocol, "")))
	}
	sort.Strings(keys)
	return strings.Join(keys, ";")
}

// sliceLabels are the labels a slice of svc carries: the Service's own
// (except the reserved ones) plus the service name, the manager and, for
// headless Services, the headless marker.
func sliceLabels(svc *corev1.Service) map[string]string {
	out := map[string]string{}
	for k, v := range svc.Labels {
		switch k {
		case discoveryv1.LabelServiceName, discoveryv1.LabelManagedBy, corev1.IsHeadlessService:
			continue
		}
		out[k] = v
	}
	if !clusterIPSet(svc) {
		out[corev1.IsHeadlessService] = ""
	}
	out[discoveryv1.LabelServiceName] = svc.Name
	out[discoveryv1.LabelManagedBy] = ControllerName
	return out
}

// newSlice is an empty slice for svc, named by the API server.
func newSlice(svc *corev1.Service, addrType discoveryv1.AddressType, ports []discoveryv1.EndpointPort) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    svc.Name + "-",
			Namespace:       svc.Namespace,
			Labels:          sliceLabels(svc),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(svc, serviceKind)},
		},
		AddressType: addrType,
		Ports:       ports,
		Endpoints:   []discoveryv1.Endpoint{},
	}
}

// ownedBy reports whether svc (this incarnation of it) owns the slice.
func ownedBy(slice *discoveryv1.EndpointSlice, svc *corev1.Service) bool {
	for _, ref := range slice.OwnerReferences {
		if ref.UID == svc.UID && ref.Kind == serviceKind.Kind && ref.APIVersion == serviceKind.GroupVersion().String() {
			return true
		}
	}
	return false
}

// slicePlan is what one sync writes.
type slicePlan struct {
	create, update, remove []*discoveryv1.EndpointSlice
}

func (p slicePlan) empty() bool {
	return len(p.create)+len(p.update)+len(p.remove) == 0
}

// planSlices computes the writes that turn existing (the slices of one
// address type svc owns) into the desired groups. It keeps endpoints where
// they are, fills slices that change anyway before touching unchanged
// ones, and recycles slices it would delete for ones it would create, so
// that a steady Service sees few writes. A Service without endpoints keeps
// one empty placeholder slice, as upstream.
func planSlices(svc *corev1.Service, addrType discoveryv1.AddressType, existing []*discoveryv1.EndpointSlice, groups map[string]*endpointGroup, max int) slicePlan {
	var plan slicePlan
	byPorts := map[string][]*discoveryv1.EndpointSlice{}
	for _, s := range sortedByName(existing) {
		k := portsKey(s.Ports)
		byPorts[k] = append(byPorts[k], s)
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := planPorts(svc, addrType, byPorts[k], groups[k], max)
		plan.create = append(plan.create, p.create...)
		plan.update = append(plan.update, p.update...)
		plan.remove = append(plan.remove, p.remove...)
		delete(byPorts, k)
	}
	// Slices for port sets no pod has any more go.
	for _, s := range sortedByName(existing) {
		if _, left := byPorts[portsKey(s.Ports)]; left {
			plan.remove = append(plan.remove, s)
		}
	}

	if len(existing) == len(plan.remove) && len(plan.create) == 0 {
		placeholder := newSlice(svc, addrType, nil)
		if len(plan.remove) == 1 && isPlaceholderFor(plan.remove[0], placeholder) {
			plan.remove = nil // it is already there; do not recreate it
		} else {
			plan.create = append(plan.create, placeholder)
		}
	}

	// Rather than delete one slice and create another, rewrite the first.
	for len(plan.remove) > 0 && len(plan.create) > 0 {
		old := plan.remove[len(plan.remove)-1]
		want := plan.create[len(plan.create)-1]
		plan.remove = plan.remove[:len(plan.remove)-1]
		plan.create = plan.create[:len(plan.create)-1]
		next := old.DeepCopy()
		next.Labels, next.Ports, next.Endpoints = want.Labels, want.Ports, want.Endpoints
		plan.update = append(plan.update, next)
	}
	return plan
}

func isPlaceholderFor(s, placeholder *discoveryv1.EndpointSlice) bool {
	return len(s.Endpoints) == 0 && len(s.Ports) == 0 && s.AddressType == placeholder.AddressType &&
		equality.Semantic.DeepEqual(s.Labels, placeholder.Labels)
}

func sortedByName(slices []*discoveryv1.EndpointSlice) []*discoveryv1.EndpointSlice {
	out := append([]*discoveryv1.EndpointSlice(nil), slices...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// planPorts reconciles the slices of one port set with its desired group.
func planPorts(svc *corev1.Service, addrType discoveryv1.AddressType, existing []*discoveryv1.EndpointSlice, g *endpointGroup, max int) slicePlan {
	var plan slicePlan
	labels := sliceLabels(svc)
	pending := make(map[string]discoveryv1.Endpoint, len(g.endpoints))
	for k, ep := range g.endpoints {
		pending[k] = ep
	}
	var changed, unchanged []*discoveryv1.EndpointSlice

	// 1. Keep the endpoints still wanted where they are, updated.
	for _, s := range existing {
		var keep []discoveryv1.Endpoint
		epChanged := false
		for i := range s.Endpoints {
			k := endpointKey(&s.Endpoints[i])
			want, ok := pending[k]
			if !ok {
				continue // gone, or a duplicate of one placed already
			}
			keep = append(keep, want)
			delete(pending, k)
			if !equality.Semantic.DeepEqual(want, s.Endpoints[i]) {
				epChanged = true
			}
		}
		labelsChanged := !equality.Semantic.DeepEqual(labels, s.Labels)
		switch {
		case epChanged || len(keep) != len(s.Endpoints):
			if len(keep) == 0 {
				plan.remove = append(plan.remove, s)
				continue
			}
			next := s.DeepCopy()
			next.Endpoints, next.Labels = keep, labels
			changed = append(changed, next)
		case labelsChanged:
			next := s.DeepCopy()
			next.Labels = labels
			changed = append(changed, next)
		default:
			unchanged = append(unchanged, s)
		}
	}

	queue := sortedEndpoints(pending)
	pop := func() discoveryv1.Endpoint {
		ep := queue[0]
		queue = queue[1:]
		return ep
	}

	// 2. New endpoints first fill slices that are written anyway, fullest
	// first.
	sort.SliceStable(changed, func(i, j int) bool { return len(changed[i].Endpoints) > len(changed[j].Endpoints) })
	for _, s := range changed {
		for len(queue) > 0 && len(s.Endpoints) < max {
			s.Endpoints = append(s.Endpoints, pop())
		}
	}

	// 3. The rest go into the unchanged slice they fill best, if they fit
	// into one, else into new slices.
	for len(queue) > 0 {
		var fill *discoveryv1.EndpointSlice
		if len(queue) < max {
			if i := closestFit(unchanged, len(queue), max); i >= 0 {
				fill = unchanged[i].DeepCopy()
				unchanged = append(unchanged[:i], unchanged[i+1:]...)
				changed = append(changed, fill)
			}
		}
		if fill == nil {
			fill = newSlice(svc, addrType, g.ports)
			plan.create = append(plan.create, fill)
		}
		for len(queue) > 0 && len(fill.Endpoints) < max {
			fill.Endpoints = append(fill.Endpoints, pop())
		}
	}
	plan.update = changed
	return plan
}

// closestFit returns the index of the slice that n more endpoints bring
// closest to full without overflowing it, or -1.
func closestFit(slices []*discoveryv1.EndpointSlice, n, max int) int {
	best, bestGap := -1, max
	for i, s := range slices {
		if gap := max - len(s.Endpoints) - n; gap >= 0 && gap < bestGap {
			best, bestGap = i, gap
		}
	}
	return best
}

// sortedEndpoints orders endpoints by key so that placement is stable.
func sortedEndpoints(m map[string]discoveryv1.Endpoint) []discoveryv1.Endpoint {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]discoveryv1.Endpoint, 0, len(keys))
	for _, k := range keys {
		out = append(out, m[k])
	}
	return out
}
