package bench

import (
	"fmt"
	"runtime/debug"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
)

// Issue 4: how fast lotse's scheduler binds a backlog of pending pods on
// thousands of simulated nodes, against a bind-only "scheduler" (no
// filtering, no scoring) on fresh pods of the same workload in the same
// run. Node and pod creation is not timed. Both run on informers started
// before their pods were created, as `lotse server`'s shared informers
// are running when pods arrive; the clock runs from starting the
// scheduler (its event handlers still to be fed the cached pods and
// nodes) to a watch seeing the last pod bound. Counts scale with
// LOTSE_BENCH_SCALE (see benchScale).
//
//	go test -run '^$' -bench Schedule10kPodsOn5kNodes -benchtime 1x ./bench/
//	LOTSE_BENCH_SCALE=0.1 go test -run '^$' -bench Schedule150k -benchtime 1x ./bench/
//	go test -run '^$' -bench Decisions10k -benchtime 3x ./bench/
//
// At full scale the 30,000- and 150,000-pod runs take longer than go
// test's default 10-minute limit: add -timeout 0.

// BenchmarkSchedule10kPodsOn5kNodes: 10,000 ReplicaSet-like pods (the
// realistic pod of the API figures, 200m CPU and 256Mi requested) on
// 5,000 nodes. Goal: 2,000 pods/s, scheduling work < 20% of the time.
func BenchmarkSchedule10kPodsOn5kNodes(b *testing.B) {
	benchSchedule(b, schedWorkload{nodes: 5000, pods: 10000, pod: replicaSetPod, bindTarget: roundRobin, memGB: 2})
}

// BenchmarkSchedule30kPodsOn15kNodes: two DaemonSets on 15,000 nodes,
// one pod of each per node, pinned the way the DaemonSet controller has
// pinned its pods since 1.12: required node affinity with matchFields
// metadata.name In [node], plus the tolerations it adds.
func BenchmarkSchedule30kPodsOn15kNodes(b *testing.B) {
	benchSchedule(b, schedWorkload{nodes: 15000, pods: 30000, pod: daemonSetPod, bindTarget: pinnedNode, memGB: 6})
}

// BenchmarkSchedule150kPodsOn5kNodes: the basic workload at 30 pods a
// node. Goal: it completes, and the p99 of API calls stays under 1 s;
// the p99s reported are client-side: the scheduler's bind calls, and a
// probe's GETs (a node, a pod) and LISTs (500 pods) every 50 ms. The
// process peaked at 13–20 GB at full scale (2026-11-30): 300,000 pods
// (the baseline's included) in the server's cache and etcd, 150,000 in
// each phase's informers, and 150,000 in the decision replay's cache;
// memGB is what it needs with Go collecting in time.
func BenchmarkSchedule150kPodsOn5kNodes(b *testing.B) {
	benchSchedule(b, schedWorkload{nodes: 5000, pods: 150000, pod: replicaSetPod, bindTarget: roundRobin, memGB: 16})
}

