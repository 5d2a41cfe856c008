package endpointslicemirroring

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/ptr"
)

func addr(ip string) corev1.EndpointAddress { return corev1.EndpointAddress{IP: ip} }

func port(name string, n int32) corev1.EndpointPort {
	return corev1.EndpointPort{Name: name, Port: n, Protocol: corev1.ProtocolTCP}
}

func endpoints(subsets ...corev1.EndpointSubset) *corev1.Endpoints {
	return &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "svc", Namespace: "ns", UID: "ep-uid"},
		Subsets:    subsets,
	}
}

// describe renders slices compactly: "IPv4 [http:80] 10.0.0.1=R 10.0.0.2=N".
func describe(ss []*discoveryv1.EndpointSlice) []string {
	var out []string
	for _, s := range ss {
		var ports []string
		for _, p := range s.Ports {
			ports = append(ports, fmt.Sprintf("%s:%d", ptr.Deref(p.Name, ""), ptr.Deref(p.Port, 0)))
		}
		sort.Strings(ports)
		line := fmt.Sprintf("%s [%s]", s.AddressType, strings.Join(ports, ","))
		for _, e := range s.Endpoints {
			state := "N"
			if ptr.Deref(e.Conditions.Ready, false) {
				state = "R"
			}
			line += " " + e.Addresses[0] + "=" + state
		}
		out = append(out, line)
	}
	return out
}

func TestDesiredSlices(t *testing.T) {
	http := []corev1.EndpointPort{port("http", 80)}
	for _, tc := range []struct {
		name             string
		ep               *corev1.Endpoints
		max              int
		want             []string
		invalid, overCap int
	}{
		{name: "no subsets", ep: endpoints(), max: 1000},
		{
			name: "ready and not ready",
			ep:   endpoints(corev1.EndpointSubset{Addresses: []corev1.EndpointAddress{addr("10.0.0.2"), addr("10.0.0.1")}, NotReadyAddresses: []corev1.EndpointAddress{addr("10.0.0.3")}, Ports: http}),
			max:  1000,
			want: []string{"IPv4 [http:80] 10.0.0.1=R 10.0.0.2=R 10.0.0.3=N"},
		},
		{
			name: "one slice per address type",
			ep:   endpoints(corev1.EndpointSubset{Addresses: []corev1.EndpointAddress{addr("fd00::1"), addr("10.0.0.1")}, Ports: http}),
			max:  1000,
			want: []string{"IPv4 [http:80] 10.0.0.1=R", "IPv6 [http:80] fd00::1=R"},
		},
		{
			name: "IPv4-mapped and long-form IPv6 are canonicalised",
			ep:   endpoints(corev1.EndpointSubset{Addresses: []corev1.EndpointAddress{addr("::ffff:10.0.0.9"), addr("fd00:0:0:0:0:0:0:2")}, Ports: http}),
			max:  1000,
			want: []string{"IPv4 [http:80] 10.0.0.9=R", "IPv6 [http:80] fd00::2=R"},
		},
		{
			name: "subsets with equal ports merge; ready wins",
			ep: endpoints(
				corev1.EndpointSubset{Addresses: []corev1.EndpointAddress{addr("10.0.0.1")}, Ports: http},
				corev1.EndpointSubset{Addresses: []corev1.EndpointAddress{addr("10.0.0.2")}, NotReadyAddresses: []corev1.EndpointAddress{addr("10.0.0.1")}, Ports: http},
			),
			max:  1000,
			want: []string{"IPv4 [http:80] 10.0.0.1=R 10.0.0.2=R"},
		},
		{
			name: "an address gets the union of its ports",
			ep: endpoints(
				corev1.EndpointSubset{Addresses: []corev1.EndpointAddress{addr("10.0.0.1"), addr("10.0.0.2")}, Ports: http},
				corev1.EndpointSubset{Addresses: []corev1.EndpointAddress{addr("10.0.0.1")}, Ports: []corev1.EndpointPort{port("https", 443)}},
			),
			max:  1000,
			want: []string{"IPv4 [http:80] 10.0.0.2=R", "IPv4 [http:80,https:443] 10.0.0.1=R"},
		},
		{
			name: "subset without ports",
			ep:   endpoints(corev1.EndpointSubset{Addresses: []corev1.EndpointAddress{addr("10.0.0.1")}}),
			max:  1000,
			want: []string{"IPv4 [] 10.0.0.1=R"},
		},
		{
			name:    "invalid addresses are skipped and counted",
			ep:      endpoints(corev1.EndpointSubset{Addresses: []corev1.EndpointAddress{addr("10.0.0.1"), addr("not-an-ip")}, Ports: http}),
			max:     1000,
			want:    []string{"IPv4 [http:80] 10.0.0.1=R"},
			invalid: 1,
		},
		{
			name: "cap per subset, ready addresses first",
			ep: endpoints(
				corev1.EndpointSubset{Addresses: []corev1.EndpointAddress{addr("10.0.0.3"), addr("10.0.0.1"), addr("fd00::1")}, NotReadyAddresses: []corev1.EndpointAddress{addr("10.0.0.2")}, Ports: http},
				corev1.EndpointSubset{Addresses: []corev1.EndpointAddress{addr("10.0.1.1")}, Ports: []corev1.EndpointPort{port("dns", 53)}},
			),
			max:     2,
			want:    []string{"IPv4 [dns:53] 10.0.1.1=R", "IPv4 [http:80] 10.0.0.1=R 10.0.0.3=R"},
			overCap: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := desiredSlices(tc.ep, tc.max)
			if got := describe(m.slices); !slices.Equal(got, tc.want) {
				t.Errorf("slices =\n%q\nwant\n%q", got, tc.want)
			}
			if m.invalid != tc.invalid || m.overCap != tc.overCap {
				t.Errorf("invalid, overCap = %d, %d; want %d, %d", m.invalid, m.overCap, tc.invalid, tc.overCap)
			}
		})
	}
}

