package dns

import (
	"slices"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// FuzzHandle feeds arbitrary bytes to the message handler: it must never
// panic, and whatever it answers must be a well-formed response to the same
// ID that fits what the client can take.
func FuzzHandle(f *testing.F) {
	s := newTestServer(f, Config{Upstreams: []string{"127.0.0.1:1"}},
		slices.Concat(fixture(), manyEndpoints("big", 100))...)
	for _, q := range []struct {
		name string
		t    dnsmessage.Type
		o    queryOpts
	}{
		{"web.default.svc.cluster.local.", dnsmessage.TypeA, queryOpts{}},
		{"_pg._tcp.db.data.svc.cluster.local.", dnsmessage.TypeSRV, queryOpts{edns: 1232}},
		{"big.data.svc.cluster.local.", dnsmessage.TypeA, queryOpts{}},
		{"5.0.42.10.in-addr.arpa.", dnsmessage.TypePTR, queryOpts{}},
		{"10-42-0-1.x.pod.cluster.local.", dnsmessage.TypeALL, queryOpts{edns: 4096, version: 1}},
		{"cluster.local.", dnsmessage.TypeNS, queryOpts{opcode: 2}},
		{"example.org.", dnsmessage.TypeA, queryOpts{class: dnsmessage.ClassCHAOS}},
	} {
		f.Add(makeQuery(f, q.name, q.t, q.o))
	}
	f.Add([]byte{})
	f.Add(make([]byte, 12))
	f.Fuzz(func(t *testing.T, req []byte) {
		sc := newScratch()
		for _, udp := range []bool{true, false} {
			orig := slices.Clone(req)
			resp, fwd := s.handle(sc, req, udp)
			if !slices.Equal(orig, req) {
				t.Fatal("handle modified the request")
			}
			if resp == nil {
				continue
			}
			if fwd {
				t.Fatal("both an answer and a forward")
			}
			var p dnsmessage.Parser
			h, err := p.Start(resp)
			if err != nil {
				t.Fatalf("response does not parse: %v", err)
			}
			if !h.Response || h.ID != uint16(req[0])<<8|uint16(req[1]) {
				t.Fatalf("response header %+v does not answer the query", h)
			}
			if err := p.SkipAllQuestions(); err != nil {
				t.Fatalf("response questions: %v", err)
			}
			if _, err := p.AllAnswers(); err != nil {
				t.Fatalf("response answers: %v", err)
			}
			if udp && len(resp) > udpLimit(req) {
				t.Fatalf("UDP response of %d bytes, client takes %d", len(resp), udpLimit(req))
			}
		}
	})
}
