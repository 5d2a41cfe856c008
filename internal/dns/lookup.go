package dns

import (
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// want reports whether a question of type qt asks for records of type t.
func want(qt, t dnsmessage.Type) bool { return qt == t || qt == dnsmessage.TypeALL }

// lookup answers a question for a name in the cluster domain; rest is the
// lowercased part of the name before the domain.
func (s *Server) lookup(sc *scratch, q *dnsmessage.Question, rest []byte) reply {
	labels, ok := sc.split(rest)
	if !ok {
		return nxdomain()
	}
	n := len(labels)
	switch {
	case n == 0:
		return s.apex(sc, q)
	case string(labels[n-1]) == "svc":
		return s.svcRecords(sc, q, labels[:n-1])
	case string(labels[n-1]) == "pod":
		return s.podRecords(sc, q, labels[:n-1])
	case n == 1 && string(labels[0]) == "dns-version":
		if want(q.Type, dnsmessage.TypeTXT) {
			sc.answers = append(sc.answers, record{name: q.Name, typ: dnsmessage.TypeTXT})
		}
		return noerror()
	case n == 1 && string(labels[0]) == "dns":
		return noerror() // empty non-terminal above ns.dns
	case n == 2 && string(labels[0]) == "ns" && string(labels[1]) == "dns":
		s.nameserverAddrs(sc, q.Type, q.Name)
		return noerror()
	}
	return nxdomain()
}

// apex answers SOA and NS for the domain itself.
func (s *Server) apex(sc *scratch, q *dnsmessage.Question) reply {
	if want(q.Type, dnsmessage.TypeSOA) {
		sc.answers = append(sc.answers, record{name: q.Name, typ: dnsmessage.TypeSOA})
	}
	if want(q.Type, dnsmessage.TypeNS) {
		sc.answers = append(sc.answers, record{name: q.Name, typ: dnsmessage.TypeNS, target: s.nsName})
		// The nameserver's addresses are glue for the additional section.
		n := len(sc.answers)
		s.nameserverAddrs(sc, dnsmessage.TypeALL, s.nsName)
		sc.extra = append(sc.extra, sc.answers[n:]...)
		sc.answers = sc.answers[:n]
	}
	return noerror()
}

// nameserverAddrs adds the addresses of ns.dns.<domain>: the cluster IPs of
// kube-system/kube-dns, the Service clients are pointed at.
func (s *Server) nameserverAddrs(sc *scratch, qt dnsmessage.Type, owner dnsmessage.Name) {
	svc := s.service("kube-dns", "kube-system")
	if svc == nil {
		return
	}
	for _, ip := range svc.Spec.ClusterIPs {
		if addr, err := netip.ParseAddr(ip); err == nil {
			sc.addAddr(qt, owner, addr.Unmap())
		}
	}
}

// addAddr appends an A or AAAA record for addr if the question asks for it.
func (sc *scratch) addAddr(qt dnsmessage.Type, owner dnsmessage.Name, addr netip.Addr) bool {
	t := dnsmessage.TypeAAAA
	if addr.Is4() {
		t = dnsmessage.TypeA
	}
	if !want(qt, t) {
		return false
	}
	sc.answers = append(sc.answers, record{name: owner, typ: t, addr: addr})
	return true
}

func (s *Server) service(name, ns string) *corev1.Service {
	obj, ok, err := s.services.GetByKey(ns + "/" + name)
	if err != nil || !ok {
		return nil
	}
	svc, _ := obj.(*corev1.Service)
	return svc
}

func isHeadless(svc *corev1.Service) bool {
	return svc.Spec.Type != corev1.ServiceTypeExternalName && svc.Spec.ClusterIP == corev1.ClusterIPNone
}

// svcRecords answers names under svc.<domain>; l are the labels before "svc".
func (s *Server) svcRecords(sc *scratch, q *dnsmessage.Question, l [][]byte) reply {
	switch len(l) {
	case 0:
		return noerror() // svc.<domain> is an empty non-terminal
	case 1:
		// A namespace exists in DNS while it has services.
		if s.namespaceHasServices(string(l[0])) {
			return noerror()
		}
		return nxdomain()
	case 2:
		svc := s.service(string(l[0]), string(l[1]))
		if svc == nil {
			return nxdomain()
		}
		return s.serviceAnswer(sc, q, svc)
	case 3:
		svc := s.service(string(l[1]), string(l[2]))
		if svc == nil {
			return nxdomain()
		}
		if len(l[0]) > 0 && l[0][0] == '_' {
			// _proto.svc.ns.svc: exists as the parent of SRV names.
			if len(servicePorts(svc, nil, l[0][1:])) > 0 {
				return noerror()
			}
			return nxdomain()
		}
		return s.hostnameAnswer(sc, q, svc, string(l[0]))
	case 4:
		if len(l[0]) < 2 || l[0][0] != '_' || len(l[1]) < 2 || l[1][0] != '_' {
			return nxdomain()
		}
		svc := s.service(string(l[2]), string(l[3]))
		if svc == nil {
			return nxdomain()
		}
		return s.srvAnswer(sc, q, svc, l[0][1:], l[1][1:])
	}
	return nxdomain()
}

func (s *Server) namespaceHasServices(ns string) bool {
	if objs, err := s.services.ByIndex(cache.NamespaceIndex, ns); err == nil {
		return len(objs) > 0
	}
	for _, key := range s.services.ListKeys() {
		if strings.HasPrefix(key, ns+"/") {
			return true
		}
	}
	return false
}

// serviceAnswer answers svc.ns.svc.<domain>.
func (s *Server) serviceAnswer(sc *scratch, q *dnsmessage.Question, svc *corev1.Service) reply {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		// A CNAME answers every type; the client's resolver follows it.
		if target, ok := fqdn(svc.Spec.ExternalName); ok {
			sc.answers = append(sc.answers, record{name: q.Name, typ: dnsmessage.TypeCNAME, target: target})
		}
		return noerror()
	}
	if q.Type == dnsmessage.TypeSRV {
		return s.srvAnswer(sc, q, svc, nil, nil)
	}
	if isHeadless(svc) {
		s.readyEndpoints(sc, svc, func(_ *discoveryv1.EndpointSlice, _ *discoveryv1.Endpoint, addr netip.Addr) {
			sc.addAddr(q.Type, q.Name, addr)
		})
		return noerror()
	}
	// Parsed in place rather than through clusterIPs: this is the hot path.
	if len(svc.Spec.ClusterIPs) == 0 {
		if addr, err := netip.ParseAddr(svc.Spec.ClusterIP); err == nil {
			sc.addAddr(q.Type, q.Name, addr.Unmap())
		}
	}
	for _, ip := range svc.Spec.ClusterIPs {
		if addr, err := netip.ParseAddr(ip); err == nil {
			sc.addAddr(q.Type, q.Name, addr.Unmap())
		}
	}
	return noerror()
}

