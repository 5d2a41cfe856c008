package sim

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	testingclock "k8s.io/utils/clock/testing"

	lotsenode "github.com/lotse/lotse/internal/node"
)

func mustQ(s string) resource.Quantity { return resource.MustParse(s) }

func TestNewValidatesAndDefaults(t *testing.T) {
	client := fake.NewClientset()
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"no client", Config{Nodes: 1}, "Client is required"},
		{"no nodes", Config{Client: client}, "between 1 and"},
		{"too many nodes", Config{Client: client, Nodes: MaxNodes + 1}, "between 1 and"},
		{"negative pods", Config{Client: client, Nodes: 1, MaxPods: -1}, "max pods"},
		{"negative cpu", Config{Client: client, Nodes: 1, NodeCPU: mustQ("-1")}, "negative"},
		{"defaults", Config{Client: client, Nodes: 2}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := s.cfg
			if c.NamePrefix != "sim-" || c.MaxPods != 110 || c.PodRunTime != 5*time.Second ||
				c.NodeCPU.String() != "32" || c.NodeMemory.String() != "256Gi" ||
				c.LeaseRenewInterval != 10*time.Second || c.LeaseDuration != 40*time.Second {
				t.Errorf("defaults: %+v", c)
			}
			if got := strings.Join(s.NodeNames(), ","); got != "sim-0,sim-1" {
				t.Errorf("names %s", got)
			}
		})
	}
}

func TestAddressesAreDistinct(t *testing.T) {
	s, err := New(Config{Client: fake.NewClientset(), Nodes: MaxNodes})
	if err != nil {
		t.Fatal(err)
	}
	hosts, pods := map[string]bool{}, map[string]bool{}
	for _, n := range s.nodes {
		p := n.podIP(2)
		if hosts[n.hostIP] || pods[p] {
			t.Fatalf("node %d reuses %s or %s", n.index, n.hostIP, p)
		}
		hosts[n.hostIP], pods[p] = true, true
	}
}

func TestTakeIP(t *testing.T) {
	n := &node{}
	// The lowest free host part, skipping .0 and .1.
	if got := n.takeIP(0); got != 2 {
		t.Fatalf("first = %d, want 2", got)
	}
	if got := n.takeIP(0); got != 3 {
		t.Fatalf("second = %d, want 3", got)
	}
	n.releaseIP(2)
	if got := n.takeIP(0); got != 2 {
		t.Fatalf("after release = %d, want 2", got)
	}
	if got := n.takeIP(100); got != 100 {
		t.Fatalf("wanted = %d, want 100", got)
	}
	seen := map[byte]bool{}
	for range 253 {
		seen[n.takeIP(0)] = true
	}
	for _, bad := range []byte{0, 1, 255} {
		if seen[bad] {
			t.Errorf("handed out reserved host part %d", bad)
		}
	}
}

func TestNextRenewalSpreadsNodes(t *testing.T) {
	fc := testingclock.NewFakeClock(time.Unix(1000, 0))
	s, err := New(Config{Client: fake.NewClientset(), Nodes: 4, Clock: fc})
	if err != nil {
		t.Fatal(err)
	}
	s.start = fc.Now()
	tests := []struct {
		node    int
		elapsed time.Duration
		want    time.Duration
	}{
		{0, 0, 10 * time.Second},                                             // slot 0 is now; never renew twice at once
		{1, 0, 2500 * time.Millisecond},                                      // slot at 2.5s
		{2, 0, 5 * time.Second},                                              // slot at 5s
		{3, 0, 7500 * time.Millisecond},                                      // slot at 7.5s
		{2, 6 * time.Second, 9 * time.Second},                                // missed 5s: next slot at 15s
		{0, 35 * time.Second, 5 * time.Second},                               // slots every 10s: 40s
		{3, 17500 * time.Millisecond, 10 * time.Second},                      // exactly on a slot: the next one
		{3, 17400 * time.Millisecond, 100*time.Millisecond + 10*time.Second}, // 0.1s is too soon
	}
	for _, tt := range tests {
		fc.SetTime(s.start.Add(tt.elapsed))
		if got := s.nextRenewal(tt.node); got != tt.want {
			t.Errorf("node %d at +%v: next renewal in %v, want %v", tt.node, tt.elapsed, got, tt.want)
		}
	}
}

