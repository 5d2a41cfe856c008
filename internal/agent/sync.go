package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

// waiting is why a container is not running, for its status.
type waiting struct{ reason, message string }

// syncPod closes the gap between the pod and the runtime once. It
// reports finished when the pod is gone from both.
func (a *Agent) syncPod(ctx context.Context, w *podWorker) (finished bool, err error) {
	pod, err := a.pods.Pods(w.namespace).Get(w.name)
	if apierrors.IsNotFound(err) || (err == nil && pod.UID != w.uid) {
		pod = nil
	} else if err != nil {
		return false, err
	}
	rt, err := a.runtimeState(ctx, w.uid)
	if err != nil {
		return false, fmt.Errorf("runtime: %w", err)
	}
	if pod == nil {
		if !a.podsSynced() {
			return false, nil // not known yet whether it is gone
		}
		return true, a.removePod(ctx, w.uid, rt)
	}
	if pod.DeletionTimestamp != nil {
		return false, a.terminatePod(ctx, w, pod, rt)
	}
	if isTerminal(pod.Status.Phase) {
		// Nothing runs again; stop what may still run (a sidecar, say),
		// and report it stopped. A finished pod that is stopped and says
		// so costs its resyncs nothing more.
		if !rt.running() && !reportsRunning(pod) {
			return false, nil
		}
		return false, a.finish(ctx, pod, pod.Status.Phase, &podState{waiting: map[string]waiting{}})
	}

	state := &podState{waiting: map[string]waiting{}}
	if err := a.runPod(ctx, w, pod, &rt, state); err != nil && !errors.Is(err, errWait) {
		a.log.Debug("pod not running yet", "pod", w.namespace+"/"+w.name, "err", err)
		w.syncAgain(2 * time.Second)
	}
	// Read the runtime again: runPod changed it.
	if fresh, err := a.runtimeState(ctx, w.uid); err == nil {
		rt = fresh
	}
	status := a.podStatus(pod, rt, state)
	if isTerminal(status.Phase) {
		return false, a.finish(ctx, pod, status.Phase, state)
	}
	return false, a.writeStatus(ctx, pod, status)
}

// finish stops what still runs of a pod that has completed (sidecars,
// the sandbox) and writes its final status.
func (a *Agent) finish(ctx context.Context, pod *corev1.Pod, phase corev1.PodPhase, state *podState) error {
	rt, err := a.runtimeState(ctx, pod.UID)
	if err != nil {
		return err
	}
	if err := a.stopAll(ctx, pod, rt, gracePeriod(pod)); err != nil {
		return err
	}
	if rt, err = a.runtimeState(ctx, pod.UID); err != nil {
		return err
	}
	status := a.podStatus(pod, rt, state)
	status.Phase = phase
	return a.writeStatus(ctx, pod, status)
}

// podState is what one sync learned that the runtime does not record.
type podState struct {
	waiting map[string]waiting
	podIP   string
}

// errWait means the sync did what it could; an event will wake it again.
var errWait = errors.New("waiting")

