package ingress

import (
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// table is one immutable routing snapshot. It is never modified after
// buildTable returns: changes produce a new table that replaces the old one
// atomically, so requests in flight keep the snapshot they started with.
type table struct {
	exactHosts    map[string]*hostRoutes // lower-case host name
	wildcardHosts map[string]*hostRoutes // "*.example.com" is stored as "example.com"
	anyHost       *hostRoutes            // rules without a host; nil if none
	// defaultBackend answers requests no rule matches; nil means 404.
	defaultBackend *route

	certs         map[string]*tls.Certificate // by exact SNI name
	wildcardCerts map[string]*tls.Certificate // by the suffix after "*."
	// defaultCert comes from a spec.tls entry without hosts; nil means the
	// controller's generated certificate.
	defaultCert *tls.Certificate

	// served holds the namespace/name keys of the Ingresses this table was
	// built from, so the status writer can tell whether an Ingress is ours.
	served map[string]bool
}

// hostRoutes are the paths of one host. Prefix keys carry no trailing
// slash ("/" is stored as ""), which makes element-wise matching a walk
// from the request path up through its parent elements.
type hostRoutes struct {
	exact  map[string]*route
	prefix map[string]*route
}

// route is where one Ingress path sends a request.
type route struct {
	ingress string // namespace/name of the Ingress that won this path
	backend *backend
}

// backend is a resolved Ingress backend: a Service port and its ready
// endpoints. Routes sharing a Service port share the backend, and so its
// round-robin counter.
type backend struct {
	name string // "namespace/service:port", for messages
	// unavailable, when set, is why every request gets 503 (resource
	// backend, missing Service or port).
	unavailable string
	endpoints   []*endpoint
	next        atomic.Uint64
}

// endpoint is one pod (or external) address with the proxy that reaches it.
type endpoint struct {
	addr    string // host:port
	handler http.Handler
}

// pick returns the next endpoint in round-robin order, or nil if there are none.
func (b *backend) pick() *endpoint {
	n := uint64(len(b.endpoints))
	if n == 0 {
		return nil
	}
	return b.endpoints[(b.next.Add(1)-1)%n]
}

// emptyTable answers every request with 404; it is in place before the
// first build.
func emptyTable() *table {
	return &table{served: map[string]bool{}}
}

// match finds the route for a request. host must already be normalised by
// normalizeHost. Hosts are tried from most to least specific (exact,
// wildcard, any) and the first whose paths match wins; within a host the
// longest path wins, Exact before Prefix at equal length.
func (t *table) match(host, path string) *route {
	if path == "" {
		path = "/"
	}
	if hr := t.exactHosts[host]; hr != nil {
		if r := hr.match(path); r != nil {
			return r
		}
	}
	if i := strings.IndexByte(host, '.'); i > 0 {
		if hr := t.wildcardHosts[host[i+1:]]; hr != nil {
			if r := hr.match(path); r != nil {
				return r
			}
		}
	}
	if t.anyHost != nil {
		if r := t.anyHost.match(path); r != nil {
			return r
		}
	}
	return t.defaultBackend
}

func (h *hostRoutes) match(path string) *route {
	// An Exact path is never shorter than any Prefix that also matches,
	// so trying it first gives both "longest" and "Exact first".
	if r := h.exact[path]; r != nil {
		return r
	}
	p := strings.TrimRight(path, "/")
	for {
		if r := h.prefix[p]; r != nil {
			return r
		}
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			return nil
		}
		p = p[:i]
	}
}

// certificate picks the certificate for a TLS SNI name, nil if the table
// has none for it.
func (t *table) certificate(serverName string) *tls.Certificate {
	name := normalizeHost(serverName)
	if c := t.certs[name]; c != nil {
		return c
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if c := t.wildcardCerts[name[i+1:]]; c != nil {
			return c
		}
	}
	return t.defaultCert
}

// normalizeHost turns a Host header or SNI name into the table's key form:
// lower case, without port and without a trailing dot.
func normalizeHost(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	host = strings.TrimSuffix(host, ".")
	// Avoid the allocation when the host is already lower case, which it
	// nearly always is.
	for i := 0; i < len(host); i++ {
		if c := host[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(host)
		}
	}
	return host
}

