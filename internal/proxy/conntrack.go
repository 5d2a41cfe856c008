package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"syscall"

	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
)

// Stale UDP conntrack entries.
//
// DNAT happens once per conntrack entry, on the flow's first packet. A UDP
// client that keeps its source port (a DNS resolver, say) therefore keeps
// reaching the endpoint its entry was DNATed to, even after that endpoint
// is gone, until the entry times out, which never happens while the client
// keeps sending. Like kube-proxy, the proxy deletes such entries after a
// sync has been applied:
//
//   - a UDP endpoint that stopped serving a service port: entries whose
//     original destination is one of the port's addresses (cluster IP,
//     external IPs, LoadBalancer IPs), or its NodePort on any address, and
//     whose reply comes from that endpoint;
//   - a UDP service port that went from no serving endpoints to some:
//     every entry to its addresses or NodePort. Those were made while the
//     proxy did not DNAT them (no Service yet, say) and would keep the flow
//     off the new endpoints.
//
// At start-up every UDP port with endpoints is new to the proxy, so all
// entries to it go: traffic may have passed untranslated while no table
// was in place, or been DNATed by a table that no longer exists.
//
// TCP needs none of this: a connection to a removed endpoint fails and the
// client opens a new one, which gets a new entry.

// ConntrackFilter selects UDP conntrack entries by their original
// destination and their reply source. The zero values of OrigDst and
// ReplySrc match anything.
type ConntrackFilter struct {
	// OrigDst is the Service address the client sent to; zero for a
	// NodePort, which is matched on the port alone.
	OrigDst netip.Addr
	// OrigDstPort is the Service port or NodePort the client sent to.
	OrigDstPort uint16
	// ReplySrc is the endpoint the flow was DNATed to: its replies come
	// from there.
	ReplySrc netip.AddrPort
}

func (f ConntrackFilter) String() string {
	dst, reply := "*", "*"
	if f.OrigDst.IsValid() {
		dst = f.OrigDst.String()
	}
	if f.ReplySrc.IsValid() {
		reply = f.ReplySrc.String()
	}
	return fmt.Sprintf("%s:%d->%s", dst, f.OrigDstPort, reply)
}

// conntrackFilters is a set of filters that matches an entry in four map
// lookups, one per combination of wildcards, instead of a scan: a dump may
// hold a million entries and a sync may remove hundreds of endpoints.
type conntrackFilters map[ConntrackFilter]struct{}

func newConntrackFilters(fs []ConntrackFilter) conntrackFilters {
	set := make(conntrackFilters, len(fs))
	for _, f := range fs {
		set[f] = struct{}{}
	}
	return set
}

// match reports whether a UDP entry with this original destination and
// reply source is selected by one of the filters.
func (s conntrackFilters) match(origDst, replySrc netip.AddrPort) bool {
	for _, f := range [...]ConntrackFilter{
		{origDst.Addr(), origDst.Port(), replySrc},
		{origDst.Addr(), origDst.Port(), netip.AddrPort{}},
		{netip.Addr{}, origDst.Port(), replySrc},
		{netip.Addr{}, origDst.Port(), netip.AddrPort{}},
	} {
		if _, ok := s[f]; ok {
			return true
		}
	}
	return false
}

// udpPort is what the conntrack cleanup needs to know about one UDP service
// port as it was written: where clients send to, and where that goes.
type udpPort struct {
	name      string       // the service port's name, which identifies it
	addrs     []netip.Addr // cluster IP, external IPs, LoadBalancer IPs
	port      uint16
	nodePort  uint16           // 0: none
	endpoints []netip.AddrPort // serving endpoints, in any traffic policy
}

