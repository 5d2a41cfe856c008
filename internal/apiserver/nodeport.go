package apiserver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/storage"
)

// The NodePort range, as upstream's default --service-node-port-range.
const (
	nodePortBase = 30000
	nodePortSize = 2768 // 30000-32767
)

// nodePorts hands out Service node ports. The ports in use are read from a
// consistent list of Services (the watch cache once it has caught up with
// etcd), and a mutex serializes this server's allocations so two creates
// never pick the same port. Two API servers allocating at the very same
// moment could still collide; upstream closes that gap with a bitmap
// object updated by compare-and-swap, which lotse does not have yet.
type nodePorts struct {
	mu       sync.Mutex
	services *storage.Resource
}

// wantsNodePorts reports whether a Service of this shape gets node ports.
func wantsNodePorts(svc *corev1.Service) bool {
	switch svc.Spec.Type {
	case corev1.ServiceTypeNodePort:
		return true
	case corev1.ServiceTypeLoadBalancer:
		return svc.Spec.AllocateLoadBalancerNodePorts == nil || *svc.Spec.AllocateLoadBalancerNodePorts
	}
	return false
}

// wantsHealthCheckPort reports whether upstream would give this Service a
// health check node port: a LoadBalancer that keeps traffic on local
// endpoints.
func wantsHealthCheckPort(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer &&
		svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
}

// assign fills in svc's node ports: those it asks for are checked, missing
// ones are kept from old (the stored Service on an update, nil on create)
// or picked free. A Service whose type no longer has node ports loses the
// ones it kept from old, as upstream drops type-dependent fields.
func (n *nodePorts) assign(ctx context.Context, svc, old *corev1.Service) error {
	if old != nil {
		dropTypeDependentFields(svc, old)
	}
	if !wantsNodePorts(svc) {
		for i := range svc.Spec.Ports {
			if p := &svc.Spec.Ports[i]; p.NodePort != 0 && old != nil && oldNodePort(old, p) == p.NodePort {
				p.NodePort = 0
			}
		}
	}
	if !wantsHealthCheckPort(svc) && old != nil && svc.Spec.HealthCheckNodePort == old.Spec.HealthCheckNodePort {
		svc.Spec.HealthCheckNodePort = 0
	}
	if !wantsNodePorts(svc) && !wantsHealthCheckPort(svc) {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	used, err := n.inUse(ctx, svc)
	if err != nil {
		return err
	}
	ports := field.NewPath("spec", "ports")
	take := func(path *field.Path, want int32) (int32, *field.Error) {
		if want != 0 {
			if want < nodePortBase || want >= nodePortBase+nodePortSize {
				return 0, field.Invalid(path, want, fmt.Sprintf(
					"provided port is not in the valid range. The range of valid ports is %d-%d", nodePortBase, nodePortBase+nodePortSize-1))
			}
			if used[want] {
				return 0, field.Invalid(path, want, "provided port is already allocated")
			}
			used[want] = true
			return want, nil
		}
		start := rand.IntN(nodePortSize)
		for i := range nodePortSize {
			p := int32(nodePortBase + (start+i)%nodePortSize)
			if !used[p] {
				used[p] = true
				return p, nil
			}
		}
		return 0, field.InternalError(path, fmt.Errorf("range %d-%d is full", nodePortBase, nodePortBase+nodePortSize-1))
	}
	var errs field.ErrorList
	if wantsNodePorts(svc) {
		// A port number may serve TCP and UDP on the same node port, so a
		// port asked for twice within one Service is taken once.
		mine := map[int32]bool{}
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			if p.NodePort == 0 && old != nil {
				p.NodePort = oldNodePort(old, p)
			}
			if p.NodePort != 0 && mine[p.NodePort] {
				continue
			}
			got, err := take(ports.Index(i).Child("nodePort"), p.NodePort)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			p.NodePort, mine[got] = got, true
		}
	}
	if wantsHealthCheckPort(svc) {
		if svc.Spec.HealthCheckNodePort == 0 && old != nil {
			svc.Spec.HealthCheckNodePort = old.Spec.HealthCheckNodePort
		}
		got, err := take(field.NewPath("spec", "healthCheckNodePort"), svc.Spec.HealthCheckNodePort)
		if err != nil {
			errs = append(errs, err)
		}
		svc.Spec.HealthCheckNodePort = got
	}
	if len(errs) > 0 {
		return invalidService(svc, errs...)
	}
	return nil
}

// inUse returns the node ports other Services hold.
func (n *nodePorts) inUse(ctx context.Context, svc *corev1.Service) (map[int32]bool, error) {
	list, err := n.services.List(ctx, storage.ListOptions{})
	if err != nil {
		return nil, storageError(err, corev1.Resource("services"), svc.Name)
	}
	services, err := list.Items()
	if err != nil {
		return nil, storageError(err, corev1.Resource("services"), svc.Name)
	}
	used := map[int32]bool{}
	for _, obj := range services {
		other, ok := obj.(*corev1.Service)
		if !ok || (other.Namespace == svc.Namespace && other.Name == svc.Name) {
			continue
		}
		for _, p := range other.Spec.Ports {
			if p.NodePort != 0 {
				used[p.NodePort] = true
			}
		}
		if other.Spec.HealthCheckNodePort != 0 {
			used[other.Spec.HealthCheckNodePort] = true
		}
	}
	return used, nil
}

// oldNodePort is the node port old gave the same service port (matched by
// port number and protocol), or 0.
func oldNodePort(old *corev1.Service, p *corev1.ServicePort) int32 {
	for _, o := range old.Spec.Ports {
		if o.Port == p.Port && o.Protocol == p.Protocol {
			return o.NodePort
		}
	}
	return 0
}

// dropTypeDependentFields clears what an update's new type no longer
// allows when the client sent the old value back unchanged, as upstream
// does, so `kubectl patch` of the type alone works.
func dropTypeDependentFields(svc, old *corev1.Service) {
	external := svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer ||
		len(svc.Spec.ExternalIPs) > 0
	if !external && svc.Spec.ExternalTrafficPolicy == old.Spec.ExternalTrafficPolicy {
		svc.Spec.ExternalTrafficPolicy = ""
	}
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		if ptr.Equal(svc.Spec.AllocateLoadBalancerNodePorts, old.Spec.AllocateLoadBalancerNodePorts) {
			svc.Spec.AllocateLoadBalancerNodePorts = nil
		}
		if ptr.Equal(svc.Spec.LoadBalancerClass, old.Spec.LoadBalancerClass) {
			svc.Spec.LoadBalancerClass = nil
		}
	}
}
