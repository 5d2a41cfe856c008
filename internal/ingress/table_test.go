package ingress

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// newIngress makes an Ingress created age seconds after epoch.
func newIngress(ns, name string, age int, rules ...networkingv1.IngressRule) *networkingv1.Ingress {
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:         ns,
			Name:              name,
			CreationTimestamp: metav1.NewTime(epoch.Add(time.Duration(age) * time.Second)),
		},
		Spec: networkingv1.IngressSpec{Rules: rules},
	}
}

func withDefault(ing *networkingv1.Ingress, svc string) *networkingv1.Ingress {
	ing.Spec.DefaultBackend = &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
		Name: svc, Port: networkingv1.ServiceBackendPort{Number: 80}}}
	return ing
}

func rule(host string, paths ...networkingv1.HTTPIngressPath) networkingv1.IngressRule {
	return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{
		HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}}}
}

func path(pt networkingv1.PathType, p, svc string) networkingv1.HTTPIngressPath {
	return networkingv1.HTTPIngressPath{Path: p, PathType: &pt, Backend: networkingv1.IngressBackend{
		Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: 80}}}}
}

const (
	exact  = networkingv1.PathTypeExact
	prefix = networkingv1.PathTypePrefix
	implSp = networkingv1.PathTypeImplementationSpecific
)

// mapSources is a sources made of plain maps, keyed namespace/name.
type mapSources struct {
	services map[string]*corev1.Service
	slices   map[string][]*discoveryv1.EndpointSlice // by namespace/service
	certs    map[string]*tls.Certificate
}

func (m mapSources) service(ns, name string) *corev1.Service { return m.services[ns+"/"+name] }
func (m mapSources) endpointSlices(ns, svc string) []*discoveryv1.EndpointSlice {
	return m.slices[ns+"/"+svc]
}
func (m mapSources) certificate(ns, name string) *tls.Certificate { return m.certs[ns+"/"+name] }

// routed names the Service a request goes to ("" for 404).
func routed(t *table, host, p string) string {
	r := t.match(normalizeHost(host), p)
	if r == nil {
		return ""
	}
	name, _, _ := strings.Cut(r.backend.name, ":")
	return name
}

