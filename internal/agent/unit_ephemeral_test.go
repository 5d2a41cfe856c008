package agent

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// debugPod is testPod with an ephemeral container "debugger" targeting
// "app", as kubectl debug --target=app adds it.
func debugPod() *corev1.Pod {
	pod := testPod(corev1.RestartPolicyAlways, nil, "app")
	pod.Spec.EphemeralContainers = []corev1.EphemeralContainer{{
		EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger", Image: "busybox:1.36", Stdin: true, TTY: true},
		TargetContainerName:      "app",
	}}
	return pod
}

func TestEphemeralStatus(t *testing.T) {
	started := metav1.NewTime(tStart.Truncate(time.Second))
	finished := metav1.NewTime(tFinish.Truncate(time.Second))
	runningApp := []*runtimeapi.ContainerStatus{ctrRunning("app", "c1", 0)}
	tests := []struct {
		name string
		rt   map[string][]*runtimeapi.ContainerStatus
		// reported is the ephemeral status the pod carries already.
		reported *corev1.ContainerStatus
		waiting  map[string]waiting
		want     corev1.ContainerStatus
	}{{
		name: "not created yet",
		rt:   map[string][]*runtimeapi.ContainerStatus{"app": runningApp},
		want: corev1.ContainerStatus{Name: "debugger", Image: "busybox:1.36",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}},
	}, {
		name:    "target not running",
		waiting: map[string]waiting{"debugger": {"CreateContainerConfigError", "unable to find target container app"}},
		want: corev1.ContainerStatus{Name: "debugger", Image: "busybox:1.36",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: "unable to find target container app"}}},
	}, {
		// Running, yet never ready: nothing probes it, nothing serves from it.
		name: "running",
		rt:   map[string][]*runtimeapi.ContainerStatus{"app": runningApp, "debugger": {ctrRunning("debugger", "d1", 0)}},
		want: corev1.ContainerStatus{Name: "debugger", Image: "busybox:1.36", ImageID: "sha256:img", ContainerID: "containerd://d1",
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}},
	}, {
		name: "exited",
		rt:   map[string][]*runtimeapi.ContainerStatus{"app": runningApp, "debugger": {ctrExited("debugger", "d1", 0, 130, "")}},
		want: corev1.ContainerStatus{Name: "debugger", Image: "busybox:1.36", ImageID: "sha256:img", ContainerID: "containerd://d1",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 130, Reason: "Error",
				StartedAt: started, FinishedAt: finished, ContainerID: "containerd://d1"}}},
	}, {
		name: "ended and removed from the runtime",
		rt:   map[string][]*runtimeapi.ContainerStatus{"app": runningApp},
		reported: &corev1.ContainerStatus{Name: "debugger", Image: "busybox:1.36", ContainerID: "containerd://d1",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}},
		want: corev1.ContainerStatus{Name: "debugger", Image: "busybox:1.36", ContainerID: "containerd://d1",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}},
	}, {
		name: "lost while running",
		rt:   map[string][]*runtimeapi.ContainerStatus{"app": runningApp},
		reported: &corev1.ContainerStatus{Name: "debugger", Image: "busybox:1.36", ContainerID: "containerd://d1",
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}},
		want: corev1.ContainerStatus{Name: "debugger", Image: "busybox:1.36", ContainerID: "containerd://d1",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "ContainerStatusUnknown",
				Message: "The container could not be located when the pod was terminated", ContainerID: "containerd://d1"}}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAgent(t)
			pod := debugPod()
			if tt.reported != nil {
				pod.Status.EphemeralContainerStatuses = []corev1.ContainerStatus{*tt.reported}
			}
			rt := podRuntime{sandboxes: readySandbox(), containers: tt.rt}
			if rt.containers == nil {
				rt.containers = map[string][]*runtimeapi.ContainerStatus{}
			}
			if app := rt.latest("app"); app != nil {
				a.probes.started(pod, findContainer(pod, "app"), app.Id)
			}
			// Probing it like an app container must not make it ready.
			if d := rt.latest("debugger"); d != nil {
				a.probes.started(pod, findContainer(pod, "debugger"), d.Id)
			}
			state := &podState{waiting: tt.waiting, podIP: "10.244.0.7"}
			if state.waiting == nil {
				state.waiting = map[string]waiting{}
			}
			st := a.podStatus(pod, rt, state)
			if diff := cmp.Diff([]corev1.ContainerStatus{tt.want}, st.EphemeralContainerStatuses); diff != "" {
				t.Errorf("ephemeralContainerStatuses (-want +got):\n%s", diff)
			}
			// The ephemeral container changes neither phase nor readiness.
			wantPhase, wantReady := corev1.PodRunning, corev1.ConditionTrue
			if rt.latest("app") == nil {
				wantPhase, wantReady = corev1.PodPending, corev1.ConditionFalse
			}
			if st.Phase != wantPhase {
				t.Errorf("phase = %s, want %s", st.Phase, wantPhase)
			}
			if c := cond(st, corev1.PodReady); c == nil || c.Status != wantReady {
				t.Errorf("Ready condition = %+v, want %s", c, wantReady)
			}
			if len(st.ContainerStatuses) != 1 || st.ContainerStatuses[0].Name != "app" {
				t.Errorf("containerStatuses = %+v, want only app", st.ContainerStatuses)
			}
		})
	}
}

