package dns

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sort"
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

// newTestServer starts informers over a fake clientset holding objs and
// returns a Server reading them, with its caches synced.
func newTestServer(tb testing.TB, cfg Config, objs ...runtime.Object) *Server {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Upstreams == nil {
		cfg.Upstreams = []string{} // never read the machine's resolv.conf in tests
	}
	client := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	s := New(cfg, factory.Core().V1().Services(), factory.Discovery().V1().EndpointSlices())
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(func() {
		cancel()
		factory.Shutdown()
	})
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			tb.Fatalf("cache for %v did not sync", typ)
		}
	}
	return s
}

func service(ns, name, clusterIP string, ports ...corev1.ServicePort) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: clusterIP, Ports: ports},
	}
	if clusterIP != "" {
		svc.Spec.ClusterIPs = strings.Split(clusterIP, ",")
		svc.Spec.ClusterIP = svc.Spec.ClusterIPs[0]
	}
	return svc
}

func port(name string, proto corev1.Protocol, num int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Protocol: proto, Port: num}
}

type testEndpoint struct {
	addr     string
	hostname string
	notReady bool
}

func slice(ns, name, svc string, typ discoveryv1.AddressType, ports map[string]int32, eps ...testEndpoint) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc},
		},
		AddressType: typ,
	}
	names := make([]string, 0, len(ports))
	for n := range ports {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		proto := corev1.ProtocolTCP
		if strings.HasPrefix(n, "udp-") {
			proto = corev1.ProtocolUDP
		}
		es.Ports = append(es.Ports, discoveryv1.EndpointPort{Name: ptr(n), Protocol: &proto, Port: ptr(ports[n])})
	}
	for _, e := range eps {
		ep := discoveryv1.Endpoint{Addresses: []string{e.addr}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(!e.notReady)}}
		if e.hostname != "" {
			ep.Hostname = ptr(e.hostname)
		}
		es.Endpoints = append(es.Endpoints, ep)
	}
	return es
}

func ptr[T any](v T) *T { return &v }

type queryOpts struct {
	id      uint16
	class   dnsmessage.Class
	edns    int // EDNS UDP size; 0 = no OPT record
	opcode  dnsmessage.OpCode
	version uint8 // EDNS version
}

// makeQuery packs a query for name and type t.
func makeQuery(tb testing.TB, name string, t dnsmessage.Type, o queryOpts) []byte {
	tb.Helper()
	if o.class == 0 {
		o.class = dnsmessage.ClassINET
	}
	if o.id == 0 {
		o.id = 0x1234
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: o.id, RecursionDesired: true, OpCode: o.opcode})
	b.StartQuestions()
	if err := b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: t, Class: o.class}); err != nil {
		tb.Fatal(err)
	}
	if o.edns > 0 {
		b.StartAdditionals()
		var h dnsmessage.ResourceHeader
		h.SetEDNS0(o.edns, 0, false)
		h.TTL |= uint32(o.version) << 16
		if err := b.OPTResource(h, dnsmessage.OPTResource{}); err != nil {
			tb.Fatal(err)
		}
	}
	msg, err := b.Finish()
	if err != nil {
		tb.Fatal(err)
	}
	return msg
}

// rr renders a resource record as "name TYPE data" for comparisons.
func rr(r dnsmessage.Resource) string {
	var data string
	switch b := r.Body.(type) {
	case *dnsmessage.AResource:
		data = netip.AddrFrom4(b.A).String()
	case *dnsmessage.AAAAResource:
		data = netip.AddrFrom16(b.AAAA).String()
	case *dnsmessage.CNAMEResource:
		data = b.CNAME.String()
	case *dnsmessage.PTRResource:
		data = b.PTR.String()
	case *dnsmessage.NSResource:
		data = b.NS.String()
	case *dnsmessage.SRVResource:
		data = fmt.Sprintf("%d %d %d %s", b.Priority, b.Weight, b.Port, b.Target.String())
	case *dnsmessage.TXTResource:
		data = strings.Join(b.TXT, " ")
	case *dnsmessage.SOAResource:
		data = fmt.Sprintf("%s %s %d %d %d %d", b.NS.String(), b.MBox.String(), b.Refresh, b.Retry, b.Expire, b.MinTTL)
	case *dnsmessage.OPTResource:
		return fmt.Sprintf("OPT %d", r.Header.Class)
	default:
		data = fmt.Sprintf("%T", b)
	}
	return fmt.Sprintf("%s %s %s", r.Header.Name.String(), strings.TrimPrefix(r.Header.Type.String(), "Type"), data)
}

func rrs(rs []dnsmessage.Resource) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		if r.Header.Type == dnsmessage.TypeOPT {
			continue
		}
		out = append(out, rr(r))
	}
	sort.Strings(out)
	return out
}

func unpack(tb testing.TB, b []byte) *dnsmessage.Message {
	tb.Helper()
	var m dnsmessage.Message
	if err := m.Unpack(b); err != nil {
		tb.Fatalf("unpacking response: %v", err)
	}
	return &m
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }
