package proxy

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

// Names of the objects every table has. They are written on full syncs only.
const (
	chainNatPrerouting    = "nat-prerouting"
	chainNatOutput        = "nat-output"
	chainNatPostrouting   = "nat-postrouting"
	chainFilterInput      = "filter-input"
	chainFilterForward    = "filter-forward"
	chainFilterOutput     = "filter-output"
	chainFilterPrerouting = "filter-prerouting"
	chainFirewallCheck    = "firewall-check"
	chainServices         = "services"
	chainEndpointsCheck   = "endpoints-check"
	chainMarkMasq         = "mark-for-masquerade"
	chainMasquerading     = "masquerading"
	chainReject           = "reject-chain"

	mapServiceIPs          = "service-ips" // cluster IPs only
	mapExternalIPs         = "external-ips"
	mapServiceNodePorts    = "service-nodeports"
	mapNoEndpointServices  = "no-endpoint-services"
	mapNoEndpointNodePorts = "no-endpoint-nodeports"
	// mapFirewallIPs sends traffic to a LoadBalancer IP of a Service with
	// loadBalancerSourceRanges to the chain that drops other sources.
	mapFirewallIPs = "firewall-ips"
	setNodePortIPs = "nodeport-ips"
	// setHairpin finds hairpin connections: a connection whose source
	// equals its DNATed destination is a pod reaching itself through a
	// Service, and must be masqueraded or the reply would skip un-DNAT.
	// nft cannot compare two packet fields, so postrouting adds
	// "daddr . daddr" to this set and then looks up "saddr . daddr": the
	// set only ever holds pairs of equal addresses, so that lookup hits
	// exactly when saddr equals daddr. This replaces a rule per endpoint.
	setHairpin = "hairpin"

	// masqMark is the packet mark bit that asks postrouting to masquerade;
	// the same bit kube-proxy uses, so tooling that knows it still reads right.
	masqMark = "0x4000"

	// defaultAffinityTimeout is the API default for
	// sessionAffinityConfig.clientIP.timeoutSeconds (3 hours).
	defaultAffinityTimeout = 10800
)

// serviceRules is everything one Service owns in the table: its chains (name →
// rule bodies, in order), its affinity sets (name → declaration) and its map
// elements (map → key → verdict). Two of them are compared to write a diff.
type serviceRules struct {
	chains   map[string][]string
	sets     map[string]string
	elems    map[string]map[string]string
	dispatch map[dispatchKey]struct{} // shared chains it jumps to
	// udp describes the UDP ports, so that the next sync can tell which
	// conntrack entries it made stale. It is not written to the table.
	udp []udpPort
}

func newServiceRules() *serviceRules {
	return &serviceRules{
		chains:   map[string][]string{},
		sets:     map[string]string{},
		elems:    map[string]map[string]string{},
		dispatch: map[dispatchKey]struct{}{},
	}
}

func (r *serviceRules) elem(m, key, verdict string) {
	if r.elems[m] == nil {
		r.elems[m] = map[string]string{}
	}
	r.elems[m][key] = verdict
}

func (r *serviceRules) empty() bool {
	return len(r.chains) == 0 && len(r.sets) == 0 && len(r.elems) == 0
}

// builder turns API objects into serviceRules for one node.
type builder struct {
	nodeName    string
	clusterCIDR netip.Prefix // invalid: no "from a pod" test, so no masquerade by source
	gen         int          // generation of the endpoint maps (see dispatchKey)
}

