package netpol

import (
	"maps"
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// Names of the fixed objects in the table. Per-pod chains start with
// "ing-"/"egr-" and peer sets with "s-", so they cannot collide.
const (
	forwardChain = "forward"
	hostIPsSet   = "host-ips"
	ingressMap   = "ingress-pods"
	egressMap    = "egress-pods"
)

// ruleset is the variable part of the table: what the diff works on.
type ruleset struct {
	sets    map[string][]string // peer set name -> rendered elements
	chains  map[string][]string // pod chain name -> rule bodies
	ingress map[string]string   // local pod address -> its ingress chain
	egress  map[string]string   // local pod address -> its egress chain
}

func newRuleset() *ruleset {
	return &ruleset{
		sets:    map[string][]string{},
		chains:  map[string][]string{},
		ingress: map[string]string{},
		egress:  map[string]string{},
	}
}

// buildRuleset computes the desired ruleset for the node's pods.
func buildRuleset(s *snapshot, node string) *ruleset {
	rs := newRuleset()
	pods := slices.Clone(s.pods)
	slices.SortFunc(pods, func(a, b *v1.Pod) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	for _, pod := range pods {
		if pod.Spec.NodeName != node || !onPodNetwork(pod) {
			continue
		}
		for _, dir := range []direction{ingress, egress} {
			r := s.rulesFor(pod, dir)
			if !r.isolated {
				continue
			}
			chain := chainName(pod, dir)
			rs.chains[chain] = rs.addChain(r.allows, dir)
			dispatch := rs.ingress
			if dir == egress {
				dispatch = rs.egress
			}
			for _, ip := range podIPv4s(pod) {
				dispatch[ip.String()] = chain
			}
		}
	}
	return rs
}

// addChain renders one pod chain and records the sets it refers to.
// Ingress rules accept; egress rules return to the forward chain, so that
// the destination's ingress chain still gets its say. Anything not allowed
// is dropped, as most upstream implementations do.
func (rs *ruleset) addChain(allows []allow, dir direction) []string {
	verdict, addrMatch := "accept", "ip saddr @"
	if dir == egress {
		verdict, addrMatch = "return", "ip daddr @"
	}
	var lines []string
	for _, a := range allows {
		prefix := ""
		if a.set != "" {
			rs.sets[a.set] = renderRanges(a.addrs)
			prefix = addrMatch + a.set + " "
		}
		ports := portMatches(a.ports)
		if ports == nil {
			lines = append(lines, prefix+verdict)
		}
		for _, pm := range ports {
			lines = append(lines, prefix+pm+" "+verdict)
		}
	}
	// Two rules of one policy can render the same; keep the first.
	var out []string
	for _, l := range lines {
		if !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return append(out, "drop")
}

// script accumulates nft commands for one table.
type script struct {
	table string
	b     strings.Builder
}

func (s *script) line(verb, rest string) {
	s.b.WriteString(verb + " ip " + s.table + " " + rest + "\n")
}

// fullScript deletes and recreates the whole table in one transaction.
// "add table" first makes "delete table" succeed when there is none.
func fullScript(table string, hostIPs []netip.Addr, want *ruleset) string {
	s := &script{table: table}
	s.b.WriteString("add table ip " + table + "\n")
	s.b.WriteString("delete table ip " + table + "\n")
	s.b.WriteString("add table ip " + table + "\n")
	s.line("add set", hostIPsSet+" { type ipv4_addr; }")
	var hosts []string
	for _, a := range hostIPs {
		if a.Unmap().Is4() && !slices.Contains(hosts, a.Unmap().String()) {
			hosts = append(hosts, a.Unmap().String())
		}
	}
	if len(hosts) > 0 {
		s.line("add element", hostIPsSet+" { "+strings.Join(hosts, ", ")+" }")
	}
	s.line("add map", ingressMap+" { type ipv4_addr : verdict; }")
	s.line("add map", egressMap+" { type ipv4_addr : verdict; }")
	s.line("add chain", forwardChain+" { type filter hook forward priority filter; policy accept; }")
	s.line("add rule", forwardChain+" ct state established,related accept")
	s.line("add rule", forwardChain+" ip saddr @"+hostIPsSet+" accept")
	s.line("add rule", forwardChain+" ip saddr vmap @"+egressMap)
	s.line("add rule", forwardChain+" ip daddr vmap @"+ingressMap)
	diff(s, newRuleset(), want)
	return s.b.String()
}

// diffScript returns the commands that turn have into want, or "" when
// they are equal.
func diffScript(table string, have, want *ruleset) string {
	s := &script{table: table}
	diff(s, have, want)
	return s.b.String()
}

// diff writes the transaction from have to want. The order matters inside
// one transaction: sets exist before rules use them, chains exist before
// map elements jump to them, and nothing is deleted while still referenced.
func diff(s *script, have, want *ruleset) {
	for _, name := range sortedKeys(want.sets) {
		elems := want.sets[name]
		old, ok := have.sets[name]
		switch {
		case !ok:
			s.line("add set", name+" { type ipv4_addr; flags interval; }")
		case slices.Equal(old, elems):
			continue
		default:
			s.line("flush set", name)
		}
		if len(elems) > 0 {
			s.line("add element", name+" { "+strings.Join(elems, ", ")+" }")
		}
	}
	for _, name := range sortedKeys(want.chains) {
		rules := want.chains[name]
		old, ok := have.chains[name]
		switch {
		case !ok:
			s.line("add chain", name)
		case slices.Equal(old, rules):
			continue
		default:
			s.line("flush chain", name)
		}
		for _, r := range rules {
			s.line("add rule", name+" "+r)
		}
	}
	diffMap(s, ingressMap, have.ingress, want.ingress)
	diffMap(s, egressMap, have.egress, want.egress)
	for _, name := range sortedKeys(have.chains) {
		if _, ok := want.chains[name]; !ok {
			s.line("flush chain", name)
			s.line("delete chain", name)
		}
	}
	for _, name := range sortedKeys(have.sets) {
		if _, ok := want.sets[name]; !ok {
			s.line("delete set", name)
		}
	}
}

// diffMap updates a dispatch map. A changed element is deleted and added
// again because "add element" does not replace an existing key.
func diffMap(s *script, name string, have, want map[string]string) {
	var del, add []string
	for _, ip := range sortedKeys(have) {
		if c, ok := want[ip]; !ok || c != have[ip] {
			del = append(del, ip)
		}
	}
	for _, ip := range sortedKeys(want) {
		if c, ok := have[ip]; !ok || c != want[ip] {
			add = append(add, ip+" : jump "+want[ip])
		}
	}
	if len(del) > 0 {
		s.line("delete element", name+" { "+strings.Join(del, ", ")+" }")
	}
	if len(add) > 0 {
		s.line("add element", name+" { "+strings.Join(add, ", ")+" }")
	}
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