// sources is what buildTable reads besides the Ingresses: the informer
// caches in production, maps in unit tests.
type sources interface {
	service(namespace, name string) *corev1.Service
	endpointSlices(namespace, service string) []*discoveryv1.EndpointSlice
	// certificate loads a kubernetes.io/tls Secret; nil if it is missing or bad.
	certificate(namespace, name string) *tls.Certificate
}

// builder turns served Ingresses into a table.
type builder struct {
	src sources
	// newHandler makes the proxy for one endpoint address; nil in tests
	// that only look at routing.
	newHandler func(addr string) http.Handler
	backends   map[string]*backend
	t          *table
}

// buildTable builds the routing table from the Ingresses this controller
// serves. Where rules conflict (same host, same path and match kind, or
// several default backends or certificates for one name) the oldest Ingress
// wins, by creationTimestamp and then namespace/name.
func buildTable(ingresses []*networkingv1.Ingress, src sources, newHandler func(string) http.Handler) *table {
	b := &builder{
		src:        src,
		newHandler: newHandler,
		backends:   map[string]*backend{},
		t: &table{
			exactHosts:    map[string]*hostRoutes{},
			wildcardHosts: map[string]*hostRoutes{},
			certs:         map[string]*tls.Certificate{},
			wildcardCerts: map[string]*tls.Certificate{},
			served:        map[string]bool{},
		},
	}
	sorted := slices.Clone(ingresses)
	slices.SortFunc(sorted, olderFirst)
	for _, ing := range sorted {
		b.add(ing)
	}
	return b.t
}

func olderFirst(a, b *networkingv1.Ingress) int {
	if c := a.CreationTimestamp.Time.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// add merges one Ingress into the table; since Ingresses arrive oldest
// first, anything already present wins.
func (b *builder) add(ing *networkingv1.Ingress) {
	key := ing.Namespace + "/" + ing.Name
	b.t.served[key] = true

	if db := ing.Spec.DefaultBackend; db != nil && b.t.defaultBackend == nil {
		b.t.defaultBackend = &route{ingress: key, backend: b.backend(ing.Namespace, *db)}
	}
	for _, rule := range ing.Spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		hr := b.hostRoutes(normalizeHost(rule.Host))
		for _, p := range rule.HTTP.Paths {
			path := p.Path
			if path == "" {
				path = "/"
			}
			routes, k := hr.prefix, strings.TrimRight(path, "/")
			// ImplementationSpecific (and an unset type from old clients) is
			// treated as Prefix.
			if p.PathType != nil && *p.PathType == networkingv1.PathTypeExact {
				routes, k = hr.exact, path
			}
			if _, taken := routes[k]; taken {
				continue
			}
			routes[k] = &route{ingress: key, backend: b.backend(ing.Namespace, p.Backend)}
		}
	}
	for _, tlsSpec := range ing.Spec.TLS {
		if tlsSpec.SecretName == "" {
			continue
		}
		cert := b.src.certificate(ing.Namespace, tlsSpec.SecretName)
		if cert == nil {
			continue
		}
		if len(tlsSpec.Hosts) == 0 {
			// Upstream: a TLS entry without hosts is for the controller's
			// default (wildcard) name.
			if b.t.defaultCert == nil {
				b.t.defaultCert = cert
			}
			continue
		}
		for _, h := range tlsSpec.Hosts {
			h = normalizeHost(h)
			m := b.t.certs
			if rest, ok := strings.CutPrefix(h, "*."); ok {
				m, h = b.t.wildcardCerts, rest
			}
			if _, taken := m[h]; !taken {
				m[h] = cert
			}
		}
	}
}

func (b *builder) hostRoutes(host string) *hostRoutes {
	var m map[string]*hostRoutes
	switch {
	case host == "":
		if b.t.anyHost == nil {
			b.t.anyHost = newHostRoutes()
		}
		return b.t.anyHost
	case strings.HasPrefix(host, "*."):
		m, host = b.t.wildcardHosts, host[2:]
	default:
		m = b.t.exactHosts
	}
	hr := m[host]
	if hr == nil {
		hr = newHostRoutes()
		m[host] = hr
	}
	return hr
}

func newHostRoutes() *hostRoutes {
	return &hostRoutes{exact: map[string]*route{}, prefix: map[string]*route{}}
}

