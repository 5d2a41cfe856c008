package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/lotse/lotse/internal/containerlog"
)

// podStatus computes the pod's status from the runtime: container
// statuses, phase and conditions, as the kubelet reports them.
func (a *Agent) podStatus(pod *corev1.Pod, rt podRuntime, state *podState) corev1.PodStatus {
	st := *pod.Status.DeepCopy()
	hostIP := a.cfg.NodeIP.String()
	st.HostIP, st.HostIPs = hostIP, []corev1.HostIP{{IP: hostIP}}
	if pod.Spec.HostNetwork {
		state.podIP = hostIP
	}
	if state.podIP != "" {
		st.PodIP, st.PodIPs = state.podIP, []corev1.PodIP{{IP: state.podIP}}
	}
	if st.StartTime == nil {
		now := metav1.Now()
		st.StartTime = &now
	}
	st.QOSClass = qosClass(pod)

	st.InitContainerStatuses = nil
	initDone := true
	initFailed := false
	var incompleteInit []string
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cs := a.containerStatus(pod, c, rt, state, "PodInitializing")
		done := cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0
		if isSidecar(c) {
			// Its part of initialization is to have started once; its
			// readiness is its own, and stopping it when the pod
			// completes (or a crash and restart) does not undo it.
			done = sidecarHasStarted(cs)
		} else {
			cs.Ready = done
		}
		if !done {
			initDone = false
			incompleteInit = append(incompleteInit, c.Name)
			if t := cs.State.Terminated; t != nil && pod.Spec.RestartPolicy == corev1.RestartPolicyNever && !isSidecar(c) {
				initFailed = true
			}
		}
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
	}
	st.ContainerStatuses = nil
	var unready []string
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		waitReason := "ContainerCreating"
		if !initDone {
			waitReason = "PodInitializing"
		}
		cs := a.containerStatus(pod, c, rt, state, waitReason)
		if !cs.Ready {
			unready = append(unready, c.Name)
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}

	// Ephemeral containers count for neither phase nor readiness.
	st.EphemeralContainerStatuses = a.ephemeralStatuses(pod, rt, state)

	st.Phase = podPhase(pod, st.ContainerStatuses, initDone, initFailed)
	if isTerminal(pod.Status.Phase) {
		st.Phase = pod.Status.Phase // terminal phases never change
	}
	sandboxReady := rt.readySandbox() != nil && state.podIP != ""
	setCondition(&st, corev1.PodReadyToStartContainers, sandboxReady, "", "")
	if initDone {
		setCondition(&st, corev1.PodInitialized, true, "", "")
	} else {
		setCondition(&st, corev1.PodInitialized, false, "ContainersNotInitialized",
			fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(incompleteInit, " ")))
	}
	switch {
	case st.Phase == corev1.PodSucceeded:
		setCondition(&st, corev1.ContainersReady, false, "PodCompleted", "")
		setCondition(&st, corev1.PodReady, false, "PodCompleted", "")
	case len(unready) > 0:
		msg := fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
		setCondition(&st, corev1.ContainersReady, false, "ContainersNotReady", msg)
		setCondition(&st, corev1.PodReady, false, "ContainersNotReady", msg)
	default:
		setCondition(&st, corev1.ContainersReady, true, "", "")
		if msg := unreadyGates(pod, st.Conditions); msg != "" {
			setCondition(&st, corev1.PodReady, false, "ReadinessGatesNotReady", msg)
		} else {
			setCondition(&st, corev1.PodReady, true, "", "")
		}
	}
	return st
}

// unreadyGates says which of the pod's readiness gates hold it back, as
// upstream words it; "" when all are True.
func unreadyGates(pod *corev1.Pod, conds []corev1.PodCondition) string {
	var msgs []string
	for _, g := range pod.Spec.ReadinessGates {
		found := false
		for _, c := range conds {
			if c.Type == g.ConditionType {
				found = true
				if c.Status != corev1.ConditionTrue {
					msgs = append(msgs, fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %s", g.ConditionType, c.Status))
				}
			}
		}
		if !found {
			msgs = append(msgs, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", g.ConditionType))
		}
	}
	return strings.Join(msgs, ", ")
}

// containerStatus is one container's status: its newest instance's
// state, the one before as lastState.
func (a *Agent) containerStatus(pod *corev1.Pod, c *corev1.Container, rt podRuntime, state *podState, waitReason string) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, Started: new(bool)}
	cur, prev := rt.latest(c.Name), rt.previous(c.Name)
	if prev != nil {
		cs.LastTerminationState.Terminated = a.terminated(pod, c, prev)
	}
	w, hasWait := state.waiting[c.Name]
	if cur == nil {
		if !hasWait {
			w = waiting{reason: waitReason}
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: w.reason, Message: w.message}
		return cs
	}
	cs.ContainerID = "containerd://" + cur.Id
	cs.ImageID = cur.ImageRef
	if cur.Image != nil && cur.Image.UserSpecifiedImage != "" {
		cs.Image = cur.Image.UserSpecifiedImage
	}
	cs.RestartCount = int32(cur.Metadata.Attempt)
	switch cur.State {
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: unixTime(cur.StartedAt)}
		started := a.probes.startedOK(pod.UID, c.Name, cur.Id)
		cs.Started = &started
		cs.Ready = started && a.probes.ready(pod.UID, c.Name, cur.Id)
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		t := a.terminated(pod, c, cur)
		if hasWait {
			// Restarting: the instance that ended becomes lastState.
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: w.reason, Message: w.message}
			cs.LastTerminationState = corev1.ContainerState{Terminated: t}
		} else {
			cs.State.Terminated = t
		}
	default:
		if !hasWait {
			w = waiting{reason: "ContainerCreating"}
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: w.reason, Message: w.message}
	}
	return cs
}