// runPod makes sure the sandbox runs and starts the containers that
// should run, in order: init containers one by one, then the others.
func (a *Agent) runPod(ctx context.Context, w *podWorker, pod *corev1.Pod, rt *podRuntime, state *podState) error {
	sb := rt.readySandbox()
	newSandbox := sb == nil
	if newSandbox {
		if len(rt.sandboxes) > 0 && pod.Spec.RestartPolicy == corev1.RestartPolicyNever && len(rt.containers) > 0 {
			// The sandbox died under containers that may not restart:
			// the pod stays as its containers ended.
			return nil
		}
		if err := a.stopAll(ctx, pod, *rt, 0); err != nil {
			return err
		}
		var err error
		sb, err = a.startSandbox(ctx, pod, uint32(len(rt.sandboxes)))
		if err != nil {
			for _, c := range allContainers(pod) {
				state.waiting[c.Name] = waiting{"ContainerCreating", ""}
			}
			a.event(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
			return err
		}
		// Containers of an older sandbox are gone with it.
		fresh, err := a.runtimeState(ctx, pod.UID)
		if err != nil {
			return err
		}
		*rt = fresh
		rt.containers = map[string][]*runtimeapi.ContainerStatus{}
	}
	sbStatus, err := a.runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sb.Id})
	if err != nil {
		return err
	}
	state.podIP = sbStatus.GetStatus().GetNetwork().GetIp()
	vols, err := a.setupVolumes(ctx, pod)
	if err != nil {
		for _, c := range allContainers(pod) {
			state.waiting[c.Name] = waiting{"ContainerCreating", ""}
		}
		a.event(pod, corev1.EventTypeWarning, "FailedMount", "MountVolume.SetUp failed: %v", err)
		return err
	}
	hostsFile, err := a.writeHostsFile(pod, state.podIP)
	if err != nil {
		return err
	}
	env := &podEnv{pod: pod, podIP: state.podIP, hostIP: a.cfg.NodeIP.String(), volumes: vols, hostsFile: hostsFile, sandbox: sbStatus.Status}

	// Ephemeral containers first, as the kubelet orders them: a debugging
	// container is wanted most while initialization is stuck. In a new
	// sandbox they wait for the next sync, which sees what the old one
	// held, so that none runs twice.
	if !newSandbox {
		a.startEphemeral(ctx, w, pod, sb, env, *rt, state)
	} else if len(pod.Spec.EphemeralContainers) > 0 {
		w.syncAgain(time.Second)
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cur := rt.latest(c.Name)
		if isSidecar(c) {
			if err := a.syncSidecar(ctx, w, pod, c, sb, env, cur, *rt, state); err != nil {
				return err
			}
			continue
		}
		switch {
		case cur == nil:
			a.startContainer(ctx, w, pod, c, sb, env, 0, state)
			return errWait
		case cur.State == runtimeapi.ContainerState_CONTAINER_CREATED:
			a.startCreated(ctx, pod, cur, state)
			return errWait
		case cur.State == runtimeapi.ContainerState_CONTAINER_RUNNING:
			return errWait
		case cur.State == runtimeapi.ContainerState_CONTAINER_EXITED && cur.ExitCode == 0:
			continue
		default: // failed
			if pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
				return errWait // the pod has failed
			}
			a.restart(ctx, w, pod, c, sb, env, cur, state)
			return errWait
		}
	}
	// Start the app containers concurrently, as their images may need
	// pulling; each one's failure is its own.
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cur := rt.latest(c.Name)
		start := func(f func(st *podState)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				local := &podState{waiting: map[string]waiting{}}
				f(local)
				mu.Lock()
				for k, v := range local.waiting {
					state.waiting[k] = v
				}
				mu.Unlock()
			}()
		}
		switch {
		case cur == nil:
			start(func(st *podState) { a.startContainer(ctx, w, pod, c, sb, env, 0, st) })
		case cur.State == runtimeapi.ContainerState_CONTAINER_CREATED:
			start(func(st *podState) { a.startCreated(ctx, pod, cur, st) })
		case cur.State == runtimeapi.ContainerState_CONTAINER_RUNNING:
			a.probes.started(pod, c, cur.Id) // adopts containers started before a restart
			if a.probes.livenessFailed(pod.UID, c.Name, cur.Id) {
				a.event(pod, corev1.EventTypeNormal, "Killing", "Container %s failed liveness probe, will be restarted", c.Name)
				start(func(st *podState) {
					a.stopContainer(ctx, pod, c, cur.Id, gracePeriod(pod))
				})
				w.syncAgain(100 * time.Millisecond)
			}
		case cur.State == runtimeapi.ContainerState_CONTAINER_EXITED:
			a.probes.stop(cur.Id)
			if shouldRestart(pod.Spec.RestartPolicy, cur.ExitCode) {
				start(func(st *podState) { a.restart(ctx, w, pod, c, sb, env, cur, st) })
			}
		}
	}
	wg.Wait()
	return nil
}

