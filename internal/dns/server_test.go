package dns

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

func TestBadInput(t *testing.T) {
	s := newTestServer(t, Config{}, fixture()...)
	q := makeQuery(t, "web.default.svc.cluster.local.", dnsmessage.TypeA, queryOpts{})
	withCount := func(n uint16) []byte {
		b := slices.Clone(q)
		binary.BigEndian.PutUint16(b[4:], n)
		return b
	}
	response := slices.Clone(q)
	response[2] |= 0x80
	tests := []struct {
		name  string
		req   []byte
		drop  bool
		rcode dnsmessage.RCode
		ext   int // extended rcode bits from OPT
	}{
		{name: "empty", req: nil, drop: true},
		{name: "short header", req: q[:11], drop: true},
		{name: "a response is never answered", req: response, drop: true},
		{name: "no question", req: withCount(0), rcode: dnsmessage.RCodeFormatError},
		{name: "two questions", req: withCount(2), rcode: dnsmessage.RCodeFormatError},
		{name: "question cut short", req: q[:len(q)-3], rcode: dnsmessage.RCodeFormatError},
		{name: "additional count lies", req: func() []byte { b := slices.Clone(q); b[11] = 1; return b }(), rcode: dnsmessage.RCodeFormatError},
		{name: "opcode UPDATE", req: makeQuery(t, "web.default.svc.cluster.local.", dnsmessage.TypeA, queryOpts{opcode: 5}), rcode: dnsmessage.RCodeNotImplemented},
		{name: "class CHAOS in the domain", req: makeQuery(t, "web.default.svc.cluster.local.", dnsmessage.TypeA, queryOpts{class: dnsmessage.ClassCHAOS}), rcode: dnsmessage.RCodeRefused},
		{name: "zone transfer", req: makeQuery(t, "cluster.local.", dnsmessage.TypeAXFR, queryOpts{}), rcode: dnsmessage.RCodeRefused},
		{name: "outside the domain without upstreams", req: makeQuery(t, "example.org.", dnsmessage.TypeA, queryOpts{}), rcode: dnsmessage.RCodeRefused},
		{name: "EDNS version 1", req: makeQuery(t, "web.default.svc.cluster.local.", dnsmessage.TypeA, queryOpts{edns: 1232, version: 1}), ext: 1},
	}
	sc := newScratch()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, fwd := s.handle(sc, tt.req, true)
			if fwd {
				t.Fatal("forwarded")
			}
			if tt.drop {
				if resp != nil {
					t.Fatalf("answered %x, want dropped", resp)
				}
				return
			}
			m := unpack(t, resp)
			if m.RCode != tt.rcode || m.ID != 0x1234 {
				t.Errorf("rcode %v id %#x, want %v 0x1234", m.RCode, m.ID, tt.rcode)
			}
			ext := 0
			for _, r := range m.Additionals {
				if r.Header.Type == dnsmessage.TypeOPT {
					ext = int(r.Header.TTL >> 24)
				}
			}
			if ext != tt.ext {
				t.Errorf("extended rcode %d, want %d", ext, tt.ext)
			}
		})
	}
}

// TestNotSynced: before the caches are filled every name would look missing,
// so the server fails instead of caching NXDOMAINs in clients.
func TestNotSynced(t *testing.T) {
	factory := informers.NewSharedInformerFactory(fake.NewClientset(), 0)
	s := New(Config{Upstreams: []string{}}, factory.Core().V1().Services(), factory.Discovery().V1().EndpointSlices())
	resp, _ := s.handle(newScratch(), makeQuery(t, "web.default.svc.cluster.local.", dnsmessage.TypeA, queryOpts{}), true)
	if m := unpack(t, resp); m.RCode != dnsmessage.RCodeServerFailure {
		t.Fatalf("rcode %v, want SERVFAIL", m.RCode)
	}
}

// serve starts s on fresh loopback sockets and returns their addresses.
func serve(t *testing.T, s *Server) (udpAddr, tcpAddr string) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, pc, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return pc.LocalAddr().String(), ln.Addr().String()
}

func exchangeUDP(t *testing.T, addr string, req []byte) *dnsmessage.Message {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(req); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if n > udpLimit(req) {
		t.Errorf("UDP answer of %d bytes, client accepts %d", n, udpLimit(req))
	}
	return unpack(t, buf[:n])
}

func udpLimit(req []byte) int {
	var m query
	parseQuery(&m, req, true)
	return m.limit
}

func readTCP(t *testing.T, conn net.Conn) *dnsmessage.Message {
	t.Helper()
	var l [2]byte
	if _, err := io.ReadFull(conn, l[:]); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(conn, buf); err != nil {
		t.Fatal(err)
	}
	return unpack(t, buf)
}

func frame(msgs ...[]byte) []byte {
	var out []byte
	for _, m := range msgs {
		out = binary.BigEndian.AppendUint16(out, uint16(len(m)))
		out = append(out, m...)
	}
	return out
}