// hostnameAnswer answers hostname.svc.ns.svc.<domain>, which exists for the
// ready endpoints of a headless service.
func (s *Server) hostnameAnswer(sc *scratch, q *dnsmessage.Question, svc *corev1.Service, host string) reply {
	if !isHeadless(svc) {
		return nxdomain()
	}
	found := false
	s.readyEndpoints(sc, svc, func(_ *discoveryv1.EndpointSlice, ep *discoveryv1.Endpoint, addr netip.Addr) {
		if strings.EqualFold(endpointHostname(ep, addr), host) {
			found = true
			sc.addAddr(q.Type, q.Name, addr)
		}
	})
	if !found {
		return nxdomain()
	}
	return noerror()
}

// servicePorts returns the named ports of svc matching port and proto (nil
// matches any), case-insensitively.
func servicePorts(svc *corev1.Service, port, proto []byte) []corev1.ServicePort {
	var out []corev1.ServicePort
	for _, sp := range svc.Spec.Ports {
		if sp.Name == "" {
			continue // unnamed ports have no SRV records
		}
		p := sp.Protocol
		if p == "" {
			p = corev1.ProtocolTCP
		}
		if (port == nil || strings.EqualFold(sp.Name, string(port))) &&
			(proto == nil || strings.EqualFold(string(p), string(proto))) {
			out = append(out, sp)
		}
	}
	return out
}

