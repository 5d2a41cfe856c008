package proxy

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// udpService is ns/web as a UDP DNS service: 10.43.0.10:53, port "dns".
func udpService(mut ...func(*v1.Service)) *v1.Service {
	return testService(append([]func(*v1.Service){func(s *v1.Service) {
		s.Spec.Ports = []v1.ServicePort{{Name: "dns", Protocol: v1.ProtocolUDP, Port: 53}}
	}}, mut...)...)
}

// udpSlice is a slice of ns/web's port "dns" on 5353 (or port).
func udpSlice(name string, port int32, eps ...epSpec) *discovery.EndpointSlice {
	s := testSlice("ns", "web", name, port, eps...)
	s.Ports[0].Name, s.Ports[0].Protocol = ptr.To("dns"), ptr.To(v1.ProtocolUDP)
	return s
}

func flt(dst string, port uint16, reply string) ConntrackFilter {
	f := ConntrackFilter{OrigDstPort: port}
	if dst != "" {
		f.OrigDst = netip.MustParseAddr(dst)
	}
	if reply != "" {
		f.ReplySrc = netip.MustParseAddrPort(reply)
	}
	return f
}

func sortFilters(fs []ConntrackFilter) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		out = append(out, f.String())
	}
	slices.Sort(out)
	return out
}

