package servicelb_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/controller"
	"github.com/lotse/lotse/internal/controller/servicelb"
	"github.com/lotse/lotse/internal/testserver"
)

func node(name, ip string, ready corev1.ConditionStatus) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}, {Type: corev1.NodeHostName, Address: name}},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}},
		},
	}
}

func TestAddresses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nodes []*corev1.Node
		want  []string
	}{
		{"ready nodes only", []*corev1.Node{node("b", "10.0.0.2", "True"), node("a", "10.0.0.1", "True"), node("c", "10.0.0.3", "False")},
			[]string{"10.0.0.1", "10.0.0.2"}},
		{"all nodes when none is ready", []*corev1.Node{node("c", "10.0.0.3", "Unknown"), node("a", "10.0.0.1", "False")},
			[]string{"10.0.0.1", "10.0.0.3"}},
		{"no nodes", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := servicelb.Addresses(tc.nodes); !slices.Equal(got, tc.want) {
				t.Fatalf("Addresses = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestBalancerStatus runs the controller on the real API: a LoadBalancer
// gets the Ready nodes' addresses, follows a node becoming Ready, and a
// Service naming another loadBalancerClass is left alone.
func TestBalancerStatus(t *testing.T) {
	s := testserver.Start(t, testserver.Options{DisableScheduler: true, Controllers: []string{"namespace", "serviceaccount"}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs := s.Client
	createNode := func(n *corev1.Node) {
		t.Helper()
		status := n.Status
		got, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got.Status = status
		if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	createNode(node("n1", "192.0.2.1", "True"))
	createNode(node("n2", "192.0.2.2", "False"))
	port := []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}
	svcs := cs.CoreV1().Services("default")
	for _, svc := range []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "lb"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: port}},
		{ObjectMeta: metav1.ObjectMeta{Name: "other"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: port,
			LoadBalancerClass: ptr.To("example.com/other")}},
	} {
		if _, err := svcs.Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	cctx := &controller.Context{Client: cs, Informers: informers.NewSharedInformerFactory(cs, 0),
		Logger: slog.New(slog.DiscardHandler), Clock: clock.RealClock{}}
	c, err := servicelb.New(cctx)
	if err != nil {
		t.Fatal(err)
	}
	cctx.Informers.Start(ctx.Done())
	go func() { _ = c.Run(ctx) }()

	waitIPs := func(want ...string) {
		t.Helper()
		var got []string
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
			svc, err := svcs.Get(ctx, "lb", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			got = nil
			for _, in := range svc.Status.LoadBalancer.Ingress {
				got = append(got, in.IP)
			}
			return slices.Equal(got, want), nil
		})
		if err != nil {
			t.Fatalf("status.loadBalancer IPs = %v, want %v", got, want)
		}
	}
	waitIPs("192.0.2.1")

	n2, err := cs.CoreV1().Nodes().Get(ctx, "n2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n2.Status.Conditions[0].Status = corev1.ConditionTrue
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, n2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIPs("192.0.2.1", "192.0.2.2")

	other, err := svcs.Get(ctx, "other", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(other.Status.LoadBalancer.Ingress) != 0 {
		t.Fatalf("another class's balancer got %v", other.Status.LoadBalancer.Ingress)
	}
}