// srvAnswer answers _port._proto.svc.ns.svc.<domain> SRV, or with port and
// proto nil, svc.ns.svc.<domain> SRV for every named port as CoreDNS does.
func (s *Server) srvAnswer(sc *scratch, q *dnsmessage.Question, svc *corev1.Service, port, proto []byte) reply {
	ports := servicePorts(svc, port, proto)
	if len(ports) == 0 {
		if port == nil {
			return noerror()
		}
		return nxdomain()
	}
	if !want(q.Type, dnsmessage.TypeSRV) {
		return noerror()
	}
	switch {
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		target, ok := fqdn(svc.Spec.ExternalName)
		if !ok {
			return noerror()
		}
		for _, sp := range ports {
			sc.answers = append(sc.answers, record{name: q.Name, typ: dnsmessage.TypeSRV, port: uint16(sp.Port), target: target})
		}
	case isHeadless(svc):
		s.headlessSRV(sc, q, svc, ports)
	default:
		target, ok := s.nameOf(svc.Name, svc.Namespace, "svc")
		if !ok {
			return noerror()
		}
		for _, sp := range ports {
			sc.answers = append(sc.answers, record{name: q.Name, typ: dnsmessage.TypeSRV, port: uint16(sp.Port), target: target})
		}
		for _, addr := range clusterIPs(svc) {
			sc.extra = append(sc.extra, record{name: target, typ: addrType(addr), addr: addr})
		}
	}
	// Spread the weight so that all targets together weigh about 100.
	if n := len(sc.answers); n > 0 {
		w := uint16(max(1, 100/n))
		for i := range sc.answers {
			sc.answers[i].weight = w
		}
	}
	return noerror()
}

// headlessSRV adds one SRV per ready endpoint and port, pointing at the
// endpoint's own name, with that name's address as additional record. The
// port number is the endpoint's (from the slice), which may differ from the
// service's.
func (s *Server) headlessSRV(sc *scratch, q *dnsmessage.Question, svc *corev1.Service, ports []corev1.ServicePort) {
	if sc.seen == nil {
		sc.seen = make(map[seenKey]struct{})
	}
	clear(sc.seen)
	for _, sp := range ports {
		proto := sp.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		s.readyEndpoints(sc, svc, func(es *discoveryv1.EndpointSlice, ep *discoveryv1.Endpoint, addr netip.Addr) {
			num, ok := slicePort(es, sp.Name, proto)
			if !ok {
				return
			}
			key := seenKey{addr: addr, port: num}
			if _, dup := sc.seen[key]; dup {
				return
			}
			sc.seen[key] = struct{}{}
			target, ok := s.nameOf(endpointHostname(ep, addr), svc.Name, svc.Namespace, "svc")
			if !ok {
				return
			}
			sc.answers = append(sc.answers, record{name: q.Name, typ: dnsmessage.TypeSRV, port: uint16(num), target: target})
			glue := seenKey{addr: addr, port: -1}
			if _, dup := sc.seen[glue]; !dup {
				sc.seen[glue] = struct{}{}
				sc.extra = append(sc.extra, record{name: target, typ: addrType(addr), addr: addr})
			}
		})
	}
}

func slicePort(es *discoveryv1.EndpointSlice, name string, proto corev1.Protocol) (int32, bool) {
	for _, p := range es.Ports {
		pp := corev1.ProtocolTCP
		if p.Protocol != nil {
			pp = *p.Protocol
		}
		if p.Name != nil && *p.Name == name && pp == proto && p.Port != nil {
			return *p.Port, true
		}
	}
	return 0, false
}

func addrType(addr netip.Addr) dnsmessage.Type {
	if addr.Is4() {
		return dnsmessage.TypeA
	}
	return dnsmessage.TypeAAAA
}