// manyEndpoints is a headless service data/name with n ready endpoints.
func manyEndpoints(name string, n int) []runtime.Object {
	var eps []testEndpoint
	for i := range n {
		eps = append(eps, testEndpoint{addr: fmt.Sprintf("10.42.%d.%d", i/250, i%250+1)})
	}
	return []runtime.Object{
		service("data", name, "None", port("http", corev1.ProtocolTCP, 80)),
		slice("data", name+"-a", name, discoveryv1.AddressTypeIPv4, map[string]int32{"http": 80}, eps...),
	}
}

func TestServeUDPAndTCP(t *testing.T) {
	s := newTestServer(t, Config{}, slices.Concat(fixture(), manyEndpoints("big", 100), manyEndpoints("mid", 60))...)
	udpAddr, tcpAddr := serve(t, s)

	t.Run("udp", func(t *testing.T) {
		m := exchangeUDP(t, udpAddr, makeQuery(t, "web.default.svc.cluster.local.", dnsmessage.TypeA, queryOpts{id: 77}))
		if m.ID != 77 || len(m.Answers) != 1 || rr(m.Answers[0]) != "web.default.svc.cluster.local. A 10.43.0.20" {
			t.Fatalf("got %+v", m)
		}
	})

	t.Run("tcp several queries on one connection", func(t *testing.T) {
		conn, err := net.Dial("tcp", tcpAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		// Two pipelined queries in one write, then a third after the answers.
		conn.Write(frame(
			makeQuery(t, "web.default.svc.cluster.local.", dnsmessage.TypeA, queryOpts{id: 1}),
			makeQuery(t, "nope.default.svc.cluster.local.", dnsmessage.TypeA, queryOpts{id: 2}),
		))
		if m := readTCP(t, conn); m.ID != 1 || len(m.Answers) != 1 {
			t.Errorf("first answer %+v", m.Header)
		}
		if m := readTCP(t, conn); m.ID != 2 || m.RCode != dnsmessage.RCodeNameError {
			t.Errorf("second answer %+v", m.Header)
		}
		// A query split over two writes still reads as one.
		q := frame(makeQuery(t, "big.data.svc.cluster.local.", dnsmessage.TypeA, queryOpts{id: 3}))
		conn.Write(q[:5])
		time.Sleep(10 * time.Millisecond)
		conn.Write(q[5:])
		if m := readTCP(t, conn); m.ID != 3 || len(m.Answers) != 100 || m.Truncated {
			t.Errorf("TCP answer: %d answers, truncated %v; want all 100", len(m.Answers), m.Truncated)
		}
	})

	t.Run("truncation", func(t *testing.T) {
		for _, tt := range []struct {
			name      string
			edns      int
			truncated bool
		}{
			{"no EDNS: 512 bytes", 0, true},
			{"EDNS 600", 600, true},
			{"EDNS 4096 fits all", 4096, false},
		} {
			t.Run(tt.name, func(t *testing.T) {
				m := exchangeUDP(t, udpAddr, makeQuery(t, "big.data.svc.cluster.local.", dnsmessage.TypeA, queryOpts{edns: tt.edns}))
				if m.Truncated != tt.truncated {
					t.Fatalf("TC = %v, want %v", m.Truncated, tt.truncated)
				}
				if tt.truncated && (len(m.Answers) == 0 || len(m.Answers) >= 100) {
					t.Errorf("truncated answer carries %d records, want as many as fit", len(m.Answers))
				}
				if !tt.truncated && len(m.Answers) != 100 {
					t.Errorf("%d answers, want 100", len(m.Answers))
				}
			})
		}
		// 60 SRV records (uncompressed targets, RFC 2782) fit 4096 bytes
		// but not with their glue: dropping only the optional additional
		// records needs no TC.
		m := exchangeUDP(t, udpAddr, makeQuery(t, "_http._tcp.mid.data.svc.cluster.local.", dnsmessage.TypeSRV, queryOpts{edns: 4096}))
		if m.Truncated || len(m.Answers) != 60 || len(m.Additionals) != 1 { // the OPT record
			t.Errorf("SRV: TC %v, %d answers, %d additionals; want 60 answers without glue and no TC", m.Truncated, len(m.Answers), len(m.Additionals))
		}
	})
}

// fakeUpstream is a resolver on 127.0.0.1 answering over UDP and TCP on the
// same port: "big." is truncated over UDP, everything else gets 192.0.2.1.
type fakeUpstream struct {
	addr    string
	queries chan string
}

func startUpstream(t *testing.T) *fakeUpstream {
	t.Helper()
	var (
		pc net.PacketConn
		ln net.Listener
	)
	// Find a port free for both protocols.
	for range 20 {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		t.Fatal("no port free for UDP and TCP")
	}
	u := &fakeUpstream{addr: pc.LocalAddr().String(), queries: make(chan string, 100)}
	t.Cleanup(func() { pc.Close(); ln.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(u.answer(buf[:n], true), from)
		}
	}()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				var l [2]byte
				for {
					if _, err := io.ReadFull(conn, l[:]); err != nil {
						return
					}
					req := make([]byte, binary.BigEndian.Uint16(l[:]))
					if _, err := io.ReadFull(conn, req); err != nil {
						return
					}
					conn.Write(frame(u.answer(req, false)))
				}
			}()
		}
	}()
	return u
}

