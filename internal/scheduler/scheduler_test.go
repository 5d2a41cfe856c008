package scheduler

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
	"github.com/lotse/lotse/internal/scheduler/plugins"
)

func TestScheduleSpreadsEqualPods(t *testing.T) {
	h := newHarness(t, []*v1.Node{node("a", "4", "8Gi", nil), node("b", "4", "8Gi", nil), node("c", "4", "8Gi", nil)})
	var pods []*v1.Pod
	for i := range 6 {
		pods = append(pods, pod(fmt.Sprintf("p%d", i), "500m", "512Mi"))
	}
	h.schedule(pods...)
	perNode := map[string]int{}
	for _, n := range h.rec.binds {
		perNode[n]++
	}
	if len(h.rec.binds) != 6 || perNode["a"] != 2 || perNode["b"] != 2 || perNode["c"] != 2 {
		t.Fatalf("binds = %v, want 2 pods on each node", h.rec.binds)
	}
}

func TestAssumedPodsPreventOvercommit(t *testing.T) {
	// Binds are not confirmed by any watch here: only the assumed pods
	// keep the scheduler from putting all three on the one node.
	h := newHarness(t, []*v1.Node{node("a", "2", "8Gi", nil)})
	h.schedule(pod("p1", "1", ""), pod("p2", "1", ""), pod("p3", "1", ""))
	if len(h.rec.binds) != 2 {
		t.Fatalf("binds = %v, want exactly two", h.rec.binds)
	}
	if msg := h.rec.unschedulable["p3"]; msg != "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod." {
		t.Fatalf("p3 message = %q", msg)
	}
}

func TestFailedSchedulingMessage(t *testing.T) {
	gpu := func(n *v1.Node) {
		n.Spec.Taints = []v1.Taint{{Key: "dedicated", Value: "gpu", Effect: v1.TaintEffectNoSchedule}}
	}
	tests := []struct {
		name  string
		nodes []*v1.Node
		pod   *v1.Pod
		want  string
	}{
		{"the issue's example", []*v1.Node{
			node("s1", "1", "8Gi", nil), node("s2", "1", "8Gi", nil),
			node("g1", "8", "8Gi", nil, gpu), node("g2", "8", "8Gi", nil, gpu), node("g3", "8", "8Gi", nil, gpu),
		}, pod("p", "2", ""),
			"0/5 nodes are available: 2 Insufficient cpu, 3 node(s) had untolerated taint {dedicated: gpu}. preemption: 0/5 nodes are available: 2 No preemption victims found for incoming pod, 3 Preemption is not helpful for scheduling."},
		{"several reasons on one node", []*v1.Node{node("s1", "1", "1Gi", nil)}, pod("p", "2", "2Gi"),
			"0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."},
		{"cordoned, not ready and selector", []*v1.Node{
			node("c", "4", "8Gi", nil, func(n *v1.Node) { n.Spec.Unschedulable = true }),
			node("r", "4", "8Gi", nil, func(n *v1.Node) { n.Status.Conditions = nil }),
			node("s", "4", "8Gi", map[string]string{"disk": "hdd"}),
		}, pod("p", "1", "", func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} }),
			"0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, 1 node(s) were unschedulable. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."},
		{"preemptionPolicy Never", []*v1.Node{node("s1", "1", "1Gi", nil)}, pod("p", "2", "", func(p *v1.Pod) { p.Spec.PreemptionPolicy = new(v1.PreemptNever) }),
			"0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."},
		{"no nodes", nil, pod("p", "1", ""), "no nodes available to schedule pods"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.nodes)
			h.schedule(tt.pod)
			if got := h.rec.unschedulable["p"]; got != tt.want {
				t.Errorf("message:\n got %q\nwant %q", got, tt.want)
			}
			if _, _, unsched := h.s.queue.Len(); unsched != 1 {
				t.Errorf("unschedulable queue has %d pods, want 1", unsched)
			}
		})
	}
}

func TestUnschedulablePodRetriedOnNodeEvent(t *testing.T) {
	h := newHarness(t, []*v1.Node{node("small", "1", "1Gi", nil)})
	h.schedule(pod("p", "2", ""))
	if len(h.rec.binds) != 0 {
		t.Fatalf("bound too early: %v", h.rec.binds)
	}
	// Nothing happens by itself: the pod waits for an event.
	h.schedule()
	if len(h.rec.binds) != 0 {
		t.Fatal("unschedulable pod was retried without an event")
	}
	h.s.cache.AddNode(node("big", "4", "8Gi", nil))
	h.s.queue.MoveAllToActiveOrBackoff()
	// Still within its 1 s backoff: it waits in backoff first.
	h.clock.Step(1100 * 1e6)
	h.s.queue.flushBackoff()
	h.schedule()
	if h.rec.binds["p"] != "big" {
		t.Fatalf("binds = %v, want p on big", h.rec.binds)
	}
}