func TestMatch(t *testing.T) {
	ingresses := []*networkingv1.Ingress{
		// Listed newest first on purpose: the build must sort by age.
		withDefault(newIngress("ns", "newest", 9), "newer-default"),
		newIngress("b", "tie", 5, rule("tie.example.com", path(prefix, "/", "tie-b"))),
		newIngress("a", "tie", 5, rule("tie.example.com", path(prefix, "/", "tie-a"))),
		newIngress("ns", "second", 2,
			rule("foo.example.com",
				path(prefix, "/api/", "loses-to-first"), // same as /api after trimming
				path(exact, "/api", "loses-exact"),
				path(prefix, "/b", "second-b"),
			),
		),
		withDefault(newIngress("ns", "first", 1,
			rule("foo.example.com",
				path(prefix, "/", "foo-root"),
				path(prefix, "/api", "foo-api"),
				path(exact, "/api", "foo-api-exact"),
				path(prefix, "/api/v1/", "foo-v1"),
				path(implSp, "/static", "static"),
				path(exact, "/Case", "case"),
			),
			rule("*.example.com", path(prefix, "/", "wild")),
			rule("", path(prefix, "/other", "any"), path(exact, "/exact", "any-exact"), path(prefix, "/aaa/bbb", "aaa-bbb")),
		), "default"),
	}
	tbl := buildTable(ingresses, mapSources{}, nil)

	tests := []struct {
		host, path, want string
	}{
		{"foo.example.com", "/api", "ns/foo-api-exact"},
		{"foo.example.com", "/api/", "ns/foo-api"},
		{"foo.example.com", "/api/x", "ns/foo-api"},
		{"foo.example.com", "/apix", "ns/foo-root"},
		{"foo.example.com", "/api/v1", "ns/foo-v1"},
		{"foo.example.com", "/api/v1/", "ns/foo-v1"},
		{"foo.example.com", "/api/v1/users/7", "ns/foo-v1"},
		{"foo.example.com", "/api/v10", "ns/foo-api"},
		{"foo.example.com", "/static/app.css", "ns/static"},
		{"foo.example.com", "/staticx", "ns/foo-root"},
		{"foo.example.com", "", "ns/foo-root"},
		{"FOO.Example.COM:8080", "/b/c", "ns/second-b"},
		{"foo.example.com.", "/b", "ns/second-b"},
		{"foo.example.com", "/case", "ns/foo-root"}, // paths are case-sensitive
		{"foo.example.com", "/Case", "ns/case"},
		{"foo.example.com", "/Case/", "ns/foo-root"}, // Exact ignores nothing
		// Exact host wins over the rule without host even for its paths.
		{"foo.example.com", "/other", "ns/foo-root"},
		// Wildcard: exactly one label.
		{"bar.example.com", "/x", "ns/wild"},
		{"bar.example.com", "/other", "ns/wild"},
		{"a.bar.example.com", "/x", "ns/default"},
		{"a.bar.example.com", "/other/y", "ns/any"},
		{"example.com", "/x", "ns/default"},
		// No host: any host; element-wise prefixes.
		{"10.0.0.1", "/other", "ns/any"},
		{"[::1]:80", "/other", "ns/any"},
		{"whatever", "/exact", "ns/any-exact"},
		{"whatever", "/exact/", "ns/default"},
		{"whatever", "/aaa/bbb", "ns/aaa-bbb"},
		{"whatever", "/aaa/bbb/", "ns/aaa-bbb"},
		{"whatever", "/aaa/bbb/ccc", "ns/aaa-bbb"},
		{"whatever", "/aaa/bbbxyz", "ns/default"},
		{"whatever", "/aaa", "ns/default"},
		// Same age: namespace/name decides.
		{"tie.example.com", "/", "a/tie-a"},
	}
	for _, tt := range tests {
		if got := routed(tbl, tt.host, tt.path); got != tt.want {
			t.Errorf("%s%s routed to %q, want %q", tt.host, tt.path, got, tt.want)
		}
	}

	if got := tbl.match("foo.example.com", "/api").ingress; got != "ns/first" {
		t.Errorf("conflict on foo.example.com/api won by %s, want the oldest ns/first", got)
	}
	if got := tbl.defaultBackend.ingress; got != "ns/first" {
		t.Errorf("default backend from %s, want the oldest ns/first", got)
	}
	want := []string{"a/tie", "b/tie", "ns/first", "ns/newest", "ns/second"}
	var served []string
	for k := range tbl.served {
		served = append(served, k)
	}
	slices.Sort(served)
	if !slices.Equal(served, want) {
		t.Errorf("served = %v, want %v", served, want)
	}
}

func TestMatchWithoutDefaultBackend(t *testing.T) {
	tbl := buildTable([]*networkingv1.Ingress{
		newIngress("ns", "a", 1, rule("a.example.com", path(prefix, "/", "a"))),
		// A rule without http routes nothing.
		newIngress("ns", "b", 1, networkingv1.IngressRule{Host: "b.example.com"}),
	}, mapSources{}, nil)
	for _, tt := range []struct{ host, path, want string }{
		{"a.example.com", "/x", "ns/a"},
		{"b.example.com", "/", ""},
		{"c.example.com", "/", ""},
	} {
		if got := routed(tbl, tt.host, tt.path); got != tt.want {
			t.Errorf("%s%s routed to %q, want %q", tt.host, tt.path, got, tt.want)
		}
	}
	if got := routed(emptyTable(), "a.example.com", "/"); got != "" {
		t.Errorf("empty table routed to %q", got)
	}
}

