package dns

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"golang.org/x/net/dns/dnsmessage"
)

const (
	// schemaVersion is the version of the Kubernetes DNS specification served
	// at dns-version.<domain> TXT.
	schemaVersion = "1.1.0"

	minUDPSize = 512  // RFC 1035 limit without EDNS
	maxUDPSize = 4096 // cap on what a client may ask for over UDP
	// advertisedUDPSize is what we tell EDNS clients we accept: the DNS flag
	// day value that avoids IP fragmentation.
	advertisedUDPSize = 1232

	typeIXFR = dnsmessage.Type(251)
	// rcodeBadVers is the extended RCODE for an unsupported EDNS version.
	rcodeBadVers = dnsmessage.RCode(16)
)

var schemaTXT = []string{schemaVersion}

// query is what handle needs to know about a request to answer it.
type query struct {
	id          uint16
	opcode      dnsmessage.OpCode
	rd          bool
	q           dnsmessage.Question
	hasQ        bool
	edns        bool
	ednsVersion uint8
	limit       int // largest response the client accepts
}

// reply is the outcome of a lookup; the records themselves are in scratch.
type reply struct {
	rcode dnsmessage.RCode
	aa    bool // an answer from our own data
}

func nxdomain() reply { return reply{rcode: dnsmessage.RCodeNameError, aa: true} }
func noerror() reply  { return reply{rcode: dnsmessage.RCodeSuccess, aa: true} }

// record is one resource record to be packed. Every record we serve has the
// server's TTL and class IN.
type record struct {
	name   dnsmessage.Name
	typ    dnsmessage.Type
	addr   netip.Addr      // A, AAAA
	target dnsmessage.Name // CNAME, PTR, NS, SRV
	port   uint16          // SRV
	weight uint16          // SRV
}

// scratch holds the buffers one goroutine needs to answer one query, so the
// hot path allocates next to nothing; it is reused across queries.
type scratch struct {
	answers []record
	extra   []record
	name    [255]byte
	labels  [maxLabels][]byte
	out     []byte // packed response
	req     []byte // copy of a request (TCP read buffer, async forwards)
	frame   []byte // TCP length prefix + response
	fwd     []byte // request as sent upstream
	up      []byte // upstream response
	seen    map[seenKey]struct{}
}

type seenKey struct {
	addr netip.Addr
	port int32
}

// maxLabels is one more than the deepest name the schema has
// (_port._proto.svc.ns.svc), so deeper names are known not to exist.
const maxLabels = 6

func newScratch() *scratch {
	return &scratch{
		answers: make([]record, 0, 4),
		out:     make([]byte, 0, minUDPSize),
	}
}

// reset readies sc for the next query and drops buffers a huge answer grew,
// so one big headless service does not pin memory in every reader.
func (sc *scratch) reset() {
	if cap(sc.answers) > 256 {
		sc.answers = nil
	}
	if cap(sc.extra) > 256 {
		sc.extra = nil
	}
	if cap(sc.out) > 64<<10 {
		sc.out = nil
	}
	sc.answers = sc.answers[:0]
	sc.extra = sc.extra[:0]
}

// parseQuery reads the header, the question and any EDNS option of req.
// It fails when req is not something to answer at all.
func parseQuery(m *query, req []byte, udp bool) (dnsmessage.RCode, error) {
	*m = query{limit: maxTCPMessage}
	if udp {
		m.limit = minUDPSize
	}
	// Answering a response could bounce packets between two servers forever.
	if len(req) < 12 || req[2]&0x80 != 0 {
		return 0, errNoReply
	}
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return 0, errNoReply
	}
	m.id, m.opcode, m.rd = h.ID, h.OpCode, h.RecursionDesired
	if binary.BigEndian.Uint16(req[4:6]) != 1 {
		return dnsmessage.RCodeFormatError, nil
	}
	if m.q, err = p.Question(); err != nil {
		return dnsmessage.RCodeFormatError, nil
	}
	m.hasQ = true
	if err := p.SkipAllQuestions(); err != nil {
		return dnsmessage.RCodeFormatError, nil
	}
	if err := p.SkipAllAnswers(); err != nil {
		return dnsmessage.RCodeFormatError, nil
	}
	if err := p.SkipAllAuthorities(); err != nil {
		return dnsmessage.RCodeFormatError, nil
	}
	for {
		rh, err := p.AdditionalHeader()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			break
		}
		if err != nil {
			return dnsmessage.RCodeFormatError, nil
		}
		if rh.Type == dnsmessage.TypeOPT {
			if m.edns { // RFC 6891: more than one OPT is a format error
				return dnsmessage.RCodeFormatError, nil
			}
			m.edns = true
			m.ednsVersion = uint8(rh.TTL >> 16)
			if udp {
				m.limit = min(max(int(rh.Class), minUDPSize), maxUDPSize)
			}
		}
		if err := p.SkipAdditional(); err != nil {
			return dnsmessage.RCodeFormatError, nil
		}
	}
	if m.edns && m.ednsVersion != 0 {
		return rcodeBadVers, nil
	}
	if m.opcode != 0 {
		return dnsmessage.RCodeNotImplemented, nil
	}
	return dnsmessage.RCodeSuccess, nil
}

