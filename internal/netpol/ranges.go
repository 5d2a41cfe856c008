package netpol

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// ipRange is an inclusive range of IPv4 addresses as integers, which makes
// CIDR arithmetic (except blocks, merging) simple and exact.
type ipRange struct{ first, last uint32 }

func addrToU32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func u32ToAddr(u uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
}

// prefixRange returns the range of an IPv4 prefix; ok is false for IPv6.
func prefixRange(p netip.Prefix) (ipRange, bool) {
	p = p.Masked()
	if !p.Addr().Is4() {
		return ipRange{}, false
	}
	first := addrToU32(p.Addr())
	size := uint64(1) << (32 - p.Bits())
	return ipRange{first, uint32(uint64(first) + size - 1)}, true
}

// subtract removes cut from every range in rs.
func subtract(rs []ipRange, cut ipRange) []ipRange {
	var out []ipRange
	for _, r := range rs {
		if cut.last < r.first || cut.first > r.last {
			out = append(out, r)
			continue
		}
		if cut.first > r.first {
			out = append(out, ipRange{r.first, cut.first - 1})
		}
		if cut.last < r.last {
			out = append(out, ipRange{cut.last + 1, r.last})
		}
	}
	return out
}

// mergeRanges sorts rs and joins overlapping and adjacent ranges, because
// nftables refuses overlapping elements in an interval set.
func mergeRanges(rs []ipRange) []ipRange {
	if len(rs) == 0 {
		return nil
	}
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b ipRange) int {
		if a.first != b.first {
			if a.first < b.first {
				return -1
			}
			return 1
		}
		return 0
	})
	out := []ipRange{rs[0]}
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if uint64(r.first) <= uint64(last.last)+1 {
			last.last = max(last.last, r.last)
			continue
		}
		out = append(out, r)
	}
	return out
}

// String renders the range as an nft set element.
func (r ipRange) String() string {
	if r.first == r.last {
		return u32ToAddr(r.first).String()
	}
	return u32ToAddr(r.first).String() + "-" + u32ToAddr(r.last).String()
}

func renderRanges(rs []ipRange) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	return out
}

// portRange is one allowed destination port range of one protocol;
// first == 0 means every port of the protocol.
type portRange struct {
	proto       v1.Protocol
	first, last int32
}

func (p portRange) all() bool { return p.first == 0 }

// protoOrder fixes the order protocols are rendered in, for stable output.
var protoOrder = []v1.Protocol{v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP}

// portMatches renders ports as one nft match per protocol, ranges merged.
// It returns nil when ports is nil, meaning every protocol and port.
func portMatches(ports []portRange) []string {
	if ports == nil {
		return nil
	}
	var out []string
	for _, proto := range protoOrder {
		var rs []ipRange // reuse the range merger: ports fit in uint32
		all := false
		for _, p := range ports {
			if p.proto != proto {
				continue
			}
			if p.all() {
				all = true
				break
			}
			rs = append(rs, ipRange{uint32(p.first), uint32(max(p.first, p.last))})
		}
		l4 := "meta l4proto " + strings.ToLower(string(proto))
		switch {
		case all:
			out = append(out, l4)
		case len(rs) > 0:
			var elems []string
			for _, r := range mergeRanges(rs) {
				if r.first == r.last {
					elems = append(elems, strconv.Itoa(int(r.first)))
				} else {
					elems = append(elems, strconv.Itoa(int(r.first))+"-"+strconv.Itoa(int(r.last)))
				}
			}
			out = append(out, l4+" th dport { "+strings.Join(elems, ", ")+" }")
		}
	}
	return out
}