// TestDesiredSliceMeta checks what a mirrored slice carries over from the
// Endpoints besides addresses.
func TestDesiredSliceMeta(t *testing.T) {
	ep := endpoints(corev1.EndpointSubset{
		Addresses: []corev1.EndpointAddress{{
			IP: "10.0.0.1", Hostname: "web-0", NodeName: ptr.To("node-a"),
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: "web-0", UID: "pod-uid"},
		}},
		Ports: []corev1.EndpointPort{{Name: "http", Port: 80, AppProtocol: ptr.To("http")}},
	})
	ep.Labels = map[string]string{"team": "a", discoveryv1.LabelServiceName: "other", discoveryv1.LabelManagedBy: "someone"}
	ep.Annotations = map[string]string{
		"note":                                "kept",
		corev1.EndpointsLastChangeTriggerTime: "2020-01-01T00:00:00Z",
		corev1.LastAppliedConfigAnnotation:    "{}",
	}
	m := desiredSlices(ep, MaxEndpointsPerSubset)
	if len(m.slices) != 1 {
		t.Fatalf("got %d slices, want 1", len(m.slices))
	}
	s := m.slices[0]
	checks := []struct {
		what      string
		got, want any
	}{
		{"generateName", s.GenerateName, "svc-"},
		{"namespace", s.Namespace, "ns"},
		{"labels", fmt.Sprint(s.Labels), fmt.Sprint(map[string]string{"team": "a",
			discoveryv1.LabelServiceName: "svc", discoveryv1.LabelManagedBy: ControllerName})},
		{"annotations", fmt.Sprint(s.Annotations), fmt.Sprint(map[string]string{"note": "kept"})},
		{"owner", fmt.Sprintf("%s/%s/%s/%v", s.OwnerReferences[0].APIVersion, s.OwnerReferences[0].Kind,
			s.OwnerReferences[0].UID, *s.OwnerReferences[0].Controller), "v1/Endpoints/ep-uid/true"},
		{"hostname", ptr.Deref(s.Endpoints[0].Hostname, ""), "web-0"},
		{"nodeName", ptr.Deref(s.Endpoints[0].NodeName, ""), "node-a"},
		{"targetRef", s.Endpoints[0].TargetRef.UID, ep.Subsets[0].Addresses[0].TargetRef.UID},
		{"serving unset", s.Endpoints[0].Conditions.Serving == nil && s.Endpoints[0].Conditions.Terminating == nil, true},
		{"protocol defaulted", *s.Ports[0].Protocol, corev1.ProtocolTCP},
		{"appProtocol", ptr.Deref(s.Ports[0].AppProtocol, ""), "http"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	// The slice must not alias the (informer-owned) Endpoints.
	*s.Endpoints[0].NodeName = "changed"
	*s.Ports[0].AppProtocol = "changed"
	if *ep.Subsets[0].Addresses[0].NodeName != "node-a" || *ep.Subsets[0].Ports[0].AppProtocol != "http" {
		t.Error("desired slice aliases the Endpoints object")
	}
}

func TestShouldMirror(t *testing.T) {
	for _, tc := range []struct {
		name        string
		labels      map[string]string
		annotations map[string]string
		want        bool
	}{
		{"plain", nil, nil, true},
		{"skip-mirror true", map[string]string{discoveryv1.LabelSkipMirror: "true"}, nil, false},
		{"skip-mirror false", map[string]string{discoveryv1.LabelSkipMirror: "false"}, nil, true},
		{"leader election lock", nil, map[string]string{resourcelock.LeaderElectionRecordAnnotationKey: "{}"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Labels: tc.labels, Annotations: tc.annotations}}
			if got := shouldMirror(ep); got != tc.want {
				t.Fatalf("shouldMirror = %v, want %v", got, tc.want)
			}
		})
	}
}