// readyEndpoints calls fn once per distinct address that DNS publishes for
// svc: ready endpoints, or all of them with publishNotReadyAddresses.
func (s *Server) readyEndpoints(sc *scratch, svc *corev1.Service, fn func(*discoveryv1.EndpointSlice, *discoveryv1.Endpoint, netip.Addr)) {
	objs, err := s.slices.ByIndex(indexSlicesByService, svc.Namespace+"/"+svc.Name)
	if err != nil {
		return
	}
	// An endpoint can sit in two slices for a moment while the controller
	// moves it; answer it once. Few services have many endpoints, so a
	// linear scan of what we already took beats a map here.
	var seen []netip.Addr
	for _, obj := range objs {
		es, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok || es.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		for i := range es.Endpoints {
			ep := &es.Endpoints[i]
			if !svc.Spec.PublishNotReadyAddresses && ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			addr, ok := endpointAddr(ep)
			if !ok || contains(seen, addr) {
				continue
			}
			if len(objs) > 1 {
				seen = append(seen, addr)
			}
			fn(es, ep, addr)
		}
	}
}

func contains(addrs []netip.Addr, a netip.Addr) bool {
	for _, b := range addrs {
		if a == b {
			return true
		}
	}
	return false
}

// endpointHostname is the endpoint's DNS label: its hostname, else one made
// from its address with dashes, as CoreDNS makes it.
func endpointHostname(ep *discoveryv1.Endpoint, addr netip.Addr) string {
	if ep.Hostname != nil && *ep.Hostname != "" {
		return *ep.Hostname
	}
	return dashed(addr)
}

func dashed(addr netip.Addr) string {
	if addr.Is4() {
		return strings.ReplaceAll(addr.String(), ".", "-")
	}
	return strings.ReplaceAll(addr.String(), ":", "-")
}

// podRecords answers a-b-c-d.ns.pod.<domain> with a.b.c.d for any namespace,
// as CoreDNS does with "pods insecure"; l are the labels before "pod".
func (s *Server) podRecords(sc *scratch, q *dnsmessage.Question, l [][]byte) reply {
	switch len(l) {
	case 0, 1:
		return noerror() // pod.<domain> and ns.pod.<domain> are empty non-terminals
	case 2:
		addr, ok := undash(l[0])
		if !ok {
			return nxdomain()
		}
		sc.addAddr(q.Type, q.Name, addr)
		return noerror()
	}
	return nxdomain()
}

// undash parses "10-42-0-5" or "fd00--5" back into an address.
func undash(label []byte) (netip.Addr, bool) {
	var buf [64]byte
	if len(label) > len(buf) {
		return netip.Addr{}, false
	}
	b := buf[:len(label)]
	// "fd00-42--9" has three dashes too, so IPv4 is tried first and IPv6
	// when that fails.
	for _, sep := range []byte{'.', ':'} {
		for i, c := range label {
			if c == '-' {
				c = sep
			}
			b[i] = c
		}
		if addr, err := netip.ParseAddr(string(b)); err == nil && addr.Zone() == "" && (sep == ':') == addr.Is6() {
			return addr, true
		}
	}
	return netip.Addr{}, false
}

