package agent

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
)

// startEvents sends the agent's events to the API as the kubelet's.
func (a *Agent) startEvents(ctx context.Context) {
	b := record.NewBroadcaster(record.WithContext(ctx))
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: a.client.CoreV1().Events("")})
	a.mu.Lock()
	a.recorder = b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: a.cfg.NodeName})
	a.mu.Unlock()
	go func() {
		<-ctx.Done()
		b.Shutdown()
	}()
}

// event records an event about a pod.
func (a *Agent) event(pod *corev1.Pod, eventType, reason, format string, args ...any) {
	a.mu.Lock()
	r := a.recorder
	a.mu.Unlock()
	if r != nil && pod != nil {
		r.Eventf(pod, eventType, reason, format, args...)
	}
}
