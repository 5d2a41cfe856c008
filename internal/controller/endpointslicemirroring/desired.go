package endpointslicemirroring

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/ptr"
)

// ControllerName is the value of the endpointslice.kubernetes.io/managed-by
// label on mirrored slices; the controller touches no other slices.
const ControllerName = "endpointslicemirroring-controller.k8s.io"

// MaxEndpointsPerSubset is how many addresses of one Endpoints subset are
// mirrored, upstream's default for --mirroring-max-endpoints-per-subset.
// It is also the size of a mirrored slice: each subset maps to one slice
// per address type, never to several.
const MaxEndpointsPerSubset = 1000

var endpointsKind = corev1.SchemeGroupVersion.WithKind("Endpoints")

// shouldMirror reports whether an Endpoints object may be mirrored at all:
// its owner has not opted out with the skip-mirror label (upstream's
// Endpoints controller sets it on the objects it writes), and it is not a
// leader-election lock that merely borrows the Endpoints kind. Whether the
// Service has a selector is checked separately.
func shouldMirror(ep *corev1.Endpoints) bool {
	if ep == nil || ep.Labels[discoveryv1.LabelSkipMirror] == "true" {
		return false
	}
	_, lock := ep.Annotations[resourcelock.LeaderElectionRecordAnnotationKey]
	return !lock
}

// mirror is what one Endpoints object should look like as slices.
type mirror struct {
	slices  []*discoveryv1.EndpointSlice // ordered by sliceKey
	invalid int                          // addresses that are not IP addresses
	overCap int                          // addresses beyond the per-subset cap
}

// desiredSlices computes the slices that mirror ep. The subsets are first
// repacked, so that equal port sets share one slice however the user
// wrote them; then every subset gives one slice per address type holding
// its first max valid addresses, ready ones first.
func desiredSlices(ep *corev1.Endpoints, max int) mirror {
	var m mirror
	for _, ss := range repack(ep.Subsets) {
		ports := slicePorts(ss.Ports)
		byType := map[discoveryv1.AddressType]*discoveryv1.EndpointSlice{}
		added := 0
		add := func(addrs []corev1.EndpointAddress, ready bool) {
			for i, a := range addrs {
				if added >= max {
					m.overCap += len(addrs) - i
					return
				}
				ip, addrType, ok := parseIP(a.IP)
				if !ok {
					m.invalid++
					continue
				}
				added++
				s := byType[addrType]
				if s == nil {
					s = newSlice(ep, addrType, ports)
					byType[addrType] = s
				}
				s.Endpoints = append(s.Endpoints, toEndpoint(a, ip, ready))
			}
		}
		add(ss.Addresses, true)
		add(ss.NotReadyAddresses, false)
		for _, s := range byType {
			sortEndpoints(s.Endpoints)
			m.slices = append(m.slices, s)
		}
	}
	sort.Slice(m.slices, func(i, j int) bool { return sliceKey(m.slices[i]) < sliceKey(m.slices[j]) })
	return m
}

// parseIP canonicalises an Endpoints address and tells its family. An
// IPv4-mapped IPv6 address counts as IPv4, as upstream.
func parseIP(s string) (string, discoveryv1.AddressType, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return "", "", false
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String(), discoveryv1.AddressTypeIPv4, true
	}
	return a.String(), discoveryv1.AddressTypeIPv6, true
}

// toEndpoint mirrors one address. Only ready is set: an Endpoints object
// says nothing about serving or terminating, and readers take a missing
// serving to mean "same as ready".
func toEndpoint(a corev1.EndpointAddress, ip string, ready bool) discoveryv1.Endpoint {
	ep := discoveryv1.Endpoint{
		Addresses:  []string{ip},
		Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)},
		NodeName:   a.NodeName,
		TargetRef:  a.TargetRef,
	}
	if a.Hostname != "" {
		ep.Hostname = ptr.To(a.Hostname)
	}
	return *ep.DeepCopy()
}

func slicePorts(ports []corev1.EndpointPort) []discoveryv1.EndpointPort {
	out := []discoveryv1.EndpointPort{}
	for _, p := range ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP // the API's default for Endpoints ports
		}
		// A copy: the pointer would otherwise alias the informer's object.
		p = *p.DeepCopy()
		out = append(out, discoveryv1.EndpointPort{
			Name: ptr.To(p.Name), Port: ptr.To(p.Port), Protocol: ptr.To(proto), AppProtocol: p.AppProtocol,
		})
	}
	return out
}

