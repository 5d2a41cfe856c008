package server

import (
	"context"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
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
// kube-system when this server answers DNS (dnsPort > 0), at the addresses
// of the network plan (the service range's first; its tenth by default).
func clusterServices(plan network, apiPort, dnsPort int) []clusterService {
	svcs := []clusterService{{
		namespace: metav1.NamespaceDefault, name: "kubernetes", clusterIP: plan.kubernetes.String(),
		labels: map[string]string{"component": "apiserver", "provider": "kubernetes"},
		ports: []corev1.ServicePort{{Name: "https", Protocol: corev1.ProtocolTCP, Port: 443,
			TargetPort: intstr.FromInt32(int32(apiPort))}},
	}}
	if dnsPort > 0 {
		svcs = append(svcs, clusterService{
			namespace: metav1.NamespaceSystem, name: "kube-dns", clusterIP: plan.clusterDNS.String(),
			labels: map[string]string{"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "lotse-dns"},
			ports: []corev1.ServicePort{
				{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(int32(dnsPort))},
				{Name: "dns-tcp", Protocol: corev1.ProtocolTCP, Port: 53, TargetPort: intstr.FromInt32(int32(dnsPort))},
			},
		})
	}
	return svcs
}

// clusterServicesInterval is how often the cluster Services are
// reconciled (upstream's endpoint reconciler: 10 s).
var clusterServicesInterval = 10 * time.Second

// keepClusterServices writes the cluster Services now and every
// clusterServicesInterval, with the addresses of the servers that serve
// them as their endpoints, and takes this server's address out again when
// ctx ends. Each server keeps its address alive in etcd on a lease
// (endpointLeases); a server that dies stops renewing it, and the others
// drop its address once the lease expires, as upstream's "lease" endpoint
// reconciler does.
func (s *Server) keepClusterServices(ctx context.Context, client kubernetes.Interface, leases *endpointLeases, apiPort, dnsPort int) {
	svcs := clusterServices(s.net, apiPort, dnsPort)
	for {
		if err := leases.renew(ctx, svcs); err != nil && ctx.Err() == nil {
			s.log.Warn("renewing this server's endpoint lease", "err", err)
		}
		for _, cs := range svcs {
			addrs, err := leases.live(ctx, cs)
			if err == nil {
				err = cs.reconcile(ctx, client, addrs)
			}
			if err != nil && ctx.Err() == nil {
				s.log.Warn("keeping a cluster service", "service", cs.namespace+"/"+cs.name, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			leases.release(stop)
			for _, cs := range svcs {
				if addrs, err := leases.live(stop, cs); err == nil {
					_ = cs.reconcile(stop, client, addrs)
				}
			}
			cancel()
			return
		case <-time.After(clusterServicesInterval):
		}
	}
}

// reconcile makes the Service exist and its Endpoints and EndpointSlice
// hold exactly addrs.
func (cs clusterService) reconcile(ctx context.Context, client kubernetes.Interface, addrs []string) error {
	if err := cs.ensureService(ctx, client); err != nil {
		return err
	}
	if err := cs.ensureEndpoints(ctx, client, addrs); err != nil {
		return err
	}
	return cs.ensureSlice(ctx, client, addrs)
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
	if cur.Spec.ClusterIP != cs.clusterIP {
		// The service CIDR (or --cluster-dns) changed since the Service
		// was made; a cluster IP cannot be changed, so it is made again.
		if err := svcs.Delete(ctx, cs.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cur.UID}}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		return cs.ensureService(ctx, client)
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

func (cs clusterService) ensureEndpoints(ctx context.Context, client kubernetes.Interface, addrs []string) error {
	var ports []corev1.EndpointPort
	for _, p := range cs.ports {
		ports = append(ports, corev1.EndpointPort{Name: p.Name, Protocol: p.Protocol, Port: p.TargetPort.IntVal})
	}
	var subsets []corev1.EndpointSubset
	if len(addrs) > 0 {
		sub := corev1.EndpointSubset{Ports: ports}
		for _, a := range addrs {
			sub.Addresses = append(sub.Addresses, corev1.EndpointAddress{IP: a})
		}
		subsets = []corev1.EndpointSubset{sub}
	}
	eps := client.CoreV1().Endpoints(cs.namespace)
	cur, err := eps.Get(ctx, cs.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if len(addrs) == 0 {
			return nil
		}
		// The keeper writes the EndpointSlice itself: the mirroring
		// controller must leave these Endpoints alone, as upstream's.
		labels := maps.Clone(cs.labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels[discoveryv1.LabelSkipMirror] = "true"
		_, err = eps.Create(ctx, &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: cs.name, Labels: labels}, Subsets: subsets},
			metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
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

func (cs clusterService) ensureSlice(ctx context.Context, client kubernetes.Interface, addrs []string) error {
	var ports []discoveryv1.EndpointPort
	for _, p := range cs.ports {
		ports = append(ports, discoveryv1.EndpointPort{Name: ptr.To(p.Name), Protocol: ptr.To(p.Protocol), Port: ptr.To(p.TargetPort.IntVal)})
	}
	var endpoints []discoveryv1.Endpoint
	for _, a := range addrs {
		endpoints = append(endpoints, discoveryv1.Endpoint{Addresses: []string{a}, Conditions: discoveryv1.EndpointConditions{
			Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)}})
	}
	api := client.DiscoveryV1().EndpointSlices(cs.namespace)
	cur, err := api.Get(ctx, cs.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if len(addrs) == 0 {
			return nil
		}
		labels := map[string]string{discoveryv1.LabelServiceName: cs.name}
		for k, v := range cs.labels {
			labels[k] = v
		}
		_, err = api.Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: cs.name, Labels: labels},
			AddressType: discoveryv1.AddressTypeIPv4, Endpoints: endpoints, Ports: ports,
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	if equality.Semantic.DeepEqual(cur.Endpoints, endpoints) && equality.Semantic.DeepEqual(cur.Ports, ports) {
		return nil
	}
	cur.Endpoints, cur.Ports = endpoints, ports
	_, err = api.Update(ctx, cur, metav1.UpdateOptions{})
	return err
}

// endpointLeaseTTL is how long a server's address outlives its last
// renewal (upstream's master lease TTL).
const endpointLeaseTTL = 15

// endpointLeases keeps, in etcd, one key per cluster Service this server
// serves, /registry/lotse/endpoints/NAMESPACE/NAME/ADDRESS, all on one
// lease of endpointLeaseTTL seconds renewed at every reconcile. etcd
// expires the keys of a server that stopped renewing, whatever the
// servers' clocks say.
type endpointLeases struct {
	etcd  *clientv3.Client
	addr  string
	lease clientv3.LeaseID
}

const endpointLeasePrefix = "/registry/lotse/endpoints/"

func (cs clusterService) leasePrefix() string {
	return endpointLeasePrefix + cs.namespace + "/" + cs.name + "/"
}

// renew keeps the lease alive, or takes a new one and writes the keys
// again when it expired (a stalled server, an etcd restart).
func (l *endpointLeases) renew(ctx context.Context, svcs []clusterService) error {
	if l.lease != 0 {
		if _, err := l.etcd.KeepAliveOnce(ctx, l.lease); err == nil {
			return nil
		}
	}
	grant, err := l.etcd.Grant(ctx, endpointLeaseTTL)
	if err != nil {
		return err
	}
	for _, cs := range svcs {
		if _, err := l.etcd.Put(ctx, cs.leasePrefix()+l.addr, "", clientv3.WithLease(grant.ID)); err != nil {
			return err
		}
	}
	l.lease = grant.ID
	return nil
}

// live returns the addresses of the servers whose keys for cs are alive,
// sorted.
func (l *endpointLeases) live(ctx context.Context, cs clusterService) ([]string, error) {
	resp, err := l.etcd.Get(ctx, cs.leasePrefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, err
	}
	var addrs []string
	for _, kv := range resp.Kvs {
		a := strings.TrimPrefix(string(kv.Key), cs.leasePrefix())
		if net.ParseIP(a) != nil {
			addrs = append(addrs, a)
		}
	}
	slices.Sort(addrs)
	return addrs, nil
}

// release revokes the lease: this server's keys go at once.
func (l *endpointLeases) release(ctx context.Context) {
	if l.lease != 0 {
		_, _ = l.etcd.Revoke(ctx, l.lease)
		l.lease = 0
	}
}
