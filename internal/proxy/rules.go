package proxy

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"strconv"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

// Names of the objects every table has. They are written on full syncs only.
const (
	chainNatPrerouting  = "nat-prerouting"
	chainNatOutput      = "nat-output"
	chainNatPostrouting = "nat-postrouting"
	chainFilterInput    = "filter-input"
	chainFilterForward  = "filter-forward"
	chainFilterOutput   = "filter-output"
	chainServices       = "services"
	chainEndpointsCheck = "endpoints-check"
	chainMarkMasq       = "mark-for-masquerade"
	chainMasquerading   = "masquerading"
	chainReject         = "reject-chain"

	mapServiceIPs          = "service-ips"
	mapServiceNodePorts    = "service-nodeports"
	mapNoEndpointServices  = "no-endpoint-services"
	mapNoEndpointNodePorts = "no-endpoint-nodeports"
	setNodePortIPs         = "nodeport-ips"

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
	chains map[string][]string
	sets   map[string]string
	elems  map[string]map[string]string
}

func newServiceRules() *serviceRules {
	return &serviceRules{
		chains: map[string][]string{},
		sets:   map[string]string{},
		elems:  map[string]map[string]string{},
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

	clusterChain := hashName("svc-", portKey)
	localChain := hashName("loc-", portKey)
	extChain := hashName("ext-", portKey)
	internalChain, externalPolicyChain := clusterChain, clusterChain
	if internalLocal {
		internalChain = localChain
	}
	if externalLocal {
		externalPolicyChain = localChain
	}

	ipKey := func(a netip.Addr, port int32) string {
		return a.String() + " . " + proto + " . " + strconv.Itoa(int(port))
	}
	npKey := proto + " . " + strconv.Itoa(int(nodePort))

	// Endpoint chains, shared by the cluster and local policy chains.
	var affinity int32
	if svc.Spec.SessionAffinity == v1.ServiceAffinityClientIP {
		affinity = defaultAffinityTimeout
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			affinity = *c.ClientIP.TimeoutSeconds
		}
	}
	sepName := func(e endpoint) string { return hashName("sep-", portKey+"/"+e.String()) }
	affName := func(e endpoint) string {
		// The timeout is part of the name: an nft set's timeout cannot be
		// changed in place, so a new timeout means a new set.
		return hashName("aff-", portKey+"/"+e.String()+"/"+strconv.Itoa(int(affinity)))
	}
	for _, eps := range [][]endpoint{clusterEps, localEps} {
		for _, e := range eps {
			name := sepName(e)
			if _, done := r.chains[name]; done {
				continue
			}
			rules := []string{
				// Hairpin: an endpoint reaching itself through the service
				// must be masqueraded or the reply would skip un-DNAT.
				"ip saddr " + e.addr.String() + " jump " + chainMarkMasq,
			}
			if affinity > 0 {
				set := affName(e)
				r.sets[set] = fmt.Sprintf("{ type ipv4_addr; flags dynamic,timeout; timeout %ds; }", affinity)
				rules = append(rules, "update @"+set+" { ip saddr }")
			}
			rules = append(rules, "meta l4proto "+proto+" dnat to "+e.String())
			r.chains[name] = rules
		}
	}
	dispatch := func(eps []endpoint) []string {
		var rules []string
		if affinity > 0 {
			for _, e := range eps {
				rules = append(rules, "ip saddr @"+affName(e)+" goto "+sepName(e))
			}
		}
		// Pick uniformly: rule i takes 1 in (n-i) of the connections that
		// reach it. This is iptables' statistic cascade written with
		// numgen; a "numgen random mod n vmap { ... }" per service would
		// be one rule, but every vmap is an anonymous set and the kernel
		// allocates and looks up set names by walking all sets of the
		// table: 10k services with 60k endpoints took 54 s instead of 6 s.
		for i, e := range eps {
			if left := len(eps) - i; left > 1 {
				rules = append(rules, fmt.Sprintf("numgen random mod %d == 0 goto %s", left, sepName(e)))
			} else {
				rules = append(rules, "goto "+sepName(e))
			}
		}
		return rules
	}
	if len(clusterEps) > 0 {
		r.chains[clusterChain] = dispatch(clusterEps)
	}
	if len(localEps) > 0 {
		r.chains[localChain] = dispatch(localEps)
	}

	// Internal traffic: the cluster IP.
	if hasInternal {
		if b.clusterCIDR.IsValid() {
			// Traffic to the VIP from outside the pod network (the node
			// itself, or a host routing the service range here) may leave
			// for another node, so it is masqueraded to come back.
			masq := fmt.Sprintf("ip daddr %s %s dport %d ip saddr != %s jump %s", clusterIP, proto, sp.Port, b.clusterCIDR, chainMarkMasq)
			r.chains[internalChain] = append([]string{masq}, r.chains[internalChain]...)
		}
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
			r.elem(mapServiceIPs, ipKey(a, sp.Port), "goto "+extChain)
		}
		if nodePort > 0 {
			r.elem(mapServiceNodePorts, npKey, "goto "+extChain)
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