// isSidecar reports whether an init container is a sidecar: one with
// restartPolicy Always, which starts in its turn and then runs beside the
// app containers for the pod's life.
func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// syncSidecar starts or restarts a sidecar. It returns errWait while the
// pod's start must wait for it: until it has started, the init containers
// after it do not run.
func (a *Agent) syncSidecar(ctx context.Context, w *podWorker, pod *corev1.Pod, c *corev1.Container, sb *runtimeapi.PodSandbox, env *podEnv, cur *runtimeapi.ContainerStatus, rt podRuntime, state *podState) error {
	switch {
	case cur == nil:
		a.startContainer(ctx, w, pod, c, sb, env, 0, state)
		return errWait
	case cur.State == runtimeapi.ContainerState_CONTAINER_CREATED:
		a.startCreated(ctx, pod, cur, state)
		return errWait
	case cur.State == runtimeapi.ContainerState_CONTAINER_RUNNING:
		a.probes.started(pod, c, cur.Id)
		if a.probes.livenessFailed(pod.UID, c.Name, cur.Id) {
			a.event(pod, corev1.EventTypeNormal, "Killing", "Container %s failed liveness probe, will be restarted", c.Name)
			a.stopContainer(ctx, pod, c, cur.Id, gracePeriod(pod))
			w.syncAgain(100 * time.Millisecond)
			return errWait
		}
		if !a.probes.startedOK(pod.UID, c.Name, cur.Id) {
			return errWait
		}
		return nil
	}
	// Exited: a sidecar always restarts. Once the app containers exist,
	// its back-off does not hold them up.
	a.probes.stop(cur.Id)
	a.restart(ctx, w, pod, c, sb, env, cur, state)
	if len(pod.Spec.Containers) > 0 && rt.latest(pod.Spec.Containers[0].Name) != nil {
		return nil
	}
	return errWait
}

// restart starts a new instance of a container that exited, once its
// back-off allows.
func (a *Agent) restart(ctx context.Context, w *podWorker, pod *corev1.Pod, c *corev1.Container, sb *runtimeapi.PodSandbox, env *podEnv, cur *runtimeapi.ContainerStatus, state *podState) {
	if wait := a.inBackoff(pod.UID, c.Name, time.Unix(0, cur.FinishedAt)); wait > 0 {
		state.waiting[c.Name] = waiting{"CrashLoopBackOff", fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
			a.backoffDelay(pod.UID, c.Name), c.Name, pod.Name, pod.Namespace, pod.UID)}
		if a.firstWarning(pod.UID, c.Name) {
			a.event(pod, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)", c.Name, pod.Name, pod.Namespace, pod.UID)
		}
		w.syncAgain(wait)
		return
	}
	a.startContainer(ctx, w, pod, c, sb, env, cur.Metadata.Attempt+1, state)
	a.noteRestart(pod.UID, c.Name)
	// Keep the instance that just ended (lastState, logs --previous);
	// remove older ones.
	a.removeOlderInstances(ctx, pod.UID, c.Name)
}

// shouldRestart applies the pod's restartPolicy to an exited container.
func shouldRestart(policy corev1.RestartPolicy, exitCode int32) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	}
	return true
}

func (a *Agent) startCreated(ctx context.Context, pod *corev1.Pod, cur *runtimeapi.ContainerStatus, state *podState) {
	if _, err := a.runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cur.Id}); err != nil {
		state.waiting[cur.Metadata.Name] = waiting{"RunContainerError", err.Error()}
	}
}

// startContainer pulls the image if needed, then creates and starts one
// instance of c.
func (a *Agent) startContainer(ctx context.Context, w *podWorker, pod *corev1.Pod, c *corev1.Container, sb *runtimeapi.PodSandbox, env *podEnv, attempt uint32, state *podState) {
	a.startInstance(ctx, w, pod, c, sb, env, attempt, "", state)
}