// newSlice is an empty mirrored slice of ep, named by the API server. It
// carries all of the Endpoints' labels and its annotations except the
// trigger time (which describes the Endpoints' own write) and kubectl's
// last-applied configuration (which describes the Endpoints' manifest).
func newSlice(ep *corev1.Endpoints, addrType discoveryv1.AddressType, ports []discoveryv1.EndpointPort) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    ep.Name + "-",
			Namespace:       ep.Namespace,
			Labels:          map[string]string{},
			Annotations:     map[string]string{},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ep, endpointsKind)},
		},
		AddressType: addrType,
		Ports:       ports,
		Endpoints:   []discoveryv1.Endpoint{},
	}
	for k, v := range ep.Labels {
		s.Labels[k] = v
	}
	s.Labels[discoveryv1.LabelServiceName] = ep.Name
	s.Labels[discoveryv1.LabelManagedBy] = ControllerName
	for k, v := range ep.Annotations {
		if k != corev1.EndpointsLastChangeTriggerTime && k != corev1.LastAppliedConfigAnnotation {
			s.Annotations[k] = v
		}
	}
	return s
}

// repack canonicalises subsets as upstream does before mirroring: each
// address (by IP and target UID) gets the union of the ports it appears
// with, is ready if any subset lists it ready, and addresses with equal
// port sets share one subset. Output is sorted, so equal inputs repack
// equally.
func repack(subsets []corev1.EndpointSubset) []corev1.EndpointSubset {
	type entry struct {
		addr  corev1.EndpointAddress
		ready bool
		ports map[string]corev1.EndpointPort
	}
	var order []string
	entries := map[string]*entry{}
	note := func(a corev1.EndpointAddress, ready bool, ports []corev1.EndpointPort) {
		k := a.IP
		if a.TargetRef != nil {
			k += "/" + string(a.TargetRef.UID)
		}
		e := entries[k]
		if e == nil {
			e = &entry{addr: a, ports: map[string]corev1.EndpointPort{}}
			entries[k] = e
			order = append(order, k)
		}
		e.ready = e.ready || ready
		for _, p := range ports {
			e.ports[endpointsPortKey(p)] = p
		}
	}
	for _, ss := range subsets {
		for _, a := range ss.Addresses {
			note(a, true, ss.Ports)
		}
		for _, a := range ss.NotReadyAddresses {
			note(a, false, ss.Ports)
		}
	}

	byPorts := map[string]*corev1.EndpointSubset{}
	for _, k := range order {
		e := entries[k]
		keys := make([]string, 0, len(e.ports))
		for pk := range e.ports {
			keys = append(keys, pk)
		}
		sort.Strings(keys)
		setKey := strings.Join(keys, ";")
		ss := byPorts[setKey]
		if ss == nil {
			ss = &corev1.EndpointSubset{}
			for _, pk := range keys {
				ss.Ports = append(ss.Ports, e.ports[pk])
			}
			byPorts[setKey] = ss
		}
		if e.ready {
			ss.Addresses = append(ss.Addresses, e.addr)
		} else {
			ss.NotReadyAddresses = append(ss.NotReadyAddresses, e.addr)
		}
	}
	setKeys := make([]string, 0, len(byPorts))
	for k := range byPorts {
		setKeys = append(setKeys, k)
	}
	sort.Strings(setKeys)
	out := make([]corev1.EndpointSubset, 0, len(setKeys))
	for _, k := range setKeys {
		ss := byPorts[k]
		sortAddresses(ss.Addresses)
		sortAddresses(ss.NotReadyAddresses)
		out = append(out, *ss)
	}
	return out
}

func endpointsPortKey(p corev1.EndpointPort) string {
	return fmt.Sprintf("%s/%s/%d/%s", p.Name, p.Protocol, p.Port, ptr.Deref(p.AppProtocol, ""))
}

// compareIPs orders addresses numerically; unparsable ones sort first and
// by text, so that the order is total.
func compareIPs(a, b string) int {
	x, errX := netip.ParseAddr(a)
	y, errY := netip.ParseAddr(b)
	switch {
	case errX == nil && errY == nil:
		return x.Compare(y)
	case errX != nil && errY != nil:
		return strings.Compare(a, b)
	case errX != nil:
		return -1
	}
	return 1
}

