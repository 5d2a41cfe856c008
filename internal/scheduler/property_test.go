package scheduler

import (
	"fmt"
	"math/rand/v2"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
	"github.com/lotse/lotse/internal/scheduler/plugins"
)

// randomCluster builds nodes of random sizes, some tainted, cordoned, not
// ready or labelled, and pods of random requests, some with selectors,
// tolerations and host ports.
func randomCluster(r *rand.Rand) ([]*v1.Node, []*v1.Pod) {
	var nodes []*v1.Node
	for i := range 1 + r.IntN(25) {
		n := node(fmt.Sprintf("n%d", i), fmt.Sprintf("%dm", 500+r.IntN(8000)), fmt.Sprintf("%dMi", 256+r.IntN(16384)),
			map[string]string{"zone": fmt.Sprintf("z%d", r.IntN(3))})
		n.Status.Allocatable[v1.ResourcePods] = *resource.NewQuantity(int64(1+r.IntN(12)), resource.DecimalSI)
		switch r.IntN(10) {
		case 0:
			n.Spec.Unschedulable = true
		case 1:
			n.Status.Conditions[0].Status = v1.ConditionFalse
		case 2:
			n.Spec.Taints = []v1.Taint{{Key: "dedicated", Value: "gpu", Effect: v1.TaintEffectNoSchedule}}
		}
		nodes = append(nodes, n)
	}
	var pods []*v1.Pod
	for i := range 1 + r.IntN(120) {
		cpu, mem := "", ""
		if r.IntN(5) > 0 {
			cpu = fmt.Sprintf("%dm", r.IntN(3000))
		}
		if r.IntN(5) > 0 {
			mem = fmt.Sprintf("%dMi", r.IntN(4096))
		}
		p := pod(fmt.Sprintf("p%d", i), cpu, mem)
		switch r.IntN(8) {
		case 0:
			p.Spec.NodeSelector = map[string]string{"zone": fmt.Sprintf("z%d", r.IntN(3))}
		case 1:
			p.Spec.Tolerations = []v1.Toleration{{Key: "dedicated", Operator: v1.TolerationOpExists}}
		case 2:
			p.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 80, HostPort: int32(8080 + r.IntN(2))}}
		}
		p.Spec.Priority = new(int32(r.IntN(3)))
		pods = append(pods, p)
	}
	return nodes, pods
}

// TestPropertyNoOvercommitAndFeasiblePlaced checks, over many random
// clusters, that (1) no node's bound pods request more than its
// allocatable, or share a host port, and (2) every pod left pending fits
// no node even in the final state, which is at least as full as when the
// pod was tried — so a pod that fitted somewhere was always placed.
func TestPropertyNoOvercommitAndFeasiblePlaced(t *testing.T) {
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 42))
		nodes, pods := randomCluster(r)
		h := newHarness(t, nodes)
		// Preemption would reserve room the final check cannot see;
		// it has its own tests.
		h.s.cfg.DisablePreemption = true
		h.schedule(pods...)

		byName := map[string]*v1.Pod{}
		for _, p := range pods {
			byName[p.Name] = p
		}
		var bound []*v1.Pod
		used := map[string]*fw.Resource{}
		ports := map[string]map[int32]bool{}
		for name, nodeName := range h.rec.binds {
			p := byName[name].DeepCopy()
			p.Spec.NodeName = nodeName
			bound = append(bound, p)
			if used[nodeName] == nil {
				used[nodeName], ports[nodeName] = &fw.Resource{}, map[int32]bool{}
			}
			// Independent sum: app containers only, as these pods have
			// no init containers or overhead.
			req := fw.NewResource(p.Spec.Containers[0].Resources.Requests)
			req.AllowedPodNumber = 1
			used[nodeName].AddResource(req)
			for _, cp := range p.Spec.Containers[0].Ports {
				if ports[nodeName][cp.HostPort] {
					t.Fatalf("seed %d: host port %d used twice on %s", seed, cp.HostPort, nodeName)
				}
				ports[nodeName][cp.HostPort] = true
			}
		}
		for _, n := range nodes {
			u, alloc := used[n.Name], fw.NewResource(n.Status.Allocatable)
			if u == nil {
				continue
			}
			if u.MilliCPU > alloc.MilliCPU || u.Memory > alloc.Memory || u.AllowedPodNumber > alloc.AllowedPodNumber {
				t.Fatalf("seed %d: node %s overcommitted: used %+v of %+v", seed, n.Name, *u, alloc)
			}
			if n.Spec.Unschedulable || !fw.NodeIsReady(n) {
				t.Fatalf("seed %d: pod placed on cordoned or unready node %s", seed, n.Name)
			}
		}
		final := fw.SnapshotOf(nodes, bound)
		for _, p := range pods {
			if _, ok := h.rec.binds[p.Name]; ok {
				continue
			}
			if _, ok := h.rec.unschedulable[p.Name]; !ok {
				t.Fatalf("seed %d: pod %s neither bound nor reported unschedulable", seed, p.Name)
			}
			pi := fw.NewPodInfo(p)
			for _, ni := range final.List() {
				if fitsAll(pi, ni, final) {
					t.Fatalf("seed %d: pending pod %s fits node %s", seed, p.Name, ni.Name())
				}
			}
		}
	}
}

func fitsAll(pi *fw.PodInfo, ni *fw.NodeInfo, snap *fw.Snapshot) bool {
	state := fw.NewCycleState()
	for _, f := range plugins.DefaultFilters() {
		if pf, ok := f.(fw.PreFilterPlugin); ok {
			pf.PreFilter(state, pi, snap)
		}
		if !f.Filter(state, pi, ni).IsSuccess() {
			return false
		}
	}
	return true
}