func TestStatusChanged(t *testing.T) {
	fc := testingclock.NewFakeClock(time.Unix(1000, 0))
	s, err := New(Config{Client: fake.NewClientset(), Nodes: 1, Clock: fc})
	if err != nil {
		t.Fatal(err)
	}
	base := s.nodeStatus(s.nodes[0], nil)
	tests := []struct {
		name   string
		change func(*corev1.NodeStatus)
		want   bool
	}{
		{"same", func(*corev1.NodeStatus) {}, false},
		{"heartbeat only", func(st *corev1.NodeStatus) {
			st.Conditions[3].LastHeartbeatTime = metav1.NewTime(time.Unix(1, 0))
		}, false},
		{"not ready", func(st *corev1.NodeStatus) { st.Conditions[3].Status = corev1.ConditionFalse }, true},
		{"condition removed", func(st *corev1.NodeStatus) { st.Conditions = st.Conditions[:3] }, true},
		{"cpu", func(st *corev1.NodeStatus) { st.Allocatable[corev1.ResourceCPU] = mustQ("4") }, true},
		{"same cpu spelled differently", func(st *corev1.NodeStatus) { st.Capacity[corev1.ResourceCPU] = mustQ("32000m") }, false},
		{"runtime", func(st *corev1.NodeStatus) { st.NodeInfo.ContainerRuntimeVersion = "containerd://2" }, true},
		{"address", func(st *corev1.NodeStatus) { st.Addresses = nil }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur := *base.DeepCopy()
			tt.change(&cur)
			want := s.nodeStatus(s.nodes[0], &cur)
			if got := statusChanged(&cur, &want); got != tt.want {
				t.Errorf("statusChanged = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNodeStatusKeepsTransitionTimes(t *testing.T) {
	fc := testingclock.NewFakeClock(time.Unix(1000, 0))
	s, _ := New(Config{Client: fake.NewClientset(), Nodes: 1, Clock: fc})
	old := s.nodeStatus(s.nodes[0], nil)
	fc.Step(time.Minute)
	now := s.nodeStatus(s.nodes[0], &old)
	for i, c := range now.Conditions {
		if !c.LastTransitionTime.Equal(&old.Conditions[i].LastTransitionTime) {
			t.Errorf("%s transition time moved", c.Type)
		}
		if !c.LastHeartbeatTime.Time.Equal(fc.Now()) {
			t.Errorf("%s heartbeat %v, want now", c.Type, c.LastHeartbeatTime)
		}
	}
	if !lastHeartbeat(&now).Equal(fc.Now()) {
		t.Errorf("lastHeartbeat = %v", lastHeartbeat(&now))
	}
}

func TestPodStatuses(t *testing.T) {
	start := metav1.NewTime(time.Unix(1000, 0))
	end := metav1.NewTime(time.Unix(1030, 0))
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{UID: "u1"},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "i", Image: "busybox"}},
			Containers:     []corev1.Container{{Name: "a", Image: "nginx"}},
		},
		Status: corev1.PodStatus{
			Phase:    corev1.PodPending,
			QOSClass: corev1.PodQOSBestEffort,
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(time.Unix(5, 0))},
				{Type: "example.com/gate", Status: corev1.ConditionFalse},
			},
		},
	}
	run := runningStatus(pod, "10.255.0.1", "10.128.0.2", start)
	if run.Phase != corev1.PodRunning || run.PodIP != "10.128.0.2" || run.HostIP != "10.255.0.1" || !run.StartTime.Equal(&start) {
		t.Errorf("running: %+v", run)
	}
	if run.QOSClass != corev1.PodQOSBestEffort {
		t.Error("running status lost the QoS class")
	}
	conds := map[corev1.PodConditionType]corev1.PodCondition{}
	for _, c := range run.Conditions {
		conds[c.Type] = c
	}
	if len(conds) != 5 || conds["example.com/gate"].Status != corev1.ConditionFalse {
		t.Errorf("conditions: %+v", run.Conditions)
	}
	if ts := conds[corev1.PodScheduled].LastTransitionTime; ts.Unix() != 5 {
		t.Errorf("PodScheduled transition time moved to %v", ts)
	}
	if c := run.InitContainerStatuses; len(c) != 1 || c[0].State.Terminated == nil || c[0].State.Terminated.Reason != "Completed" {
		t.Errorf("init containers: %+v", c)
	}
	if c := run.ContainerStatuses; len(c) != 1 || !c[0].Ready || c[0].State.Running == nil || c[0].Image != "nginx" {
		t.Errorf("containers: %+v", c)
	}

	done := succeededStatus(&run, end)
	if done.Phase != corev1.PodSucceeded || done.PodIP != run.PodIP {
		t.Errorf("succeeded: %+v", done)
	}
	term := done.ContainerStatuses[0].State.Terminated
	if term == nil || term.ExitCode != 0 || term.Reason != "Completed" || !term.StartedAt.Equal(&start) || !term.FinishedAt.Equal(&end) {
		t.Errorf("terminated: %+v", done.ContainerStatuses[0].State)
	}
	for _, c := range done.Conditions {
		if (c.Type == corev1.PodReady || c.Type == corev1.ContainersReady) && (c.Status != corev1.ConditionFalse || c.Reason != "PodCompleted") {
			t.Errorf("succeeded %s: %+v", c.Type, c)
		}
	}
	if run.ContainerStatuses[0].State.Running == nil {
		t.Error("succeededStatus changed its input")
	}
}

func TestStripPod(t *testing.T) {
	grace := int64(7)
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "p", Namespace: "ns", UID: "u", ResourceVersion: "5", DeletionGracePeriodSeconds: &grace,
			Labels: map[string]string{"big": "label"}, Annotations: map[string]string{"a": strings.Repeat("x", 1000)},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		},
		Spec: corev1.PodSpec{
			NodeName: "n", RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "c", Image: "img", Env: []corev1.EnvVar{{Name: "E"}}}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	out, err := stripPod(p)
	if err != nil {
		t.Fatal(err)
	}
	s := out.(*corev1.Pod)
	if s.Name != "p" || s.Namespace != "ns" || s.UID != "u" || s.ResourceVersion != "5" || *s.DeletionGracePeriodSeconds != 7 ||
		s.Spec.NodeName != "n" || s.Spec.RestartPolicy != corev1.RestartPolicyNever || s.Status.Phase != corev1.PodRunning ||
		s.Spec.Containers[0].Image != "img" {
		t.Errorf("lost a field the sim needs: %+v", s)
	}
	if s.Labels != nil || s.Annotations != nil || s.ManagedFields != nil || s.Spec.Containers[0].Env != nil {
		t.Errorf("kept a field the sim does not need: %+v", s)
	}
	if got, _ := stripPod("tombstone"); got != "tombstone" {
		t.Errorf("non-pods must pass through")
	}
}

// The node agent leaves simulated nodes out of its routes by this label.
func TestNodesKnowTheSimulatedLabel(t *testing.T) {
	if lotsenode.SimulatedLabel != LabelSimulated {
		t.Errorf("lotsenode.SimulatedLabel = %q, sim.LabelSimulated = %q", lotsenode.SimulatedLabel, LabelSimulated)
	}
}