var errNoReply = errors.New("dns: message gets no reply")

// handle answers the query in req. It returns the packed response (valid
// until sc is used again), forward=true when the query belongs upstream, or
// neither when the message must be dropped. It never blocks.
func (s *Server) handle(sc *scratch, req []byte, udp bool) (resp []byte, forward bool) {
	sc.reset()
	var m query
	rcode, err := parseQuery(&m, req, udp)
	if err != nil {
		return nil, false
	}
	if rcode != dnsmessage.RCodeSuccess {
		return s.build(sc, &m, reply{rcode: rcode}), false
	}
	name := sc.lowerName(&m.q.Name)
	rest, inZone := s.splitZone(name)
	if !inZone {
		if m.q.Type == dnsmessage.TypePTR || m.q.Type == dnsmessage.TypeALL {
			if s.reverse(sc, &m.q, name) {
				return s.build(sc, &m, noerror()), false
			}
		}
		if len(s.upstreams) == 0 {
			return s.build(sc, &m, reply{rcode: dnsmessage.RCodeRefused}), false
		}
		return nil, true
	}
	switch {
	case m.q.Class != dnsmessage.ClassINET && m.q.Class != dnsmessage.ClassANY:
		return s.build(sc, &m, reply{rcode: dnsmessage.RCodeRefused}), false
	case m.q.Type == dnsmessage.TypeAXFR || m.q.Type == typeIXFR:
		// Nobody needs to transfer a zone that is generated from the API.
		return s.build(sc, &m, reply{rcode: dnsmessage.RCodeRefused}), false
	case !s.ready():
		return s.build(sc, &m, reply{rcode: dnsmessage.RCodeServerFailure}), false
	}
	return s.build(sc, &m, s.lookup(sc, &m.q, rest)), false
}

// servfail answers req with SERVFAIL, or returns nil when req gets no reply.
func (s *Server) servfail(sc *scratch, req []byte, udp bool) []byte {
	sc.reset()
	var m query
	if _, err := parseQuery(&m, req, udp); err != nil {
		return nil
	}
	return s.build(sc, &m, reply{rcode: dnsmessage.RCodeServerFailure})
}

