package server

import (
	"context"
	"maps"
	"net"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// The addresses of the Services every cluster has, fixed within the
// service CIDR as upstream fixes them (first address; k3s's DNS address).
const (
	KubernetesServiceIP = "10.43.0.1"
	ClusterDNSIP        = "10.43.0.10"
	// DefaultClusterDNSPort is where `lotse server` serves DNS on its
	// advertise address; the kube-dns Service maps port 53 to it, so the
	// host's own resolver (often on port 53) is never in the way.
	DefaultClusterDNSPort = 10053
)

// clusterService is a Service the API server keeps itself: it has no
// selector, and its endpoints are the servers that serve it.
type clusterService struct {
	namespace, name, clusterIP string
	labels                     map[string]string
	ports                      []corev1.ServicePort
}

// clusterServices are `kubernetes` in default, and `kube-dns` in
// kube-system when this server answers DNS (dnsPort > 0).
func clusterServices(apiPort, dnsPort int) []clusterService {
	svcs := []clusterService{{
		namespace: metav1.NamespaceDefault, name: "kubernetes", clusterIP: KubernetesServiceIP,
		labels: map[string]string{"component": "apiserver", "provider": "kubernetes"},
		ports: []corev1.ServicePort{{Name: "https", Protocol: corev1.ProtocolTCP, Port: 443,
			TargetPort: intstr.FromInt32(int32(apiPort))}},
	}}
	if dnsPort > 0 {
		svcs = append(svcs, clusterService{
			namespace: metav1.NamespaceSystem, name: "kube-dns", clusterIP: ClusterDNSIP,
			labels: map[string]string{"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "lotse-dns"},
			ports: []corev1.ServicePort{
				{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(int32(dnsPort))},
				{Name: "dns-tcp", Protocol: corev1.ProtocolTCP, Port: 53, TargetPort: intstr.FromInt32(int32(dnsPort))},
			},
		})
	}
	return svcs
}

// keepClusterServices writes the cluster Services and this server's
// address in their endpoints now and every 10 s (as upstream's endpoint
// reconciler), and takes the address out again when ctx ends. Addresses
// other servers wrote are kept; a server that dies without stopping
// leaves its address behind until someone removes it.
func (s *Server) keepClusterServices(ctx context.Context, client kubernetes.Interface, addr net.IP, apiPort, dnsPort int) {
	svcs := clusterServices(apiPort, dnsPort)
	for {
		for _, cs := range svcs {
			if err := cs.reconcile(ctx, client, addr.String(), true); err != nil && ctx.Err() == nil {
				s.log.Warn("keeping a cluster service", "service", cs.namespace+"/"+cs.name, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			for _, cs := range svcs {
				_ = cs.reconcile(stop, client, addr.String(), false)
			}
			cancel()
			return
		case <-time.After(10 * time.Second):
		}
	}
}

// reconcile makes the Service, its Endpoints and its EndpointSlice hold
// addr (or, with present false, no longer hold it).
func (cs clusterService) reconcile(ctx context.Context, client kubernetes.Interface, addr string, present bool) error {
	if present {
		if err := cs.ensureService(ctx, client); err != nil {
			return err
		}
	}
	if err := cs.ensureEndpoints(ctx, client, addr, present); err != nil {
		return err
	}
	return cs.ensureSlice(ctx, client, addr, present)
}

func (cs clusterService) ensureService(ctx context.Context, client kubernetes.Interface) error {
	svcs := client.CoreV1().Services(cs.namespace)
	cur, err := svcs.Get(ctx, cs.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = svcs.Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: cs.name, Labels: cs.labels},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: cs.clusterIP,
				Ports: cs.ports, SessionAffinity: corev1.ServiceAffinityNone},
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	}
	if err != nil {
		return err
	}
	if servicePortsEqual(cur.Spec.Ports, cs.ports) {
		return nil
	}
	cur.Spec.Ports = cs.ports
	_, err = svcs.Update(ctx, cur, metav1.UpdateOptions{})
	return err
}

func servicePortsEqual(a, b []corev1.ServicePort) bool {
	return slices.EqualFunc(a, b, func(x, y corev1.ServicePort) bool {
		return x.Name == y.Name && x.Protocol == y.Protocol && x.Port == y.Port && x.TargetPort == y.TargetPort
	})
}

// withAddress returns addrs with addr added or removed, sorted.
func withAddress(addrs []string, addr string, present bool) []string {
	addrs = slices.DeleteFunc(slices.Clone(addrs), func(a string) bool { return a == addr })
	if present {
		addrs = append(addrs, addr)
	}
	slices.Sort(addrs)
	return addrs
}

func (cs clusterService) ensureEndpoints(ctx context.Context, client kubernetes.Interface, addr string, present bool) error {
	var ports []corev1.EndpointPort
	for _, p := range cs.ports {
		ports = append(ports, corev1.EndpointPort{Name: p.Name, Protocol: p.Protocol, Port: p.TargetPort.IntVal})
	}
	eps := client.CoreV1().Endpoints(cs.namespace)
	cur, err := eps.Get(ctx, cs.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if !present {
			return nil
		}
		// The keeper writes the EndpointSlice itself: the mirroring
		// controller must leave these Endpoints alone, as upstream's.
		labels := maps.Clone(cs.labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels[discoveryv1.LabelSkipMirror] = "true"
		_, err = eps.Create(ctx, &corev1.Endpoints{
			ObjectMeta: metav1.ObjectMeta{Name: cs.name, Labels: labels},
			Subsets:    []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: addr}}, Ports: ports}},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	var have []string
	for _, sub := range cur.Subsets {
		// Addresses published with other ports are from an older
		// configuration; only this server's address is known to be live.
		if equality.Semantic.DeepEqual(sub.Ports, ports) {
			for _, a := range sub.Addresses {
				have = append(have, a.IP)
			}
		}
	}
	want := withAddress(have, addr, present)
	var subsets []corev1.EndpointSubset
	if len(want) > 0 {
		sub := corev1.EndpointSubset{Ports: ports}
		for _, a := range want {
			sub.Addresses = append(sub.Addresses, corev1.EndpointAddress{IP: a})
		}
		subsets = []corev1.EndpointSubset{sub}
	}
	if equality.Semantic.DeepEqual(cur.Subsets, subsets) && cur.Labels[discoveryv1.LabelSkipMirror] == "true" {
		return nil
	}
	cur.Subsets = subsets
	if cur.Labels == nil {
		cur.Labels = map[string]string{}
	}
	cur.Labels[discoveryv1.LabelSkipMirror] = "true"
	_, err = eps.Update(ctx, cur, metav1.UpdateOptions{})
	return err
}

func (cs clusterService) ensureSlice(ctx context.Context, client kubernetes.Interface, addr string, present bool) error {
	var ports []discoveryv1.EndpointPort
	for _, p := range cs.ports {
		ports = append(ports, discoveryv1.EndpointPort{Name: ptr.To(p.Name), Protocol: ptr.To(p.Protocol), Port: ptr.To(p.TargetPort.IntVal)})
	}
	build := func(addrs []string) []discoveryv1.Endpoint {
		var out []discoveryv1.Endpoint
		for _, a := range addrs {
			out = append(out, discoveryv1.Endpoint{Addresses: []string{a}, Conditions: discoveryv1.EndpointConditions{
				Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)}})
		}
		return out
	}
	api := client.DiscoveryV1().EndpointSlices(cs.namespace)
	cur, err := api.Get(ctx, cs.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if !present {
			return nil
		}
		labels := map[string]string{discoveryv1.LabelServiceName: cs.name}
		for k, v := range cs.labels {
			labels[k] = v
		}
		_, err = api.Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: cs.name, Labels: labels},
			AddressType: discoveryv1.AddressTypeIPv4, Endpoints: build([]string{addr}), Ports: ports,
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	var have []string
	if equality.Semantic.DeepEqual(cur.Ports, ports) {
		for _, ep := range cur.Endpoints {
			have = append(have, ep.Addresses...)
		}
	}
	want := build(withAddress(have, addr, present))
	if equality.Semantic.DeepEqual(cur.Endpoints, want) && equality.Semantic.DeepEqual(cur.Ports, ports) {
		return nil
	}
	cur.Endpoints, cur.Ports = want, ports
	_, err = api.Update(ctx, cur, metav1.UpdateOptions{})
	return err
}
