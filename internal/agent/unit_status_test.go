package agent

import (
	"encoding/json"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

// newTestAgent is an Agent with no API server and no runtime: enough for
// the functions that compute from their arguments.
func newTestAgent(t *testing.T) *Agent {
	t.Helper()
	a := &Agent{
		cfg:     Config{NodeName: "node-1", NodeIP: net.ParseIP("10.0.0.5"), Dir: t.TempDir()},
		log:     slog.New(slog.DiscardHandler),
		workers: map[string]*podWorker{},
		backoff: map[string]*backoffEntry{},
		tokens:  map[string]cachedToken{},
	}
	a.probes = newProbeManager(a)
	return a
}

// Times the fake runtime reports, in nanoseconds with a sub-second part
// that the status must drop.
var (
	tStart  = time.Date(2025, 3, 1, 10, 0, 0, 123456789, time.UTC)
	tFinish = tStart.Add(5 * time.Second)
)

func ctrRunning(name, id string, attempt uint32) *runtimeapi.ContainerStatus {
	return &runtimeapi.ContainerStatus{
		Id: id, Metadata: &runtimeapi.ContainerMetadata{Name: name, Attempt: attempt},
		State: runtimeapi.ContainerState_CONTAINER_RUNNING, StartedAt: tStart.UnixNano(), CreatedAt: tStart.UnixNano(),
		ImageRef: "sha256:img", Image: &runtimeapi.ImageSpec{Image: "sha256:img", UserSpecifiedImage: "busybox:1.36"},
	}
}

func ctrExited(name, id string, attempt uint32, code int32, reason string) *runtimeapi.ContainerStatus {
	s := ctrRunning(name, id, attempt)
	s.State, s.ExitCode, s.Reason, s.FinishedAt = runtimeapi.ContainerState_CONTAINER_EXITED, code, reason, tFinish.UnixNano()
	return s
}

func ctrCreated(name, id string, attempt uint32) *runtimeapi.ContainerStatus {
	s := ctrRunning(name, id, attempt)
	s.State, s.StartedAt = runtimeapi.ContainerState_CONTAINER_CREATED, 0
	return s
}

func readySandbox() []*runtimeapi.PodSandbox {
	return []*runtimeapi.PodSandbox{{Id: "sb1", State: runtimeapi.PodSandboxState_SANDBOX_READY}}
}

// testPod has app containers (and init containers) of the given names.
func testPod(policy corev1.RestartPolicy, initNames []string, names ...string) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1"},
		Spec:       corev1.PodSpec{RestartPolicy: policy, NodeName: "node-1"},
	}
	for _, n := range initNames {
		pod.Spec.InitContainers = append(pod.Spec.InitContainers, corev1.Container{Name: n, Image: "busybox:1.36"})
	}
	for _, n := range names {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: n, Image: "busybox:1.36"})
	}
	return pod
}