func TestBindFailureForgetsAssumedPod(t *testing.T) {
	h := newHarness(t, []*v1.Node{node("a", "1", "1Gi", nil)})
	h.rec.failBind["p1"] = errors.New("conflict")
	h.schedule(pod("p1", "1", ""))
	if len(h.rec.binds) != 0 || h.s.cache.IsAssumed("uid-p1") {
		t.Fatalf("failed bind left state: binds %v, assumed %v", h.rec.binds, h.s.cache.IsAssumed("uid-p1"))
	}
	if _, backoff, _ := h.s.queue.Len(); backoff != 1 {
		t.Fatalf("backoff = %d, want the pod waiting to retry", backoff)
	}
	// The room is free again: another pod fits meanwhile.
	h.schedule(pod("p2", "1", ""))
	if h.rec.binds["p2"] != "a" {
		t.Fatalf("binds = %v, want p2 on a", h.rec.binds)
	}
}

func TestScoresPreferAffinityAndAvoidSoftTaints(t *testing.T) {
	soft := func(n *v1.Node) {
		n.Spec.Taints = []v1.Taint{{Key: "spot", Effect: v1.TaintEffectPreferNoSchedule}}
	}
	h := newHarness(t, []*v1.Node{
		node("plain", "4", "8Gi", nil),
		node("ssd", "4", "8Gi", map[string]string{"disk": "ssd"}),
		node("ssd-spot", "8", "16Gi", map[string]string{"disk": "ssd"}, soft),
	})
	h.schedule(pod("p", "100m", "", func(p *v1.Pod) {
		p.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []v1.PreferredSchedulingTerm{
			{Weight: 50, Preference: v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{{Key: "disk", Operator: v1.NodeSelectorOpIn, Values: []string{"ssd"}}}}},
		}}}
	}))
	if h.rec.binds["p"] != "ssd" {
		t.Fatalf("binds = %v, want p on ssd (preferred, no soft taint)", h.rec.binds)
	}
}

func TestInterPodAntiAffinitySpreadsReplicas(t *testing.T) {
	h := newHarness(t, []*v1.Node{
		node("a", "8", "8Gi", map[string]string{"kubernetes.io/hostname": "a"}),
		node("b", "8", "8Gi", map[string]string{"kubernetes.io/hostname": "b"}),
	})
	anti := func(p *v1.Pod) {
		p.Labels = map[string]string{"app": "web"}
		p.Spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
			TopologyKey: "kubernetes.io/hostname", LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}}}
	}
	h.schedule(pod("w1", "", "", anti), pod("w2", "", "", anti), pod("w3", "", "", anti))
	if len(h.rec.binds) != 2 || h.rec.binds["w1"] == h.rec.binds["w2"] {
		t.Fatalf("binds = %v, want w1 and w2 on different nodes and w3 pending", h.rec.binds)
	}
	if _, ok := h.rec.unschedulable["w3"]; !ok {
		t.Fatal("w3 should be unschedulable")
	}
}

func TestOtherSchedulersPodsIgnored(t *testing.T) {
	h := newHarness(t, []*v1.Node{node("a", "4", "8Gi", nil)})
	tests := []struct {
		pod  *v1.Pod
		want bool
	}{
		{pod("mine", "", ""), true},
		{pod("theirs", "", "", func(p *v1.Pod) { p.Spec.SchedulerName = "other" }), false},
		{pod("bound", "", "", func(p *v1.Pod) { p.Spec.NodeName = "a" }), false},
		{pod("terminating", "", "", func(p *v1.Pod) { now := metav1.Now(); p.DeletionTimestamp = &now }), false},
		{pod("done", "", "", func(p *v1.Pod) { p.Status.Phase = v1.PodSucceeded }), false},
	}
	for _, tt := range tests {
		if got := h.s.responsibleFor(tt.pod); got != tt.want {
			t.Errorf("responsibleFor(%s) = %v, want %v", tt.pod.Name, got, tt.want)
		}
	}
}

// vetoFilter rejects every node unless its PreFilter answered skip.
type vetoFilter struct{ skip bool }

func (vetoFilter) Name() string { return "Veto" }
func (f vetoFilter) PreFilter(*fw.CycleState, *fw.PodInfo, fw.NodeLister) *fw.Status {
	if f.skip {
		return fw.NewStatus(fw.Skip)
	}
	return nil
}
func (vetoFilter) Filter(*fw.CycleState, *fw.PodInfo, *fw.NodeInfo) *fw.Status {
	return fw.NewStatus(fw.UnschedulableAndUnresolvable, "vetoed")
}

