package netpol

import (
	"fmt"
	"net/netip"
	"strings"

	v1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Builders that keep the tables short.

func pod(ns, name, node, ip string, lbls map[string]string, ports ...v1.ContainerPort) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
		Spec: v1.PodSpec{
			NodeName:   node,
			Containers: []v1.Container{{Name: "c", Ports: ports}},
		},
		Status: v1.PodStatus{Phase: v1.PodRunning},
	}
	if ip != "" {
		p.Status.PodIP = ip
		p.Status.PodIPs = []v1.PodIP{{IP: ip}}
	}
	return p
}

func cport(name string, n int32) v1.ContainerPort {
	return v1.ContainerPort{Name: name, ContainerPort: n}
}

func sel(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

func policy(ns, name string, podSel *metav1.LabelSelector, types ...networkingv1.PolicyType) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       networkingv1.NetworkPolicySpec{PodSelector: *podSel, PolicyTypes: types},
	}
}

func withIngress(p *networkingv1.NetworkPolicy, rules ...networkingv1.NetworkPolicyIngressRule) *networkingv1.NetworkPolicy {
	p.Spec.Ingress = append(p.Spec.Ingress, rules...)
	return p
}

func withEgress(p *networkingv1.NetworkPolicy, rules ...networkingv1.NetworkPolicyEgressRule) *networkingv1.NetworkPolicy {
	p.Spec.Egress = append(p.Spec.Egress, rules...)
	return p
}

func tcp(port int32) networkingv1.NetworkPolicyPort {
	p := intstr.FromInt32(port)
	return networkingv1.NetworkPolicyPort{Port: &p}
}

func tcpRange(from, to int32) networkingv1.NetworkPolicyPort {
	p := tcp(from)
	p.EndPort = &to
	return p
}

func udp(port int32) networkingv1.NetworkPolicyPort {
	p := tcp(port)
	proto := v1.ProtocolUDP
	p.Protocol = &proto
	return p
}

func named(name string) networkingv1.NetworkPolicyPort {
	p := intstr.FromString(name)
	return networkingv1.NetworkPolicyPort{Port: &p}
}

func protoOnly(proto v1.Protocol) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: &proto}
}

func podPeer(s *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: s}
}

func nsPeer(s *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: s}
}

func blockPeer(cidr string, except ...string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: cidr, Except: except}}
}

// summarize renders podRules readably: "isolated" or "open", then one
// "peers | ports" line per allow.
func summarize(r podRules) []string {
	if !r.isolated {
		return []string{"open"}
	}
	out := []string{"isolated"}
	for _, a := range r.allows {
		peers := "any"
		if a.set != "" {
			peers = strings.Join(renderRanges(a.addrs), ",")
			if peers == "" {
				peers = "none"
			}
		}
		ports := "all"
		if a.ports != nil {
			var ps []string
			for _, p := range a.ports {
				s := strings.ToLower(string(p.proto)) + ":"
				switch {
				case p.all():
					s += "*"
				case p.first == p.last:
					s += fmt.Sprint(p.first)
				default:
					s += fmt.Sprintf("%d-%d", p.first, p.last)
				}
				ps = append(ps, s)
			}
			ports = strings.Join(ps, ",")
		}
		out = append(out, peers+" | "+ports)
	}
	return out
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
