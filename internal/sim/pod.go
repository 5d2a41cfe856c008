package sim

import (
	"context"
	"fmt"
	"math/bits"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// podState is what the sim remembers of a pod on one of its nodes.
type podState struct {
	uid      types.UID
	node     *node
	ip       byte      // host part of the pod address in the node's /24; 0 = none
	started  time.Time // when the sim started it, by the sim's clock
	deleteAt time.Time // when its grace period ends; zero until deleted
}

// syncPod moves one pod on a simulated node along the life a kubelet would
// give it: Pending → Running → (Succeeded | removed after its grace period).
func (s *Sim) syncPod(ctx context.Context, nn types.NamespacedName) error {
	obj, exists, _ := s.podIndexer.GetByKey(nn.String())
	if !exists {
		s.forgetPod(nn)
		return nil
	}
	pod := obj.(*corev1.Pod)
	n := s.byName[pod.Spec.NodeName]
	if n == nil || n.isForeign() {
		s.forgetPod(nn)
		return nil
	}
	st := s.podState(nn, pod.UID, n)
	now := s.clock.Now()
	pods := s.client.CoreV1().Pods(pod.Namespace)

	if pod.DeletionTimestamp != nil {
		if st.deleteAt.IsZero() {
			// The kubelet gives the containers the grace period the API
			// server recorded, then removes the pod for good.
			st.deleteAt = now.Add(time.Duration(ptr.Deref(pod.DeletionGracePeriodSeconds, 0)) * time.Second)
		}
		if wait := st.deleteAt.Sub(now); wait > 0 {
			s.queue.AddAfter(key{pod: nn}, wait)
			return nil
		}
		err := pods.Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: ptr.To(int64(0)),
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		return ignoreGone(err)
	}

	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed:
		s.forgetPod(nn)
		return nil
	case corev1.PodRunning:
		if st.started.IsZero() {
			// Started by an earlier sim: pick up where it left off.
			st.started = now
			if pod.Status.StartTime != nil {
				st.started = pod.Status.StartTime.Time
			}
			if !pod.Spec.HostNetwork {
				s.claimIP(st, pod.Status.PodIP)
			}
		}
		if !condition(pod, corev1.PodReady) && condition(pod, corev1.ContainersReady) {
			// Someone else marked the pod, not its containers, not
			// Ready: the node lifecycle controller does, for a node it
			// took for gone (its Lease late). The kubelet's status
			// manager then writes back the status it knows, and so does
			// the sim. (A pod whose containers were marked not ready
			// too is left so: tests make endpoints unready that way.)
			upd := pod.DeepCopy()
			setCondition(&upd.Status, corev1.PodReady, corev1.ConditionTrue, "", metav1.NewTime(now))
			got, err := pods.UpdateStatus(ctx, upd, metav1.UpdateOptions{})
			if err != nil {
				return fmt.Errorf("ready pod %s: %w", nn, err)
			}
			pod = got
		}
	default:
		ip := n.hostIP
		if !pod.Spec.HostNetwork {
			s.claimIP(st, pod.Status.PodIP)
			ip = n.podIP(st.ip)
		}
		upd := pod.DeepCopy()
		upd.Status = runningStatus(pod, n.hostIP, ip, metav1.NewTime(now))
		got, err := pods.UpdateStatus(ctx, upd, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("start pod %s: %w", nn, err)
		}
		st.started = now
		pod = got
	}

	if pod.Spec.RestartPolicy == corev1.RestartPolicyAlways || pod.Spec.RestartPolicy == "" {
		return nil // runs until deleted
	}
	if wait := st.started.Add(s.cfg.PodRunTime).Sub(now); wait > 0 {
		s.queue.AddAfter(key{pod: nn}, wait)
		return nil
	}
	upd := pod.DeepCopy()
	upd.Status = succeededStatus(&pod.Status, metav1.NewTime(now))
	if _, err := pods.UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("finish pod %s: %w", nn, err)
	}
	s.forgetPod(nn)
	return nil
}

// runningStatus is pod's status once all its containers run: init
// containers completed, every container started and ready.
func runningStatus(pod *corev1.Pod, hostIP, podIP string, now metav1.Time) corev1.PodStatus {
	st := *pod.Status.DeepCopy()
	st.Phase = corev1.PodRunning
	st.Reason, st.Message = "", ""
	st.HostIP, st.HostIPs = hostIP, []corev1.HostIP{{IP: hostIP}}
	st.PodIP, st.PodIPs = podIP, []corev1.PodIP{{IP: podIP}}
	st.StartTime = &now
	for _, t := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		setCondition(&st, t, corev1.ConditionTrue, "", now)
	}
	st.InitContainerStatuses = nil
	for _, c := range pod.Spec.InitContainers {
		st.InitContainerStatuses = append(st.InitContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, ContainerID: containerID(pod, c.Name), Ready: true,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now, ContainerID: containerID(pod, c.Name),
			}},
		})
	}
	st.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, ContainerID: containerID(pod, c.Name),
			Ready: true, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	return st
}

