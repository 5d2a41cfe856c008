package proxy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// The nft script writers. Everything is written as flat commands
// ("add rule ip T chain ...") so the same code serves full and partial syncs.

// baseChains are the table's chains that the kernel's hooks call. A full
// sync keeps them (see syncAll).
var baseChains = []baseChain{
	// NAT at the standard NAT priorities (dstnat -100, srcnat 100), as
	// numbers: nft 1.0.6 refuses the name dstnat in the output hook.
	{chainNatPrerouting, "type nat hook prerouting priority -100;"},
	{chainNatOutput, "type nat hook output priority -100;"},
	{chainNatPostrouting, "type nat hook postrouting priority 100;"},
	// Filter chains run after DNAT (input and forward come after
	// prerouting; output is placed after the output NAT hook), so only
	// packets that were not DNATed still carry a service address.
	{chainFilterInput, "type filter hook input priority -110;"},
	{chainFilterForward, "type filter hook forward priority -110;"},
	{chainFilterOutput, "type filter hook output priority -90;"},
	// The firewall of loadBalancerSourceRanges runs before DNAT (dstnat
	// - 10), while the destination is still the load balancer IP.
	{chainFilterPrerouting, "type filter hook prerouting priority -110;"},
}

type baseChain struct{ name, hook string }

// fixedChains are the other chains every table has.
var fixedChains = []string{chainServices, chainEndpointsCheck, chainFirewallCheck, chainMarkMasq, chainMasquerading, chainReject}

// fixedSets are the sets and maps every table has (setNodePortIPs aside,
// which only a table matching node IPs has).
var fixedSets = []struct{ kind, name, decl string }{
	{"map", mapServiceIPs, mapServiceIPs + " { type ipv4_addr . inet_proto . inet_service : verdict; }"},
	{"map", mapExternalIPs, mapExternalIPs + " { type ipv4_addr . inet_proto . inet_service : verdict; }"},
	{"map", mapServiceNodePorts, mapServiceNodePorts + " { type inet_proto . inet_service : verdict; }"},
	{"map", mapNoEndpointServices, mapNoEndpointServices + " { type ipv4_addr . inet_proto . inet_service : verdict; }"},
	{"map", mapNoEndpointNodePorts, mapNoEndpointNodePorts + " { type inet_proto . inet_service : verdict; }"},
	{"map", mapFirewallIPs, mapFirewallIPs + " { type ipv4_addr . inet_proto . inet_service : verdict; }"},
	// An entry is needed only by the packet that adds it, so entries
	// expire soon. The size bounds memory: only while over 65536 distinct
	// endpoints get new connections within 10s can a hairpin be missed.
	{"set", setHairpin, setHairpin + " { type ipv4_addr . ipv4_addr; flags dynamic,timeout; timeout 10s; size 65536; }"},
}

func isBaseChain(name string) bool {
	return slices.ContainsFunc(baseChains, func(c baseChain) bool { return c.name == name })
}

