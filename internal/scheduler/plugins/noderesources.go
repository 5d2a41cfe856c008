package plugins

import (
	"fmt"
	"math"
	"sort"

	v1 "k8s.io/api/core/v1"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
)

// NodeResourcesFit rejects nodes whose allocatable cannot hold the pod's
// requests on top of what the node's pods already request.
type NodeResourcesFit struct{}

// Name implements fw.Plugin.
func (NodeResourcesFit) Name() string { return "NodeResourcesFit" }

// Filter implements fw.FilterPlugin. Every missing resource is named, as
// upstream does, so one node can count towards several reasons.
func (NodeResourcesFit) Filter(_ *fw.CycleState, p *fw.PodInfo, n *fw.NodeInfo) *fw.Status {
	var reasons []string
	if n.Requested.AllowedPodNumber+1 > n.Allocatable.AllowedPodNumber {
		reasons = append(reasons, ReasonTooManyPods)
	}
	req, used, alloc := p.Requests, n.Requested, n.Allocatable
	check := func(name v1.ResourceName, want, have, free int64) {
		if want > 0 && want > free-have {
			reasons = append(reasons, fmt.Sprintf(ReasonInsufficientFmt, name))
		}
	}
	check(v1.ResourceCPU, req.MilliCPU, used.MilliCPU, alloc.MilliCPU)
	check(v1.ResourceMemory, req.Memory, used.Memory, alloc.Memory)
	check(v1.ResourceEphemeralStorage, req.EphemeralStorage, used.EphemeralStorage, alloc.EphemeralStorage)
	if len(req.Scalar) > 0 {
		names := make([]string, 0, len(req.Scalar))
		for name := range req.Scalar {
			names = append(names, string(name))
		}
		sort.Strings(names) // stable messages
		for _, name := range names {
			rn := v1.ResourceName(name)
			check(rn, req.Scalar[rn], used.Scalar[rn], alloc.Scalar[rn])
		}
	}
	if len(reasons) > 0 {
		return fw.NewStatus(fw.Unschedulable, reasons...)
	}
	return nil
}

// fractions returns how full cpu and memory would be with the pod added,
// from the scorers' non-zero requests.
func fractions(p *fw.PodInfo, n *fw.NodeInfo) (cpu, mem float64, ok bool) {
	if n.Allocatable.MilliCPU == 0 || n.Allocatable.Memory == 0 {
		return 0, 0, false
	}
	cpu = float64(n.NonZeroRequested.MilliCPU+p.NonZeroRequests.MilliCPU) / float64(n.Allocatable.MilliCPU)
	mem = float64(n.NonZeroRequested.Memory+p.NonZeroRequests.Memory) / float64(n.Allocatable.Memory)
	return cpu, mem, true
}

// LeastAllocated prefers nodes with the most cpu and memory left after the
// pod is placed, which spreads load.
type LeastAllocated struct{}

// Name implements fw.Plugin.
func (LeastAllocated) Name() string { return "NodeResourcesLeastAllocated" }

// Score implements fw.ScorePlugin: the mean free share of cpu and memory,
// 0..100.
func (LeastAllocated) Score(_ *fw.CycleState, p *fw.PodInfo, n *fw.NodeInfo) int64 {
	cpu, mem, ok := fractions(p, n)
	if !ok {
		return 0
	}
	free := func(f float64) float64 { return math.Max(0, 1-f) }
	return int64((free(cpu) + free(mem)) / 2 * float64(fw.MaxNodeScore))
}

// BalancedAllocation prefers nodes where cpu and memory would be used in
// the same proportion, so neither is stranded.
type BalancedAllocation struct{}

// Name implements fw.Plugin.
func (BalancedAllocation) Name() string { return "NodeResourcesBalancedAllocation" }

// Score implements fw.ScorePlugin: (1 - standard deviation of the two
// fractions) * 100; for two values the deviation is half their distance.
func (BalancedAllocation) Score(_ *fw.CycleState, p *fw.PodInfo, n *fw.NodeInfo) int64 {
	cpu, mem, ok := fractions(p, n)
	if !ok {
		return 0
	}
	std := math.Abs(math.Min(cpu, 1)-math.Min(mem, 1)) / 2
	return int64((1 - std) * float64(fw.MaxNodeScore))
}