// staleConntrack returns the filters for the entries made stale by one
// Service's change from old to cur; either may be nil (no Service).
func staleConntrack(old, cur *serviceRules) []ConntrackFilter {
	var oldPorts, curPorts []udpPort
	if old != nil {
		oldPorts = old.udp
	}
	if cur != nil {
		curPorts = cur.udp
	}
	find := func(ports []udpPort, name string) *udpPort {
		for i := range ports {
			if ports[i].name == name {
				return &ports[i]
			}
		}
		return nil
	}
	var out []ConntrackFilter
	// Endpoints that went away, at the addresses clients used to reach them.
	for _, o := range oldPorts {
		c := find(curPorts, o.name)
		for _, ep := range o.endpoints {
			if c != nil && slices.Contains(c.endpoints, ep) {
				continue
			}
			for _, a := range o.addrs {
				out = append(out, ConntrackFilter{OrigDst: a, OrigDstPort: o.port, ReplySrc: ep})
			}
			if o.nodePort != 0 {
				out = append(out, ConntrackFilter{OrigDstPort: o.nodePort, ReplySrc: ep})
			}
		}
	}
	// Ports that got their first endpoint: whatever is tracked to them was
	// not DNATed.
	for _, c := range curPorts {
		if len(c.endpoints) == 0 {
			continue
		}
		if o := find(oldPorts, c.name); o != nil && len(o.endpoints) > 0 {
			continue
		}
		for _, a := range c.addrs {
			out = append(out, ConntrackFilter{OrigDst: a, OrigDstPort: c.port})
		}
		if c.nodePort != 0 {
			out = append(out, ConntrackFilter{OrigDstPort: c.nodePort})
		}
	}
	return out
}

// clearConntrack deletes the stale entries after a successful write.
// Failures are logged only: the table is right, and the worst left is a
// UDP flow that stays on an old endpoint until its entry times out.
func (p *Proxy) clearConntrack(ctx context.Context, filters []ConntrackFilter) {
	if len(filters) == 0 {
		return
	}
	n, err := p.cfg.ClearConntrack(ctx, filters)
	if err != nil {
		p.log.Error("clearing stale UDP conntrack entries", "filters", len(filters), "deleted", n, "err", err)
		return
	}
	p.log.Debug("cleared stale UDP conntrack entries", "filters", len(filters), "deleted", n)
}

// netlinkConntrack returns the default Config.ClearConntrack, which works
// in the network namespace whose file descriptor is netns (0: the current
// one). ctnetlink cannot filter a dump by address, so it dumps the IPv4 and
// IPv6 tables and deletes the matching UDP entries one by one.
func netlinkConntrack(netns int) func(context.Context, []ConntrackFilter) (int, error) {
	return func(ctx context.Context, filters []ConntrackFilter) (int, error) {
		var cfg *netlink.Config
		if netns != 0 {
			cfg = &netlink.Config{NetNS: netns}
		}
		c, err := conntrack.Dial(cfg)
		if err != nil {
			return 0, fmt.Errorf("proxy: conntrack: %w", err)
		}
		defer c.Close()
		flows, err := c.Dump(nil)
		if err != nil {
			return 0, fmt.Errorf("proxy: conntrack dump: %w", err)
		}
		set := newConntrackFilters(filters)
		deleted := 0
		var errs []error
		for _, f := range flows {
			if err := ctx.Err(); err != nil {
				return deleted, err
			}
			orig, reply := f.TupleOrig, f.TupleReply
			if orig.Proto.Protocol != syscall.IPPROTO_UDP ||
				!set.match(netip.AddrPortFrom(orig.IP.DestinationAddress, orig.Proto.DestinationPort),
					netip.AddrPortFrom(reply.IP.SourceAddress, reply.Proto.SourcePort)) {
				continue
			}
			// Only the tuples and zone identify the entry to delete.
			err := c.Delete(conntrack.Flow{TupleOrig: orig, TupleReply: reply, Zone: f.Zone})
			switch {
			case err == nil:
				deleted++
			case errors.Is(err, syscall.ENOENT):
				// Gone since the dump: timed out, or deleted by someone else.
			case len(errs) < 5: // one failure usually means all fail alike
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			return deleted, fmt.Errorf("proxy: conntrack delete: %w", errors.Join(errs...))
		}
		return deleted, nil
	}
}