// writeBase writes the table and its fixed objects. NodePorts are matched on
// nodeIPs when given, otherwise on any local address except loopback
// (upstream's nftables mode does not serve NodePorts on 127.0.0.1 either).
func writeBase(w *strings.Builder, table string, nodeIPs []netip.Addr, clusterCIDR netip.Prefix) {
	t := "ip " + table
	fmt.Fprintf(w, "add table %s\n", t)
	for _, c := range baseChains {
		fmt.Fprintf(w, "add chain %s %s { %s policy accept; }\n", t, c.name, c.hook)
	}
	for _, c := range fixedChains {
		fmt.Fprintf(w, "add chain %s %s\n", t, c)
	}
	for _, s := range fixedSets {
		fmt.Fprintf(w, "add %s %s %s\n", s.kind, t, s.decl)
	}

	nodeMatch := "fib daddr type local ip daddr != 127.0.0.0/8"
	if len(nodeIPs) > 0 {
		var elems []string
		for _, a := range nodeIPs {
			if a.Is4() {
				elems = append(elems, a.String())
			}
		}
		fmt.Fprintf(w, "add set %s %s { type ipv4_addr; }\n", t, setNodePortIPs)
		if len(elems) > 0 {
			fmt.Fprintf(w, "add element %s %s { %s }\n", t, setNodePortIPs, strings.Join(elems, ", "))
		}
		nodeMatch = "ip daddr @" + setNodePortIPs
	}
	rule := func(chain, body string) { fmt.Fprintf(w, "add rule %s %s %s\n", t, chain, body) }
	rule(chainNatPrerouting, "jump "+chainServices)
	rule(chainNatOutput, "jump "+chainServices)
	rule(chainNatPostrouting, "jump "+chainMasquerading)
	if clusterCIDR.IsValid() {
		// Traffic to a cluster IP from outside the pod network (the node
		// itself, or a host routing the service range here) may leave for
		// another node, so it is masqueraded to come back. The vmap's keys
		// serve as the set of cluster IPs that have endpoints.
		rule(chainServices, "ip saddr != "+clusterCIDR.String()+" ip daddr . meta l4proto . th dport @"+mapServiceIPs+" jump "+chainMarkMasq)
	}
	rule(chainServices, "ip daddr . meta l4proto . th dport vmap @"+mapServiceIPs)
	rule(chainServices, "ip daddr . meta l4proto . th dport vmap @"+mapExternalIPs)
	rule(chainServices, nodeMatch+" meta l4proto . th dport vmap @"+mapServiceNodePorts)
	rule(chainMarkMasq, "meta mark set meta mark or "+masqMark)
	rule(chainMasquerading, "ct status dnat update @"+setHairpin+" { ip daddr . ip daddr }")
	rule(chainMasquerading, "ct status dnat ip saddr . ip daddr @"+setHairpin+" jump "+chainMarkMasq)
	rule(chainMasquerading, "meta mark and "+masqMark+" == 0 return")
	rule(chainMasquerading, "meta mark set meta mark xor "+masqMark)
	rule(chainMasquerading, "masquerade fully-random")
	for _, c := range []string{chainFilterInput, chainFilterForward, chainFilterOutput} {
		rule(c, "ct state new jump "+chainEndpointsCheck)
	}
	rule(chainFilterPrerouting, "ct state new jump "+chainFirewallCheck)
	rule(chainFirewallCheck, "ip daddr . meta l4proto . th dport vmap @"+mapFirewallIPs)
	rule(chainEndpointsCheck, "ip daddr . meta l4proto . th dport vmap @"+mapNoEndpointServices)
	rule(chainEndpointsCheck, nodeMatch+" meta l4proto . th dport vmap @"+mapNoEndpointNodePorts)
	// Plain reject: ICMP port unreachable, which TCP clients see as
	// "connection refused", as with upstream.
	rule(chainReject, "reject")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// writeDiff writes the commands that turn old into new for one Service (old
// nil means nothing was written). The order matters inside the transaction:
// objects are declared before anything refers to them, and a chain or set is
// deleted only after every rule and element that referred to it is gone.
func writeDiff(w *strings.Builder, table string, old, new *serviceRules) {
	if old == nil {
		old = newServiceRules()
	}
	t := "ip " + table
	for _, name := range sortedKeys(new.sets) {
		if _, ok := old.sets[name]; !ok {
			fmt.Fprintf(w, "add set %s %s %s\n", t, name, new.sets[name])
		}
	}
	newChains := sortedKeys(new.chains)
	for _, name := range newChains {
		if _, ok := old.chains[name]; !ok {
			fmt.Fprintf(w, "add chain %s %s\n", t, name)
		}
	}
	for _, m := range sortedKeys(old.elems) {
		for _, k := range sortedKeys(old.elems[m]) {
			if v, ok := new.elems[m][k]; !ok || v != old.elems[m][k] {
				fmt.Fprintf(w, "delete element %s %s { %s }\n", t, m, k)
			}
		}
	}
	for _, name := range newChains {
		rules, existed := old.chains[name]
		if existed && slices.Equal(rules, new.chains[name]) {
			continue
		}
		if existed {
			fmt.Fprintf(w, "flush chain %s %s\n", t, name)
		}
		for _, r := range new.chains[name] {
			fmt.Fprintf(w, "add rule %s %s %s\n", t, name, r)
		}
	}
	for _, m := range sortedKeys(new.elems) {
		for _, k := range sortedKeys(new.elems[m]) {
			if v, ok := old.elems[m][k]; !ok || v != new.elems[m][k] {
				fmt.Fprintf(w, "add element %s %s { %s : %s }\n", t, m, k, new.elems[m][k])
			}
		}
	}
	var gone []string
	for _, name := range sortedKeys(old.chains) {
		if _, ok := new.chains[name]; !ok {
			gone = append(gone, name)
			fmt.Fprintf(w, "flush chain %s %s\n", t, name)
		}
	}
	for _, name := range sortedKeys(old.sets) {
		if _, ok := new.sets[name]; !ok {
			fmt.Fprintf(w, "delete set %s %s\n", t, name)
		}
	}
	for _, name := range gone {
		fmt.Fprintf(w, "delete chain %s %s\n", t, name)
	}
}

// writeDispatchMaps declares the endpoint maps of dispatch chain d.
func writeDispatchMaps(w *strings.Builder, table string, d dispatchKey) {
	fmt.Fprintf(w, "add map ip %s %s { typeof ip daddr . meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport; }\n", table, d.addrMap())
	fmt.Fprintf(w, "add map ip %s %s { typeof meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport; }\n", table, d.portMap())
}

// writeDispatchChain writes dispatch chain d: DNAT to the endpoint found
// under "destination . random pick", by address first, else by NodePort.
// A rule per protocol, since nft wants a protocol match before "port".
func writeDispatchChain(w *strings.Builder, table string, d dispatchKey) {
	t := "ip " + table
	fmt.Fprintf(w, "add chain %s %s\n", t, d.chain())
	for _, proto := range []string{"tcp", "udp", "sctp"} {
		fmt.Fprintf(w, "add rule %s %s meta l4proto %s dnat ip addr . port to ip daddr . meta l4proto . th dport . numgen random mod %d map @%s\n",
			t, d.chain(), proto, d.n, d.addrMap())
		fmt.Fprintf(w, "add rule %s %s meta l4proto %s dnat ip addr . port to meta l4proto . th dport . numgen random mod %d map @%s\n",
			t, d.chain(), proto, d.n, d.portMap())
	}
}

func sortedDispatch(ds map[dispatchKey]struct{}) []dispatchKey {
	out := make([]dispatchKey, 0, len(ds))
	for d := range ds {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b dispatchKey) int { return strings.Compare(a.chain(), b.chain()) })
	return out
}

