package agent

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Ephemeral containers are added to a running pod through the API's
// pods/ephemeralcontainers subresource (kubectl debug). The agent starts
// each one once in the pod's sandbox, beside the containers already
// running, and never restarts it. They take no part in the pod's phase
// or readiness.

// ephemeralAsContainer views an ephemeral container as a Container: the
// two share their fields, so the usual path (image pull, config, create,
// start, attach, logs) serves both.
func ephemeralAsContainer(ec *corev1.EphemeralContainer) *corev1.Container {
	return (*corev1.Container)(&ec.EphemeralContainerCommon)
}

// startEphemeral starts the pod's ephemeral containers that never ran.
// With a target, a container joins the target's process namespace, so it
// needs the target running now.
func (a *Agent) startEphemeral(ctx context.Context, w *podWorker, pod *corev1.Pod, sb *runtimeapi.PodSandbox, env *podEnv, rt podRuntime, state *podState) {
	for i := range pod.Spec.EphemeralContainers {
		ec := &pod.Spec.EphemeralContainers[i]
		c := ephemeralAsContainer(ec)
		cur := rt.latest(c.Name)
		if cur != nil && cur.State == runtimeapi.ContainerState_CONTAINER_CREATED {
			a.startCreated(ctx, pod, cur, state) // created, but its start failed
			continue
		}
		if cur != nil || ranBefore(pod, c.Name) {
			continue // running, or ran once: never again
		}
		targetID, err := ephemeralTarget(ec, rt)
		if err != nil {
			// As the kubelet: a config error, tried again on later syncs.
			state.waiting[c.Name] = waiting{"CreateContainerConfigError", err.Error()}
			a.event(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
			w.syncAgain(2 * time.Second)
			continue
		}
		a.startInstance(ctx, w, pod, c, sb, env, 0, targetID, state)
	}
}

// ephemeralTarget is the runtime id of the running container whose
// process namespace ec asks to share; "" without a target.
func ephemeralTarget(ec *corev1.EphemeralContainer, rt podRuntime) (string, error) {
	if ec.TargetContainerName == "" {
		return "", nil
	}
	t := rt.latest(ec.TargetContainerName)
	if t == nil || t.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return "", fmt.Errorf("unable to find target container %s", ec.TargetContainerName)
	}
	return t.Id, nil
}

// shareTargetPID puts a container into the process namespace of the
// container targetID. Only when the pod gives each container its own, as
// the kubelet does: with a pod-wide or the host's namespace, the target's
// processes are visible already.
func shareTargetPID(ns *runtimeapi.NamespaceOption, targetID string) {
	if targetID != "" && ns != nil && ns.Pid == runtimeapi.NamespaceMode_CONTAINER {
		ns.Pid = runtimeapi.NamespaceMode_TARGET
		ns.TargetId = targetID
	}
}

// ranBefore reports whether the pod's status shows the ephemeral
// container was created once. The runtime may have removed that instance
// since (a new sandbox, garbage collection); it still must not start again.
func ranBefore(pod *corev1.Pod, name string) bool {
	for _, cs := range pod.Status.EphemeralContainerStatuses {
		if cs.Name == name {
			return cs.ContainerID != "" || cs.State.Running != nil || cs.State.Terminated != nil
		}
	}
	return false
}

// ephemeralStatuses reports the pod's ephemeral containers like the
// others, except that they are never ready and have no started field
// (no probes run in them), as upstream reports them.
func (a *Agent) ephemeralStatuses(pod *corev1.Pod, rt podRuntime, state *podState) []corev1.ContainerStatus {
	var out []corev1.ContainerStatus
	for i := range pod.Spec.EphemeralContainers {
		c := ephemeralAsContainer(&pod.Spec.EphemeralContainers[i])
		cs := a.containerStatus(pod, c, rt, state, "ContainerCreating")
		if rt.latest(c.Name) == nil {
			if old, ok := lostEphemeral(pod, c.Name); ok {
				cs = old
			}
		}
		cs.Ready, cs.Started = false, nil
		out = append(out, cs)
	}
	return out
}

// lostEphemeral is the status to keep reporting for an ephemeral
// container that ran but whose instance the runtime no longer has: how
// it ended, or, if it was last seen running, that its end is unknown
// (the kubelet's words for a container it cannot find).
func lostEphemeral(pod *corev1.Pod, name string) (corev1.ContainerStatus, bool) {
	for _, cs := range pod.Status.EphemeralContainerStatuses {
		if cs.Name != name || cs.ContainerID == "" {
			continue
		}
		cs = *cs.DeepCopy()
		if cs.State.Terminated == nil {
			cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 137, Reason: "ContainerStatusUnknown", ContainerID: cs.ContainerID,
				Message: "The container could not be located when the pod was terminated",
			}}
		}
		return cs, true
	}
	return corev1.ContainerStatus{}, false
}
