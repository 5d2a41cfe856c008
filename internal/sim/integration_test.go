package sim

import (
	"context"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/testserver"
)

// running is a Sim started by a test on a fake clock.
type running struct {
	sim   *Sim
	clock *testingclock.FakeClock
	stop  func() error
}

func startSim(t *testing.T, client kubernetes.Interface, cfg Config) *running {
	t.Helper()
	fc := testingclock.NewFakeClock(time.Now())
	cfg.Client, cfg.Clock = client, fc
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stopped := false
	var runErr error
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			runErr = <-done
		}
		return runErr
	}
	t.Cleanup(func() { stop() })
	return &running{sim: s, clock: fc, stop: stop}
}

// eventually polls cond for up to 20 s; when step is non-zero it advances
// the fake clock by step before each poll.
func (r *running) eventually(t *testing.T, what string, step time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
		if step > 0 {
			r.clock.Step(step)
		}
	}
}

func ready(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func TestSimNodesLeasesAndCleanup(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{DisableScheduler: true})
	ctx := context.Background()
	c := srv.Client
	// Objects the sim must not touch: a real-looking node, a lease of the
	// same kind, and a node the sim would like to use but is not simulated.
	for _, name := range []string{"real-node", "t1-2"} {
		if _, err := c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "real-node"},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To("real-node")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	r := startSim(t, c, Config{Nodes: 4, NamePrefix: "t1-", NodeCPU: mustQ("8"), MaxPods: 50})
	sel := metav1.ListOptions{LabelSelector: LabelSimulated + "=true"}
	var nodes []corev1.Node
	r.eventually(t, "3 ready simulated nodes", 0, func() bool {
		l, err := c.CoreV1().Nodes().List(ctx, sel)
		if err != nil {
			t.Fatal(err)
		}
		nodes = l.Items
		readyCount := 0
		for i := range nodes {
			if ready(&nodes[i]) {
				readyCount++
			}
		}
		return readyCount == 3 && r.sim.Registered() == 3
	})
	if len(nodes) != 3 {
		t.Fatalf("got %d simulated nodes, want 3 (t1-2 is taken by a real node)", len(nodes))
	}
	for _, n := range nodes {
		st := n.Status
		if st.NodeInfo.ContainerRuntimeVersion != RuntimeVersion || n.Labels[LabelType] != LabelTypeValue {
			t.Errorf("%s: runtime %q, type label %q", n.Name, st.NodeInfo.ContainerRuntimeVersion, n.Labels[LabelType])
		}
		if cpu := st.Allocatable[corev1.ResourceCPU]; cpu.String() != "8" {
			t.Errorf("%s: allocatable cpu %s, want 8", n.Name, cpu.String())
		}
		if pods := st.Capacity[corev1.ResourcePods]; pods.Value() != 50 {
			t.Errorf("%s: pod capacity %s, want 50", n.Name, pods.String())
		}
		if len(st.Addresses) == 0 || !strings.HasPrefix(st.Addresses[0].Address, "10.255.") {
			t.Errorf("%s: addresses %v", n.Name, st.Addresses)
		}
		if len(st.Conditions) != 4 {
			t.Errorf("%s: %d conditions, want 4", n.Name, len(st.Conditions))
		}
	}
	if other, _ := c.CoreV1().Nodes().Get(ctx, "t1-2", metav1.GetOptions{}); other.Labels[LabelSimulated] != "" || len(other.Status.Conditions) != 0 {
		t.Errorf("sim touched the real node t1-2: %+v", other)
	}

	renewTimes := func() map[string]time.Time {
		out := map[string]time.Time{}
		l, err := c.CoordinationV1().Leases(corev1.NamespaceNodeLease).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range l.Items {
			if strings.HasPrefix(l.Name, "t1-") && l.Spec.RenewTime != nil {
				out[l.Name] = l.Spec.RenewTime.Time
				if *l.Spec.LeaseDurationSeconds != 40 || *l.Spec.HolderIdentity != l.Name {
					t.Errorf("lease %s: %+v", l.Name, l.Spec)
				}
			}
		}
		return out
	}
	first := renewTimes()
	if len(first) != 3 {
		t.Fatalf("leases: %v, want 3", first)
	}
	r.eventually(t, "all leases renewed", 2*time.Second, func() bool {
		now := renewTimes()
		for name, t0 := range first {
			if !now[name].After(t0) {
				return false
			}
		}
		return true
	})

	if err := r.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	l, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, n := range l.Items {
		left = append(left, n.Name)
	}
	if strings.Join(left, ",") != "real-node,t1-2" {
		t.Errorf("nodes after stop: %v, want real-node,t1-2", left)
	}
	leases, err := c.CoordinationV1().Leases(corev1.NamespaceNodeLease).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(leases.Items) != 1 || leases.Items[0].Name != "real-node" {
		t.Errorf("leases after stop: %d, want only real-node", len(leases.Items))
	}
}

