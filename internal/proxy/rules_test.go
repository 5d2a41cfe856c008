package proxy

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Test fixtures: one Service ns/web with cluster IP 10.43.0.10 and port
// "http" 80 → 8080, and slices built from short endpoint descriptions.

type epSpec struct {
	ip, node                    string
	ready, serving, terminating bool
}

func readyEp(ip, node string) epSpec { return epSpec{ip: ip, node: node, ready: true, serving: true} }

func testService(mut ...func(*v1.Service)) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", ResourceVersion: "1"},
		Spec: v1.ServiceSpec{
			Type:       v1.ServiceTypeClusterIP,
			ClusterIP:  "10.43.0.10",
			ClusterIPs: []string{"10.43.0.10"},
			Ports:      []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80}},
		},
	}
	for _, m := range mut {
		m(s)
	}
	return s
}

func testSlice(ns, svc, name string, port int32, eps ...epSpec) *discovery.EndpointSlice {
	s := &discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: "1",
			Labels: map[string]string{discovery.LabelServiceName: svc}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(v1.ProtocolTCP), Port: ptr.To(port)}},
	}
	for _, e := range eps {
		ep := discovery.Endpoint{
			Addresses: []string{e.ip},
			Conditions: discovery.EndpointConditions{
				Ready: ptr.To(e.ready), Serving: ptr.To(e.serving), Terminating: ptr.To(e.terminating)},
		}
		if e.node != "" {
			ep.NodeName = ptr.To(e.node)
		}
		s.Endpoints = append(s.Endpoints, ep)
	}
	return s
}

// expand replaces {svc}, {ext}, {loc} with the chain names of ns/web's tcp
// port "http" and {aff:IP:T} with the affinity set of IP:8080 for timeout T.
func expand(s string) string {
	key := "ns/web/tcp/http"
	s = strings.NewReplacer("{svc}", hashName("svc-", key), "{ext}", hashName("ext-", key), "{loc}", hashName("loc-", key)).Replace(s)
	return regexp.MustCompile(`\{aff:([0-9.]+):(\d+)\}`).ReplaceAllStringFunc(s, func(m string) string {
		parts := strings.Split(m[5:len(m)-1], ":")
		return hashName("aff-", key+"/"+parts[0]+":8080/"+parts[1])
	})
}

// render writes r as a first sync would, with the dispatch chains it uses.
func render(r *serviceRules) string {
	var w strings.Builder
	for _, d := range sortedDispatch(r.dispatch) {
		writeDispatchMaps(&w, "t", d)
		writeDispatchChain(&w, "t", d)
	}
	writeDiff(&w, "t", nil, r)
	return w.String()
}

