package plugins

import (
	v1 "k8s.io/api/core/v1"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
)

// Reasons printed in FailedScheduling messages, worded as upstream.
const (
	ReasonNodeName         = "node(s) didn't match the requested node name"
	ReasonUnschedulable    = "node(s) were unschedulable"
	ReasonNodeAffinity     = "node(s) didn't match Pod's node affinity/selector"
	ReasonNodePorts        = "node(s) didn't have free ports for the requested pod ports"
	ReasonTooManyPods      = "Too many pods"
	ReasonInsufficientFmt  = "Insufficient %s"
	ReasonUntoleratedTaint = "node(s) had untolerated taint {%s: %s}"
	ReasonNodeNotFound     = "node(s) not found"
	notReadyTaintKey       = "node.kubernetes.io/not-ready"
	unschedulableTaintKey  = "node.kubernetes.io/unschedulable"
)

// NodeName rejects nodes other than the one spec.nodeName asks for.
type NodeName struct{}

// Name implements fw.Plugin.
func (NodeName) Name() string { return "NodeName" }

// Filter implements fw.FilterPlugin.
func (NodeName) Filter(_ *fw.CycleState, p *fw.PodInfo, n *fw.NodeInfo) *fw.Status {
	if p.Pod.Spec.NodeName != "" && p.Pod.Spec.NodeName != n.Name() {
		return fw.NewStatus(fw.UnschedulableAndUnresolvable, ReasonNodeName)
	}
	return nil
}

// NodeUnschedulable rejects cordoned nodes unless the pod tolerates the
// node.kubernetes.io/unschedulable NoSchedule taint.
type NodeUnschedulable struct{}

// Name implements fw.Plugin.
func (NodeUnschedulable) Name() string { return "NodeUnschedulable" }

// Filter implements fw.FilterPlugin.
func (NodeUnschedulable) Filter(_ *fw.CycleState, p *fw.PodInfo, n *fw.NodeInfo) *fw.Status {
	if !n.Unschedulable {
		return nil
	}
	if tolerates(p.Pod.Spec.Tolerations, &v1.Taint{Key: unschedulableTaintKey, Effect: v1.TaintEffectNoSchedule}) {
		return nil
	}
	return fw.NewStatus(fw.UnschedulableAndUnresolvable, ReasonUnschedulable)
}

// NodeReady rejects nodes whose Ready condition is not True. Upstream gets
// the same effect from the node.kubernetes.io/not-ready taint that its node
// lifecycle controller adds; lotse checks the condition itself so that a
// cluster without that controller still avoids dead nodes. Pods tolerating
// the taint (DaemonSet pods do) may still land there, and the message is
// the one upstream prints for the taint.
type NodeReady struct{}

// Name implements fw.Plugin.
func (NodeReady) Name() string { return "NodeReady" }

// Filter implements fw.FilterPlugin.
func (NodeReady) Filter(_ *fw.CycleState, p *fw.PodInfo, n *fw.NodeInfo) *fw.Status {
	if n.Ready {
		return nil
	}
	if tolerates(p.Pod.Spec.Tolerations, &v1.Taint{Key: notReadyTaintKey, Effect: v1.TaintEffectNoSchedule}) {
		return nil
	}
	return fw.NewStatus(fw.UnschedulableAndUnresolvable, "node(s) had untolerated taint {"+notReadyTaintKey+": }")
}

// NodePorts rejects nodes where a host port the pod asks for is taken.
type NodePorts struct{}

// Name implements fw.Plugin.
func (NodePorts) Name() string { return "NodePorts" }

// Filter implements fw.FilterPlugin.
func (NodePorts) Filter(_ *fw.CycleState, p *fw.PodInfo, n *fw.NodeInfo) *fw.Status {
	if len(n.UsedPorts) == 0 {
		return nil
	}
	for _, want := range fw.PodHostPorts(p.Pod) {
		for _, used := range n.UsedPorts {
			if want.Conflicts(used) {
				return fw.NewStatus(fw.Unschedulable, ReasonNodePorts)
			}
		}
	}
	return nil
}