func cond(st corev1.PodStatus, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

func TestPodPhase(t *testing.T) {
	running := corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
	waiting := corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}
	exit := func(code int32) corev1.ContainerStatus {
		return corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}}
	}
	// restarting: waiting to run again after an exit.
	restarting := corev1.ContainerStatus{
		State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}},
	}
	const (
		always    = corev1.RestartPolicyAlways
		onFailure = corev1.RestartPolicyOnFailure
		never     = corev1.RestartPolicyNever
	)
	tests := []struct {
		name                 string
		policy               corev1.RestartPolicy
		statuses             []corev1.ContainerStatus
		initDone, initFailed bool
		want                 corev1.PodPhase
	}{
		{"init failed", never, []corev1.ContainerStatus{waiting}, false, true, corev1.PodFailed},
		{"init running", always, []corev1.ContainerStatus{waiting}, false, false, corev1.PodPending},
		{"init restarting under OnFailure", onFailure, []corev1.ContainerStatus{waiting}, false, false, corev1.PodPending},
		{"not created yet", always, []corev1.ContainerStatus{waiting}, true, false, corev1.PodPending},
		{"one running one waiting", always, []corev1.ContainerStatus{running, waiting}, true, false, corev1.PodPending},
		{"all running", always, []corev1.ContainerStatus{running, running}, true, false, corev1.PodRunning},
		{"running and restarting", always, []corev1.ContainerStatus{running, restarting}, true, false, corev1.PodRunning},
		{"only restarting", onFailure, []corev1.ContainerStatus{restarting}, true, false, corev1.PodRunning},
		{"running and failed, Never", never, []corev1.ContainerStatus{running, exit(1)}, true, false, corev1.PodRunning},
		{"running and succeeded, Never", never, []corev1.ContainerStatus{running, exit(0)}, true, false, corev1.PodRunning},
		{"all succeeded, Never", never, []corev1.ContainerStatus{exit(0), exit(0)}, true, false, corev1.PodSucceeded},
		{"all succeeded, OnFailure", onFailure, []corev1.ContainerStatus{exit(0)}, true, false, corev1.PodSucceeded},
		{"all succeeded, Always", always, []corev1.ContainerStatus{exit(0)}, true, false, corev1.PodRunning},
		{"one failed, Never", never, []corev1.ContainerStatus{exit(0), exit(2)}, true, false, corev1.PodFailed},
		{"one failed, OnFailure", onFailure, []corev1.ContainerStatus{exit(0), exit(2)}, true, false, corev1.PodRunning},
		{"all failed, Always", always, []corev1.ContainerStatus{exit(137)}, true, false, corev1.PodRunning},
		{"no containers", always, nil, true, false, corev1.PodPending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod(tt.policy, nil)
			if got := podPhase(pod, tt.statuses, tt.initDone, tt.initFailed); got != tt.want {
				t.Errorf("podPhase = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestPodStatus(t *testing.T) {
	started := metav1.NewTime(tStart.Truncate(time.Second))
	finished := metav1.NewTime(tFinish.Truncate(time.Second))
	type want struct {
		phase                                 corev1.PodPhase
		readyToStart, initialized, ready      corev1.ConditionStatus
		initReason, readyReason, readyMessage string
		podIP                                 string
		app, init                             []corev1.ContainerStatus
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		rt   podRuntime
		// probed names running containers whose probes passed.
		probed []string
		state  podState
		want   want
	}{{
		name: "nothing created yet",
		pod:  testPod(corev1.RestartPolicyAlways, nil, "app"),
		want: want{
			phase: corev1.PodPending, readyToStart: corev1.ConditionFalse, initialized: corev1.ConditionTrue, ready: corev1.ConditionFalse,
			readyReason: "ContainersNotReady", readyMessage: "containers with unready status: [app]",
			app: []corev1.ContainerStatus{{Name: "app", Image: "busybox:1.36", Started: new(bool),
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}},
		},
	}, {
		name:   "running and ready",
		pod:    testPod(corev1.RestartPolicyAlways, nil, "app"),
		rt:     podRuntime{sandboxes: readySandbox(), containers: map[string][]*runtimeapi.ContainerStatus{"app": {ctrRunning("app", "c1", 0)}}},
		probed: []string{"app"},
		state:  podState{podIP: "10.244.0.7"},
		want: want{
			phase: corev1.PodRunning, readyToStart: corev1.ConditionTrue, initialized: corev1.ConditionTrue, ready: corev1.ConditionTrue,
			podIP: "10.244.0.7",
			app: []corev1.ContainerStatus{{Name: "app", Image: "busybox:1.36", ImageID: "sha256:img", ContainerID: "containerd://c1",
				Ready: true, Started: ptrTo(true), State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}}},
		},
	}, {
		name:  "running, probes not passed",
		pod:   testPod(corev1.RestartPolicyAlways, nil, "app"),
		rt:    podRuntime{sandboxes: readySandbox(), containers: map[string][]*runtimeapi.ContainerStatus{"app": {ctrRunning("app", "c1", 0)}}},
		state: podState{podIP: "10.244.0.7"},
		want: want{
			phase: corev1.PodRunning, readyToStart: corev1.ConditionTrue, initialized: corev1.ConditionTrue, ready: corev1.ConditionFalse,
			readyReason: "ContainersNotReady", readyMessage: "containers with unready status: [app]", podIP: "10.244.0.7",
			app: []corev1.ContainerStatus{{Name: "app", Image: "busybox:1.36", ImageID: "sha256:img", ContainerID: "containerd://c1",
				Started: new(bool), State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}}},
		},
	}, {
		name: "sandbox ready without an IP yet",
		pod:  testPod(corev1.RestartPolicyAlways, nil, "app"),
		rt:   podRuntime{sandboxes: readySandbox(), containers: map[string][]*runtimeapi.ContainerStatus{"app": {ctrCreated("app", "c1", 0)}}},
		want: want{
			phase: corev1.PodPending, readyToStart: corev1.ConditionFalse, initialized: corev1.ConditionTrue, ready: corev1.ConditionFalse,
			readyReason: "ContainersNotReady", readyMessage: "containers with unready status: [app]",
			app: []corev1.ContainerStatus{{Name: "app", Image: "busybox:1.36", ImageID: "sha256:img", ContainerID: "containerd://c1",
				Started: new(bool), State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}},
		},
	}, {
		name:  "image pull failing",
		pod:   testPod(corev1.RestartPolicyAlways, nil, "app"),
		rt:    podRuntime{sandboxes: readySandbox()},
		state: podState{podIP: "10.244.0.7", waiting: map[string]waiting{"app": {"ErrImagePull", "Failed to pull image"}}},
		want: want{
			phase: corev1.PodPending, readyToStart: corev1.ConditionTrue, initialized: corev1.ConditionTrue, ready: corev1.ConditionFalse,
			readyReason: "ContainersNotReady", readyMessage: "containers with unready status: [app]", podIP: "10.244.0.7",
			app: []corev1.ContainerStatus{{Name: "app", Image: "busybox:1.36", Started: new(bool),
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "Failed to pull image"}}}},
		},
	}, {
		name:  "init container running",
		pod:   testPod(corev1.RestartPolicyAlways, []string{"setup"}, "app"),
		rt:    podRuntime{sandboxes: readySandbox(), containers: map[string][]*runtimeapi.ContainerStatus{"setup": {ctrRunning("setup", "i1", 0)}}},
		state: podState{podIP: "10.244.0.7"},
		want: want{
			phase: corev1.PodPending, readyToStart: corev1.ConditionTrue, initialized: corev1.ConditionFalse, ready: corev1.ConditionFalse,
			initReason: "ContainersNotInitialized", readyReason: "ContainersNotReady", readyMessage: "containers with unready status: [app]",
			podIP: "10.244.0.7",
			init: []corev1.ContainerStatus{{Name: "setup", Image: "busybox:1.36", ImageID: "sha256:img", ContainerID: "containerd://i1",
				Started: new(bool), State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}}},
			app: []corev1.ContainerStatus{{Name: "app", Image: "busybox:1.36", Started: new(bool),
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}}},
		},
	}, {
		name: "init done, app running",
		pod:  testPod(corev1.RestartPolicyAlways, []string{"setup"}, "app"),
		rt: podRuntime{sandboxes: readySandbox(), containers: map[string][]*runtimeapi.ContainerStatus{
			"setup": {ctrExited("setup", "i1", 0, 0, "")}, "app": {ctrRunning("app", "c1", 0)}}},
		probed: []string{"app"},
		state:  podState{podIP: "10.244.0.7"},
		want: want{
			phase: corev1.PodRunning, readyToStart: corev1.ConditionTrue, initialized: corev1.ConditionTrue, ready: corev1.ConditionTrue,
			podIP: "10.244.0.7",
			init: []corev1.ContainerStatus{{Name: "setup", Image: "busybox:1.36", ImageID: "sha256:img", ContainerID: "containerd://i1",
				Ready: true, Started: new(bool), State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					Reason: "Completed", StartedAt: started, FinishedAt: finished, ContainerID: "containerd://i1"}}}},
			app: []corev1.ContainerStatus{{Name: "app", Image: "busybox:1.36", ImageID: "sha256:img", ContainerID: "containerd://c1",
				Ready: true, Started: ptrTo(true), State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}}},
		},
	}, {
		name:  "init failed under Never",
		pod:   testPod(corev1.RestartPolicyNever, []string{"setup", "more"}, "app"),
		rt:    podRuntime{sandboxes: readySandbox(), containers: map[string][]*runtimeapi.ContainerStatus{"setup": {ctrExited("setup", "i1", 0, 3, "")}}},
		state: podState{podIP: "10.244.0.7"},
		want: want{
			phase: corev1.PodFailed, readyToStart: corev1.ConditionTrue, initialized: corev1.ConditionFalse, ready: corev1.ConditionFalse,
			initReason: "ContainersNotInitialized", readyReason: "ContainersNotReady", readyMessage: "containers with unready status: [app]",
			podIP: "10.244.0.7",
			init: []corev1.ContainerStatus{{Name: "setup", Image: "busybox:1.36", ImageID: "sha256:img", ContainerID: "containerd://i1",
				Started: new(bool), State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: 3, Reason: "Error", StartedAt: started, FinishedAt: finished, ContainerID: "containerd://i1"}}},
				{Name: "more", Image: "busybox:1.36", Started: new(bool),
					State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}}},
			app: []corev1.ContainerStatus{{Name: "app", Image: "busybox:1.36", Started: new(bool),
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}}},
		},
	}, {
		name:  "init crash looping under OnFailure",
		pod:   testPod(corev1.RestartPolicyOnFailure, []string{"setup"}, "app"),
		rt:    podRuntime{sandboxes: readySandbox(), containers: map[string][]*runtimeapi.ContainerStatus{"setup": {ctrExited("setup", "i2", 1, 1, "")}}},
		state: podState{podIP: "10.244.0.7", waiting: map[string]waiting{"setup": {"CrashLoopBackOff", "back-off 10s"}}},
		want: want{
			phase: corev1.PodPending, readyToStart: corev1.ConditionTrue, initialized: corev1.ConditionFalse, ready: corev1.ConditionFalse,
			initReason: "ContainersNotInitialized", readyReason: "ContainersNotReady", readyMessage: "containers with unready status: [app]",
			podIP: "10.244.0.7",
			init: []corev1.ContainerStatus{{Name: "setup", Image: "busybox:1.36", ImageID: "sha256:img", ContainerID: "containerd://i2",
				RestartCount: 1, Started: new(bool),
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 10s"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: 1, Reason: "Error", StartedAt: started, FinishedAt: finished, ContainerID: "containerd://i2"}}}},
			app: []corev1.ContainerStatus{{Name: "app", Image: "busybox:1.36", Started: new(bool),
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}}},
		},
	}, {
		name:  "completed under Never",
		pod:   testPod(corev1.RestartPolicyNever, nil, "app"),
		rt:    podRuntime{sandboxes: readySandbox(), containers: map[string][]*runtimeapi.ContainerStatus{"app": {ctrExited("app", "c1", 0, 0, "")}}},
		state: podState{podIP: "10.244.0.7"},
		want: want{
			phase: corev1.PodSucceeded, readyToStart: corev1.ConditionTrue, initialized: corev1.ConditionTrue, ready: corev1.ConditionFalse,
			readyReason: "PodCompleted", podIP: "10.244.0.7",
			app: []corev1.ContainerStatus{{Name: "app", Image: "busybox:1.36", ImageID: "sha256:img", ContainerID: "containerd://c1",
				Started: new(bool), State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					Reason: "Completed", StartedAt: started, FinishedAt: finished, ContainerID: "containerd://c1"}}}},
		},
	}, {
		name:  "OOM killed under Never keeps the runtime's reason",
		pod:   testPod(corev1.RestartPolicyNever, nil, "app"),
		rt:    podRuntime{containers: map[string][]*runtimeapi.ContainerStatus{"app": {ctrExited("app", "c1", 0, 137, "OOMKilled")}}},
		state: podState{},
		want: want{
			phase: corev1.PodFailed, readyToStart: corev1.ConditionFalse, initialized: corev1.ConditionTrue, ready: corev1.ConditionFalse,
			readyReason: "ContainersNotReady", readyMessage: "containers with unready status: [app]",
			app: []corev1.ContainerStatus{{Name: "app", Image: "busybox:1.36", ImageID: "sha256:img", ContainerID: "containerd://c1",
				Started: new(bool), State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: 137, Reason: "OOMKilled", StartedAt: started, FinishedAt: finished, ContainerID: "containerd://c1"}}}},
		},
	}, {
		name: "restarted: previous instance is lastState",
		pod:  testPod(corev1.RestartPolicyAlways, nil, "app"),
		rt: podRuntime{sandboxes: readySandbox(), containers: map[string][]*runtimeapi.ContainerStatus{
			"app": {ctrRunning("app", "c2", 1), ctrExited("app", "c1", 0, 2, "")}}},
		probed: []string{"app"},
		state:  podState{podIP: "10.244.0.7"},
		want: want{
			phase: corev1.PodRunning, readyToStart: corev1.ConditionTrue, initialized: corev1.ConditionTrue, ready: corev1.ConditionTrue,
			podIP: "10.244.0.7",
			app: []corev1.ContainerStatus{{Name: "app", Image: "busybox:1.36", ImageID: "sha256:img", ContainerID: "containerd://c2",
				RestartCount: 1, Ready: true, Started: ptrTo(true),
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: 2, Reason: "Error", StartedAt: started, FinishedAt: finished, ContainerID: "containerd://c1"}}}},
		},
	}, {
		name: "crash loop: the newest exit is lastState, reason from the sync",
		pod:  testPod(corev1.RestartPolicyAlways, nil, "app"),
		rt: podRuntime{sandboxes: readySandbox(), containers: map[string][]*runtimeapi.ContainerStatus{
			"app": {ctrExited("app", "c3", 2, 1, ""), ctrExited("app", "c2", 1, 7, "")}}},
		state: podState{podIP: "10.244.0.7", waiting: map[string]waiting{"app": {"CrashLoopBackOff", "back-off 20s restarting failed container"}}},
		want: want{
			phase: corev1.PodRunning, readyToStart: corev1.ConditionTrue, initialized: corev1.ConditionTrue, ready: corev1.ConditionFalse,
			readyReason: "ContainersNotReady", readyMessage: "containers with unready status: [app]", podIP: "10.244.0.7",
			app: []corev1.ContainerStatus{{Name: "app", Image: "busybox:1.36", ImageID: "sha256:img", ContainerID: "containerd://c3",
				RestartCount: 2, Started: new(bool),
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 20s restarting failed container"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: 1, Reason: "Error", StartedAt: started, FinishedAt: finished, ContainerID: "containerd://c3"}}}},
		},
	}, {
		name: "host network uses the node IP",
		pod: func() *corev1.Pod {
			p := testPod(corev1.RestartPolicyAlways, nil, "app")
			p.Spec.HostNetwork = true
			return p
		}(),
		rt:     podRuntime{sandboxes: readySandbox(), containers: map[string][]*runtimeapi.ContainerStatus{"app": {ctrRunning("app", "c1", 0)}}},
		probed: []string{"app"},
		want: want{
			phase: corev1.PodRunning, readyToStart: corev1.ConditionTrue, initialized: corev1.ConditionTrue, ready: corev1.ConditionTrue,
			podIP: "10.0.0.5",
			app: []corev1.ContainerStatus{{Name: "app", Image: "busybox:1.36", ImageID: "sha256:img", ContainerID: "containerd://c1",
				Ready: true, Started: ptrTo(true), State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}}},
		},
	}, {
		name: "a terminal phase never changes",
		pod: func() *corev1.Pod {
			p := testPod(corev1.RestartPolicyAlways, nil, "app")
			p.Status.Phase = corev1.PodFailed
			return p
		}(),
		rt:     podRuntime{sandboxes: readySandbox(), containers: map[string][]*runtimeapi.ContainerStatus{"app": {ctrRunning("app", "c1", 0)}}},
		probed: []string{"app"},
		state:  podState{podIP: "10.244.0.7"},
		want: want{
			phase: corev1.PodFailed, readyToStart: corev1.ConditionTrue, initialized: corev1.ConditionTrue, ready: corev1.ConditionTrue,
			podIP: "10.244.0.7",
			app: []corev1.ContainerStatus{{Name: "app", Image: "busybox:1.36", ImageID: "sha256:img", ContainerID: "containerd://c1",
				Ready: true, Started: ptrTo(true), State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}}},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAgent(t)
			for _, name := range tt.probed {
				c := findContainer(tt.pod, name)
				// A container without probes is started and ready at once.
				a.probes.started(tt.pod, c, tt.rt.latest(name).Id)
			}
			if tt.state.waiting == nil {
				tt.state.waiting = map[string]waiting{}
			}
			st := a.podStatus(tt.pod, tt.rt, &tt.state)
			w := tt.want
			if st.Phase != w.phase {
				t.Errorf("phase = %s, want %s", st.Phase, w.phase)
			}
			if st.HostIP != "10.0.0.5" || len(st.HostIPs) != 1 || st.HostIPs[0].IP != "10.0.0.5" {
				t.Errorf("hostIP = %q %v, want 10.0.0.5", st.HostIP, st.HostIPs)
			}
			if st.PodIP != w.podIP || (w.podIP != "" && (len(st.PodIPs) != 1 || st.PodIPs[0].IP != w.podIP)) {
				t.Errorf("podIP = %q %v, want %q", st.PodIP, st.PodIPs, w.podIP)
			}
			if st.StartTime == nil {
				t.Error("startTime not set")
			}
			if st.QOSClass != corev1.PodQOSBestEffort {
				t.Errorf("qosClass = %s, want BestEffort", st.QOSClass)
			}
			checkCond := func(typ corev1.PodConditionType, status corev1.ConditionStatus, reason, message string) {
				t.Helper()
				c := cond(st, typ)
				if c == nil {
					t.Errorf("condition %s missing", typ)
					return
				}
				if c.Status != status || c.Reason != reason || c.Message != message {
					t.Errorf("condition %s = %s %q %q, want %s %q %q", typ, c.Status, c.Reason, c.Message, status, reason, message)
				}
				if c.LastTransitionTime.IsZero() {
					t.Errorf("condition %s has no transition time", typ)
				}
			}
			checkCond(corev1.PodReadyToStartContainers, w.readyToStart, "", "")
			initMsg := ""
			if w.initReason != "" {
				var names []string
				for _, cs := range w.init {
					if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
						names = append(names, cs.Name)
					}
				}
				initMsg = "containers with incomplete status: " + fmtList(names)
			}
			checkCond(corev1.PodInitialized, w.initialized, w.initReason, initMsg)
			checkCond(corev1.ContainersReady, w.ready, w.readyReason, w.readyMessage)
			checkCond(corev1.PodReady, w.ready, w.readyReason, w.readyMessage)
			if diff := cmp.Diff(w.app, st.ContainerStatuses); diff != "" {
				t.Errorf("containerStatuses (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(w.init, st.InitContainerStatuses); diff != "" {
				t.Errorf("initContainerStatuses (-want +got):\n%s", diff)
			}
		})
	}
}