func TestServiceRules(t *testing.T) {
	nodePort := func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30080
	}
	etpLocal := func(s *v1.Service) { s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal }
	itpLocal := func(s *v1.Service) { s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal) }
	two := []epSpec{readyEp("10.42.1.1", "n1"), readyEp("10.42.2.1", "n2")}

	cases := []struct {
		name    string
		svc     *v1.Service
		eps     []epSpec
		want    []string
		notWant []string
	}{{
		name: "cluster IP with two endpoints",
		svc:  testService(),
		eps:  two,
		want: []string{
			"add element ip t service-ips { 10.43.0.10 . tcp . 80 : goto dispatch-cluster-2 }",
			"add map ip t endpoints-cluster-2 { typeof ip daddr . meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport; }\n",
			"add rule ip t dispatch-cluster-2 meta l4proto tcp dnat ip addr . port to ip daddr . meta l4proto . th dport . numgen random mod 2 map @endpoints-cluster-2\n",
			"add rule ip t dispatch-cluster-2 meta l4proto udp dnat ip addr . port to meta l4proto . th dport . numgen random mod 2 map @endpoints-np-cluster-2\n",
			"add element ip t endpoints-cluster-2 { 10.43.0.10 . tcp . 80 . 0 : 10.42.1.1 . 8080 }\n" +
				"add element ip t endpoints-cluster-2 { 10.43.0.10 . tcp . 80 . 1 : 10.42.2.1 . 8080 }\n",
		},
		// The masquerade of non-pod sources is one rule in the base chains.
		notWant: []string{"service-nodeports", "no-endpoint", "{ext}", "local", "update @", "saddr", "{svc}", "element ip t endpoints-np"},
	}, {
		name: "single endpoint",
		svc:  testService(),
		eps:  two[:1],
		want: []string{"add element ip t endpoints-cluster-1 { 10.43.0.10 . tcp . 80 . 0 : 10.42.1.1 . 8080 }\n",
			"numgen random mod 1 map @endpoints-cluster-1\n"},
	}, {
		name: "NodePort masquerades external traffic",
		svc:  testService(nodePort),
		eps:  two,
		want: []string{
			"add element ip t service-nodeports { tcp . 30080 : goto {ext} }",
			"add element ip t service-ips { 10.43.0.10 . tcp . 80 : goto dispatch-cluster-2 }",
			"add rule ip t {ext} jump mark-for-masquerade\nadd rule ip t {ext} goto dispatch-cluster-2\n",
			"add element ip t endpoints-np-cluster-2 { tcp . 30080 . 1 : 10.42.2.1 . 8080 }\n",
		},
		notWant: []string{"fib saddr"},
	}, {
		name: "LoadBalancer ingress IPs except ipMode Proxy, and externalIPs",
		svc: testService(nodePort, func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			s.Spec.ExternalIPs = []string{"198.51.100.7", "2001:db8::1"}
			s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{
				{IP: "192.0.2.10"}, {IP: "192.0.2.11", IPMode: ptr.To(v1.LoadBalancerIPModeProxy)}, {Hostname: "lb.example"}}
		}),
		eps: two,
		want: []string{
			"add element ip t external-ips { 192.0.2.10 . tcp . 80 : goto {ext} }",
			"add element ip t external-ips { 198.51.100.7 . tcp . 80 : goto {ext} }",
			"add element ip t service-nodeports { tcp . 30080 : goto {ext} }",
			"add element ip t endpoints-cluster-2 { 192.0.2.10 . tcp . 80 . 1 : 10.42.2.1 . 8080 }",
			"add element ip t endpoints-cluster-2 { 198.51.100.7 . tcp . 80 . 0 : 10.42.1.1 . 8080 }",
		},
		notWant: []string{"192.0.2.11", "2001:db8"},
	}, {
		name: "externalTrafficPolicy Local keeps the source, short-circuits pods and the node",
		svc:  testService(nodePort, etpLocal),
		eps:  two,
		want: []string{
			"add rule ip t {ext} ip saddr 10.42.0.0/16 goto dispatch-cluster-2\n" +
				"add rule ip t {ext} fib saddr type local jump mark-for-masquerade\n" +
				"add rule ip t {ext} fib saddr type local goto dispatch-cluster-2\n" +
				"add rule ip t {ext} goto dispatch-local-1\n",
			"add element ip t endpoints-np-local-1 { tcp . 30080 . 0 : 10.42.1.1 . 8080 }\n",
			"add element ip t endpoints-np-cluster-2 { tcp . 30080 . 1 : 10.42.2.1 . 8080 }\n",
			"add element ip t service-ips { 10.43.0.10 . tcp . 80 : goto dispatch-cluster-2 }",
		},
		notWant: []string{"add rule ip t {ext} jump mark-for-masquerade", "local-1 { tcp . 30080 . 1", "local-1 { 10.43.0.10", "drop"},
	}, {
		name: "externalTrafficPolicy Local without local endpoints drops external traffic",
		svc:  testService(nodePort, etpLocal),
		eps:  two[1:],
		want: []string{
			"add element ip t no-endpoint-nodeports { tcp . 30080 : drop }",
			"add element ip t service-nodeports { tcp . 30080 : goto {ext} }",
			"add rule ip t {ext} fib saddr type local goto dispatch-cluster-1\n",
			"add element ip t service-ips { 10.43.0.10 . tcp . 80 : goto dispatch-cluster-1 }",
		},
		notWant: []string{"local-", "reject"},
	}, {
		name:    "internalTrafficPolicy Local uses only local endpoints",
		svc:     testService(itpLocal),
		eps:     two,
		want:    []string{"add element ip t service-ips { 10.43.0.10 . tcp . 80 : goto dispatch-local-1 }", "add element ip t endpoints-local-1 { 10.43.0.10 . tcp . 80 . 0 : 10.42.1.1 . 8080 }\n"},
		notWant: []string{"10.42.2.1", "cluster"},
	}, {
		name:    "internalTrafficPolicy Local without local endpoints drops",
		svc:     testService(itpLocal),
		eps:     two[1:],
		want:    []string{"add element ip t no-endpoint-services { 10.43.0.10 . tcp . 80 : drop }"},
		notWant: []string{"service-ips", "add chain", "dispatch"},
	}, {
		name: "no endpoints rejects on every address",
		svc:  testService(nodePort, func(s *v1.Service) { s.Spec.ExternalIPs = []string{"198.51.100.7"} }),
		want: []string{
			"add element ip t no-endpoint-services { 10.43.0.10 . tcp . 80 : goto reject-chain }",
			"add element ip t no-endpoint-services { 198.51.100.7 . tcp . 80 : goto reject-chain }",
			"add element ip t no-endpoint-nodeports { tcp . 30080 : goto reject-chain }",
		},
		notWant: []string{"service-ips", "service-nodeports", "add chain", "add rule"},
	}, {
		name: "serving terminating endpoints are used when none is ready",
		svc:  testService(),
		eps: []epSpec{{ip: "10.42.1.1"}, {ip: "10.42.2.1", serving: true, terminating: true},
			{ip: "10.42.3.1", terminating: true}},
		want:    []string{"add element ip t endpoints-cluster-1 { 10.43.0.10 . tcp . 80 . 0 : 10.42.2.1 . 8080 }\n"},
		notWant: []string{"10.42.1.1", "10.42.3.1", "reject"},
	}, {
		name:    "ready endpoints win over terminating ones",
		svc:     testService(),
		eps:     []epSpec{readyEp("10.42.1.1", ""), {ip: "10.42.2.1", serving: true, terminating: true}},
		want:    []string{"add element ip t endpoints-cluster-1 { 10.43.0.10 . tcp . 80 . 0 : 10.42.1.1 . 8080 }\n"},
		notWant: []string{"10.42.2.1"},
	}, {
		name:    "terminating endpoints that do not serve are not used",
		svc:     testService(),
		eps:     []epSpec{{ip: "10.42.2.1", terminating: true}},
		want:    []string{"no-endpoint-services { 10.43.0.10 . tcp . 80 : goto reject-chain }"},
		notWant: []string{"10.42.2.1"},
	}, {
		name: "ClientIP affinity with a timeout",
		svc: testService(func(s *v1.Service) {
			s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](60)}}
		}),
		eps: two,
		want: []string{
			"add set ip t {aff:10.42.1.1:60} { type ipv4_addr; flags dynamic,timeout; timeout 60s; }",
			"add rule ip t {svc} ip saddr @{aff:10.42.1.1:60} meta l4proto tcp update @{aff:10.42.1.1:60} { ip saddr } dnat to 10.42.1.1:8080\n" +
				"add rule ip t {svc} ip saddr @{aff:10.42.2.1:60} meta l4proto tcp update @{aff:10.42.2.1:60} { ip saddr } dnat to 10.42.2.1:8080\n" +
				"add rule ip t {svc} meta l4proto tcp numgen random mod 2 == 0 update @{aff:10.42.1.1:60} { ip saddr } dnat to 10.42.1.1:8080\n" +
				"add rule ip t {svc} meta l4proto tcp update @{aff:10.42.2.1:60} { ip saddr } dnat to 10.42.2.1:8080\n",
			"add element ip t service-ips { 10.43.0.10 . tcp . 80 : goto {svc} }",
		},
		// Each pick refreshes the client's entry: no shared dispatch.
		notWant: []string{"dispatch", "endpoints-"},
	}, {
		name:    "headless services are ignored",
		svc:     testService(func(s *v1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", []string{"None"} }),
		eps:     two,
		notWant: []string{"add"},
	}, {
		name: "ExternalName services are ignored",
		svc: testService(func(s *v1.Service) {
			s.Spec.Type, s.Spec.ExternalName, s.Spec.ClusterIP, s.Spec.ClusterIPs = v1.ServiceTypeExternalName, "example.com", "", nil
		}),
		notWant: []string{"add"},
	}, {
		name:    "IPv6-only services are ignored",
		svc:     testService(func(s *v1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "fd00::10", []string{"fd00::10"} }),
		eps:     two,
		notWant: []string{"add"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := builder{nodeName: "n1", clusterCIDR: netip.MustParsePrefix("10.42.0.0/16")}
			var sl []*discovery.EndpointSlice
			if len(tc.eps) > 0 {
				sl = append(sl, testSlice("ns", "web", "web-1", 8080, tc.eps...))
			}
			got := render(b.service(tc.svc, sl))
			for _, w := range tc.want {
				if w = expand(w); !strings.Contains(got, w) {
					t.Errorf("missing %q in:\n%s", w, got)
				}
			}
			for _, w := range tc.notWant {
				if w = expand(w); strings.Contains(got, w) {
					t.Errorf("unexpected %q in:\n%s", w, got)
				}
			}
		})
	}
}