func TestStaleConntrack(t *testing.T) {
	a, b := readyEp("10.42.1.1", "n1"), readyEp("10.42.1.2", "n2")
	nodePort := func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = 30053
		s.Spec.ExternalIPs = []string{"198.51.100.7"}
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.9"}}
	}
	tcp := func(s *v1.Service) { s.Spec.Ports[0].Protocol = v1.ProtocolTCP }
	type state struct {
		svc    *v1.Service // nil: no Service
		slices []*discovery.EndpointSlice
	}
	for _, tc := range []struct {
		name     string
		old, cur state
		want     []ConntrackFilter
	}{
		{
			name: "unchanged",
			old:  state{udpService(), []*discovery.EndpointSlice{udpSlice("s1", 5353, a, b)}},
			cur:  state{udpService(), []*discovery.EndpointSlice{udpSlice("s1", 5353, a, b)}},
		},
		{
			name: "endpoint added",
			old:  state{udpService(), []*discovery.EndpointSlice{udpSlice("s1", 5353, a)}},
			cur:  state{udpService(), []*discovery.EndpointSlice{udpSlice("s1", 5353, a, b)}},
		},
		{
			name: "endpoint removed",
			old:  state{udpService(), []*discovery.EndpointSlice{udpSlice("s1", 5353, a, b)}},
			cur:  state{udpService(), []*discovery.EndpointSlice{udpSlice("s1", 5353, b)}},
			want: []ConntrackFilter{flt("10.43.0.10", 53, "10.42.1.1:5353")},
		},
		{
			name: "endpoint removed, at every address and the NodePort",
			old:  state{udpService(nodePort), []*discovery.EndpointSlice{udpSlice("s1", 5353, a, b)}},
			cur:  state{udpService(nodePort), []*discovery.EndpointSlice{udpSlice("s1", 5353, b)}},
			want: []ConntrackFilter{
				flt("10.43.0.10", 53, "10.42.1.1:5353"),
				flt("198.51.100.7", 53, "10.42.1.1:5353"),
				flt("203.0.113.9", 53, "10.42.1.1:5353"),
				flt("", 30053, "10.42.1.1:5353"),
			},
		},
		{
			name: "endpoint not serving any more",
			old:  state{udpService(), []*discovery.EndpointSlice{udpSlice("s1", 5353, a, b)}},
			cur:  state{udpService(), []*discovery.EndpointSlice{udpSlice("s1", 5353, epSpec{ip: "10.42.1.1"}, b)}},
			want: []ConntrackFilter{flt("10.43.0.10", 53, "10.42.1.1:5353")},
		},
		{
			// Still serving: its flows may finish, as TCP connections do.
			name: "endpoint terminating but serving",
			old:  state{udpService(), []*discovery.EndpointSlice{udpSlice("s1", 5353, a, b)}},
			cur: state{udpService(), []*discovery.EndpointSlice{udpSlice("s1", 5353,
				epSpec{ip: "10.42.1.1", serving: true, terminating: true}, b)}},
		},
		{
			name: "endpoint port changed",
			old:  state{udpService(), []*discovery.EndpointSlice{udpSlice("s1", 5353, a)}},
			cur:  state{udpService(), []*discovery.EndpointSlice{udpSlice("s1", 5354, a)}},
			want: []ConntrackFilter{flt("10.43.0.10", 53, "10.42.1.1:5353")},
		},
		{
			name: "last endpoint removed",
			old:  state{udpService(nodePort), []*discovery.EndpointSlice{udpSlice("s1", 5353, a)}},
			cur:  state{udpService(nodePort), []*discovery.EndpointSlice{udpSlice("s1", 5353)}},
			want: []ConntrackFilter{
				flt("10.43.0.10", 53, "10.42.1.1:5353"),
				flt("198.51.100.7", 53, "10.42.1.1:5353"),
				flt("203.0.113.9", 53, "10.42.1.1:5353"),
				flt("", 30053, "10.42.1.1:5353"),
			},
		},
		{
			name: "service deleted",
			old:  state{udpService(), []*discovery.EndpointSlice{udpSlice("s1", 5353, a, b)}},
			want: []ConntrackFilter{flt("10.43.0.10", 53, "10.42.1.1:5353"), flt("10.43.0.10", 53, "10.42.1.2:5353")},
		},
		{
			name: "first endpoint",
			old:  state{udpService(nodePort), []*discovery.EndpointSlice{udpSlice("s1", 5353)}},
			cur:  state{udpService(nodePort), []*discovery.EndpointSlice{udpSlice("s1", 5353, a)}},
			want: []ConntrackFilter{flt("10.43.0.10", 53, ""), flt("198.51.100.7", 53, ""),
				flt("203.0.113.9", 53, ""), flt("", 30053, "")},
		},
		{
			name: "first endpoint is a terminating one",
			old:  state{udpService(), nil},
			cur: state{udpService(), []*discovery.EndpointSlice{udpSlice("s1", 5353,
				epSpec{ip: "10.42.1.1", serving: true, terminating: true})}},
			want: []ConntrackFilter{flt("10.43.0.10", 53, "")},
		},
		{
			name: "new service with endpoints",
			cur:  state{udpService(), []*discovery.EndpointSlice{udpSlice("s1", 5353, a)}},
			want: []ConntrackFilter{flt("10.43.0.10", 53, "")},
		},
		{
			name: "new service without endpoints",
			cur:  state{udpService(), nil},
		},
		{
			name: "TCP endpoint removed",
			old:  state{udpService(tcp), []*discovery.EndpointSlice{testSlice("ns", "web", "s1", 5353, a, b)}},
			cur:  state{udpService(tcp), []*discovery.EndpointSlice{testSlice("ns", "web", "s1", 5353, b)}},
		},
		{
			// The slice of another port: the endpoint never served "dns".
			name: "slice port of another name",
			old:  state{udpService(), []*discovery.EndpointSlice{testSlice("ns", "web", "s1", 5353, a)}},
			cur:  state{udpService(), nil},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := builder{nodeName: "n1", clusterCIDR: netip.MustParsePrefix("10.42.0.0/16")}
			var old, cur *serviceRules
			if tc.old.svc != nil {
				old = b.service(tc.old.svc, tc.old.slices)
			}
			if tc.cur.svc != nil {
				cur = b.service(tc.cur.svc, tc.cur.slices)
			}
			got, want := sortFilters(staleConntrack(old, cur)), sortFilters(tc.want)
			if !slices.Equal(got, want) {
				t.Errorf("got  %q\nwant %q", got, want)
			}
		})
	}
}

func TestConntrackFiltersMatch(t *testing.T) {
	set := newConntrackFilters([]ConntrackFilter{
		flt("10.43.0.10", 53, "10.42.1.1:5353"), // removed endpoint
		flt("10.43.0.20", 53, ""),               // first endpoint
		flt("", 30053, "10.42.1.1:5353"),        // removed endpoint, NodePort
		flt("", 30054, ""),                      // first endpoint, NodePort
	})
	for _, tc := range []struct {
		origDst, replySrc string
		want              bool
	}{
		{"10.43.0.10:53", "10.42.1.1:5353", true},
		{"10.43.0.10:53", "10.42.1.2:5353", false}, // another endpoint
		{"10.43.0.10:53", "10.42.1.1:5354", false}, // another port of the endpoint
		{"10.43.0.10:54", "10.42.1.1:5353", false}, // another service port
		{"10.43.0.11:53", "10.42.1.1:5353", false}, // another service
		{"10.43.0.20:53", "10.43.0.20:53", true},   // not DNATed
		{"10.43.0.20:53", "10.42.1.9:5353", true},  // any reply source
		{"10.43.0.20:54", "10.43.0.20:54", false},
		{"192.168.77.1:30053", "10.42.1.1:5353", true}, // NodePort on any address
		{"192.168.77.1:30053", "10.42.1.2:5353", false},
		{"10.0.0.1:30054", "10.0.0.1:30054", true},
		{"10.0.0.1:30055", "10.0.0.1:30055", false},
	} {
		got := set.match(netip.MustParseAddrPort(tc.origDst), netip.MustParseAddrPort(tc.replySrc))
		if got != tc.want {
			t.Errorf("match(orig dst %s, reply src %s) = %v, want %v", tc.origDst, tc.replySrc, got, tc.want)
		}
	}
	if newConntrackFilters(nil).match(netip.MustParseAddrPort("10.43.0.10:53"), netip.MustParseAddrPort("10.42.1.1:5353")) {
		t.Error("an empty set matched")
	}
}

