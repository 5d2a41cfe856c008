package nodeipam_test

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/utils/clock"

	"github.com/lotse/lotse/internal/controller"
	"github.com/lotse/lotse/internal/controller/nodeipam"
	"github.com/lotse/lotse/internal/testserver"
)

// TestAssignsPodCIDRs runs the controller against the real API: Nodes
// without a pod CIDR get free ones, Nodes with one keep it, the reserved
// CIDR is never given, and when the range is full the Node gets a
// CIDRNotAvailable event until a CIDR is freed by a deleted Node.
func TestAssignsPodCIDRs(t *testing.T) {
	s := testserver.Start(t, testserver.Options{DisableScheduler: true, Controllers: []string{"namespace", "serviceaccount"}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nodes := s.Client.CoreV1().Nodes()
	create := func(name, cidr string) {
		t.Helper()
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDR: cidr}}
		if cidr != "" {
			n.Spec.PodCIDRs = []string{cidr}
		}
		if _, err := nodes.Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	create("has", "10.42.1.0/24")
	create("needs", "")

	cctx := &controller.Context{Client: s.Client, Informers: informers.NewSharedInformerFactory(s.Client, 0),
		Logger: slog.New(slog.DiscardHandler), Clock: clock.RealClock{},
		ClusterCIDR: netip.MustParsePrefix("10.42.0.0/22"), ReservedPodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.42.0.0/24")}}
	c, err := nodeipam.New(cctx)
	if err != nil {
		t.Fatal(err)
	}
	cctx.Informers.Start(ctx.Done())
	go c.Run(ctx)

	cidrOf := func(name string) func(context.Context) (bool, error) {
		return func(ctx context.Context) (bool, error) {
			n, err := nodes.Get(ctx, name, metav1.GetOptions{})
			return err == nil && n.Spec.PodCIDR != "", err
		}
	}
	wantCIDR := func(name, cidr string) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, cidrOf(name)); err != nil {
			t.Fatalf("node %s got no pod CIDR: %v", name, err)
		}
		n, _ := nodes.Get(ctx, name, metav1.GetOptions{})
		if n.Spec.PodCIDR != cidr || len(n.Spec.PodCIDRs) != 1 || n.Spec.PodCIDRs[0] != cidr {
			t.Fatalf("node %s has podCIDR %q podCIDRs %v, want %s", name, n.Spec.PodCIDR, n.Spec.PodCIDRs, cidr)
		}
	}
	wantCIDR("needs", "10.42.2.0/24")
	wantCIDR("has", "10.42.1.0/24")
	create("third", "")
	wantCIDR("third", "10.42.3.0/24")

	// The range is full now.
	create("fourth", "")
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		evs, err := s.Client.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=fourth,reason=CIDRNotAvailable"})
		return err == nil && len(evs.Items) > 0, err
	}); err != nil {
		t.Fatalf("no CIDRNotAvailable event for node fourth: %v", err)
	}
	if n, _ := nodes.Get(ctx, "fourth", metav1.GetOptions{}); n.Spec.PodCIDR != "" {
		t.Fatalf("node fourth got %s from a full range", n.Spec.PodCIDR)
	}
	if err := nodes.Delete(ctx, "has", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wantCIDR("fourth", "10.42.1.0/24")
}