func TestPreFilterSkipLeavesOutFilter(t *testing.T) {
	snap := fw.SnapshotOf([]*v1.Node{node("a", "1", "1Gi", nil)}, nil)
	for _, skip := range []bool{true, false} {
		filters := append(plugins.DefaultFilters(), vetoFilter{skip: skip})
		a := NewAlgorithm(filters, nil, nil, 100, 1)
		got, err := a.Schedule(fw.NewPodInfo(pod("p", "", "")), snap)
		if skip && (err != nil || got != "a") {
			t.Errorf("skipped: Schedule = %q, %v; want a", got, err)
		}
		if !skip && err == nil {
			t.Errorf("not skipped: Schedule = %q, want the veto", got)
		}
	}
}

// favourScore prefers node "b" unless its PreScore says Skip.
type favourScore struct{ skip bool }

func (favourScore) Name() string { return "Favour" }
func (f favourScore) PreScore(*fw.CycleState, *fw.PodInfo, []*fw.NodeInfo) *fw.Status {
	if f.skip {
		return fw.NewStatus(fw.Skip)
	}
	return nil
}
func (favourScore) Score(_ *fw.CycleState, _ *fw.PodInfo, n *fw.NodeInfo) int64 {
	if n.Name() == "b" {
		return 100
	}
	return 0
}

func TestPreScoreSkipLeavesOutScore(t *testing.T) {
	snap := fw.SnapshotOf([]*v1.Node{node("a", "1", "1Gi", nil), node("b", "1", "1Gi", nil)}, nil)
	for _, skip := range []bool{true, false} {
		a := NewAlgorithm(plugins.DefaultFilters(), []fw.ScorePlugin{favourScore{skip: skip}}, map[string]int64{"Favour": 1}, 100, 1)
		picked := map[string]int{}
		for i := range 20 {
			got, err := a.Schedule(fw.NewPodInfo(pod(fmt.Sprintf("p%d", i), "", "")), snap)
			if err != nil {
				t.Fatal(err)
			}
			picked[got]++
		}
		if !skip && picked["b"] != 20 {
			t.Errorf("not skipped: picked %v, want b every time", picked)
		}
		if skip && picked["a"] == 0 {
			t.Errorf("skipped: picked %v, want ties broken between a and b", picked)
		}
	}
}

// TestNewRegistersEveryInformer: a factory shared with the scheduler and
// started between New and Run is already warm when Run comes, as
// `lotse server`'s shared informers are.
func TestNewRegistersEveryInformer(t *testing.T) {
	factory := informers.NewSharedInformerFactory(fake.NewClientset(), 0)
	if _, err := New(Config{Client: fake.NewClientset(), Informers: factory}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer func() { cancel(); factory.Shutdown() }()
	factory.Start(ctx.Done())
	synced := factory.WaitForCacheSync(ctx.Done())
	for _, obj := range []any{&v1.Pod{}, &v1.Node{}, &schedulingv1.PriorityClass{}, &v1.PersistentVolumeClaim{},
		&v1.PersistentVolume{}, &storagev1.StorageClass{}, &v1.Namespace{}, &policyv1.PodDisruptionBudget{}} {
		if typ := reflect.TypeOf(obj); !synced[typ] {
			t.Errorf("New did not register the %v informer (started: %v)", typ, synced)
		}
	}
}

// An idle scheduler lets its snapshot go, which would otherwise keep the
// pods of its last cycle alive, deleted ones included, until the next pod.
func TestIdleSchedulerReleasesItsSnapshot(t *testing.T) {
	h := newHarness(t, []*v1.Node{node("n1", "4", "8Gi", nil)})
	h.schedule(pod("p1", "1", ""))
	if h.s.snapshot == nil {
		t.Fatal("no snapshot after a cycle")
	}
	done := make(chan bool)
	go func() { done <- h.s.scheduleOne(context.Background()) }()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ok := <-done:
			if !ok {
				t.Fatal("scheduleOne reported the queue closed")
			}
			if h.s.snapshot != nil {
				t.Fatal("the snapshot outlived an idle period")
			}
			h.schedule(pod("p2", "1", "")) // and a pod after is scheduled as ever
			if h.rec.binds["p2"] != "n1" {
				t.Fatalf("p2 after the idle period: binds %v", h.rec.binds)
			}
			return
		case <-deadline:
			t.Fatal("scheduleOne still waits after an idle period")
		case <-time.After(time.Millisecond):
			h.clock.Step(snapshotIdle)
		}
	}
}
