package dns

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/dns/dnsmessage"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

const soaRR = "cluster.local. SOA ns.dns.cluster.local. hostmaster.cluster.local. 7200 1800 86400 5"

func fixture() []runtime.Object {
	web := service("default", "web", "10.43.0.20", port("http", corev1.ProtocolTCP, 80), port("dns", corev1.ProtocolUDP, 53))
	v6 := service("default", "v6", "fd00:43::20", port("http", corev1.ProtocolTCP, 80))
	dual := service("default", "dual", "10.43.0.21,fd00:43::21")
	unnamed := service("default", "unnamed", "10.43.0.22", port("", corev1.ProtocolTCP, 8080))
	db := service("data", "db", "None", port("pg", corev1.ProtocolTCP, 5432), port("udp-stats", corev1.ProtocolUDP, 8125))
	pub := service("data", "pub", "None", port("http", corev1.ProtocolTCP, 80))
	pub.Spec.PublishNotReadyAddresses = true
	empty := service("data", "empty", "None")
	ext := service("default", "ext", "", port("https", corev1.ProtocolTCP, 443))
	ext.Spec.Type = corev1.ServiceTypeExternalName
	ext.Spec.ExternalName = "example.com"
	plain := service("default", "plain", "10.43.0.23") // ClusterIP endpoints are not published
	badExt := service("default", "badext", "")
	badExt.Spec.Type = corev1.ServiceTypeExternalName
	badExt.Spec.ExternalName = "a..b" // the API refuses it; DNS must not fail on it either
	kubeDNS := service("kube-system", "kube-dns", "10.43.0.10", port("dns", corev1.ProtocolUDP, 53))
	return []runtime.Object{
		web, v6, dual, unnamed, db, pub, empty, ext, badExt, plain, kubeDNS,
		slice("data", "db-a", "db", discoveryv1.AddressTypeIPv4, map[string]int32{"pg": 15432, "udp-stats": 18125},
			testEndpoint{addr: "10.42.0.5", hostname: "db-0"},
			testEndpoint{addr: "10.42.0.6"},
			testEndpoint{addr: "10.42.0.7", hostname: "db-2", notReady: true}),
		// The same endpoint in a second slice, as while the controller
		// moves it, must be answered once.
		slice("data", "db-b", "db", discoveryv1.AddressTypeIPv4, map[string]int32{"pg": 15432, "udp-stats": 18125},
			testEndpoint{addr: "10.42.0.5", hostname: "db-0"}),
		slice("data", "db-v6", "db", discoveryv1.AddressTypeIPv6, map[string]int32{"pg": 15432},
			testEndpoint{addr: "fd00:42::9", hostname: "db-9"}),
		slice("data", "pub-a", "pub", discoveryv1.AddressTypeIPv4, map[string]int32{"http": 8080},
			testEndpoint{addr: "10.42.1.9", hostname: "pub-0", notReady: true}),
		slice("default", "plain-a", "plain", discoveryv1.AddressTypeIPv4, map[string]int32{"": 80},
			testEndpoint{addr: "10.42.2.2", hostname: "p"}),
	}
}