// The endpoint maps: every Service whose port has n endpoints (without
// ClientIP affinity) is served by the same chain, dispatch-POLICY-n. Its
// rules look up "destination . numgen random mod n" in two maps, one keyed
// by address, protocol and port (cluster, external and load balancer IPs),
// one by protocol and port (NodePorts), whose values are the endpoints.
// So a Service needs no chain of its own: nft 1.0.6 reads every chain back
// before it adds a rule or an element, and a chain per Service made each
// small update cost tens of milliseconds. A map per Service would not do
// either: the kernel finds a set by walking the table's list of sets, so
// 10k of them (or 10k anonymous vmaps) cost quadratic time. The maps are
// per n because the kernel checks every element of a map against every
// rule that uses it whenever either is added.
//
// A full sync writes fresh dispatch chains and endpoint maps before the
// transaction that sends traffic to them (see Proxy.syncAll), so the chains
// and maps of one full sync carry a generation in their names: none for
// 0, "-gN" for N.
const (
	dispatchChainPrefix = "dispatch-"
	endpointMapPrefix   = "endpoints-"
	genSuffix           = "-g"
)

// dispatchKey names one dispatch chain and its two maps.
type dispatchKey struct {
	policy string // "cluster" or "local"
	n      int
	gen    int
}

func (d dispatchKey) chain() string {
	return d.generation(fmt.Sprintf("%s%s-%d", dispatchChainPrefix, d.policy, d.n))
}
func (d dispatchKey) addrMap() string {
	return d.generation(fmt.Sprintf("%s%s-%d", endpointMapPrefix, d.policy, d.n))
}
func (d dispatchKey) portMap() string {
	return d.generation(fmt.Sprintf("%snp-%s-%d", endpointMapPrefix, d.policy, d.n))
}
func (d dispatchKey) generation(name string) string {
	if d.gen == 0 {
		return name
	}
	return name + genSuffix + strconv.Itoa(d.gen)
}

// generation is the generation of an endpoint map (prefix
// endpointMapPrefix) or a dispatch chain (dispatchChainPrefix), from its
// name; ok is false for names without the prefix.
func generation(name, prefix string) (gen int, ok bool) {
	if !strings.HasPrefix(name, prefix) {
		return 0, false
	}
	if i := strings.LastIndex(name, genSuffix); i >= 0 {
		if g, err := strconv.Atoi(name[i+len(genSuffix):]); err == nil {
			return g, true
		}
	}
	return 0, true
}

// hashName gives a short deterministic name: prefix plus 16 base32 characters
// (80 bits) of SHA-256 of key. Chain names must stay short because nft sends
// them in every rule that jumps to them.
func hashName(prefix, key string) string {
	sum := sha256.Sum256([]byte(key))
	return prefix + base32.StdEncoding.EncodeToString(sum[:10])
}

// endpoint is one usable backend of a service port.
type endpoint struct {
	addr        netip.Addr
	port        int32
	ready       bool
	serving     bool
	terminating bool
	local       bool
}

func (e endpoint) String() string { return netip.AddrPortFrom(e.addr, uint16(e.port)).String() }

// nftProto maps a Service protocol to its nft name; "" means unsupported.
func nftProto(p v1.Protocol) string {
	switch p {
	case v1.ProtocolTCP, "":
		return "tcp"
	case v1.ProtocolUDP:
		return "udp"
	case v1.ProtocolSCTP:
		return "sctp"
	}
	return ""
}

// ipv4ClusterIP returns the Service's IPv4 cluster IP, or an invalid Addr for
// headless, ExternalName and IPv6-only Services.
func ipv4ClusterIP(svc *v1.Service) netip.Addr {
	if svc.Spec.Type == v1.ServiceTypeExternalName {
		return netip.Addr{}
	}
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 {
		ips = []string{svc.Spec.ClusterIP}
	}
	for _, s := range ips {
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
			return a
		}
	}
	return netip.Addr{}
}

// lbSourceRanges are the IPv4 prefixes a LoadBalancer Service accepts
// traffic to its load balancer IPs from: spec.loadBalancerSourceRanges, or
// upstream's older annotation when the field is empty. ok is false when
// the Service does not limit its sources.
func lbSourceRanges(svc *v1.Service) (ranges []netip.Prefix, ok bool) {
	if svc.Spec.Type != v1.ServiceTypeLoadBalancer {
		return nil, false
	}
	given := svc.Spec.LoadBalancerSourceRanges
	if len(given) == 0 {
		if a := svc.Annotations[v1.AnnotationLoadBalancerSourceRangesKey]; strings.TrimSpace(a) != "" {
			given = strings.Split(a, ",")
		}
	}
	if len(given) == 0 {
		return nil, false
	}
	for _, s := range given {
		if p, err := netip.ParsePrefix(strings.TrimSpace(s)); err == nil && p.Addr().Is4() {
			ranges = append(ranges, p.Masked())
		}
	}
	return ranges, true
}