func TestCertificateSelection(t *testing.T) {
	certs := map[string]*tls.Certificate{}
	for _, n := range []string{"ns/exact", "ns/wild", "ns/hostless", "ns/newer", "ns/newer-hostless"} {
		certs[n] = &tls.Certificate{}
	}
	withTLS := func(ing *networkingv1.Ingress, tlsSpecs ...networkingv1.IngressTLS) *networkingv1.Ingress {
		ing.Spec.TLS = tlsSpecs
		return ing
	}
	tbl := buildTable([]*networkingv1.Ingress{
		withTLS(newIngress("ns", "new", 2),
			networkingv1.IngressTLS{Hosts: []string{"a.example.com", "only.newer.com"}, SecretName: "newer"},
			networkingv1.IngressTLS{SecretName: "newer-hostless"},
			networkingv1.IngressTLS{Hosts: []string{"missing.example.com"}, SecretName: "missing"}),
		withTLS(newIngress("ns", "old", 1),
			networkingv1.IngressTLS{Hosts: []string{"A.example.com"}, SecretName: "exact"},
			networkingv1.IngressTLS{Hosts: []string{"*.example.com"}, SecretName: "wild"},
			networkingv1.IngressTLS{SecretName: "hostless"}),
	}, mapSources{certs: certs}, nil)

	for _, tt := range []struct{ sni, want string }{
		{"a.example.com", "ns/exact"},
		{"b.example.com", "ns/wild"},
		{"B.Example.com", "ns/wild"},
		{"x.b.example.com", "ns/hostless"},
		{"only.newer.com", "ns/newer"},
		{"missing.example.com", "ns/wild"},
		{"", "ns/hostless"},
	} {
		got := tbl.certificate(tt.sni)
		if got != certs[tt.want] {
			name := "nil"
			for k, v := range certs {
				if v == got {
					name = k
				}
			}
			t.Errorf("SNI %q got certificate %s, want %s", tt.sni, name, tt.want)
		}
	}
}

func TestIsServed(t *testing.T) {
	ours := map[string]bool{"lotse": true, "lotse-internal": true}
	tests := []struct {
		name       string
		class      *string
		annotation *string
		isDefault  bool
		want       bool
	}{
		{"class name ours", ptr.To("lotse"), nil, false, true},
		{"second class of ours", ptr.To("lotse-internal"), nil, false, true},
		{"class name other", ptr.To("nginx"), nil, true, false},
		{"no class, we are default", nil, nil, true, true},
		{"no class, not default", nil, nil, false, false},
		{"legacy annotation ours", nil, ptr.To("lotse"), false, true},
		{"legacy annotation wins over class", ptr.To("lotse"), ptr.To("nginx"), true, false},
		{"legacy annotation ours over other class", ptr.To("nginx"), ptr.To("lotse"), false, true},
	}
	for _, tt := range tests {
		ing := newIngress("ns", "x", 0)
		ing.Spec.IngressClassName = tt.class
		if tt.annotation != nil {
			ing.Annotations = map[string]string{legacyClassAnnotation: *tt.annotation}
		}
		if got := isServed(ing, ours, tt.isDefault); got != tt.want {
			t.Errorf("%s: served = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestResolveEndpoints(t *testing.T) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP},
			{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
			{Name: "metrics", Port: 9090},
		}},
	}
	slice := func(addrType discoveryv1.AddressType, ports map[string]int32, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
		s := &discoveryv1.EndpointSlice{AddressType: addrType, Endpoints: eps}
		for n, p := range ports {
			s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: ptr.To(n), Port: ptr.To(p)})
		}
		return s
	}
	ep := func(ready *bool, addrs ...string) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: addrs, Conditions: discoveryv1.EndpointConditions{Ready: ready}}
	}
	slices := []*discoveryv1.EndpointSlice{
		slice(discoveryv1.AddressTypeIPv4, map[string]int32{"http": 8080, "metrics": 9100},
			ep(ptr.To(true), "10.42.0.5", "10.42.0.6"), ep(nil, "10.42.0.7"), ep(ptr.To(false), "10.42.0.8")),
		// Another slice with another target port, a duplicate, and IPv6.
		slice(discoveryv1.AddressTypeIPv4, map[string]int32{"http": 8081}, ep(ptr.To(true), "10.42.1.5")),
		slice(discoveryv1.AddressTypeIPv4, map[string]int32{"http": 8080}, ep(ptr.To(true), "10.42.0.5")),
		slice(discoveryv1.AddressTypeIPv6, map[string]int32{"http": 8080}, ep(nil, "fd00::1")),
		slice(discoveryv1.AddressTypeFQDN, map[string]int32{"http": 8080}, ep(nil, "example.com")),
	}
	tests := []struct {
		name    string
		port    networkingv1.ServiceBackendPort
		want    []string
		wantErr bool
	}{
		{"by number", networkingv1.ServiceBackendPort{Number: 80},
			[]string{"10.42.0.5:8080", "10.42.0.7:8080", "10.42.1.5:8081", "[fd00::1]:8080"}, false},
		{"by name", networkingv1.ServiceBackendPort{Name: "metrics"}, []string{"10.42.0.5:9100", "10.42.0.7:9100"}, false},
		{"number not a service port", networkingv1.ServiceBackendPort{Number: 8080}, nil, true},
		{"unknown name", networkingv1.ServiceBackendPort{Name: "grpc"}, nil, true},
		{"UDP port is not proxied", networkingv1.ServiceBackendPort{Name: "dns"}, nil, true},
	}
	for _, tt := range tests {
		got, err := resolveEndpoints(svc, tt.port, slices)
		if (err != nil) != tt.wantErr || !equalStrings(got, tt.want) {
			t.Errorf("%s: got %v, %v; want %v (error %v)", tt.name, got, err, tt.want, tt.wantErr)
		}
	}

	// A Service's single unnamed port matches the slice port without name.
	unnamed := &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
	s := &discoveryv1.EndpointSlice{AddressType: discoveryv1.AddressTypeIPv4,
		Ports:     []discoveryv1.EndpointPort{{Port: ptr.To[int32](3000)}},
		Endpoints: []discoveryv1.Endpoint{ep(nil, "10.42.0.9")}}
	if got, err := resolveEndpoints(unnamed, networkingv1.ServiceBackendPort{Number: 80}, []*discoveryv1.EndpointSlice{s}); err != nil || !equalStrings(got, []string{"10.42.0.9:3000"}) {
		t.Errorf("unnamed port: got %v, %v", got, err)
	}

	ext := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.org",
		Ports: []corev1.ServicePort{{Name: "web", Port: 8443}}}}
	for _, tt := range []struct {
		port networkingv1.ServiceBackendPort
		want string
	}{
		{networkingv1.ServiceBackendPort{Number: 81}, "db.example.org:81"},
		{networkingv1.ServiceBackendPort{Name: "web"}, "db.example.org:8443"},
	} {
		if got, err := resolveEndpoints(ext, tt.port, nil); err != nil || !equalStrings(got, []string{tt.want}) {
			t.Errorf("ExternalName %v: got %v, %v; want %s", tt.port, got, err, tt.want)
		}
	}
}