// existing turns a desired slice into one as the API server stores it.
func existing(s *discoveryv1.EndpointSlice, name string) *discoveryv1.EndpointSlice {
	out := s.DeepCopy()
	out.Name, out.GenerateName, out.UID, out.ResourceVersion = name, "", types.UID("uid-"+name), "7"
	return out
}

func TestPlanSlices(t *testing.T) {
	http := []corev1.EndpointPort{port("http", 80)}
	v4 := func(ports []corev1.EndpointPort, ips ...string) corev1.EndpointSubset {
		ss := corev1.EndpointSubset{Ports: ports}
		for _, ip := range ips {
			ss.Addresses = append(ss.Addresses, addr(ip))
		}
		return ss
	}
	want := func(ep *corev1.Endpoints) []*discoveryv1.EndpointSlice {
		return desiredSlices(ep, MaxEndpointsPerSubset).slices
	}
	base := endpoints(v4(http, "10.0.0.1"), v4([]corev1.EndpointPort{port("dns", 53)}, "10.0.0.9"))
	// Slice "a" mirrors the dns subset, "b" the http one.
	a, b := existing(want(base)[0], "a"), existing(want(base)[1], "b")

	relabelled := base.DeepCopy()
	relabelled.Labels = map[string]string{"team": "x"}

	for _, tc := range []struct {
		name     string
		ep       *corev1.Endpoints
		existing []*discoveryv1.EndpointSlice
		// created counts; updated and removed are slice names.
		create         int
		update, remove []string
	}{
		{name: "nothing yet", ep: base, create: 2},
		{name: "in sync", ep: base, existing: []*discoveryv1.EndpointSlice{a, b}},
		{name: "an address added updates in place", ep: endpoints(v4(http, "10.0.0.1", "10.0.0.2"), v4([]corev1.EndpointPort{port("dns", 53)}, "10.0.0.9")),
			existing: []*discoveryv1.EndpointSlice{a, b}, update: []string{"b"}},
		{name: "labels changed", ep: relabelled, existing: []*discoveryv1.EndpointSlice{a, b}, update: []string{"a", "b"}},
		{name: "a port set gone", ep: endpoints(v4(http, "10.0.0.1")), existing: []*discoveryv1.EndpointSlice{a, b}, remove: []string{"a"}},
		{name: "a port changed recycles the slice", ep: endpoints(v4([]corev1.EndpointPort{port("http", 8080)}, "10.0.0.1"), v4([]corev1.EndpointPort{port("dns", 53)}, "10.0.0.9")),
			existing: []*discoveryv1.EndpointSlice{a, b}, update: []string{"b"}},
		{name: "a duplicate slice goes", ep: base, existing: []*discoveryv1.EndpointSlice{a, b, existing(b, "c")}, remove: []string{"c"}},
		{name: "family switched: no recycling across address types", ep: endpoints(v4(http, "fd00::1"), v4([]corev1.EndpointPort{port("dns", 53)}, "10.0.0.9")),
			existing: []*discoveryv1.EndpointSlice{a, b}, create: 1, remove: []string{"b"}},
		{name: "no subsets removes all", ep: endpoints(), existing: []*discoveryv1.EndpointSlice{a, b}, remove: []string{"a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := planSlices(want(tc.ep), tc.existing)
			names := func(ss []*discoveryv1.EndpointSlice) []string {
				var out []string
				for _, s := range ss {
					out = append(out, s.Name)
				}
				sort.Strings(out)
				return out
			}
			if len(p.create) != tc.create || !slices.Equal(names(p.update), tc.update) || !slices.Equal(names(p.remove), tc.remove) {
				t.Fatalf("plan: create %d, update %v, remove %v; want create %d, update %v, remove %v",
					len(p.create), names(p.update), names(p.remove), tc.create, tc.update, tc.remove)
			}
			// Applying the plan gives exactly the desired content.
			var after []*discoveryv1.EndpointSlice
			gone := map[string]bool{}
			for _, s := range p.remove {
				gone[s.Name] = true
			}
			updated := map[string]*discoveryv1.EndpointSlice{}
			for _, s := range p.update {
				if s.ResourceVersion == "" || s.UID == "" {
					t.Errorf("update of %s is unconditional", s.Name)
				}
				updated[s.Name] = s
			}
			for _, s := range tc.existing {
				if u := updated[s.Name]; u != nil {
					after = append(after, u)
				} else if !gone[s.Name] {
					after = append(after, s)
				}
			}
			after = append(after, p.create...)
			sort.Slice(after, func(i, j int) bool { return sliceKey(after[i]) < sliceKey(after[j]) })
			if got, w := describe(after), describe(want(tc.ep)); !slices.Equal(got, w) {
				t.Errorf("after the plan: %q, want %q", got, w)
			}
			if again := planSlices(want(tc.ep), after); !again.empty() {
				t.Errorf("plan is not idempotent: %d creates, %d updates, %d removes", len(again.create), len(again.update), len(again.remove))
			}
		})
	}
}
