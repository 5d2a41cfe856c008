package framework

import (
	v1 "k8s.io/api/core/v1"
)

// PodInfo is a pod with what the filters need precomputed once.
type PodInfo struct {
	Pod *v1.Pod
	// Requests is what the pod takes from a node's allocatable.
	Requests Resource
	// NonZeroRequests is Requests with the scorers' defaults for unset cpu
	// and memory.
	NonZeroRequests Resource
	// Priority is the resolved priority (spec.priority, or the
	// PriorityClass it names when admission has not resolved it).
	Priority int32
}

// NewPodInfo precomputes a pod's requests.
func NewPodInfo(pod *v1.Pod) *PodInfo {
	pi := &PodInfo{Pod: pod, Requests: PodRequests(pod, false), NonZeroRequests: PodRequests(pod, true)}
	if pod.Spec.Priority != nil {
		pi.Priority = *pod.Spec.Priority
	}
	return pi
}

// HasRequiredAntiAffinity says whether existing pods of this kind can veto
// new pods, which the InterPodAffinity filter must then look at.
func (p *PodInfo) HasRequiredAntiAffinity() bool {
	a := p.Pod.Spec.Affinity
	return a != nil && a.PodAntiAffinity != nil && len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0
}

// HostPort is one host port a pod claims on its node.
type HostPort struct {
	IP       string
	Protocol v1.Protocol
	Port     int32
}

// Conflicts reports whether two host ports cannot be held at once: same
// protocol and port, and the same IP or a wildcard on either side.
func (a HostPort) Conflicts(b HostPort) bool {
	if a.Port != b.Port || a.Protocol != b.Protocol {
		return false
	}
	return a.IP == b.IP || isWildcard(a.IP) || isWildcard(b.IP)
}

func isWildcard(ip string) bool { return ip == "" || ip == "0.0.0.0" || ip == "::" }

// PodHostPorts lists the host ports a pod's containers claim.
func PodHostPorts(pod *v1.Pod) []HostPort {
	var out []HostPort
	add := func(cs []v1.Container) {
		for _, c := range cs {
			for _, p := range c.Ports {
				if p.HostPort <= 0 {
					continue
				}
				proto := p.Protocol
				if proto == "" {
					proto = v1.ProtocolTCP
				}
				out = append(out, HostPort{IP: p.HostIP, Protocol: proto, Port: p.HostPort})
			}
		}
	}
	add(pod.Spec.InitContainers)
	add(pod.Spec.Containers)
	return out
}

// NodeInfo is a node with the pods placed on it (bound or assumed) and
// their summed requests. Plugins treat it as read-only.
type NodeInfo struct {
	Node *v1.Node
	// Copied from Node by SetNode: every pod's filters read them on
	// hundreds of nodes, and reading them here spares a visit to each
	// Node object and its conditions, which are rarely in the CPU cache.
	name          string
	Ready         bool // the Ready condition is True
	Unschedulable bool // spec.unschedulable (cordoned)
	Taints        []v1.Taint
	// Images maps the normalised names of the node's images
	// (NormalizeImageName) to their sizes.
	Images map[string]int64
	Pods   []*PodInfo
	// Requested sums the pods' Requests; NonZeroRequested their
	// NonZeroRequests.
	Requested        Resource
	NonZeroRequested Resource
	Allocatable      Resource
	UsedPorts        []HostPort
	// PodsWithRequiredAntiAffinity is the subset of Pods that can veto
	// new pods.
	PodsWithRequiredAntiAffinity []*PodInfo
	// PodsWithAffinity is the subset of Pods with any pod affinity or
	// anti-affinity: the only ones that score a newcomer without terms
	// of its own.
	PodsWithAffinity []*PodInfo
	// Generation changes whenever the NodeInfo does, so snapshots copy
	// only what moved.
	Generation int64
}

// NewNodeInfo builds a NodeInfo for node with pods on it.
func NewNodeInfo(node *v1.Node, pods ...*PodInfo) *NodeInfo {
	ni := &NodeInfo{}
	ni.SetNode(node)
	for _, p := range pods {
		ni.AddPod(p)
	}
	return ni
}

// Name is the node's name, or "" while only pods are known.
func (n *NodeInfo) Name() string { return n.name }

// SetNode replaces the node object.
func (n *NodeInfo) SetNode(node *v1.Node) {
	n.Node = node
	n.name, n.Ready, n.Unschedulable, n.Taints, n.Images = "", false, false, nil, nil
	n.Allocatable = Resource{}
	if node != nil {
		n.name, n.Ready, n.Unschedulable, n.Taints = node.Name, NodeIsReady(node), node.Spec.Unschedulable, node.Spec.Taints
		n.Images = nodeImages(node)
		n.Allocatable = NewResource(node.Status.Allocatable)
	}
}

// NodeIsReady reports whether the node's Ready condition is True.
func NodeIsReady(n *v1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

// AddPod accounts for a pod on this node.
func (n *NodeInfo) AddPod(p *PodInfo) {
	n.Pods = append(n.Pods, p)
	n.Requested.AddResource(p.Requests)
	n.NonZeroRequested.AddResource(p.NonZeroRequests)
	n.UsedPorts = append(n.UsedPorts, PodHostPorts(p.Pod)...)
	if p.HasRequiredAntiAffinity() {
		n.PodsWithRequiredAntiAffinity = append(n.PodsWithRequiredAntiAffinity, p)
	}
	if a := p.Pod.Spec.Affinity; a != nil && (a.PodAffinity != nil || a.PodAntiAffinity != nil) {
		n.PodsWithAffinity = append(n.PodsWithAffinity, p)
	}
}

// RemovePod forgets the pod with uid; it reports whether it was there.
func (n *NodeInfo) RemovePod(uid string) bool {
	for i, p := range n.Pods {
		if string(p.Pod.UID) != uid {
			continue
		}
		n.Pods = append(n.Pods[:i:i], n.Pods[i+1:]...)
		n.Requested.SubResource(p.Requests)
		n.NonZeroRequested.SubResource(p.NonZeroRequests)
		n.PodsWithRequiredAntiAffinity = without(n.PodsWithRequiredAntiAffinity, p)
		n.PodsWithAffinity = without(n.PodsWithAffinity, p)
		// Ports are few; recomputing is simpler than subtracting a
		// multiset.
		n.UsedPorts = nil
		for _, q := range n.Pods {
			n.UsedPorts = append(n.UsedPorts, PodHostPorts(q.Pod)...)
		}
		return true
	}
	return false
}

// Clone copies the NodeInfo so that later changes to either side do not
// show in the other. Pods are shared: PodInfos are immutable.
func (n *NodeInfo) Clone() *NodeInfo {
	c := *n
	c.Pods = append([]*PodInfo(nil), n.Pods...)
	c.UsedPorts = append([]HostPort(nil), n.UsedPorts...)
	c.PodsWithRequiredAntiAffinity = append([]*PodInfo(nil), n.PodsWithRequiredAntiAffinity...)
	c.PodsWithAffinity = append([]*PodInfo(nil), n.PodsWithAffinity...)
	c.Requested = n.Requested.Clone()
	c.NonZeroRequested = n.NonZeroRequested.Clone()
	c.Allocatable = n.Allocatable.Clone()
	return &c
}

// without returns pods without p, copying so that clones sharing the
// backing array are not disturbed.
func without(pods []*PodInfo, p *PodInfo) []*PodInfo {
	for j, q := range pods {
		if q == p {
			return append(pods[:j:j], pods[j+1:]...)
		}
	}
	return pods
}