func TestLookup(t *testing.T) {
	s := newTestServer(t, Config{}, fixture()...)
	A, AAAA, SRV, PTR, CNAME, TXT, SOA, NS, MX, ANY := dnsmessage.TypeA, dnsmessage.TypeAAAA, dnsmessage.TypeSRV,
		dnsmessage.TypePTR, dnsmessage.TypeCNAME, dnsmessage.TypeTXT, dnsmessage.TypeSOA, dnsmessage.TypeNS, dnsmessage.TypeMX, dnsmessage.TypeALL
	ok, nx := dnsmessage.RCodeSuccess, dnsmessage.RCodeNameError
	tests := []struct {
		name      string
		qname     string
		qtype     dnsmessage.Type
		rcode     dnsmessage.RCode
		answers   []string
		authority []string
		extra     []string
	}{
		{"cluster IP", "web.default.svc.cluster.local.", A, ok,
			[]string{"web.default.svc.cluster.local. A 10.43.0.20"}, nil, nil},
		{"case-insensitive, answer keeps the asked case", "WeB.DeFault.SVC.Cluster.Local.", A, ok,
			[]string{"WeB.DeFault.SVC.Cluster.Local. A 10.43.0.20"}, nil, nil},
		{"AAAA for an IPv4 service is NODATA", "web.default.svc.cluster.local.", AAAA, ok,
			nil, []string{soaRR}, nil},
		{"MX for a service is NODATA", "web.default.svc.cluster.local.", MX, ok,
			nil, []string{soaRR}, nil},
		{"IPv6 cluster IP", "v6.default.svc.cluster.local.", AAAA, ok,
			[]string{"v6.default.svc.cluster.local. AAAA fd00:43::20"}, nil, nil},
		{"A for an IPv6 service is NODATA", "v6.default.svc.cluster.local.", A, ok,
			nil, []string{soaRR}, nil},
		{"dual-stack A", "dual.default.svc.cluster.local.", A, ok,
			[]string{"dual.default.svc.cluster.local. A 10.43.0.21"}, nil, nil},
		{"dual-stack AAAA", "dual.default.svc.cluster.local.", AAAA, ok,
			[]string{"dual.default.svc.cluster.local. AAAA fd00:43::21"}, nil, nil},
		{"ANY gets both families", "dual.default.svc.cluster.local.", ANY, ok,
			[]string{"dual.default.svc.cluster.local. A 10.43.0.21", "dual.default.svc.cluster.local. AAAA fd00:43::21"}, nil, nil},
		{"missing service", "nope.default.svc.cluster.local.", A, nx, nil, []string{soaRR}, nil},
		{"missing namespace", "web.nope.svc.cluster.local.", A, nx, nil, []string{soaRR}, nil},
		{"headless: ready endpoints once each", "db.data.svc.cluster.local.", A, ok, []string{
			"db.data.svc.cluster.local. A 10.42.0.5",
			"db.data.svc.cluster.local. A 10.42.0.6",
		}, nil, nil},
		{"headless AAAA", "db.data.svc.cluster.local.", AAAA, ok,
			[]string{"db.data.svc.cluster.local. AAAA fd00:42::9"}, nil, nil},
		{"headless publishNotReadyAddresses", "pub.data.svc.cluster.local.", A, ok,
			[]string{"pub.data.svc.cluster.local. A 10.42.1.9"}, nil, nil},
		{"headless without endpoints is NODATA", "empty.data.svc.cluster.local.", A, ok, nil, []string{soaRR}, nil},
		{"endpoint hostname", "db-0.db.data.svc.cluster.local.", A, ok,
			[]string{"db-0.db.data.svc.cluster.local. A 10.42.0.5"}, nil, nil},
		{"endpoint name made from its IP", "10-42-0-6.db.data.svc.cluster.local.", A, ok,
			[]string{"10-42-0-6.db.data.svc.cluster.local. A 10.42.0.6"}, nil, nil},
		{"not-ready endpoint hostname does not exist", "db-2.db.data.svc.cluster.local.", A, nx, nil, []string{soaRR}, nil},
		{"endpoint hostname, wrong family is NODATA", "db-0.db.data.svc.cluster.local.", AAAA, ok, nil, []string{soaRR}, nil},
		{"endpoint names only exist for headless services", "p.plain.default.svc.cluster.local.", A, nx, nil, []string{soaRR}, nil},
		{"ExternalName", "ext.default.svc.cluster.local.", A, ok,
			[]string{"ext.default.svc.cluster.local. CNAME example.com."}, nil, nil},
		{"ExternalName CNAME question", "ext.default.svc.cluster.local.", CNAME, ok,
			[]string{"ext.default.svc.cluster.local. CNAME example.com."}, nil, nil},
		{"ExternalName that is no DNS name is NODATA", "badext.default.svc.cluster.local.", A, ok, nil, []string{soaRR}, nil},
		{"SRV cluster IP", "_http._tcp.web.default.svc.cluster.local.", SRV, ok,
			[]string{"_http._tcp.web.default.svc.cluster.local. SRV 0 100 80 web.default.svc.cluster.local."},
			nil, []string{"web.default.svc.cluster.local. A 10.43.0.20"}},
		{"SRV proto is case-insensitive", "_DNS._UDP.web.default.svc.cluster.local.", SRV, ok,
			[]string{"_DNS._UDP.web.default.svc.cluster.local. SRV 0 100 53 web.default.svc.cluster.local."},
			nil, []string{"web.default.svc.cluster.local. A 10.43.0.20"}},
		{"SRV wrong protocol", "_http._udp.web.default.svc.cluster.local.", SRV, nx, nil, []string{soaRR}, nil},
		{"SRV unknown port", "_ftp._tcp.web.default.svc.cluster.local.", SRV, nx, nil, []string{soaRR}, nil},
		{"A at an SRV name is NODATA", "_http._tcp.web.default.svc.cluster.local.", A, ok, nil, []string{soaRR}, nil},
		{"_proto parent is an empty non-terminal", "_tcp.web.default.svc.cluster.local.", A, ok, nil, []string{soaRR}, nil},
		{"SRV at the service name lists named ports", "web.default.svc.cluster.local.", SRV, ok, []string{
			"web.default.svc.cluster.local. SRV 0 50 53 web.default.svc.cluster.local.",
			"web.default.svc.cluster.local. SRV 0 50 80 web.default.svc.cluster.local.",
		}, nil, []string{"web.default.svc.cluster.local. A 10.43.0.20"}},
		{"unnamed ports have no SRV", "unnamed.default.svc.cluster.local.", SRV, ok, nil, []string{soaRR}, nil},
		{"SRV headless: one per endpoint at the endpoint port", "_pg._tcp.db.data.svc.cluster.local.", SRV, ok, []string{
			"_pg._tcp.db.data.svc.cluster.local. SRV 0 33 15432 10-42-0-6.db.data.svc.cluster.local.",
			"_pg._tcp.db.data.svc.cluster.local. SRV 0 33 15432 db-0.db.data.svc.cluster.local.",
			"_pg._tcp.db.data.svc.cluster.local. SRV 0 33 15432 db-9.db.data.svc.cluster.local.",
		}, nil, []string{
			"10-42-0-6.db.data.svc.cluster.local. A 10.42.0.6",
			"db-0.db.data.svc.cluster.local. A 10.42.0.5",
			"db-9.db.data.svc.cluster.local. AAAA fd00:42::9",
		}},
		{"SRV headless UDP port", "_udp-stats._udp.db.data.svc.cluster.local.", SRV, ok, []string{
			"_udp-stats._udp.db.data.svc.cluster.local. SRV 0 50 18125 10-42-0-6.db.data.svc.cluster.local.",
			"_udp-stats._udp.db.data.svc.cluster.local. SRV 0 50 18125 db-0.db.data.svc.cluster.local.",
		}, nil, []string{
			"10-42-0-6.db.data.svc.cluster.local. A 10.42.0.6",
			"db-0.db.data.svc.cluster.local. A 10.42.0.5",
		}},
		{"SRV ExternalName", "_https._tcp.ext.default.svc.cluster.local.", SRV, ok,
			[]string{"_https._tcp.ext.default.svc.cluster.local. SRV 0 100 443 example.com."}, nil, nil},
		{"pod IPv4", "10-42-0-99.anything.pod.cluster.local.", A, ok,
			[]string{"10-42-0-99.anything.pod.cluster.local. A 10.42.0.99"}, nil, nil},
		{"pod IPv4, AAAA is NODATA", "10-42-0-99.anything.pod.cluster.local.", AAAA, ok, nil, []string{soaRR}, nil},
		{"pod IPv6", "fd00-42--99.default.pod.cluster.local.", AAAA, ok,
			[]string{"fd00-42--99.default.pod.cluster.local. AAAA fd00:42::99"}, nil, nil},
		{"pod bad address", "10-42-0-999.default.pod.cluster.local.", A, nx, nil, []string{soaRR}, nil},
		{"pod too deep", "x.10-42-0-9.default.pod.cluster.local.", A, nx, nil, []string{soaRR}, nil},
		{"PTR cluster IP", "20.0.43.10.in-addr.arpa.", PTR, ok,
			[]string{"20.0.43.10.in-addr.arpa. PTR web.default.svc.cluster.local."}, nil, nil},
		{"PTR IPv6 cluster IP", ip6arpa("fd00:43::20"), PTR, ok,
			[]string{ip6arpa("fd00:43::20") + " PTR v6.default.svc.cluster.local."}, nil, nil},
		{"PTR headless endpoint hostname", "5.0.42.10.in-addr.arpa.", PTR, ok,
			[]string{"5.0.42.10.in-addr.arpa. PTR db-0.db.data.svc.cluster.local."}, nil, nil},
		{"PTR headless endpoint without hostname", "6.0.42.10.IN-ADDR.ARPA.", PTR, ok,
			[]string{"6.0.42.10.IN-ADDR.ARPA. PTR 10-42-0-6.db.data.svc.cluster.local."}, nil, nil},
		{"SOA at the apex", "cluster.local.", SOA, ok, []string{soaRR}, nil, nil},
		{"NS at the apex with glue", "cluster.local.", NS, ok,
			[]string{"cluster.local. NS ns.dns.cluster.local."}, nil, []string{"ns.dns.cluster.local. A 10.43.0.10"}},
		{"A at the apex is NODATA", "cluster.local.", A, ok, nil, []string{soaRR}, nil},
		{"nameserver address", "ns.dns.cluster.local.", A, ok, []string{"ns.dns.cluster.local. A 10.43.0.10"}, nil, nil},
		{"schema version", "dns-version.cluster.local.", TXT, ok, []string{"dns-version.cluster.local. TXT 1.1.0"}, nil, nil},
		{"svc is an empty non-terminal", "svc.cluster.local.", A, ok, nil, []string{soaRR}, nil},
		{"namespace with services", "default.svc.cluster.local.", A, ok, nil, []string{soaRR}, nil},
		{"namespace without services", "nope.svc.cluster.local.", A, nx, nil, []string{soaRR}, nil},
		{"unknown name in the domain", "foo.cluster.local.", A, nx, nil, []string{soaRR}, nil},
		{"too deep", "a.b._http._tcp.web.default.svc.cluster.local.", A, nx, nil, []string{soaRR}, nil},
	}
	sc := newScratch()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, fwd := s.handle(sc, makeQuery(t, tt.qname, tt.qtype, queryOpts{}), false)
			if fwd || resp == nil {
				t.Fatalf("handle: forward=%v resp=%v, want an answer", fwd, resp)
			}
			m := unpack(t, resp)
			if m.RCode != tt.rcode || !m.Authoritative || !m.Response || m.ID != 0x1234 {
				t.Errorf("header = %+v, want rcode %v, authoritative response with ID 0x1234", m.Header, tt.rcode)
			}
			if len(m.Questions) != 1 || m.Questions[0].Name.String() != tt.qname || m.Questions[0].Type != tt.qtype {
				t.Errorf("question not echoed: %+v", m.Questions)
			}
			got := map[string][]string{"answers": rrs(m.Answers), "authority": rrs(m.Authorities), "extra": rrs(m.Additionals)}
			want := map[string][]string{"answers": norm(tt.answers), "authority": norm(tt.authority), "extra": norm(tt.extra)}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
		})
	}
}

