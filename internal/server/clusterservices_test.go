package server_test

import (
	"context"
	"net/url"
	"strconv"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/lotse/lotse/internal/node"
	"github.com/lotse/lotse/internal/testserver"
)

// TestKubernetesService checks the Service every cluster has: default/
// kubernetes on the first service address, port 443 mapped to the API's
// port at the advertise address, in Endpoints and an EndpointSlice.
func TestKubernetesService(t *testing.T) {
	s := testserver.Start(t, testserver.Options{DisableScheduler: true, Controllers: []string{"namespace"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	apiPort, _ := strconv.Atoi(u.Port())
	addr := node.HostIP().String()

	var ok bool
	_ = wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		eps, err := s.Client.CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		ok = err == nil && len(eps.Subsets) == 1 && len(eps.Subsets[0].Addresses) == 1 &&
			eps.Subsets[0].Addresses[0].IP == addr && int(eps.Subsets[0].Ports[0].Port) == apiPort
		return ok, nil
	})
	if !ok {
		t.Fatalf("Endpoints default/kubernetes never held %s:%d", addr, apiPort)
	}
	svc, err := s.Client.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP != "10.43.0.1" || svc.Spec.Ports[0].Port != 443 || svc.Spec.Ports[0].TargetPort.IntValue() != apiPort {
		t.Fatalf("kubernetes Service: clusterIP %s ports %+v", svc.Spec.ClusterIP, svc.Spec.Ports)
	}
	slice, err := s.Client.DiscoveryV1().EndpointSlices("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if slice.Labels[discoveryv1.LabelServiceName] != "kubernetes" || len(slice.Endpoints) != 1 ||
		slice.Endpoints[0].Addresses[0] != addr || int(*slice.Ports[0].Port) != apiPort {
		t.Fatalf("kubernetes EndpointSlice: %+v", slice)
	}
	// The keeper writes the slice itself; the mirroring controller (which
	// this server runs) must not add a second one.
	eps, err := s.Client.CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil || eps.Labels[discoveryv1.LabelSkipMirror] != "true" {
		t.Fatalf("kubernetes Endpoints labels = %v (%v), want skip-mirror", eps.Labels, err)
	}
	time.Sleep(time.Second)
	all, err := s.Client.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kubernetes"})
	if err != nil || len(all.Items) != 1 {
		t.Fatalf("kubernetes has %d EndpointSlices (%v), want 1", len(all.Items), err)
	}
	if _, err := s.Client.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{}); err == nil {
		t.Fatal("kube-dns exists though this server serves no DNS")
	}
}