// backend resolves an Ingress backend in namespace ns, sharing the result
// with other routes to the same Service port.
func (b *builder) backend(ns string, ib networkingv1.IngressBackend) *backend {
	if ib.Resource != nil {
		group := ""
		if ib.Resource.APIGroup != nil {
			group = *ib.Resource.APIGroup
		}
		return &backend{
			name:        fmt.Sprintf("%s/%s", ns, ib.Resource.Name),
			unavailable: fmt.Sprintf("resource backend %s %q (group %q) is not supported by the lotse ingress controller", ib.Resource.Kind, ib.Resource.Name, group),
		}
	}
	if ib.Service == nil {
		return &backend{name: ns, unavailable: "Ingress backend names no service"}
	}
	port := ib.Service.Port.Name
	if port == "" {
		port = strconv.Itoa(int(ib.Service.Port.Number))
	}
	name := ns + "/" + ib.Service.Name + ":" + port
	if be := b.backends[name]; be != nil {
		return be
	}
	be := &backend{name: name}
	// Start the rotation anywhere: tables are rebuilt often, and starting
	// at the first endpoint each time would load it more than the others.
	be.next.Store(rand.Uint64())
	b.backends[name] = be

	svc := b.src.service(ns, ib.Service.Name)
	if svc == nil {
		be.unavailable = fmt.Sprintf("service %s/%s not found", ns, ib.Service.Name)
		return be
	}
	addrs, err := resolveEndpoints(svc, ib.Service.Port, b.src.endpointSlices(ns, svc.Name))
	if err != nil {
		be.unavailable = err.Error()
		return be
	}
	for _, a := range addrs {
		ep := &endpoint{addr: a}
		if b.newHandler != nil {
			ep.handler = b.newHandler(a)
		}
		be.endpoints = append(be.endpoints, ep)
	}
	return be
}

// resolveEndpoints returns the host:port addresses a Service backend port
// leads to. A port given by number or name selects the Service port; its
// name selects the EndpointSlice port, whose number is the pod's
// (target) port. An ExternalName Service leads to its DNS name.
func resolveEndpoints(svc *corev1.Service, port networkingv1.ServiceBackendPort, sl []*discoveryv1.EndpointSlice) ([]string, error) {
	sp := servicePort(svc, port)
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		n := port.Number
		if sp != nil {
			n = sp.Port
		}
		if n == 0 || svc.Spec.ExternalName == "" {
			return nil, fmt.Errorf("service %s/%s: no port %s", svc.Namespace, svc.Name, portString(port))
		}
		return []string{net.JoinHostPort(svc.Spec.ExternalName, strconv.Itoa(int(n)))}, nil
	}
	if sp == nil {
		return nil, fmt.Errorf("service %s/%s has no port %s", svc.Namespace, svc.Name, portString(port))
	}
	var addrs []string
	seen := map[string]bool{}
	for _, s := range sl {
		if s.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		n, ok := slicePort(s, sp.Name)
		if !ok {
			continue
		}
		ps := strconv.Itoa(int(n))
		for _, e := range s.Endpoints {
			// Ready unset means ready, as the EndpointSlice API says.
			if len(e.Addresses) == 0 || (e.Conditions.Ready != nil && !*e.Conditions.Ready) {
				continue
			}
			// Consumers use the first address; the others are the same pod.
			a := net.JoinHostPort(e.Addresses[0], ps)
			if !seen[a] {
				seen[a] = true
				addrs = append(addrs, a)
			}
		}
	}
	slices.Sort(addrs)
	return addrs, nil
}

// servicePort finds the Service port an Ingress backend names, by number
// or by name; nil if there is none.
func servicePort(svc *corev1.Service, port networkingv1.ServiceBackendPort) *corev1.ServicePort {
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
			continue
		}
		if (port.Name != "" && sp.Name == port.Name) || (port.Name == "" && sp.Port == port.Number) {
			return sp
		}
	}
	return nil
}

// slicePort finds the TCP port of an EndpointSlice that carries the
// Service port called name ("" for a Service's single unnamed port).
func slicePort(s *discoveryv1.EndpointSlice, name string) (int32, bool) {
	for _, p := range s.Ports {
		if p.Port == nil || (p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP) {
			continue
		}
		n := ""
		if p.Name != nil {
			n = *p.Name
		}
		if n == name {
			return *p.Port, true
		}
	}
	return 0, false
}

func portString(p networkingv1.ServiceBackendPort) string {
	if p.Name != "" {
		return strconv.Quote(p.Name)
	}
	return strconv.Itoa(int(p.Number))
}