// startInstance is startContainer; pidTarget, when set, is the runtime id
// of the container whose process namespace c joins (an ephemeral
// container's target).
func (a *Agent) startInstance(ctx context.Context, w *podWorker, pod *corev1.Pod, c *corev1.Container, sb *runtimeapi.PodSandbox, env *podEnv, attempt uint32, pidTarget string, state *podState) {
	image, wait := a.ensureImage(ctx, pod, c)
	if wait != nil {
		state.waiting[c.Name] = *wait
		w.syncAgain(max(a.pullWait(pod.UID, c.Name), time.Second))
		return
	}
	cfg, err := a.containerConfig(pod, c, env, image, attempt)
	if err == nil {
		err = a.checkNonRoot(ctx, pod, c, image)
	}
	if err != nil {
		state.waiting[c.Name] = waiting{"CreateContainerConfigError", err.Error()}
		a.event(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		w.syncAgain(5 * time.Second)
		return
	}
	shareTargetPID(cfg.GetLinux().GetSecurityContext().GetNamespaceOptions(), pidTarget)
	created, err := a.runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: sb.Id, Config: cfg, SandboxConfig: a.sandboxConfig(pod, sb.Metadata.Attempt),
	})
	if err != nil {
		state.waiting[c.Name] = waiting{"CreateContainerError", err.Error()}
		a.event(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		w.syncAgain(5 * time.Second)
		return
	}
	a.event(pod, corev1.EventTypeNormal, "Created", "Created container %s", c.Name)
	if _, err := a.runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: created.ContainerId}); err != nil {
		state.waiting[c.Name] = waiting{"RunContainerError", err.Error()}
		a.event(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return
	}
	a.event(pod, corev1.EventTypeNormal, "Started", "Started container %s", c.Name)
	a.probes.started(pod, c, created.ContainerId)
	if c.Lifecycle != nil && c.Lifecycle.PostStart != nil {
		if err := a.runHook(ctx, pod, c, created.ContainerId, c.Lifecycle.PostStart, 30*time.Second); err != nil {
			a.event(pod, corev1.EventTypeWarning, "FailedPostStartHook", "PostStartHook failed: %v", err)
			a.stopContainer(ctx, pod, c, created.ContainerId, gracePeriod(pod))
		}
	}
}

// terminatePod stops a pod being deleted within its grace period, then
// removes the pod object: the API server keeps it until the node says
// its containers are gone.
func (a *Agent) terminatePod(ctx context.Context, w *podWorker, pod *corev1.Pod, rt podRuntime) error {
	// The whole grace period from when the agent learns of the deletion,
	// as the kubelet counts it.
	grace := time.Duration(ptr.Deref(pod.DeletionGracePeriodSeconds, 0)) * time.Second
	if err := a.stopAll(ctx, pod, rt, grace); err != nil {
		return err
	}
	if fresh, err := a.runtimeState(ctx, pod.UID); err == nil {
		_ = a.writeStatus(ctx, pod, a.podStatus(pod, fresh, &podState{waiting: map[string]waiting{}}))
	}
	err := a.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To(int64(0)),
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// stopAll stops every running container (preStop hooks first, all within
// grace) and then the sandbox.
func (a *Agent) stopAll(ctx context.Context, pod *corev1.Pod, rt podRuntime, grace time.Duration) error {
	var wg sync.WaitGroup
	for name, instances := range rt.containers {
		for _, cs := range instances {
			if cs.State != runtimeapi.ContainerState_CONTAINER_RUNNING && cs.State != runtimeapi.ContainerState_CONTAINER_CREATED {
				continue
			}
			c := findContainer(pod, name)
			wg.Add(1)
			go func() {
				defer wg.Done()
				a.stopContainer(ctx, pod, c, cs.Id, grace)
			}()
		}
	}
	wg.Wait()
	for _, sb := range rt.sandboxes {
		if sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			if _, err := a.runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
				return fmt.Errorf("stop sandbox: %w", err)
			}
		}
	}
	return nil
}

