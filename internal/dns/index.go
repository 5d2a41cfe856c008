package dns

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// Index names are prefixed so they cannot clash with indexes other
// components register on the same shared informers.
const (
	indexSlicesByService = "lotse-dns/slice-by-service" // "ns/name" of the owning service
	indexSlicesByAddr    = "lotse-dns/slice-by-addr"    // canonical endpoint address
	indexServicesByIP    = "lotse-dns/service-by-ip"    // canonical cluster IP
)

func slicesByService(obj any) ([]string, error) {
	es, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	name := es.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return nil, nil
	}
	return []string{es.Namespace + "/" + name}, nil
}

func slicesByAddr(obj any) ([]string, error) {
	es, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok || es.AddressType == discoveryv1.AddressTypeFQDN || es.Labels[discoveryv1.LabelServiceName] == "" {
		return nil, nil
	}
	var keys []string
	for i := range es.Endpoints {
		if addr, ok := endpointAddr(&es.Endpoints[i]); ok {
			keys = append(keys, addr.String())
		}
	}
	return keys, nil
}

func servicesByIP(obj any) ([]string, error) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return nil, nil
	}
	var keys []string
	for _, ip := range clusterIPs(svc) {
		keys = append(keys, ip.String())
	}
	return keys, nil
}

// addIndexers registers idx on inf unless an index of that name is already
// there (a second Server on the same informer reuses the first one's).
func addIndexers(inf cache.SharedIndexInformer, idx cache.Indexers) error {
	have := inf.GetIndexer().GetIndexers()
	missing := cache.Indexers{}
	for name, fn := range idx {
		if _, ok := have[name]; !ok {
			missing[name] = fn
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return inf.AddIndexers(missing)
}

// endpointAddr is the address DNS publishes for an endpoint: the first one,
// as the EndpointSlice API allows consumers to use only that (kube-proxy does).
func endpointAddr(ep *discoveryv1.Endpoint) (netip.Addr, bool) {
	if len(ep.Addresses) == 0 {
		return netip.Addr{}, false
	}
	addr, err := netip.ParseAddr(ep.Addresses[0])
	if err != nil {
		return netip.Addr{}, false
	}
	return addr.Unmap(), true
}

// clusterIPs returns the parsed cluster IPs of a service with a virtual IP;
// headless and ExternalName services have none.
func clusterIPs(svc *corev1.Service) []netip.Addr {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	var out []netip.Addr
	for _, s := range ips {
		if addr, err := netip.ParseAddr(s); err == nil {
			out = append(out, addr.Unmap())
		}
	}
	return out
}