// reverse answers a PTR question for a cluster IP or a headless endpoint IP.
// It reports false when the address is not one of ours, so the query goes
// upstream.
func (s *Server) reverse(sc *scratch, q *dnsmessage.Question, name []byte) bool {
	addr, ok := parseReverse(name)
	if !ok {
		return false
	}
	key := addr.String()
	if objs, err := s.services.ByIndex(indexServicesByIP, key); err == nil {
		for _, obj := range objs {
			if svc, ok := obj.(*corev1.Service); ok {
				if target, ok := s.nameOf(svc.Name, svc.Namespace, "svc"); ok {
					sc.answers = append(sc.answers, record{name: q.Name, typ: dnsmessage.TypePTR, target: target})
				}
			}
		}
	}
	if len(sc.answers) > 0 {
		return true
	}
	objs, err := s.slices.ByIndex(indexSlicesByAddr, key)
	if err != nil {
		return false
	}
	for _, obj := range objs {
		es, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok {
			continue
		}
		svc := s.service(es.Labels[discoveryv1.LabelServiceName], es.Namespace)
		if svc == nil || !isHeadless(svc) {
			continue
		}
		for i := range es.Endpoints {
			ep := &es.Endpoints[i]
			if a, ok := endpointAddr(ep); !ok || a != addr {
				continue
			}
			if !svc.Spec.PublishNotReadyAddresses && ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			if target, ok := s.nameOf(endpointHostname(ep, addr), svc.Name, svc.Namespace, "svc"); ok {
				sc.answers = append(sc.answers, record{name: q.Name, typ: dnsmessage.TypePTR, target: target})
			}
			break
		}
		if len(sc.answers) > 0 {
			break // the same endpoint in a second slice adds nothing
		}
	}
	return len(sc.answers) > 0
}

// parseReverse turns "4.3.2.1.in-addr.arpa." or a full nibble ip6.arpa name
// into the address; partial names are not addresses.
func parseReverse(name []byte) (netip.Addr, bool) {
	const v4, v6 = ".in-addr.arpa.", ".ip6.arpa."
	switch {
	case len(name) > len(v4) && string(name[len(name)-len(v4):]) == v4:
		var ip [4]byte
		labels := name[:len(name)-len(v4)]
		for i := 3; i >= 0; i-- {
			dot := len(labels)
			if i > 0 {
				dot = indexByte(labels, '.')
				if dot < 0 {
					return netip.Addr{}, false
				}
			}
			part := labels[:dot]
			if len(part) == 0 || len(part) > 3 || (len(part) > 1 && part[0] == '0') {
				return netip.Addr{}, false
			}
			v, err := strconv.ParseUint(string(part), 10, 8)
			if err != nil {
				return netip.Addr{}, false
			}
			ip[i] = byte(v)
			if i > 0 {
				labels = labels[dot+1:]
			}
		}
		return netip.AddrFrom4(ip), true
	case len(name) == 63+len(v6) && string(name[63:]) == v6:
		// 32 one-nibble labels; the last one's dot starts the suffix.
		var ip [16]byte
		for i := 0; i < 32; i++ {
			c, sep := name[2*i], name[2*i+1]
			if sep != '.' {
				return netip.Addr{}, false
			}
			v, ok := hexNibble(c)
			if !ok {
				return netip.Addr{}, false
			}
			// The first label is the lowest nibble of the last byte.
			pos := 31 - i
			if pos%2 == 0 {
				ip[pos/2] |= v << 4
			} else {
				ip[pos/2] |= v
			}
		}
		return netip.AddrFrom16(ip).Unmap(), true
	}
	return netip.Addr{}, false
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func hexNibble(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// nameOf builds label.label...<domain>. It fails on labels DNS cannot carry,
// which the API should have refused anyway.
func (s *Server) nameOf(labels ...string) (dnsmessage.Name, bool) {
	var n dnsmessage.Name
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || strings.IndexByte(l, '.') >= 0 || int(n.Length)+len(l)+1 > len(n.Data) {
			return n, false
		}
		n.Length += uint8(copy(n.Data[n.Length:], l))
		n.Data[n.Length] = '.'
		n.Length++
	}
	if int(n.Length)+len(s.zone) > 254 {
		return n, false
	}
	n.Length += uint8(copy(n.Data[n.Length:], s.zone))
	return n, true
}

// fqdn turns an ExternalName into a name, refusing anything DNS cannot carry.
func fqdn(s string) (dnsmessage.Name, bool) {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return dnsmessage.Name{}, false
	}
	for l := range strings.SplitSeq(s, ".") {
		if len(l) == 0 || len(l) > 63 {
			return dnsmessage.Name{}, false
		}
	}
	n, err := dnsmessage.NewName(s + ".")
	return n, err == nil
}