func equalStrings(a, b []string) bool { return len(a) == len(b) && (len(a) == 0 || slices.Equal(a, b)) }

func TestBackendSharingAndRoundRobin(t *testing.T) {
	src := mapSources{
		services: map[string]*corev1.Service{"ns/web": {
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}},
		slices: map[string][]*discoveryv1.EndpointSlice{"ns/web": {{
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
			Endpoints: []discoveryv1.Endpoint{
				{Addresses: []string{"10.42.0.1"}}, {Addresses: []string{"10.42.0.2"}}, {Addresses: []string{"10.42.0.3"}}},
		}}},
	}
	tbl := buildTable([]*networkingv1.Ingress{
		newIngress("ns", "a", 1, rule("a.example.com", path(prefix, "/", "web"), path(prefix, "/x", "web"), path(prefix, "/gone", "gone"))),
	}, src, nil)
	a, x := tbl.match("a.example.com", "/"), tbl.match("a.example.com", "/x")
	if a.backend != x.backend {
		t.Fatal("two routes to the same Service port do not share the backend")
	}
	a.backend.next.Store(0) // the rotation starts at a random place
	var got []string
	for range 4 {
		got = append(got, a.backend.pick().addr)
		got = append(got, x.backend.pick().addr)
	}
	want := []string{"10.42.0.1:8080", "10.42.0.2:8080", "10.42.0.3:8080", "10.42.0.1:8080", "10.42.0.2:8080", "10.42.0.3:8080", "10.42.0.1:8080", "10.42.0.2:8080"}
	if !slices.Equal(got, want) {
		t.Errorf("round robin = %v, want %v", got, want)
	}
	if gone := tbl.match("a.example.com", "/gone").backend; gone.unavailable == "" || gone.pick() != nil {
		t.Errorf("missing service: unavailable=%q", gone.unavailable)
	}
}