// writeFull writes a whole table's contents after writeBase, except the
// dispatch chains and endpoint maps, which syncAll has made and filled
// before (see endpointElements): first what rules refer to, then the
// rules, and the verdict maps last, since their elements jump to the
// chains. Elements are written as one command per map rather than one per
// element.
func writeFull(w *strings.Builder, table string, rules []*serviceRules) {
	t := "ip " + table
	var names []string // verdict maps
	seen := map[string]bool{}
	for _, r := range rules {
		for _, name := range sortedKeys(r.sets) {
			fmt.Fprintf(w, "add set %s %s %s\n", t, name, r.sets[name])
		}
		for m := range r.elems {
			if _, endpoints := generation(m, endpointMapPrefix); !endpoints && !seen[m] {
				seen[m] = true
				names = append(names, m)
			}
		}
	}
	for _, r := range rules {
		for _, name := range sortedKeys(r.chains) {
			fmt.Fprintf(w, "add chain %s %s\n", t, name)
		}
		for _, name := range sortedKeys(r.chains) {
			for _, body := range r.chains[name] {
				fmt.Fprintf(w, "add rule %s %s %s\n", t, name, body)
			}
		}
	}
	slices.Sort(names)
	for _, m := range names {
		fmt.Fprintf(w, "add element %s %s { ", t, m)
		first := true
		for _, r := range rules {
			for _, k := range sortedKeys(r.elems[m]) {
				if !first {
					w.WriteString(", ")
				}
				first = false
				w.WriteString(k)
				w.WriteString(" : ")
				w.WriteString(r.elems[m][k])
			}
		}
		w.WriteString(" }\n")
	}
}

// endpointElements are the elements of the dispatch chains' endpoint maps.
func endpointElements(rules []*serviceRules, dispatch map[dispatchKey]struct{}) []mapElements {
	addrKey := []fieldKind{fieldIPv4, fieldProto, fieldPort, fieldIndex}
	portKey := []fieldKind{fieldProto, fieldPort, fieldIndex}
	value := []fieldKind{fieldIPv4, fieldPort}
	var out []mapElements
	index := map[string]int{}
	for _, d := range sortedDispatch(dispatch) {
		index[d.addrMap()] = len(out)
		out = append(out, mapElements{name: d.addrMap(), key: addrKey, value: value})
		index[d.portMap()] = len(out)
		out = append(out, mapElements{name: d.portMap(), key: portKey, value: value})
	}
	for _, r := range rules {
		for m, elems := range r.elems {
			i, ok := index[m]
			if !ok {
				continue
			}
			for _, k := range sortedKeys(elems) {
				out[i].elems = append(out[i].elems, [2]string{k, elems[k]})
			}
		}
	}
	return slices.DeleteFunc(out, func(m mapElements) bool { return len(m.elems) == 0 })
}