// ctRecorder is a fake Config.ClearConntrack. It logs each call to the
// channel the nft recorder writes its scripts to, so that a test sees in
// which order scripts and conntrack clean-ups came.
type ctRecorder struct {
	log  chan string
	fail atomic.Bool
}

func (r *ctRecorder) clear(_ context.Context, fs []ConntrackFilter) (int, error) {
	r.log <- conntrackLine(fs...)
	if r.fail.Load() {
		return 0, errors.New("injected conntrack failure")
	}
	return len(fs), nil
}

func conntrackLine(fs ...ConntrackFilter) string {
	return "clear conntrack " + strings.Join(sortFilters(fs), " ")
}

// The proxy clears conntrack after successful writes only, full or
// partial, and a failure to clear does not fail the sync.
func TestProxyClearsConntrack(t *testing.T) {
	rec := newRecorder()
	ct := &ctRecorder{log: rec.scripts}
	a, b := readyEp("10.42.1.1", "n1"), readyEp("10.42.1.2", "n1")
	slice := udpSlice("web-1", 5353, a, b)
	client, _ := startProxy(t, Config{Run: rec.run, tables: rec, ClearConntrack: ct.clear}, udpService(), slice)
	slicesAPI := client.DiscoveryV1().EndpointSlices("ns")
	script := func(what string, full bool) {
		t.Helper()
		got := rec.next(t)
		if full {
			got = got + rec.next(t) + rec.next(t)
		}
		if strings.HasPrefix(got, "clear conntrack") || strings.HasPrefix(got, "add table") != full {
			t.Fatalf("%s: expected a script (full: %v), got:\n%s", what, full, got)
		}
	}
	cleared := func(what string, fs ...ConntrackFilter) {
		t.Helper()
		if got, want := rec.next(t), conntrackLine(fs...); got != want {
			t.Fatalf("%s: got\n%s\nwant\n%s", what, got, want)
		}
	}

	// Start-up: the Service is new to this proxy, so whatever is tracked
	// to it was not DNATed by the table just written.
	script("first sync", true)
	cleared("first sync", flt("10.43.0.10", 53, ""))

	slice.Endpoints = slice.Endpoints[1:]
	update(t, slicesAPI.Update, slice)
	script("endpoint removed", false)
	cleared("endpoint removed", flt("10.43.0.10", 53, "10.42.1.1:5353"))

	// A change that needs no conntrack clean-up does not call it.
	slice.Endpoints = append(slice.Endpoints, udpSlice("x", 5353, a).Endpoints...)
	update(t, slicesAPI.Update, slice)
	script("endpoint added", false)
	rec.quiet(t, 50*time.Millisecond)

	// The write fails: nothing is cleared until the rebuild succeeds,
	// and then against what was last written successfully.
	rec.mu.Lock()
	rec.failN = 1
	rec.mu.Unlock()
	slice.Endpoints = slice.Endpoints[:1] // b stays
	update(t, slicesAPI.Update, slice)
	script("failing write", false)
	script("rebuild after the failure", true)
	cleared("rebuild after the failure", flt("10.43.0.10", 53, "10.42.1.1:5353"))
	rec.quiet(t, 50*time.Millisecond)

	// Clearing fails: logged, and no rebuild follows.
	ct.fail.Store(true)
	if err := slicesAPI.Delete(t.Context(), slice.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	script("slice deleted", false)
	cleared("slice deleted", flt("10.43.0.10", 53, "10.42.1.2:5353"))
	rec.quiet(t, 50*time.Millisecond)
}