func TestEphemeralTarget(t *testing.T) {
	ec := func(target string) *corev1.EphemeralContainer {
		return &corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger"}, TargetContainerName: target}
	}
	rt := podRuntime{containers: map[string][]*runtimeapi.ContainerStatus{
		"app":  {ctrRunning("app", "c2", 1), ctrExited("app", "c1", 0, 1, "")},
		"done": {ctrExited("done", "c3", 0, 0, "")},
	}}
	tests := []struct {
		name, target, want string
		wantErr            bool
	}{
		{"no target", "", "", false},
		{"running target, newest instance", "app", "c2", false},
		{"exited target", "done", "", true},
		{"target not created", "other", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ephemeralTarget(ec(tt.target), rt)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("ephemeralTarget = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestShareTargetPID(t *testing.T) {
	tests := []struct {
		name      string
		pid       runtimeapi.NamespaceMode
		target    string
		wantPid   runtimeapi.NamespaceMode
		wantTgtID string
	}{
		{"own namespace joins the target's", runtimeapi.NamespaceMode_CONTAINER, "c1", runtimeapi.NamespaceMode_TARGET, "c1"},
		{"no target", runtimeapi.NamespaceMode_CONTAINER, "", runtimeapi.NamespaceMode_CONTAINER, ""},
		{"pod-wide namespace sees the target already", runtimeapi.NamespaceMode_POD, "c1", runtimeapi.NamespaceMode_POD, ""},
		{"host namespace stays", runtimeapi.NamespaceMode_NODE, "c1", runtimeapi.NamespaceMode_NODE, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := &runtimeapi.NamespaceOption{Pid: tt.pid, Network: runtimeapi.NamespaceMode_POD}
			shareTargetPID(ns, tt.target)
			if ns.Pid != tt.wantPid || ns.TargetId != tt.wantTgtID || ns.Network != runtimeapi.NamespaceMode_POD {
				t.Errorf("namespaces = %v, want pid %v target %q", ns, tt.wantPid, tt.wantTgtID)
			}
		})
	}
	shareTargetPID(nil, "c1") // a config without namespaces must not panic
}

func TestRanBefore(t *testing.T) {
	status := func(cs corev1.ContainerStatus) *corev1.Pod {
		pod := debugPod()
		cs.Name = "debugger"
		pod.Status.EphemeralContainerStatuses = []corev1.ContainerStatus{cs}
		return pod
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want bool
	}{
		{"no status", debugPod(), false},
		{"waiting to be created", status(corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}), false},
		{"created", status(corev1.ContainerStatus{ContainerID: "containerd://d1", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}}), true},
		{"running", status(corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}), true},
		{"terminated", status(corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ranBefore(tt.pod, "debugger"); got != tt.want {
				t.Errorf("ranBefore = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestFindEphemeralContainer checks that attach, logs and stop find an
// ephemeral container by name, with the fields its config is built from.
func TestFindEphemeralContainer(t *testing.T) {
	pod := debugPod()
	c := findContainer(pod, "debugger")
	if c == nil || c.Image != "busybox:1.36" || !c.Stdin || !c.TTY {
		t.Fatalf("findContainer(debugger) = %+v", c)
	}
	if findContainer(pod, "app") == nil || findContainer(pod, "nope") != nil {
		t.Error("findContainer lost its other containers")
	}
	pod.Status.EphemeralContainerStatuses = []corev1.ContainerStatus{{Name: "debugger", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
	if !reportsRunning(pod) {
		t.Error("reportsRunning ignores a running ephemeral container")
	}
}
