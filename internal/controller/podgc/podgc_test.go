package podgc_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/utils/clock"

	"github.com/lotse/lotse/internal/controller"
	"github.com/lotse/lotse/internal/controller/podgc"
	"github.com/lotse/lotse/internal/testserver"
)

// TestCollects runs the collector against the real API: a pod bound to
// a node that does not exist goes after the quarantine, the oldest
// finished pods go beyond the threshold, a pod on a live node stays.
func TestCollects(t *testing.T) {
	s := testserver.Start(t, testserver.Options{DisableScheduler: true, Controllers: []string{"namespace", "serviceaccount"}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs := s.Client
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "alive"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mk := func(name, node string, phase corev1.PodPhase) {
		t.Helper()
		p, err := cs.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if phase != "" {
			p.Status.Phase = phase
			if _, err := cs.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(1100 * time.Millisecond) // distinct creation times (seconds)
	}
	mk("orphan", "gone", "")
	mk("old-done", "alive", corev1.PodSucceeded)
	mk("new-done", "alive", corev1.PodFailed)
	mk("running", "alive", corev1.PodRunning)

	cctx := &controller.Context{Client: cs, Informers: informers.NewSharedInformerFactory(cs, 0),
		Logger: slog.New(slog.DiscardHandler), Clock: clock.RealClock{}}
	c, err := podgc.NewWithConfig(cctx, podgc.Config{Period: 200 * time.Millisecond, Quarantine: time.Second, TerminatedThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	cctx.Informers.Start(ctx.Done())
	go c.Run(ctx)

	gone := func(name string) bool {
		_, err := cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 15*time.Second, true,
		func(context.Context) (bool, error) { return gone("orphan") && gone("old-done"), nil }); err != nil {
		t.Fatalf("orphan gone %v, old-done gone %v", gone("orphan"), gone("old-done"))
	}
	for _, name := range []string{"new-done", "running"} {
		if gone(name) {
			t.Errorf("%s was collected", name)
		}
	}
}
