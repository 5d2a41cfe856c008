package plugins

import (
	"testing"

	v1 "k8s.io/api/core/v1"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
)

func cordoned(n *v1.Node) { n.Spec.Unschedulable = true }
func notReady(n *v1.Node) {
	n.Status.Conditions = []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionFalse}}
}
func tolerating(tols ...v1.Toleration) func(*v1.Pod) {
	return func(p *v1.Pod) { p.Spec.Tolerations = tols }
}
func hostPort(port int32, ip string, proto v1.Protocol) func(*v1.Pod) {
	return func(p *v1.Pod) {
		p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, v1.ContainerPort{ContainerPort: port, HostPort: port, HostIP: ip, Protocol: proto})
	}
}

func TestNodeName(t *testing.T) {
	runFilterCases(t, NodeName{}, []filterCase{
		{name: "no nodeName", pod: mkPod("p", "", ""), node: mkNode("a", "1", "1Gi", nil), want: fw.Success},
		{name: "this node", pod: mkPod("p", "", "", onNode("a")), node: mkNode("a", "1", "1Gi", nil), want: fw.Success},
		{name: "other node", pod: mkPod("p", "", "", onNode("b")), node: mkNode("a", "1", "1Gi", nil),
			want: fw.UnschedulableAndUnresolvable, reasons: []string{ReasonNodeName}},
	})
}

func TestNodeUnschedulable(t *testing.T) {
	runFilterCases(t, NodeUnschedulable{}, []filterCase{
		{name: "schedulable", pod: mkPod("p", "", ""), node: mkNode("a", "1", "1Gi", nil), want: fw.Success},
		{name: "cordoned", pod: mkPod("p", "", ""), node: mkNode("a", "1", "1Gi", nil, cordoned),
			want: fw.UnschedulableAndUnresolvable, reasons: []string{"node(s) were unschedulable"}},
		{name: "cordoned but tolerated", node: mkNode("a", "1", "1Gi", nil, cordoned), want: fw.Success,
			pod: mkPod("p", "", "", tolerating(v1.Toleration{Key: "node.kubernetes.io/unschedulable", Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}))},
		{name: "cordoned, toleration for another key", node: mkNode("a", "1", "1Gi", nil, cordoned),
			pod:  mkPod("p", "", "", tolerating(v1.Toleration{Key: "x", Operator: v1.TolerationOpExists})),
			want: fw.UnschedulableAndUnresolvable, reasons: []string{"node(s) were unschedulable"}},
	})
}

func TestNodeReady(t *testing.T) {
	runFilterCases(t, NodeReady{}, []filterCase{
		{name: "ready", pod: mkPod("p", "", ""), node: mkNode("a", "1", "1Gi", nil), want: fw.Success},
		{name: "not ready", pod: mkPod("p", "", ""), node: mkNode("a", "1", "1Gi", nil, notReady),
			want: fw.UnschedulableAndUnresolvable, reasons: []string{"node(s) had untolerated taint {node.kubernetes.io/not-ready: }"}},
		{name: "no conditions yet", pod: mkPod("p", "", ""), node: mkNode("a", "1", "1Gi", nil, func(n *v1.Node) { n.Status.Conditions = nil }),
			want: fw.UnschedulableAndUnresolvable, reasons: []string{"node(s) had untolerated taint {node.kubernetes.io/not-ready: }"}},
		{name: "not ready but tolerated (daemon pods)", node: mkNode("a", "1", "1Gi", nil, notReady), want: fw.Success,
			pod: mkPod("p", "", "", tolerating(v1.Toleration{Key: "node.kubernetes.io/not-ready", Operator: v1.TolerationOpExists}))},
	})
}

func TestNodePorts(t *testing.T) {
	n := mkNode("a", "1", "1Gi", nil)
	runFilterCases(t, NodePorts{}, []filterCase{
		{name: "no ports", pod: mkPod("p", "", ""), node: n, others: []*v1.Pod{mkPod("o", "", "", onNode("a"), hostPort(80, "", ""))}, want: fw.Success},
		{name: "free port", pod: mkPod("p", "", "", hostPort(81, "", "")), node: n,
			others: []*v1.Pod{mkPod("o", "", "", onNode("a"), hostPort(80, "", ""))}, want: fw.Success},
		{name: "taken port", pod: mkPod("p", "", "", hostPort(80, "", "")), node: n,
			others: []*v1.Pod{mkPod("o", "", "", onNode("a"), hostPort(80, "", ""))},
			want:   fw.Unschedulable, reasons: []string{"node(s) didn't have free ports for the requested pod ports"}},
		{name: "same port other protocol", pod: mkPod("p", "", "", hostPort(53, "", v1.ProtocolUDP)), node: n,
			others: []*v1.Pod{mkPod("o", "", "", onNode("a"), hostPort(53, "", v1.ProtocolTCP))}, want: fw.Success},
		{name: "same port other IP", pod: mkPod("p", "", "", hostPort(80, "10.0.0.2", "")), node: n,
			others: []*v1.Pod{mkPod("o", "", "", onNode("a"), hostPort(80, "10.0.0.1", ""))}, want: fw.Success},
		{name: "wildcard against specific IP", pod: mkPod("p", "", "", hostPort(80, "0.0.0.0", "")), node: n,
			others: []*v1.Pod{mkPod("o", "", "", onNode("a"), hostPort(80, "10.0.0.1", ""))},
			want:   fw.Unschedulable, reasons: []string{ReasonNodePorts}},
	})
}