// lbIngressAddrs are the IPv4 load balancer IPs of a LoadBalancer Service
// that traffic reaches directly (ipMode VIP).
func lbIngressAddrs(svc *v1.Service) []netip.Addr {
	var out []netip.Addr
	if svc.Spec.Type != v1.ServiceTypeLoadBalancer {
		return nil
	}
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if ing.IPMode != nil && *ing.IPMode == v1.LoadBalancerIPModeProxy {
			continue
		}
		if a, err := netip.ParseAddr(ing.IP); err == nil && a.Is4() && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// externalAddrs are the IPv4 addresses, besides node addresses, on which the
// Service accepts traffic from outside: spec.externalIPs and, for type
// LoadBalancer, the ingress IPs whose ipMode is not Proxy (with Proxy the
// load balancer sends traffic to the node, not to the VIP).
func externalAddrs(svc *v1.Service) []netip.Addr {
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	add := func(s string) {
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, s := range svc.Spec.ExternalIPs {
		add(s)
	}
	if svc.Spec.Type == v1.ServiceTypeLoadBalancer {
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			if ing.IPMode != nil && *ing.IPMode == v1.LoadBalancerIPModeProxy {
				continue
			}
			add(ing.IP)
		}
	}
	return out
}

// endpointsFor collects the IPv4 endpoints of one service port from the
// Service's slices. The slice port is matched by name and protocol, which is
// also how named targetPorts are resolved: the slice already carries the
// number. An address listed twice (slices overlap while being rewritten)
// keeps its best condition.
func (b *builder) endpointsFor(slices []*discovery.EndpointSlice, portName string, proto v1.Protocol) []endpoint {
	if proto == "" {
		proto = v1.ProtocolTCP
	}
	var out []endpoint
	index := map[netip.AddrPort]int{}
	for _, s := range slices {
		if s.AddressType != discovery.AddressTypeIPv4 {
			continue
		}
		var port int32
		for _, p := range s.Ports {
			pp := v1.ProtocolTCP
			if p.Protocol != nil {
				pp = *p.Protocol
			}
			if p.Port != nil && pp == proto && ptrString(p.Name) == portName {
				port = *p.Port
				break
			}
		}
		if port <= 0 || port > 65535 {
			continue
		}
		for _, ep := range s.Endpoints {
			if len(ep.Addresses) == 0 {
				continue
			}
			a, err := netip.ParseAddr(ep.Addresses[0])
			if err != nil || !a.Is4() {
				continue
			}
			// Conditions as the API defines them: nil ready means ready,
			// nil serving means "same as ready", nil terminating means not.
			ready := ep.Conditions.Ready == nil || *ep.Conditions.Ready
			serving := ready
			if ep.Conditions.Serving != nil {
				serving = *ep.Conditions.Serving
			}
			terminating := ep.Conditions.Terminating != nil && *ep.Conditions.Terminating
			e := endpoint{addr: a, port: port, ready: ready, serving: serving, terminating: terminating,
				local: ep.NodeName != nil && *ep.NodeName == b.nodeName && b.nodeName != ""}
			ap := netip.AddrPortFrom(a, uint16(port))
			if i, ok := index[ap]; ok {
				if e.ready && !out[i].ready || e.serving && !out[i].serving {
					out[i] = e
				}
				continue
			}
			index[ap] = len(out)
			out = append(out, e)
		}
	}
	return out
}

func ptrString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// pickEndpoints applies upstream's choice: the ready endpoints if there are
// any, otherwise the ones that are serving but terminating, so that a rolling
// update of the last pod does not drop traffic early.
func pickEndpoints(eps []endpoint, localOnly bool) []endpoint {
	var ready, terminating []endpoint
	for _, e := range eps {
		if localOnly && !e.local {
			continue
		}
		if e.ready {
			ready = append(ready, e)
		} else if e.serving && e.terminating {
			terminating = append(terminating, e)
		}
	}
	if len(ready) > 0 {
		return ready
	}
	return terminating
}

// service computes the serviceRules of one Service; nil svc (deleted) or a
// Service the proxy ignores gives empty rules.
func (b *builder) service(svc *v1.Service, slices []*discovery.EndpointSlice) *serviceRules {
	r := newServiceRules()
	if svc == nil {
		return r
	}
	clusterIP := ipv4ClusterIP(svc)
	if !clusterIP.IsValid() {
		return r
	}
	ext := externalAddrs(svc)
	for i := range svc.Spec.Ports {
		b.servicePort(r, svc, clusterIP, ext, &svc.Spec.Ports[i], slices)
	}
	return r
}

func (b *builder) servicePort(r *serviceRules, svc *v1.Service, clusterIP netip.Addr, ext []netip.Addr, sp *v1.ServicePort, slices []*discovery.EndpointSlice) {
	proto := nftProto(sp.Protocol)
	if proto == "" || sp.Port <= 0 {
		return
	}
	portKey := svc.Namespace + "/" + svc.Name + "/" + proto + "/" + sp.Name
	var nodePort int32
	if svc.Spec.Type == v1.ServiceTypeNodePort || svc.Spec.Type == v1.ServiceTypeLoadBalancer {
		nodePort = sp.NodePort
	}
	external := len(ext) > 0 || nodePort > 0
	internalLocal := svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == v1.ServiceInternalTrafficPolicyLocal
	externalLocal := external && svc.Spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal

	// Cluster endpoints are needed for internal traffic under policy Cluster
	// and for any external traffic: even with externalTrafficPolicy Local,
	// traffic from pods and from the node itself short-circuits to them.
	all := b.endpointsFor(slices, sp.Name, sp.Protocol)
	if proto == "udp" {
		r.udp = append(r.udp, udpInfo(sp, clusterIP, ext, nodePort, all))
	}
	var clusterEps, localEps []endpoint
	if !internalLocal || external {
		clusterEps = pickEndpoints(all, false)
	}
	if internalLocal || externalLocal {
		localEps = pickEndpoints(all, true)
	}
	// "No endpoints" (reject) means none usable anywhere; a traffic policy
	// that leaves none on this node drops instead, as upstream.
	hasEndpoints := len(clusterEps) > 0 || len(pickEndpoints(all, false)) > 0
	hasInternal, hasExternal := len(clusterEps) > 0, len(clusterEps) > 0
	if internalLocal {
		hasInternal = len(localEps) > 0
	}
	if externalLocal {
		hasExternal = len(localEps) > 0
	}

	ipKey := func(a netip.Addr, port int32) string {
		return a.String() + " . " + proto + " . " + strconv.Itoa(int(port))
	}
	npKey := proto + " . " + strconv.Itoa(int(nodePort))

	// ClientIP affinity: one timeout set per endpoint remembers its clients.
	var affinity int32
	if svc.Spec.SessionAffinity == v1.ServiceAffinityClientIP {
		affinity = defaultAffinityTimeout
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			affinity = *c.ClientIP.TimeoutSeconds
		}
	}

	// The chains that pick an endpoint for each policy, and the keys
	// under which they find this Service's endpoints.
	var clusterChain, localChain string
	if affinity > 0 {
		clusterChain, localChain = hashName("svc-", portKey), hashName("loc-", portKey)
		if len(clusterEps) > 0 {
			r.chains[clusterChain] = b.affinityRules(r, portKey, proto, affinity, clusterEps)
		}
		if len(localEps) > 0 {
			r.chains[localChain] = b.affinityRules(r, portKey, proto, affinity, localEps)
		}
	} else {
		clusterChain = dispatchKey{"cluster", len(clusterEps), b.gen}.chain()
		localChain = dispatchKey{"local", len(localEps), b.gen}.chain()
	}
	var clusterKeys, localKeys []string // address keys
	var clusterNP, localNP bool         // NodePort key
	if hasInternal {
		if internalLocal {
			localKeys = append(localKeys, ipKey(clusterIP, sp.Port))
		} else {
			clusterKeys = append(clusterKeys, ipKey(clusterIP, sp.Port))
		}
	}
	if external && hasEndpoints {
		// Cluster endpoints serve external traffic under policy Cluster,
		// and pods and the node itself under policy Local.
		for _, a := range ext {
			clusterKeys = append(clusterKeys, ipKey(a, sp.Port))
			if externalLocal && hasExternal {
				localKeys = append(localKeys, ipKey(a, sp.Port))
			}
		}
		clusterNP = nodePort > 0
		localNP = nodePort > 0 && externalLocal && hasExternal
	}
	if affinity == 0 {
		r.endpointElems(dispatchKey{"cluster", len(clusterEps), b.gen}, clusterEps, clusterKeys, clusterNP, npKey)
		r.endpointElems(dispatchKey{"local", len(localEps), b.gen}, localEps, localKeys, localNP, npKey)
	}
	internalChain, externalPolicyChain := clusterChain, clusterChain
	if internalLocal {
		internalChain = localChain
	}
	if externalLocal {
		externalPolicyChain = localChain
	}
	extChain := hashName("ext-", portKey)

	// Internal traffic: the cluster IP. (Its masquerade for sources
	// outside the pod network is one rule for all, in the services chain.)
	if hasInternal {
		r.elem(mapServiceIPs, ipKey(clusterIP, sp.Port), "goto "+internalChain)
	}

	// External traffic: external IPs, LoadBalancer IPs and the NodePort.
	if external && hasEndpoints {
		var rules []string
		if !externalLocal {
			rules = append(rules, "jump "+chainMarkMasq)
		} else {
			if b.clusterCIDR.IsValid() {
				// Pods reaching an external address are treated as if they
				// went out to the load balancer and came back: any endpoint.
				rules = append(rules, "ip saddr "+b.clusterCIDR.String()+" goto "+clusterChain)
			}
			// The node itself has the VIP or node IP as source, so it needs
			// masquerade, and may use any endpoint.
			rules = append(rules,
				"fib saddr type local jump "+chainMarkMasq,
				"fib saddr type local goto "+clusterChain)
		}
		if hasExternal {
			rules = append(rules, "goto "+externalPolicyChain)
		}
		r.chains[extChain] = rules
		for _, a := range ext {
			r.elem(mapExternalIPs, ipKey(a, sp.Port), "goto "+extChain)
		}
		if nodePort > 0 {
			r.elem(mapServiceNodePorts, npKey, "goto "+extChain)
		}
	}

	// loadBalancerSourceRanges: traffic to a load balancer IP from other
	// sources is dropped before it is DNATed (as upstream, the NodePort
	// and external IPs are not limited).
	if ranges, ok := lbSourceRanges(svc); ok && external && hasEndpoints {
		fwChain := hashName("fw-", portKey)
		rule := "drop" // no usable range: nothing is let in
		if len(ranges) > 0 {
			rs := make([]string, len(ranges))
			for i, p := range ranges {
				rs[i] = p.String()
			}
			rule = "ip saddr != { " + strings.Join(rs, ", ") + " } drop"
		}
		r.chains[fwChain] = []string{rule}
		for _, a := range lbIngressAddrs(svc) {
			r.elem(mapFirewallIPs, ipKey(a, sp.Port), "goto "+fwChain)
		}
	}

	// Filter verdicts for traffic that was not DNATed: reject when there is
	// no endpoint at all, drop when the traffic policy leaves none.
	internalVerdict, externalVerdict := "", ""
	switch {
	case !hasEndpoints:
		internalVerdict, externalVerdict = "goto "+chainReject, "goto "+chainReject
	default:
		if !hasInternal {
			internalVerdict = "drop"
		}
		if !hasExternal {
			externalVerdict = "drop"
		}
	}
	if internalVerdict != "" {
		r.elem(mapNoEndpointServices, ipKey(clusterIP, sp.Port), internalVerdict)
	}
	if externalVerdict != "" && external {
		for _, a := range ext {
			r.elem(mapNoEndpointServices, ipKey(a, sp.Port), externalVerdict)
		}
		if nodePort > 0 {
			r.elem(mapNoEndpointNodePorts, npKey, externalVerdict)
		}
	}
}