func fmtList(names []string) string {
	s := "["
	for i, n := range names {
		if i > 0 {
			s += " "
		}
		s += n
	}
	return s + "]"
}

func ptrTo[T any](v T) *T { return &v }

// TestPodStatusStable checks that a status written to the API server and
// read back compares equal to the next one computed from the same
// runtime state, so that an unchanged pod causes no status updates.
func TestPodStatusStable(t *testing.T) {
	pods := map[string]*corev1.Pod{
		"running": testPod(corev1.RestartPolicyAlways, []string{"setup"}, "app", "side"),
		"guaranteed": func() *corev1.Pod {
			p := testPod(corev1.RestartPolicyAlways, nil, "app")
			rl := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("64Mi")}
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{Requests: rl, Limits: rl}
			return p
		}(),
	}
	rt := podRuntime{sandboxes: readySandbox(), containers: map[string][]*runtimeapi.ContainerStatus{
		"setup": {ctrExited("setup", "i1", 0, 0, "")},
		"app":   {ctrRunning("app", "c2", 1), ctrExited("app", "c1", 0, 1, "")},
		"side":  {ctrExited("side", "s1", 3, 1, "")},
	}}
	for name, pod := range pods {
		t.Run(name, func(t *testing.T) {
			a := newTestAgent(t)
			a.probes.started(pod, &pod.Spec.Containers[0], "c2")
			pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
			state := func() *podState {
				return &podState{podIP: "10.244.0.9", waiting: map[string]waiting{"side": {"CrashLoopBackOff", "back-off 40s"}}}
			}
			first := a.podStatus(pod, rt, state())
			pod.Status = roundTrip(t, first)
			second := a.podStatus(pod, rt, state())
			if !apiequality.Semantic.DeepEqual(pod.Status, second) {
				t.Errorf("status changed without a change in the runtime (-stored +recomputed):\n%s", cmp.Diff(pod.Status, second))
			}
			if c := cond(second, corev1.PodScheduled); c == nil || c.Status != corev1.ConditionTrue {
				t.Errorf("PodScheduled condition lost: %v", second.Conditions)
			}
		})
	}
}

