package netpol

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

type direction int

const (
	ingress direction = iota
	egress
)

func (d direction) String() string {
	if d == ingress {
		return "ingress"
	}
	return "egress"
}

// snapshot is the cluster state the rules are computed from. It is a plain
// value so the policy logic is pure and tested without informers.
type snapshot struct {
	pods       []*v1.Pod             // every pod of the cluster
	namespaces map[string]labels.Set // labels by namespace name
	policies   []*networkingv1.NetworkPolicy
}

// allow is one thing an isolated pod may talk to in one direction: peers
// (set == "" means any address) on ports (nil means every port and
// protocol).
type allow struct {
	set   string    // named set holding the peers; shared between pods
	addrs []ipRange // the set's content, merged
	ports []portRange
}

// podRules is the outcome for one direction of one pod.
type podRules struct {
	isolated bool
	allows   []allow // union; empty and isolated means deny all
}

// podIPv4s returns the pod's IPv4 addresses; lotse's pod network is IPv4.
func podIPv4s(p *v1.Pod) []netip.Addr {
	var ips []string
	for _, ip := range p.Status.PodIPs {
		ips = append(ips, ip.IP)
	}
	if len(ips) == 0 && p.Status.PodIP != "" {
		ips = append(ips, p.Status.PodIP)
	}
	var out []netip.Addr
	for _, s := range ips {
		a, err := netip.ParseAddr(s)
		if err == nil && a.Unmap().Is4() && !slices.Contains(out, a.Unmap()) {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// onPodNetwork reports whether the pod has an address of its own that
// policies can be about. hostNetwork pods share the node's address and are
// neither subject to policies nor selectable as peers (upstream leaves the
// latter undefined; matching them would open whole nodes). Finished pods
// are left out because their address may already belong to a new pod.
func onPodNetwork(p *v1.Pod) bool {
	if p.Spec.HostNetwork || p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed {
		return false
	}
	return len(podIPv4s(p)) > 0
}

// policyTypes applies upstream defaulting: Ingress always, Egress when the
// policy has egress rules.
func policyTypes(pol *networkingv1.NetworkPolicy) (ing, egr bool) {
	if len(pol.Spec.PolicyTypes) == 0 {
		return true, len(pol.Spec.Egress) > 0
	}
	for _, t := range pol.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ing = true
		case networkingv1.PolicyTypeEgress:
			egr = true
		}
	}
	return ing, egr
}

// selector converts a label selector; an invalid one selects nothing, the
// safe reading for a policy that would otherwise widen access.
func selector(ls *metav1.LabelSelector) labels.Selector {
	s, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return labels.Nothing()
	}
	return s
}

// nsLabels returns a namespace's labels, with the kubernetes.io/metadata.name
// label upstream's API server always sets, so selectors written for it
// match even before the namespace is seen.
func (s *snapshot) nsLabels(name string) labels.Set {
	set := labels.Set{}
	for k, v := range s.namespaces[name] {
		set[k] = v
	}
	set[v1.LabelMetadataName] = name
	return set
}

// rulesFor computes what the local pod may receive (ingress) or send
// (egress): isolated if any policy of its namespace selects it for that
// direction; then the union of the rules of all such policies.
func (s *snapshot) rulesFor(pod *v1.Pod, dir direction) podRules {
	var r podRules
	for _, pol := range s.policies {
		if pol.Namespace != pod.Namespace {
			continue
		}
		ing, egr := policyTypes(pol)
		if (dir == ingress && !ing) || (dir == egress && !egr) {
			continue
		}
		if !selector(&pol.Spec.PodSelector).Matches(labels.Set(pod.Labels)) {
			continue
		}
		r.isolated = true
		if dir == ingress {
			for i, rule := range pol.Spec.Ingress {
				r.allows = append(r.allows, s.ingressAllows(pol, i, rule.From, rule.Ports, pod)...)
			}
		} else {
			for i, rule := range pol.Spec.Egress {
				r.allows = append(r.allows, s.egressAllows(pol, i, rule.To, rule.Ports)...)
			}
		}
	}
	return r
}

