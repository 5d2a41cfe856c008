package nodelifecycle_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/controller"
	"github.com/lotse/lotse/internal/controller/nodelifecycle"
	"github.com/lotse/lotse/internal/testserver"
)

// TestSilentNode registers a node by hand, heartbeats once, and stops:
// after the grace period the node goes Unknown with the unreachable
// taints, and its pods are evicted as their tolerations say.
func TestSilentNode(t *testing.T) {
	s := testserver.Start(t, testserver.Options{DisableScheduler: true, Controllers: []string{"namespace", "serviceaccount"}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs := s.Client
	now := metav1.Now()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "quiet"}, Status: corev1.NodeStatus{
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: now, LastTransitionTime: now}},
	}}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	renew := metav1.NewMicroTime(time.Now())
	if _, err := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "quiet"}, Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("quiet"), LeaseDurationSeconds: ptr.To(int32(40)), RenewTime: &renew},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := func(name string, tolerate *int64) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: corev1.PodSpec{
			NodeName:   "quiet",
			Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36"}},
			Tolerations: []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists,
				Effect: corev1.TaintEffectNoExecute, TolerationSeconds: tolerate}},
		}}
		if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pod("short", ptr.To[int64](1))
	pod("forever", nil)

	cctx := &controller.Context{Client: cs, Informers: informers.NewSharedInformerFactory(cs, 0),
		Logger: slog.New(slog.DiscardHandler), Clock: clock.RealClock{}}
	c, err := nodelifecycle.NewWithConfig(cctx, nodelifecycle.Config{GracePeriod: 2 * time.Second, MonitorPeriod: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cctx.Informers.Start(ctx.Done())
	go c.Run(ctx)

	poll := func(what string, cond func() bool) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 20*time.Second, true,
			func(context.Context) (bool, error) { return cond(), nil }); err != nil {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
	poll("the node Unknown and tainted unreachable", func() bool {
		n, err := cs.CoreV1().Nodes().Get(ctx, "quiet", metav1.GetOptions{})
		if err != nil {
			return false
		}
		unknown := false
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionUnknown && cond.Reason == "NodeStatusUnknown" {
				unknown = true
			}
		}
		tainted := 0
		for _, tn := range n.Spec.Taints {
			if tn.Key == corev1.TaintNodeUnreachable {
				tainted++
			}
		}
		return unknown && tainted == 2
	})
	poll("the briefly tolerating pod evicted", func() bool {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "short", metav1.GetOptions{})
		return apierrors.IsNotFound(err) || (err == nil && p.DeletionTimestamp != nil)
	})
	p, err := cs.CoreV1().Pods("default").Get(ctx, "forever", metav1.GetOptions{})
	if err != nil || p.DeletionTimestamp != nil {
		t.Fatalf("the pod that tolerates unreachable forever was evicted: %v", err)
	}

	// The node speaks again: Ready, and the taints go.
	n, err := cs.CoreV1().Nodes().Get(ctx, "quiet", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			n.Status.Conditions[i].Status = corev1.ConditionTrue
			n.Status.Conditions[i].LastHeartbeatTime = metav1.Now()
		}
	}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll("the taints removed", func() bool {
		n, err := cs.CoreV1().Nodes().Get(ctx, "quiet", metav1.GetOptions{})
		return err == nil && len(n.Spec.Taints) == 0
	})
}