// lowerName copies n into sc lowercased (ASCII only, as DNS compares names).
func (sc *scratch) lowerName(n *dnsmessage.Name) []byte {
	b := sc.name[:n.Length]
	for i, c := range n.Data[:n.Length] {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return b
}

// splitZone reports whether name is in the cluster domain and returns the part
// before it, with its trailing dot ("" for the apex).
func (s *Server) splitZone(name []byte) ([]byte, bool) {
	if len(name) < len(s.zone) || string(name[len(name)-len(s.zone):]) != s.zone {
		return nil, false
	}
	rest := name[:len(name)-len(s.zone)]
	if len(rest) > 0 && rest[len(rest)-1] != '.' {
		return nil, false // "xcluster.local." is not in "cluster.local."
	}
	return rest, true
}

// split cuts "a.b.c." into labels; false if there are too many to exist.
func (sc *scratch) split(rest []byte) ([][]byte, bool) {
	labels := sc.labels[:0]
	start := 0
	for i, c := range rest {
		if c != '.' {
			continue
		}
		if len(labels) == maxLabels {
			return nil, false
		}
		labels = append(labels, rest[start:i])
		start = i + 1
	}
	return labels, true
}

// build packs the response. Answers that do not fit the client's limit are
// cut and TC set, so the client retries over TCP; additional records are
// dropped first, as they are optional.
func (s *Server) build(sc *scratch, m *query, r reply) []byte {
	// A negative answer from our zone carries its SOA so resolvers know how
	// long to cache it (RFC 2308).
	soa := r.aa && (r.rcode == dnsmessage.RCodeNameError ||
		r.rcode == dnsmessage.RCodeSuccess && len(sc.answers) == 0)
	resp, err := s.pack(sc, m, r, len(sc.answers), true, soa, false)
	if err == nil && len(resp) <= m.limit {
		return resp
	}
	if err != nil {
		// A record we could not encode (say an ExternalName that is not a
		// valid DNS name) must not take the whole answer down silently.
		s.log.Debug("packing answer", "name", m.q.Name.String(), "err", err)
		sc.answers, sc.extra = sc.answers[:0], sc.extra[:0]
		resp, err = s.pack(sc, m, reply{rcode: dnsmessage.RCodeServerFailure}, 0, false, false, false)
		if err != nil {
			m.hasQ = false
			resp, _ = s.pack(sc, m, reply{rcode: dnsmessage.RCodeServerFailure}, 0, false, false, false)
		}
		return resp
	}
	if resp, err = s.pack(sc, m, r, len(sc.answers), false, soa, false); err == nil && len(resp) <= m.limit {
		return resp
	}
	// Find the most answers that fit; a handful of packs even for a headless
	// service with thousands of endpoints.
	lo, hi := 0, len(sc.answers)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if resp, err = s.pack(sc, m, r, mid, false, soa, true); err == nil && len(resp) <= m.limit {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	resp, _ = s.pack(sc, m, r, lo, false, soa, true)
	return resp
}

func (s *Server) pack(sc *scratch, m *query, r reply, nAnswers int, withExtra, soa, truncated bool) ([]byte, error) {
	b := dnsmessage.NewBuilder(sc.out[:0], dnsmessage.Header{
		ID:                 m.id,
		Response:           true,
		OpCode:             m.opcode,
		Authoritative:      r.aa,
		Truncated:          truncated,
		RecursionDesired:   m.rd,
		RecursionAvailable: len(s.upstreams) > 0,
		RCode:              r.rcode & 0xF,
	})
	nExtra := 0
	if withExtra {
		nExtra = len(sc.extra)
	}
	// Compression costs a map per message; a lone record saves little with it.
	if nAnswers+nExtra > 1 || soa {
		b.EnableCompression()
	}
	if m.hasQ {
		if err := b.StartQuestions(); err != nil {
			return nil, err
		}
		if err := b.Question(m.q); err != nil {
			return nil, err
		}
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	for i := range sc.answers[:nAnswers] {
		if err := s.addRecord(&b, &sc.answers[i]); err != nil {
			return nil, err
		}
	}
	if err := b.StartAuthorities(); err != nil {
		return nil, err
	}
	if soa {
		h := dnsmessage.ResourceHeader{Name: s.zoneName, Type: dnsmessage.TypeSOA, Class: dnsmessage.ClassINET, TTL: s.ttl}
		if err := b.SOAResource(h, s.soa); err != nil {
			return nil, err
		}
	}
	if err := b.StartAdditionals(); err != nil {
		return nil, err
	}
	for i := range sc.extra[:nExtra] {
		if err := s.addRecord(&b, &sc.extra[i]); err != nil {
			return nil, err
		}
	}
	if m.edns {
		var h dnsmessage.ResourceHeader
		if err := h.SetEDNS0(advertisedUDPSize, r.rcode&^0xF, false); err != nil {
			return nil, err
		}
		if err := b.OPTResource(h, dnsmessage.OPTResource{}); err != nil {
			return nil, err
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil, err
	}
	sc.out = out
	return out, nil
}

func (s *Server) addRecord(b *dnsmessage.Builder, rec *record) error {
	h := dnsmessage.ResourceHeader{Name: rec.name, Type: rec.typ, Class: dnsmessage.ClassINET, TTL: s.ttl}
	switch rec.typ {
	case dnsmessage.TypeA:
		return b.AResource(h, dnsmessage.AResource{A: rec.addr.As4()})
	case dnsmessage.TypeAAAA:
		return b.AAAAResource(h, dnsmessage.AAAAResource{AAAA: rec.addr.As16()})
	case dnsmessage.TypeCNAME:
		return b.CNAMEResource(h, dnsmessage.CNAMEResource{CNAME: rec.target})
	case dnsmessage.TypePTR:
		return b.PTRResource(h, dnsmessage.PTRResource{PTR: rec.target})
	case dnsmessage.TypeNS:
		return b.NSResource(h, dnsmessage.NSResource{NS: rec.target})
	case dnsmessage.TypeSRV:
		return b.SRVResource(h, dnsmessage.SRVResource{Weight: rec.weight, Port: rec.port, Target: rec.target})
	case dnsmessage.TypeTXT:
		return b.TXTResource(h, dnsmessage.TXTResource{TXT: schemaTXT})
	case dnsmessage.TypeSOA:
		return b.SOAResource(h, s.soa)
	}
	return errors.New("dns: unsupported record type " + rec.typ.String())
}