// ingressAllows handles one ingress rule. Named ports refer to the
// destination, which is the local pod itself.
func (s *snapshot) ingressAllows(pol *networkingv1.NetworkPolicy, idx int, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort, pod *v1.Pod) []allow {
	a := allow{}
	if len(ports) > 0 {
		for _, p := range ports {
			if pr, ok := numericPort(p); ok {
				a.ports = append(a.ports, pr)
			} else if pr, ok := namedPort(p, pod); ok {
				a.ports = append(a.ports, pr)
			}
		}
		if len(a.ports) == 0 {
			return nil // only named ports, none of which the pod has
		}
	}
	if len(peers) > 0 {
		a.set = setName(pol, ingress, idx, "")
		a.addrs = s.peerRanges(pol.Namespace, peers)
	}
	return []allow{a}
}

// egressAllows handles one egress rule. Named ports refer to the
// destination, that is each peer pod, so the peers are split into groups
// by the number the name resolves to in each of them.
func (s *snapshot) egressAllows(pol *networkingv1.NetworkPolicy, idx int, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) []allow {
	var numeric []portRange
	var named []networkingv1.NetworkPolicyPort
	for _, p := range ports {
		if pr, ok := numericPort(p); ok {
			numeric = append(numeric, pr)
		} else {
			named = append(named, p)
		}
	}
	var out []allow
	if len(ports) == 0 || len(numeric) > 0 {
		a := allow{ports: numeric}
		if len(peers) > 0 {
			a.set = setName(pol, egress, idx, "")
			a.addrs = s.peerRanges(pol.Namespace, peers)
		}
		out = append(out, a)
	}
	if len(named) == 0 {
		return out
	}
	groups := map[portRange][]ipRange{}
	for pod, ips := range s.peerPods(pol.Namespace, peers) {
		for _, p := range named {
			if pr, ok := namedPort(p, pod); ok {
				for _, ip := range ips {
					u := addrToU32(ip)
					groups[pr] = append(groups[pr], ipRange{u, u})
				}
			}
		}
	}
	keys := make([]portRange, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b portRange) int {
		return strings.Compare(portKey(a), portKey(b))
	})
	for _, k := range keys {
		out = append(out, allow{
			set:   setName(pol, egress, idx, portKey(k)),
			addrs: mergeRanges(groups[k]),
			ports: []portRange{k},
		})
	}
	return out
}

func portKey(p portRange) string { return fmt.Sprintf("%s/%05d", p.proto, p.first) }

func protocolOf(p networkingv1.NetworkPolicyPort) v1.Protocol {
	if p.Protocol == nil {
		return v1.ProtocolTCP
	}
	return *p.Protocol
}

// numericPort converts a port given by number (or no port: the whole
// protocol); ok is false for a named port.
func numericPort(p networkingv1.NetworkPolicyPort) (portRange, bool) {
	proto := protocolOf(p)
	if p.Port == nil {
		return portRange{proto: proto}, true
	}
	if p.Port.Type == intstr.String {
		return portRange{}, false
	}
	first := p.Port.IntVal
	last := first
	if p.EndPort != nil && *p.EndPort > first {
		last = *p.EndPort
	}
	return portRange{proto, first, last}, true
}

// namedPort resolves a named port against a pod's declared container
// ports, matching name and protocol.
func namedPort(p networkingv1.NetworkPolicyPort, pod *v1.Pod) (portRange, bool) {
	if p.Port == nil || p.Port.Type != intstr.String {
		return portRange{}, false
	}
	proto := protocolOf(p)
	for _, cs := range [][]v1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for _, c := range cs {
			for _, cp := range c.Ports {
				cpProto := cp.Protocol
				if cpProto == "" {
					cpProto = v1.ProtocolTCP
				}
				if cp.Name == p.Port.StrVal && cpProto == proto {
					return portRange{proto, cp.ContainerPort, cp.ContainerPort}, true
				}
			}
		}
	}
	return portRange{}, false
}

// peerRanges is the union of the addresses the peers stand for.
func (s *snapshot) peerRanges(ns string, peers []networkingv1.NetworkPolicyPeer) []ipRange {
	var out []ipRange
	for _, peer := range peers {
		if peer.IPBlock != nil {
			out = append(out, blockRanges(peer.IPBlock)...)
			continue
		}
		for _, pod := range s.selectPods(ns, peer) {
			for _, ip := range podIPv4s(pod) {
				u := addrToU32(ip)
				out = append(out, ipRange{u, u})
			}
		}
	}
	return mergeRanges(out)
}

