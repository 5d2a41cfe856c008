package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

var errMismatch = errors.New("dns: upstream answer does not match the query")

// forward sends req to the upstream resolvers in turn and returns the first
// answer under the client's ID, or SERVFAIL when none answers. A truncated
// UDP answer is fetched again over TCP and passed on if it fits the client.
func (s *Server) forward(ctx context.Context, sc *scratch, req []byte, udp bool) []byte {
	var m query
	if _, err := parseQuery(&m, req, udp); err != nil {
		return nil
	}
	// A fresh random ID (and a fresh socket, hence source port) per query
	// makes forged upstream answers hard to slip in.
	sc.fwd = append(sc.fwd[:0], req...)
	id := uint16(rand.Uint32())
	binary.BigEndian.PutUint16(sc.fwd, id)
	if cap(sc.up) < maxTCPMessage {
		sc.up = make([]byte, maxTCPMessage)
	}
	for _, up := range s.upstreams {
		resp, err := s.exchange(ctx, "udp", up, sc.fwd, sc.up[:cap(sc.up)], id, &m.q)
		if err != nil {
			s.log.Debug("forward", "upstream", up, "name", m.q.Name.String(), "err", err)
			continue
		}
		if resp[2]&0x02 != 0 { // TC
			// The TCP answer goes into a buffer of its own so the truncated
			// UDP one stays usable as the fallback.
			full, err := s.exchange(ctx, "tcp", up, sc.fwd, make([]byte, maxTCPMessage), id, &m.q)
			if err == nil && len(full) <= m.limit {
				resp = full
			}
		}
		binary.BigEndian.PutUint16(resp, m.id)
		return resp
	}
	return s.servfail(sc, req, udp)
}

// exchange sends one query to one upstream over network and reads its answer
// into buf.
func (s *Server) exchange(ctx context.Context, network, upstream string, msg, buf []byte, id uint16, q *dnsmessage.Question) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.upstreamTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, upstream)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}

	if network == "tcp" {
		frame := make([]byte, 2, 2+len(msg))
		binary.BigEndian.PutUint16(frame, uint16(len(msg)))
		if _, err := conn.Write(append(frame, msg...)); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(conn, buf[:2]); err != nil {
			return nil, err
		}
		n := int(binary.BigEndian.Uint16(buf))
		if _, err := io.ReadFull(conn, buf[:n]); err != nil {
			return nil, err
		}
		resp := buf[:n]
		if !answers(resp, id, q) {
			return nil, errMismatch
		}
		return resp, nil
	}

	if _, err := conn.Write(msg); err != nil {
		return nil, err
	}
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, err
		}
		// Stray or forged datagrams are skipped; the real answer may follow.
		if resp := buf[:n]; answers(resp, id, q) {
			return resp, nil
		}
	}
}

// answers reports whether resp is a response to our query id about q.
func answers(resp []byte, id uint16, q *dnsmessage.Question) bool {
	var p dnsmessage.Parser
	h, err := p.Start(resp)
	if err != nil || !h.Response || h.ID != id {
		return false
	}
	if binary.BigEndian.Uint16(resp[4:6]) == 0 {
		// Some servers drop the question from error answers.
		return h.RCode != dnsmessage.RCodeSuccess
	}
	rq, err := p.Question()
	if err != nil {
		return false
	}
	return rq.Type == q.Type && rq.Class == q.Class && strings.EqualFold(rq.Name.String(), q.Name.String())
}