// succeededStatus is a running pod's status once every container exited 0.
func succeededStatus(running *corev1.PodStatus, now metav1.Time) corev1.PodStatus {
	st := *running.DeepCopy()
	st.Phase = corev1.PodSucceeded
	setCondition(&st, corev1.ContainersReady, corev1.ConditionFalse, "PodCompleted", now)
	setCondition(&st, corev1.PodReady, corev1.ConditionFalse, "PodCompleted", now)
	for i := range st.ContainerStatuses {
		c := &st.ContainerStatuses[i]
		started := now
		if c.State.Running != nil {
			started = c.State.Running.StartedAt
		}
		c.Ready, c.Started = false, ptr.To(false)
		c.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 0, Reason: "Completed", StartedAt: started, FinishedAt: now, ContainerID: c.ContainerID,
		}}
	}
	return st
}

// condition reports whether pod's condition t is True.
func condition(pod *corev1.Pod, t corev1.PodConditionType) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// setCondition sets a pod condition, keeping its transition time when the
// status does not change.
func setCondition(st *corev1.PodStatus, t corev1.PodConditionType, status corev1.ConditionStatus, reason string, now metav1.Time) {
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status != status {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.Message = status, reason, ""
		return
	}
	st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: status, Reason: reason, LastTransitionTime: now})
}

func containerID(pod *corev1.Pod, name string) string {
	return fmt.Sprintf("sim://%s/%s", pod.UID, name)
}

// podState returns the sim's memory of a pod, starting afresh when the pod
// was replaced by another of the same name.
func (s *Sim) podState(nn types.NamespacedName, uid types.UID, n *node) *podState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.pods[nn]
	if st != nil && st.uid == uid {
		return st
	}
	if st != nil {
		st.node.releaseIP(st.ip)
	}
	st = &podState{uid: uid, node: n}
	s.pods[nn] = st
	return st
}

// forgetPod drops a pod that is gone or finished and frees its address.
func (s *Sim) forgetPod(nn types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.pods[nn]; st != nil {
		st.node.releaseIP(st.ip)
		delete(s.pods, nn)
	}
}

// claimIP gives st a pod address: the one it already has if that is in its
// node's range, otherwise the lowest free one.
func (s *Sim) claimIP(st *podState, have string) {
	if st.ip != 0 {
		return
	}
	if a, err := netip.ParseAddr(have); err == nil && a.Is4() {
		b := a.As4()
		if [3]byte(b[:3]) == st.node.podBase && b[3] >= 2 && b[3] <= 254 {
			st.ip = st.node.takeIP(b[3])
			return
		}
	}
	st.ip = st.node.takeIP(0)
}

// takeIP marks host part want (or, for 0, the lowest free one in 2..254)
// in use. With more than 253 pods on one node addresses repeat; they are
// never used for traffic.
func (n *node) takeIP(want byte) byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	if want == 0 {
		want = 254
		for w := range n.used {
			free := ^n.used[w]
			if w == 0 {
				free &^= 3 // .0 is the network, .1 the gateway
			}
			if w == 3 {
				free &^= 1 << 63 // .255 is broadcast
			}
			if free != 0 {
				want = byte(w*64 + bits.TrailingZeros64(free))
				break
			}
		}
	}
	n.used[want/64] |= 1 << (want % 64)
	return want
}

func (n *node) releaseIP(ip byte) {
	if ip == 0 {
		return
	}
	n.mu.Lock()
	n.used[ip/64] &^= 1 << (ip % 64)
	n.mu.Unlock()
}

func (n *node) podIP(host byte) string {
	return fmt.Sprintf("%d.%d.%d.%d", n.podBase[0], n.podBase[1], n.podBase[2], host)
}

func (n *node) isForeign() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.foreign
}

// stripPod keeps only what the sim reads or must send back, so that the
// informer holding 150,000 pods stays small. Status writes carry only
// status, which the API server merges onto the stored pod.
func stripPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	containers := func(cs []corev1.Container) []corev1.Container {
		out := make([]corev1.Container, len(cs))
		for i, c := range cs {
			out[i] = corev1.Container{Name: c.Name, Image: c.Image}
		}
		return out
	}
	return &corev1.Pod{
		TypeMeta: p.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion,
			CreationTimestamp: p.CreationTimestamp, DeletionTimestamp: p.DeletionTimestamp,
			DeletionGracePeriodSeconds: p.DeletionGracePeriodSeconds,
		},
		Spec: corev1.PodSpec{
			NodeName: p.Spec.NodeName, RestartPolicy: p.Spec.RestartPolicy, HostNetwork: p.Spec.HostNetwork,
			InitContainers: containers(p.Spec.InitContainers), Containers: containers(p.Spec.Containers),
		},
		Status: p.Status,
	}, nil
}