// peerPods returns the pods among the peers with the addresses they are
// peers by; no peers means every pod. ipBlock peers contribute the pods
// whose addresses fall inside the block, so that a named port can be
// resolved for them too.
func (s *snapshot) peerPods(ns string, peers []networkingv1.NetworkPolicyPeer) map[*v1.Pod][]netip.Addr {
	out := map[*v1.Pod][]netip.Addr{}
	add := func(pod *v1.Pod, ip netip.Addr) {
		if !slices.Contains(out[pod], ip) {
			out[pod] = append(out[pod], ip)
		}
	}
	if len(peers) == 0 {
		for _, pod := range s.pods {
			if onPodNetwork(pod) {
				for _, ip := range podIPv4s(pod) {
					add(pod, ip)
				}
			}
		}
		return out
	}
	for _, peer := range peers {
		if peer.IPBlock != nil {
			block := blockRanges(peer.IPBlock)
			for _, pod := range s.pods {
				if !onPodNetwork(pod) {
					continue
				}
				for _, ip := range podIPv4s(pod) {
					if inRanges(block, addrToU32(ip)) {
						add(pod, ip)
					}
				}
			}
			continue
		}
		for _, pod := range s.selectPods(ns, peer) {
			for _, ip := range podIPv4s(pod) {
				add(pod, ip)
			}
		}
	}
	return out
}

func inRanges(rs []ipRange, u uint32) bool {
	for _, r := range rs {
		if u >= r.first && u <= r.last {
			return true
		}
	}
	return false
}

// selectPods returns the pods a selector peer stands for: podSelector alone
// means pods of the policy's namespace, namespaceSelector alone all pods of
// the matching namespaces, both together the matching pods in matching
// namespaces.
func (s *snapshot) selectPods(ns string, peer networkingv1.NetworkPolicyPeer) []*v1.Pod {
	if peer.PodSelector == nil && peer.NamespaceSelector == nil {
		return nil
	}
	podSel := labels.Everything()
	if peer.PodSelector != nil {
		podSel = selector(peer.PodSelector)
	}
	var nsSel labels.Selector
	if peer.NamespaceSelector != nil {
		nsSel = selector(peer.NamespaceSelector)
	}
	var out []*v1.Pod
	for _, pod := range s.pods {
		if !onPodNetwork(pod) {
			continue
		}
		if nsSel == nil {
			if pod.Namespace != ns {
				continue
			}
		} else if !nsSel.Matches(s.nsLabels(pod.Namespace)) {
			continue
		}
		if podSel.Matches(labels.Set(pod.Labels)) {
			out = append(out, pod)
		}
	}
	return out
}

// blockRanges is an ipBlock's CIDR minus its except list; IPv6 blocks and
// unparsable ones stand for nothing here.
func blockRanges(b *networkingv1.IPBlock) []ipRange {
	p, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		return nil
	}
	r, ok := prefixRange(p)
	if !ok {
		return nil
	}
	rs := []ipRange{r}
	for _, e := range b.Except {
		ep, err := netip.ParsePrefix(e)
		if err != nil {
			continue
		}
		if er, ok := prefixRange(ep); ok {
			rs = subtract(rs, er)
		}
	}
	return rs
}

// shortHash gives short, stable nft object names from Kubernetes names,
// which can be longer than nft allows and contain dots.
func shortHash(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:8])
}

// setName names the peer set of one rule of one policy (and, for egress
// named ports, one resolved port). It does not depend on the pod the rule
// is applied to, so all selected pods share the set.
func setName(pol *networkingv1.NetworkPolicy, dir direction, idx int, group string) string {
	return "s-" + shortHash(pol.Namespace, pol.Name, dir.String(), fmt.Sprint(idx), group)
}

func chainName(pod *v1.Pod, dir direction) string {
	prefix := "ing-"
	if dir == egress {
		prefix = "egr-"
	}
	return prefix + shortHash(pod.Namespace, pod.Name)
}

func sortPolicies(ps []*networkingv1.NetworkPolicy) {
	slices.SortFunc(ps, func(a, b *networkingv1.NetworkPolicy) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
}