func benchSchedule(b *testing.B, wl schedWorkload) {
	s := benchScale(b)
	wl.nodes, wl.pods = scaled(wl.nodes, s), scaled(wl.pods, s)
	checkMemory(b, wl.memGB*s)
	c := startSchedCluster(b)
	c.createNodes(b, wl.nodes)
	b.Logf("%d nodes, %d pods per phase (scale %g)", wl.nodes, wl.pods, s)

	var schedRate, baseRate, decideShare, decidePerPod float64
	var last, lastBase *bindRun
	b.ResetTimer()
	// Meant for -benchtime 1x: later iterations find the earlier ones'
	// pods on the nodes (the replay does not).
	for iter := 0; iter < b.N; iter++ {
		b.StopTimer()
		ns := fmt.Sprintf("sched-%d", iter)
		inf := c.warmInformers(b)
		sched := c.newScheduler(b, inf)
		inf.start(b)
		c.createPods(b, ns, wl)
		inf.waitForPods(b, ns, wl.pods)
		b.StartTimer()
		last = c.timeToBind(b, ns, wl.pods, sched.run)
		b.StopTimer()
		inf.close()
		// The phase's informers are garbage now: collected before the
		// next phase fills its own, the peak RSS is one phase's.
		debug.FreeOSMemory()

		ns = fmt.Sprintf("bindonly-%d", iter)
		inf = c.warmInformers(b, informers.WithNamespace(ns))
		pending := inf.Core().V1().Pods()
		pending.Informer()
		inf.start(b)
		c.createPods(b, ns, wl)
		inf.waitForPods(b, ns, wl.pods)
		lastBase = c.timeToBind(b, ns, wl.pods, c.bindOnly(pending.Lister().Pods(ns), wl))
		inf.close()

		decide, err := replayDecisions(c.nodes, wl)
		if err != nil {
			b.Fatal(err)
		}
		schedRate += last.rate()
		baseRate += lastBase.rate()
		decideShare += decide.Seconds() / last.elapsed.Seconds()
		decidePerPod += float64(decide.Microseconds()) / float64(wl.pods)
		b.StartTimer()
	}
	b.StopTimer()
	n := float64(b.N)
	schedRate, baseRate, decideShare, decidePerPod = schedRate/n, baseRate/n, decideShare/n, decidePerPod/n
	b.ReportMetric(schedRate, "pods/s")
	b.ReportMetric(baseRate, "bind-only-pods/s")
	b.ReportMetric(schedRate/baseRate, "sched/bind-only")
	// Two estimates of the scheduling work's share: what the scheduler
	// loses against bind-only, and the decisions' own CPU time replayed
	// without the API.
	b.ReportMetric(100*(1-schedRate/baseRate), "%-lost-vs-bind-only")
	b.ReportMetric(100*decideShare, "%-decide")
	b.ReportMetric(decidePerPod, "µs-decide/pod")
	// The rest is from the last iteration.
	b.ReportMetric(last.elapsed.Seconds(), "s-all-bound")
	b.ReportMetric(ms(last.bind.quantile(0.99)), "ms-p99-bind")
	b.ReportMetric(ms(lastBase.bind.quantile(0.99)), "ms-p99-bind-only")
	b.ReportMetric(ms(last.get.quantile(0.99)), "ms-p99-get")
	b.ReportMetric(ms(last.list.quantile(0.99)), "ms-p99-list500")
	b.ReportMetric(peakRSSMB(), "MB-peak-RSS")
	for _, r := range []struct {
		name string
		run  *bindRun
	}{{"scheduler", last}, {"bind-only", lastBase}} {
		b.Logf("%s: %d pods in %v (%.0f pods/s), first bound after %v; bind p50/p99/max %v/%v/%v; probe GET p50/p99 %v/%v (%d), LIST500 p50/p99 %v/%v (%d); errors: %d bind, %d probe; clock's watch restarted %d times",
			r.name, r.run.pods, r.run.elapsed.Round(time.Millisecond), r.run.rate(), time.Duration(r.run.firstBind.Load()).Round(time.Millisecond),
			r.run.bind.quantile(0.5).Round(time.Microsecond), r.run.bind.quantile(0.99).Round(time.Microsecond), r.run.bind.quantile(1).Round(time.Microsecond),
			r.run.get.quantile(0.5).Round(time.Microsecond), r.run.get.quantile(0.99).Round(time.Microsecond), len(r.run.get.d),
			r.run.list.quantile(0.5).Round(time.Microsecond), r.run.list.quantile(0.99).Round(time.Microsecond), len(r.run.list.d),
			r.run.bindErrs.Load(), r.run.probeErrs.Load(), r.run.watchRestarts.Load())
	}
}

// replicaSetPod is the API figures' realistic pod (newPod).
func replicaSetPod(ns string, i, _ int) *corev1.Pod { return newPod(ns, podName("p", i)) }

func roundRobin(_ *corev1.Pod, k, nodes int) string { return schedNodeName(k % nodes) }

// daemonSetPod is pod i of DaemonSet ds-a (i < nodes) or ds-b, pinned to
// node i mod nodes as the DaemonSet controller pins its pods.
func daemonSetPod(ns string, i, nodes int) *corev1.Pod {
	ds := fmt.Sprintf("ds-%c", 'a'+i/nodes)
	node := schedNodeName(i % nodes)
	p := newPod(ns, fmt.Sprintf("%s-%05d", ds, i%nodes))
	p.Labels = map[string]string{"app.kubernetes.io/name": ds, "controller-revision-hash": "6b8f9c7d54", "pod-template-generation": "1"}
	p.OwnerReferences[0].Kind, p.OwnerReferences[0].Name = "DaemonSet", ds
	p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchFields: []corev1.NodeSelectorRequirement{{Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
		}}},
	}}
	// What the DaemonSet controller adds: its pods stay through node
	// trouble and land on unschedulable nodes.
	p.Spec.Tolerations = []corev1.Toleration{
		{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
		{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
		{Key: "node.kubernetes.io/disk-pressure", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
		{Key: "node.kubernetes.io/memory-pressure", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
		{Key: "node.kubernetes.io/pid-pressure", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
		{Key: "node.kubernetes.io/unschedulable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	}
	return p
}

// pinnedNode is the node a DaemonSet pod's affinity names.
func pinnedNode(p *corev1.Pod, _, _ int) string {
	return p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchFields[0].Values[0]
}

// BenchmarkDecisions10kPodsOn5kNodes is the decision replay of figure 9a
// alone, without an API server: 10,000 pods scheduled onto 5,000
// in-memory nodes, in µs per pod. Seconds to run; for profiling the
// scheduler's own work (-cpuprofile).
func BenchmarkDecisions10kPodsOn5kNodes(b *testing.B) {
	nodes := make([]*corev1.Node, 5000)
	for i := range nodes {
		nodes[i] = schedNode(i)
	}
	wl := schedWorkload{nodes: len(nodes), pods: 10000, pod: replicaSetPod}
	var total time.Duration
	for b.Loop() {
		d, err := replayDecisions(nodes, wl)
		if err != nil {
			b.Fatal(err)
		}
		total += d
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N*wl.pods), "µs-decide/pod")
}