// stopContainer runs c's preStop hook, then asks the runtime to stop the
// container: SIGTERM, and SIGKILL once what is left of grace has passed.
func (a *Agent) stopContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, grace time.Duration) {
	deadline := time.Now().Add(grace)
	if c != nil && c.Lifecycle != nil && c.Lifecycle.PreStop != nil && grace > 0 {
		if err := a.runHook(ctx, pod, c, id, c.Lifecycle.PreStop, grace); err != nil {
			a.event(pod, corev1.EventTypeWarning, "FailedPreStopHook", "PreStopHook failed: %v", err)
		}
	}
	if c != nil && pod != nil {
		a.event(pod, corev1.EventTypeNormal, "Killing", "Stopping container %s", c.Name)
	}
	timeout := int64(time.Until(deadline).Round(time.Second) / time.Second)
	if _, err := a.runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: max(timeout, 0)}); err != nil {
		a.log.Warn("stop container failed", "id", id, "err", err)
	}
}

// removePod tears down everything of a pod that is gone from the API.
func (a *Agent) removePod(ctx context.Context, uid types.UID, rt podRuntime) error {
	if err := a.stopAll(ctx, nil, rt, 2*time.Second); err != nil {
		return err
	}
	for _, sb := range rt.sandboxes {
		if _, err := a.runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			return fmt.Errorf("remove sandbox: %w", err)
		}
	}
	// Containers whose sandbox vanished first.
	for _, instances := range rt.containers {
		for _, cs := range instances {
			_, _ = a.runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: cs.Id})
		}
	}
	if err := a.teardownVolumes(uid); err != nil {
		return err
	}
	return os.RemoveAll(a.podDir(uid))
}

// removeOlderInstances keeps the two newest instances of a container.
func (a *Agent) removeOlderInstances(ctx context.Context, uid types.UID, name string) {
	rt, err := a.runtimeState(ctx, uid)
	if err != nil {
		return
	}
	instances := rt.containers[name]
	for i := 2; i < len(instances); i++ {
		_, _ = a.runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: instances[i].Id})
	}
}

// reportsRunning says whether the pod's status still shows a container
// running.
func reportsRunning(pod *corev1.Pod) bool {
	for _, cs := range allStatuses(pod) {
		if cs.State.Running != nil {
			return true
		}
	}
	return false
}

// allStatuses lists the statuses of every kind of container.
func allStatuses(pod *corev1.Pod) []corev1.ContainerStatus {
	var out []corev1.ContainerStatus
	out = append(out, pod.Status.InitContainerStatuses...)
	out = append(out, pod.Status.ContainerStatuses...)
	return append(out, pod.Status.EphemeralContainerStatuses...)
}

func isTerminal(p corev1.PodPhase) bool {
	return p == corev1.PodSucceeded || p == corev1.PodFailed
}

func gracePeriod(pod *corev1.Pod) time.Duration {
	return time.Duration(ptr.Deref(pod.Spec.TerminationGracePeriodSeconds, 30)) * time.Second
}

// allContainers lists init and app containers as Containers.
func allContainers(pod *corev1.Pod) []*corev1.Container {
	out := make([]*corev1.Container, 0, len(pod.Spec.InitContainers)+len(pod.Spec.Containers))
	for i := range pod.Spec.InitContainers {
		out = append(out, &pod.Spec.InitContainers[i])
	}
	for i := range pod.Spec.Containers {
		out = append(out, &pod.Spec.Containers[i])
	}
	return out
}

// findContainer finds a container of any kind by name, ephemeral ones
// included (attach, logs and stopping serve them too).
func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	if pod == nil {
		return nil
	}
	for _, c := range allContainers(pod) {
		if c.Name == name {
			return c
		}
	}
	for i := range pod.Spec.EphemeralContainers {
		if pod.Spec.EphemeralContainers[i].Name == name {
			return ephemeralAsContainer(&pod.Spec.EphemeralContainers[i])
		}
	}
	return nil
}