// roundTrip serializes a status as the API server stores it.
func roundTrip(t *testing.T, st corev1.PodStatus) corev1.PodStatus {
	t.Helper()
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var out corev1.PodStatus
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPodStatusTransitionTimes checks that a condition keeps its
// transition time while its status holds and gets a new one when it flips.
func TestPodStatusTransitionTimes(t *testing.T) {
	a := newTestAgent(t)
	pod := testPod(corev1.RestartPolicyAlways, nil, "app")
	old := metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second))
	for _, typ := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{Type: typ, Status: corev1.ConditionTrue, LastTransitionTime: old})
	}
	rt := podRuntime{sandboxes: readySandbox(), containers: map[string][]*runtimeapi.ContainerStatus{"app": {ctrExited("app", "c1", 0, 1, "")}}}
	st := a.podStatus(pod, rt, &podState{podIP: "10.244.0.7", waiting: map[string]waiting{}})
	for typ, changed := range map[corev1.PodConditionType]bool{
		corev1.PodReadyToStartContainers: false, corev1.PodInitialized: false, corev1.ContainersReady: true, corev1.PodReady: true,
	} {
		c := cond(st, typ)
		if c == nil {
			t.Fatalf("condition %s missing", typ)
		}
		if got := !c.LastTransitionTime.Equal(&old); got != changed {
			t.Errorf("%s: transition time changed = %v, want %v (status %s)", typ, got, changed, c.Status)
		}
	}
	if len(st.Conditions) != 4 {
		t.Errorf("conditions = %d, want 4 (no duplicates): %v", len(st.Conditions), st.Conditions)
	}
}