func TestSimRunsPods(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{DisableScheduler: true})
	ctx := context.Background()
	c := srv.Client
	r := startSim(t, c, Config{Nodes: 2, NamePrefix: "t2-", PodRunTime: 30 * time.Second})
	r.eventually(t, "nodes registered", 0, func() bool { return r.sim.Registered() == 2 })

	pods := c.CoreV1().Pods("default")
	makePod := func(name, node string, policy corev1.RestartPolicy) {
		t.Helper()
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{
				RestartPolicy:  policy,
				InitContainers: []corev1.Container{{Name: "init", Image: "busybox"}},
				Containers:     []corev1.Container{{Name: "main", Image: "nginx"}, {Name: "side", Image: "busybox"}},
			},
		}
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if node == "" {
			return
		}
		err := pods.Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Target:     corev1.ObjectReference{Kind: "Node", Name: node},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	get := func(name string) *corev1.Pod {
		t.Helper()
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	makePod("web", "t2-0", corev1.RestartPolicyAlways)
	makePod("job", "t2-1", corev1.RestartPolicyNever)
	makePod("elsewhere", "not-simulated", corev1.RestartPolicyAlways)
	makePod("pending", "", corev1.RestartPolicyAlways)

	for _, name := range []string{"web", "job"} {
		r.eventually(t, name+" running", 0, func() bool { return get(name).Status.Phase == corev1.PodRunning })
		p := get(name)
		if !strings.HasPrefix(p.Status.PodIP, "10.128.") || !strings.HasPrefix(p.Status.HostIP, "10.255.") {
			t.Errorf("%s: podIP %q hostIP %q", name, p.Status.PodIP, p.Status.HostIP)
		}
		if len(p.Status.ContainerStatuses) != 2 || len(p.Status.InitContainerStatuses) != 1 {
			t.Fatalf("%s: container statuses %+v", name, p.Status)
		}
		for _, cs := range p.Status.ContainerStatuses {
			if !cs.Ready || cs.State.Running == nil || !ptr.Deref(cs.Started, false) {
				t.Errorf("%s/%s: %+v", name, cs.Name, cs)
			}
		}
		for _, ct := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
			if !hasCondition(p, ct, corev1.ConditionTrue) {
				t.Errorf("%s: condition %s not True: %+v", name, ct, p.Status.Conditions)
			}
		}
	}
	if a, b := get("web").Status.PodIP, get("job").Status.PodIP; a == b {
		t.Errorf("pods on different nodes share IP %s", a)
	}

	// A running pod marked not Ready by someone else (the node lifecycle
	// controller, while it took the node for gone) is Ready again, as the
	// kubelet's status manager makes it.
	notReady := get("web")
	for i, c := range notReady.Status.Conditions {
		if c.Type == corev1.PodReady {
			notReady.Status.Conditions[i].Status, notReady.Status.Conditions[i].Reason = corev1.ConditionFalse, "NodeNotReady"
		}
	}
	if _, err := pods.UpdateStatus(ctx, notReady, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r.eventually(t, "web Ready again", 0, func() bool { return hasCondition(get("web"), corev1.PodReady, corev1.ConditionTrue) })

	// The Never pod ends Succeeded once the run time has passed on the
	// sim's clock, and not before.
	r.eventually(t, "job succeeded", time.Second, func() bool { return get("job").Status.Phase == corev1.PodSucceeded })
	job := get("job")
	for _, cs := range job.Status.ContainerStatuses {
		term := cs.State.Terminated
		if term == nil || term.Reason != "Completed" || term.ExitCode != 0 || cs.Ready {
			t.Fatalf("job/%s: %+v", cs.Name, cs.State)
		}
		if ran := term.FinishedAt.Sub(term.StartedAt.Time); ran < 29*time.Second {
			t.Errorf("job/%s ran %v, want at least the 30s run time", cs.Name, ran)
		}
	}
	if !hasCondition(job, corev1.PodReady, corev1.ConditionFalse) {
		t.Errorf("succeeded job still Ready: %+v", job.Status.Conditions)
	}
	if get("web").Status.Phase != corev1.PodRunning {
		t.Errorf("restartPolicy Always pod stopped running")
	}

	// Deleting a running pod waits out its grace period on the sim's clock.
	before := r.clock.Now()
	if err := pods.Delete(ctx, "web", metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(20))}); err != nil {
		t.Fatal(err)
	}
	if get("web").DeletionTimestamp == nil {
		t.Fatal("web has no deletionTimestamp after a graceful delete")
	}
	r.eventually(t, "web gone", time.Second, func() bool {
		_, err := pods.Get(ctx, "web", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	if waited := r.clock.Since(before); waited < 20*time.Second {
		t.Errorf("web removed after %v on the sim clock, want at least its 20s grace period", waited)
	}

	// Pods on other nodes and unbound pods are left alone.
	for _, name := range []string{"elsewhere", "pending"} {
		if p := get(name); p.Status.Phase != corev1.PodPending || p.Status.PodIP != "" {
			t.Errorf("%s touched: %+v", name, p.Status)
		}
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	// Stopping leaves pods alone: the succeeded job is still there.
	get("job")
}

func hasCondition(p *corev1.Pod, t corev1.PodConditionType, s corev1.ConditionStatus) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status == s
		}
	}
	return false
}