func (u *fakeUpstream) answer(req []byte, udp bool) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	proto := "tcp"
	if udp {
		proto = "udp"
	}
	u.queries <- proto + " " + q.Name.String()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, RecursionAvailable: true, Truncated: udp && q.Name.String() == "big."})
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	if !(udp && q.Name.String() == "big.") {
		b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: [4]byte{192, 0, 2, 1}})
	}
	msg, _ := b.Finish()
	return msg
}

// deadUpstream returns an address nobody listens on.
func deadUpstream(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

func TestForward(t *testing.T) {
	up := startUpstream(t)
	tests := []struct {
		name      string
		upstreams []string
		qname     string
		qtype     dnsmessage.Type
		rcode     dnsmessage.RCode
		answers   []string
		asked     []string // what the upstream saw, in order
	}{
		{"plain", []string{up.addr}, "example.org.", dnsmessage.TypeA, dnsmessage.RCodeSuccess,
			[]string{"example.org. A 192.0.2.1"}, []string{"udp example.org."}},
		{"truncated answer is fetched over TCP", []string{up.addr}, "big.", dnsmessage.TypeA, dnsmessage.RCodeSuccess,
			[]string{"big. A 192.0.2.1"}, []string{"udp big.", "tcp big."}},
		{"dead upstream is skipped", []string{deadUpstream(t), up.addr}, "example.org.", dnsmessage.TypeA, dnsmessage.RCodeSuccess,
			[]string{"example.org. A 192.0.2.1"}, []string{"udp example.org."}},
		{"all upstreams dead", []string{deadUpstream(t)}, "example.org.", dnsmessage.TypeA, dnsmessage.RCodeServerFailure,
			nil, nil},
		{"PTR for an address that is not ours", []string{up.addr}, "1.2.0.192.in-addr.arpa.", dnsmessage.TypePTR, dnsmessage.RCodeSuccess,
			[]string{"1.2.0.192.in-addr.arpa. A 192.0.2.1"}, []string{"udp 1.2.0.192.in-addr.arpa."}},
		{"a name that merely ends like the domain", []string{up.addr}, "xcluster.local.", dnsmessage.TypeA, dnsmessage.RCodeSuccess,
			[]string{"xcluster.local. A 192.0.2.1"}, []string{"udp xcluster.local."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, Config{Upstreams: tt.upstreams}, fixture()...)
			s.upstreamTimeout = 500 * time.Millisecond
			udpAddr, tcpAddr := serve(t, s)
			for _, proto := range []string{"udp", "tcp"} {
				req := makeQuery(t, tt.qname, tt.qtype, queryOpts{id: 4242})
				var m *dnsmessage.Message
				if proto == "udp" {
					m = exchangeUDP(t, udpAddr, req)
				} else {
					conn, err := net.Dial("tcp", tcpAddr)
					if err != nil {
						t.Fatal(err)
					}
					conn.SetDeadline(time.Now().Add(5 * time.Second))
					conn.Write(frame(req))
					m = readTCP(t, conn)
					conn.Close()
				}
				if m.ID != 4242 || m.RCode != tt.rcode || m.Authoritative {
					t.Errorf("%s: header %+v, want ID 4242, rcode %v, not authoritative", proto, m.Header, tt.rcode)
				}
				if got := rrs(m.Answers); !slices.Equal(got, norm(tt.answers)) {
					t.Errorf("%s: answers %q, want %q", proto, got, tt.answers)
				}
				var asked []string
				for range tt.asked {
					select {
					case q := <-up.queries:
						asked = append(asked, q)
					case <-time.After(time.Second):
					}
				}
				if !slices.Equal(asked, tt.asked) {
					t.Errorf("%s: upstream saw %q, want %q", proto, asked, tt.asked)
				}
			}
		})
	}
}

func TestListenAndServeStops(t *testing.T) {
	s := newTestServer(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx, "127.0.0.1:0") }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ListenAndServe did not return after cancel")
	}
	if err := s.ListenAndServe(context.Background(), "256.0.0.1:53"); err == nil {
		t.Fatal("want an error for a bad address")
	}
}

func TestResolvConf(t *testing.T) {
	path := t.TempDir() + "/resolv.conf"
	content := "# comment\nsearch example.org\nnameserver 192.0.2.53\nnameserver fd00::53\nnameserver bogus\noptions ndots:5\n"
	if err := writeFile(path, content); err != nil {
		t.Fatal(err)
	}
	got, err := resolvConfUpstreams(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"192.0.2.53:53", "[fd00::53]:53"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}