func sortAddresses(addrs []corev1.EndpointAddress) {
	uid := func(a corev1.EndpointAddress) string {
		if a.TargetRef == nil {
			return ""
		}
		return string(a.TargetRef.UID)
	}
	sort.SliceStable(addrs, func(i, j int) bool {
		if c := compareIPs(addrs[i].IP, addrs[j].IP); c != 0 {
			return c < 0
		}
		return uid(addrs[i]) < uid(addrs[j])
	})
}

func sortEndpoints(eps []discoveryv1.Endpoint) {
	uid := func(e discoveryv1.Endpoint) string {
		if e.TargetRef == nil {
			return ""
		}
		return string(e.TargetRef.UID)
	}
	sort.SliceStable(eps, func(i, j int) bool {
		if c := compareIPs(eps[i].Addresses[0], eps[j].Addresses[0]); c != 0 {
			return c < 0
		}
		return uid(eps[i]) < uid(eps[j])
	})
}

// sliceKey identifies the (address type, port set) a slice mirrors,
// regardless of the order of its ports.
func sliceKey(s *discoveryv1.EndpointSlice) string {
	keys := make([]string, 0, len(s.Ports))
	for _, p := range s.Ports {
		keys = append(keys, fmt.Sprintf("%s/%s/%d/%s", ptr.Deref(p.Name, ""), ptr.Deref(p.Protocol, corev1.ProtocolTCP),
			ptr.Deref(p.Port, 0), ptr.Deref(p.AppProtocol, "")))
	}
	sort.Strings(keys)
	return string(s.AddressType) + "|" + strings.Join(keys, ";")
}

// plan is the writes of one sync.
type plan struct {
	create, update, remove []*discoveryv1.EndpointSlice
}

func (p plan) empty() bool { return len(p.create)+len(p.update)+len(p.remove) == 0 }

// planSlices turns the existing mirrored slices into the wanted ones. A
// key that already has a slice keeps its first (by name), rewritten in
// place only if something differs; extra slices of a key and slices of
// keys no longer wanted go. A slice that would go is recycled for a new
// key of the same address type (the type is immutable) instead of a
// delete plus a create.
func planSlices(want, existing []*discoveryv1.EndpointSlice) plan {
	existing = append([]*discoveryv1.EndpointSlice(nil), existing...)
	sort.Slice(existing, func(i, j int) bool { return existing[i].Name < existing[j].Name })
	byKey := map[string][]*discoveryv1.EndpointSlice{}
	for _, s := range existing {
		byKey[sliceKey(s)] = append(byKey[sliceKey(s)], s)
	}

	var p plan
	wanted := map[string]bool{}
	for _, w := range want {
		k := sliceKey(w)
		wanted[k] = true
		have := byKey[k]
		if len(have) == 0 {
			p.create = append(p.create, w)
			continue
		}
		p.remove = append(p.remove, have[1:]...)
		if !sameContent(have[0], w) {
			p.update = append(p.update, rewrite(have[0], w))
		}
	}
	for _, s := range existing {
		if !wanted[sliceKey(s)] {
			p.remove = append(p.remove, s)
		}
	}

	var create []*discoveryv1.EndpointSlice
	for _, c := range p.create {
		i := -1
		for j, r := range p.remove {
			if r.AddressType == c.AddressType {
				i = j
				break
			}
		}
		if i < 0 {
			create = append(create, c)
			continue
		}
		p.update = append(p.update, rewrite(p.remove[i], c))
		p.remove = append(p.remove[:i:i], p.remove[i+1:]...)
	}
	p.create = create
	return p
}

// sameContent reports whether a slice already says what want says.
// Semantic equality treats nil and empty maps and lists alike, as the
// API server's round trip does.
func sameContent(have, want *discoveryv1.EndpointSlice) bool {
	return equality.Semantic.DeepEqual(have.Labels, want.Labels) &&
		equality.Semantic.DeepEqual(have.Annotations, want.Annotations) &&
		equality.Semantic.DeepEqual(have.OwnerReferences, want.OwnerReferences) &&
		equality.Semantic.DeepEqual(have.Endpoints, want.Endpoints)
}

// rewrite is the update that turns old into want, keeping old's name,
// UID and resourceVersion so that the write is conditional.
func rewrite(old, want *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
	next := old.DeepCopy()
	next.Labels = want.Labels
	next.Annotations = want.Annotations
	next.OwnerReferences = want.OwnerReferences
	next.Ports = want.Ports
	next.Endpoints = want.Endpoints
	return next
}