// endpointElems adds the endpoint map elements that let dispatch chain d
// (for len(eps)) find eps under each of the keys.
func (r *serviceRules) endpointElems(d dispatchKey, eps []endpoint, keys []string, nodePort bool, npKey string) {
	if len(eps) == 0 || len(keys) == 0 && !nodePort {
		return
	}
	r.dispatch[d] = struct{}{}
	addrMap, portMap := d.addrMap(), d.portMap()
	for i, e := range eps {
		val := e.addr.String() + " . " + strconv.Itoa(int(e.port))
		idx := " . " + strconv.Itoa(i)
		for _, k := range keys {
			r.elem(addrMap, k+idx, val)
		}
		if nodePort {
			r.elem(portMap, npKey+idx, val)
		}
	}
}

// affinityRules are the rules of a Service chain with ClientIP affinity: a
// client seen recently goes to the same endpoint, and every pick refreshes
// its entry, so the pick is a rule per endpoint: a cascade in which rule i
// takes 1 in (n-i) of the connections that reach it.
func (b *builder) affinityRules(r *serviceRules, portKey, proto string, affinity int32, eps []endpoint) []string {
	affName := func(e endpoint) string {
		// The timeout is part of the name: an nft set's timeout cannot be
		// changed in place, so a new timeout means a new set.
		return hashName("aff-", portKey+"/"+e.String()+"/"+strconv.Itoa(int(affinity)))
	}
	// "meta l4proto" is repeated in every DNAT rule: nft only accepts a
	// port in "dnat to" after a transport protocol match in the same rule.
	l4 := "meta l4proto " + proto + " "
	dnat := func(e endpoint) string { return "update @" + affName(e) + " { ip saddr } dnat to " + e.String() }
	var rules []string
	for _, e := range eps {
		r.sets[affName(e)] = fmt.Sprintf("{ type ipv4_addr; flags dynamic,timeout; timeout %ds; }", affinity)
		rules = append(rules, "ip saddr @"+affName(e)+" "+l4+dnat(e))
	}
	for i, e := range eps {
		if left := len(eps) - i; left > 1 {
			rules = append(rules, fmt.Sprintf("%snumgen random mod %d == 0 %s", l4, left, dnat(e)))
		} else {
			rules = append(rules, l4+dnat(e))
		}
	}
	return rules
}

// udpInfo records a UDP service port for the conntrack cleanup. Its
// endpoints are all the serving ones, whatever the traffic policy, as
// upstream: a flow may have been DNATed to any of them.
func udpInfo(sp *v1.ServicePort, clusterIP netip.Addr, ext []netip.Addr, nodePort int32, eps []endpoint) udpPort {
	u := udpPort{name: sp.Name, addrs: append([]netip.Addr{clusterIP}, ext...), port: uint16(sp.Port)}
	if nodePort > 0 && nodePort <= 65535 {
		u.nodePort = uint16(nodePort)
	}
	for _, e := range eps {
		if e.ready || e.serving {
			u.endpoints = append(u.endpoints, netip.AddrPortFrom(e.addr, uint16(e.port)))
		}
	}
	return u
}
