package agent

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A container made for an attach (kubectl run -i: stdin once) is Ready only
// after attachSettle, and wakes its pod's worker then; other containers
// without a readiness probe are Ready at once.
func TestAttachContainersSettleBeforeReady(t *testing.T) {
	a := &Agent{workers: map[string]*podWorker{}}
	wake := make(chan struct{}, 1)
	a.workers["uid"] = &podWorker{wake: wake}
	m := newProbeManager(a)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "uid"}}
	m.started(pod, &corev1.Container{Name: "plain"}, "c1")
	m.started(pod, &corev1.Container{Name: "attached", Stdin: true, StdinOnce: true}, "c2")
	defer m.forget("uid")
	if !m.ready("uid", "plain", "c1") {
		t.Error("a container without a readiness probe is not Ready at once")
	}
	if m.ready("uid", "attached", "c2") {
		t.Fatal("a stdin-once container is Ready at once")
	}
	select {
	case <-wake:
	case <-time.After(attachSettle + 2*time.Second):
		t.Fatal("the pod's worker was not woken after the settle time")
	}
	if !m.ready("uid", "attached", "c2") {
		t.Error("a stdin-once container is not Ready after the settle time")
	}
}