// Ports are matched to slice ports by name and protocol, so a named
// targetPort resolves per port and IPv6 or FQDN slices are skipped.
func TestEndpointPortMatching(t *testing.T) {
	svc := testService(func(s *v1.Service) {
		s.Spec.Ports = []v1.ServicePort{
			{Name: "dns", Protocol: v1.ProtocolUDP, Port: 53},
			{Name: "dns-tcp", Protocol: v1.ProtocolTCP, Port: 53},
			{Name: "sctp", Protocol: v1.ProtocolSCTP, Port: 9},
		}
	})
	sl := testSlice("ns", "web", "web-1", 0, readyEp("10.42.1.1", ""))
	sl.Ports = []discovery.EndpointPort{
		{Name: ptr.To("dns"), Protocol: ptr.To(v1.ProtocolUDP), Port: ptr.To[int32](5353)},
		{Name: ptr.To("dns-tcp"), Protocol: ptr.To(v1.ProtocolTCP), Port: ptr.To[int32](5354)},
		{Name: ptr.To("sctp"), Protocol: ptr.To(v1.ProtocolSCTP), Port: ptr.To[int32](9999)},
	}
	v6 := testSlice("ns", "web", "web-2", 0, readyEp("fd00::1", ""))
	v6.AddressType = discovery.AddressTypeIPv6
	v6.Ports = sl.Ports
	got := render((&builder{}).service(svc, []*discovery.EndpointSlice{sl, v6}))
	for _, w := range []string{
		"service-ips { 10.43.0.10 . udp . 53 : goto dispatch-cluster-1 }",
		"service-ips { 10.43.0.10 . tcp . 53 : goto dispatch-cluster-1 }",
		"service-ips { 10.43.0.10 . sctp . 9 : goto dispatch-cluster-1 }",
		"endpoints-cluster-1 { 10.43.0.10 . udp . 53 . 0 : 10.42.1.1 . 5353 }",
		"endpoints-cluster-1 { 10.43.0.10 . tcp . 53 . 0 : 10.42.1.1 . 5354 }",
		"endpoints-cluster-1 { 10.43.0.10 . sctp . 9 . 0 : 10.42.1.1 . 9999 }",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
	if strings.Contains(got, "fd00") || strings.Contains(got, "saddr !=") {
		t.Errorf("IPv6 endpoint or masquerade without cluster CIDR in:\n%s", got)
	}
}

// Chain names must be stable across runs and short.
func TestHashName(t *testing.T) {
	a, b := hashName("svc-", "ns/web/tcp/http"), hashName("svc-", "ns/web/tcp/https")
	if a != hashName("svc-", "ns/web/tcp/http") || a == b {
		t.Fatalf("hash not deterministic or collides: %s %s", a, b)
	}
	if len(a) != 4+16 || !regexp.MustCompile(`^svc-[A-Z2-7]{16}$`).MatchString(a) {
		t.Fatalf("unexpected name %q", a)
	}

}
