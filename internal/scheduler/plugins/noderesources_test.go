package plugins

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
)

func TestNodeResourcesFit(t *testing.T) {
	gpuNode := mkNode("n", "4", "8Gi", nil, func(n *v1.Node) { n.Status.Allocatable["nvidia.com/gpu"] = resource.MustParse("1") })
	gpuPod := func(name string) *v1.Pod {
		return mkPod(name, "1", "", func(p *v1.Pod) { p.Spec.Containers[0].Resources.Requests["nvidia.com/gpu"] = resource.MustParse("1") })
	}
	tiny := mkNode("n", "4", "8Gi", nil, func(n *v1.Node) { n.Status.Allocatable[v1.ResourcePods] = resource.MustParse("1") })
	runFilterCases(t, NodeResourcesFit{}, []filterCase{
		{name: "fits empty node", pod: mkPod("p", "2", "1Gi"), node: mkNode("n", "4", "8Gi", nil), want: fw.Success},
		{name: "fits exactly", pod: mkPod("p", "2", "4Gi"), node: mkNode("n", "4", "8Gi", nil),
			others: []*v1.Pod{mkPod("o", "2", "4Gi", onNode("n"))}, want: fw.Success},
		{name: "insufficient cpu", pod: mkPod("p", "3", "1Gi"), node: mkNode("n", "4", "8Gi", nil),
			others: []*v1.Pod{mkPod("o", "2", "", onNode("n"))}, want: fw.Unschedulable, reasons: []string{"Insufficient cpu"}},
		{name: "insufficient cpu and memory", pod: mkPod("p", "5", "9Gi"), node: mkNode("n", "4", "8Gi", nil),
			want: fw.Unschedulable, reasons: []string{"Insufficient cpu", "Insufficient memory"}},
		{name: "too many pods", pod: mkPod("p", "", ""), node: tiny,
			others: []*v1.Pod{mkPod("o", "", "", onNode("n"))}, want: fw.Unschedulable, reasons: []string{"Too many pods"}},
		{name: "best-effort pod fits a full node", pod: mkPod("p", "", ""), node: mkNode("n", "1", "1Gi", nil),
			others: []*v1.Pod{mkPod("o", "1", "1Gi", onNode("n"))}, want: fw.Success},
		{name: "extended resource free", pod: gpuPod("p"), node: gpuNode, want: fw.Success},
		{name: "extended resource used up", pod: gpuPod("p"), node: gpuNode,
			others: []*v1.Pod{func() *v1.Pod { p := gpuPod("o"); p.Spec.NodeName = "n"; return p }()},
			want:   fw.Unschedulable, reasons: []string{"Insufficient nvidia.com/gpu"}},
		{name: "extended resource the node lacks", pod: gpuPod("p"), node: mkNode("n", "4", "8Gi", nil),
			want: fw.Unschedulable, reasons: []string{"Insufficient nvidia.com/gpu"}},
		{name: "init container counts", pod: mkPod("p", "1", "", func(p *v1.Pod) {
			p.Spec.InitContainers = []v1.Container{{Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("5")}}}}
		}), node: mkNode("n", "4", "8Gi", nil), want: fw.Unschedulable, reasons: []string{"Insufficient cpu"}},
	})
}

func TestResourceScores(t *testing.T) {
	tests := []struct {
		name            string
		pod             *v1.Pod
		node            *v1.Node
		placed          []*v1.Pod
		least, balanced int64
	}{
		// 1 of 4 cpu, 2 of 8Gi: 75% free of each, perfectly balanced.
		{"quarter used", mkPod("p", "1", "2Gi"), mkNode("n", "4", "8Gi", nil), nil, 75, 100},
		// cpu 4/4 full, memory 0.2/8: least (0+97.5)/2, balanced 1-|1-0.025|/2.
		{"cpu heavy", mkPod("p", "4", ""), mkNode("n", "4", "8Gi", nil), nil, 48, 51},
		{"with placed pods", mkPod("p", "1", "1Gi"), mkNode("n", "4", "8Gi", nil),
			[]*v1.Pod{mkPod("o", "1", "3Gi", onNode("n"))}, 50, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := fw.SnapshotOf([]*v1.Node{tt.node}, tt.placed)
			ni, _ := snap.Get("n")
			pi := fw.NewPodInfo(tt.pod)
			if got := (LeastAllocated{}).Score(nil, pi, ni); got != tt.least {
				t.Errorf("LeastAllocated = %d, want %d", got, tt.least)
			}
			if got := (BalancedAllocation{}).Score(nil, pi, ni); got != tt.balanced {
				t.Errorf("BalancedAllocation = %d, want %d", got, tt.balanced)
			}
		})
	}
}