func norm(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ip6arpa renders the ip6.arpa name of an IPv6 address.
func ip6arpa(s string) string {
	addr := mustAddr(s).As16()
	var b strings.Builder
	for i := 15; i >= 0; i-- {
		fmt.Fprintf(&b, "%x.%x.", addr[i]&0xf, addr[i]>>4)
	}
	return b.String() + "ip6.arpa."
}

func TestDomainAndTTL(t *testing.T) {
	s := newTestServer(t, Config{Domain: "Example.Test.", TTL: 30}, fixture()...)
	sc := newScratch()
	tests := []struct {
		qname string
		rcode dnsmessage.RCode
		want  string
	}{
		{"web.default.svc.example.test.", dnsmessage.RCodeSuccess, "web.default.svc.example.test. A 10.43.0.20"},
		{"nope.default.svc.example.test.", dnsmessage.RCodeNameError, "example.test. SOA ns.dns.example.test. hostmaster.example.test. 7200 1800 86400 30"},
	}
	for _, tt := range tests {
		resp, fwd := s.handle(sc, makeQuery(t, tt.qname, dnsmessage.TypeA, queryOpts{}), true)
		if fwd {
			t.Fatalf("%s: forwarded", tt.qname)
		}
		m := unpack(t, resp)
		all := append(m.Answers, m.Authorities...)
		if m.RCode != tt.rcode || len(all) != 1 || rr(all[0]) != tt.want || all[0].Header.TTL != 30 {
			t.Errorf("%s: rcode %v records %q, want %v %q with TTL 30", tt.qname, m.RCode, rrs(all), tt.rcode, tt.want)
		}
	}
	// The old default domain is now someone else's.
	resp, _ := s.handle(sc, makeQuery(t, "web.default.svc.cluster.local.", dnsmessage.TypeA, queryOpts{}), true)
	if m := unpack(t, resp); m.RCode != dnsmessage.RCodeRefused {
		t.Errorf("cluster.local with domain example.test: rcode %v, want REFUSED (not ours, no upstreams)", m.RCode)
	}
}