// terminated describes an exited instance, with its termination message
// read from the file the container wrote (or its log's tail, when the
// policy says so and it failed).
func (a *Agent) terminated(pod *corev1.Pod, c *corev1.Container, s *runtimeapi.ContainerStatus) *corev1.ContainerStateTerminated {
	if s.State != runtimeapi.ContainerState_CONTAINER_EXITED {
		return nil
	}
	t := &corev1.ContainerStateTerminated{
		ExitCode:    s.ExitCode,
		Reason:      s.Reason,
		StartedAt:   unixTime(s.StartedAt),
		FinishedAt:  unixTime(s.FinishedAt),
		ContainerID: "containerd://" + s.Id,
	}
	if t.Reason == "" {
		t.Reason = "Completed"
		if t.ExitCode != 0 {
			t.Reason = "Error"
		}
	}
	if c != nil {
		msg, _ := readLimited(a.terminationLogPath(pod.UID, c.Name, s.Metadata.Attempt), 4096)
		if msg == "" && t.ExitCode != 0 && c.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
			msg = logTail(s.LogPath, 80, 2048)
		}
		t.Message = msg
	}
	return t
}

func readLimited(path string, n int) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, n)
	m, _ := f.Read(buf)
	return string(buf[:m]), nil
}

// logTail is the last lines of a container log, at most limit bytes.
func logTail(path string, lines int64, limit int64) string {
	var b bytes.Buffer
	_ = containerlog.Copy(context.Background(), path, containerlog.Options{TailLines: &lines, LimitBytes: &limit}, &b, nil)
	return b.String()
}

// podPhase follows upstream's rules: Pending until every container has
// started, Running while any runs or will restart, then Succeeded or
// Failed by exit codes and the restart policy.
// sidecarHasStarted reports whether a sidecar has been started at least
// once: it runs and passed its startup probe, or it ran and ended.
func sidecarHasStarted(cs corev1.ContainerStatus) bool {
	if cs.State.Running != nil {
		return cs.Started != nil && *cs.Started
	}
	if t := cs.State.Terminated; t != nil && !t.StartedAt.IsZero() {
		return true
	}
	return cs.LastTerminationState.Terminated != nil
}

func podPhase(pod *corev1.Pod, statuses []corev1.ContainerStatus, initDone, initFailed bool) corev1.PodPhase {
	if initFailed {
		return corev1.PodFailed
	}
	if !initDone {
		return corev1.PodPending
	}
	var pending, running, succeeded, failed int
	for _, cs := range statuses {
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			} else {
				failed++
			}
		case cs.State.Waiting != nil && cs.LastTerminationState.Terminated != nil:
			running++ // restarting
		default:
			pending++
		}
	}
	policy := pod.Spec.RestartPolicy
	switch {
	case pending > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case failed > 0:
		if policy == corev1.RestartPolicyNever {
			return corev1.PodFailed
		}
		return corev1.PodRunning
	case succeeded > 0:
		if policy == corev1.RestartPolicyAlways {
			return corev1.PodRunning
		}
		return corev1.PodSucceeded
	}
	return corev1.PodPending
}

// setCondition sets a condition, keeping its transition time when its
// status did not change.
func setCondition(st *corev1.PodStatus, t corev1.PodConditionType, ok bool, reason, message string) {
	status := corev1.ConditionFalse
	if ok {
		status = corev1.ConditionTrue
	}
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status != status {
			c.LastTransitionTime = metav1.Now()
		}
		c.Status, c.Reason, c.Message = status, reason, message
		return
	}
	st.Conditions = append(st.Conditions, corev1.PodCondition{
		Type: t, Status: status, Reason: reason, Message: message, LastTransitionTime: metav1.Now(),
	})
}

// writeStatus updates the pod's status when it changed. On a conflict
// (the informer's copy was stale) it retries once on a fresh read.
func (a *Agent) writeStatus(ctx context.Context, pod *corev1.Pod, status corev1.PodStatus) error {
	if apiequality.Semantic.DeepEqual(pod.Status, status) {
		return nil
	}
	next := pod.DeepCopy()
	next.Status = status
	_, err := a.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		fresh, gerr := a.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if gerr != nil || fresh.UID != pod.UID {
			return err
		}
		if apiequality.Semantic.DeepEqual(fresh.Status, status) {
			return nil
		}
		next = fresh.DeepCopy()
		next.Status = status
		_, err = a.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	}
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func sortStrings(s []string) { sort.Strings(s) }

// sortImages orders images largest first, then by name, so that the
// node status does not change by listing order.
func sortImages(images []corev1.ContainerImage) {
	sort.Slice(images, func(i, j int) bool {
		if images[i].SizeBytes != images[j].SizeBytes {
			return images[i].SizeBytes > images[j].SizeBytes
		}
		return images[i].Names[0] < images[j].Names[0]
	})
}

// unixTime converts the runtime's nanoseconds to the API's second
// precision, so that a status read back compares equal to a fresh one.
func unixTime(ns int64) metav1.Time {
	if ns == 0 {
		return metav1.Time{}
	}
	return metav1.NewTime(time.Unix(0, ns).Truncate(time.Second))
}