func TestPodRuntime(t *testing.T) {
	notReady := &runtimeapi.PodSandbox{Id: "new", State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY}
	ready := &runtimeapi.PodSandbox{Id: "old", State: runtimeapi.PodSandboxState_SANDBOX_READY}
	tests := []struct {
		name      string
		sandboxes []*runtimeapi.PodSandbox
		want      string
	}{
		{"none", nil, ""},
		{"newest ready", []*runtimeapi.PodSandbox{ready}, "old"},
		// Only the newest counts: an older ready one is being replaced.
		{"newest not ready", []*runtimeapi.PodSandbox{notReady, ready}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if sb := (podRuntime{sandboxes: tt.sandboxes}).readySandbox(); sb != nil {
				got = sb.Id
			}
			if got != tt.want {
				t.Errorf("readySandbox = %q, want %q", got, tt.want)
			}
		})
	}
	rt := podRuntime{containers: map[string][]*runtimeapi.ContainerStatus{
		"one": {ctrRunning("one", "a", 0)},
		"two": {ctrRunning("two", "c", 2), ctrExited("two", "b", 1, 1, "")},
	}}
	id := func(s *runtimeapi.ContainerStatus) string {
		if s == nil {
			return ""
		}
		return s.Id
	}
	for _, tt := range []struct{ name, latest, previous string }{{"one", "a", ""}, {"two", "c", "b"}, {"none", "", ""}} {
		if got := id(rt.latest(tt.name)); got != tt.latest {
			t.Errorf("latest(%s) = %q, want %q", tt.name, got, tt.latest)
		}
		if got := id(rt.previous(tt.name)); got != tt.previous {
			t.Errorf("previous(%s) = %q, want %q", tt.name, got, tt.previous)
		}
	}
}

func TestUnixTime(t *testing.T) {
	if got := unixTime(0); !got.IsZero() {
		t.Errorf("unixTime(0) = %v, want zero", got)
	}
	got := unixTime(tStart.UnixNano())
	if !got.Time.Equal(tStart.Truncate(time.Second)) {
		t.Errorf("unixTime = %v, want %v", got, tStart.Truncate(time.Second))
	}
}

func TestSidecarHasStarted(t *testing.T) {
	started := metav1.NewTime(time.Unix(1700000000, 0))
	tests := []struct {
		name string
		cs   corev1.ContainerStatus
		want bool
	}{
		{"waiting to start", corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}, false},
		{"running, startup probe pending", corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}, Started: ptr.To(false)}, false},
		{"running and started", corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}, Started: ptr.To(true)}, true},
		{"stopped when the pod completed", corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 143, Reason: "Error", StartedAt: started}}}, true},
		{"restarting after a crash", corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, StartedAt: started}}}, true},
		{"failed before it ever ran", corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 128, Reason: "StartError"}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sidecarHasStarted(tt.cs); got != tt.want {
				t.Errorf("sidecarHasStarted = %v, want %v", got, tt.want)
			}
		})
	}
}
