package server_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/lotse/lotse/internal/node"
	"github.com/lotse/lotse/internal/server"
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

// TestDeadServersLeaveTheKubernetesService: every server keeps its address
// in etcd on a lease; the address of a server that stops renewing (here a
// made-up one whose lease runs out) leaves the kubernetes Service's
// endpoints once the lease expires.
func TestDeadServersLeaveTheKubernetesService(t *testing.T) {
	defer server.SetClusterServicesInterval(200 * time.Millisecond)()
	s := testserver.Start(t, testserver.Options{DisableScheduler: true, Controllers: []string{"namespace"}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	etcd, err := clientv3.New(clientv3.Config{Endpoints: s.EtcdEndpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Close()
	lease, err := etcd.Grant(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	const dead = "192.0.2.77"
	if _, err := etcd.Put(ctx, "/registry/lotse/endpoints/default/kubernetes/"+dead, "", clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	addrs := func() []string {
		var out []string
		if eps, err := s.Client.CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{}); err == nil {
			for _, sub := range eps.Subsets {
				for _, a := range sub.Addresses {
					out = append(out, a.IP)
				}
			}
		}
		return out
	}
	self := node.HostIP().String()
	waitAddrs := func(what string, ok func([]string) bool) {
		t.Helper()
		if err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) { return ok(addrs()), nil }); err != nil {
			t.Fatalf("%s: endpoints %v", what, addrs())
		}
	}
	waitAddrs("the other server joins", func(a []string) bool { return slices.Contains(a, dead) && slices.Contains(a, self) })
	start := time.Now()
	waitAddrs("the dead server leaves", func(a []string) bool { return !slices.Contains(a, dead) && slices.Contains(a, self) })
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the dead server's address stayed %v", d)
	}
	// The slice is written just after the Endpoints.
	var slice *discoveryv1.EndpointSlice
	err = wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		slice, err = s.Client.DiscoveryV1().EndpointSlices("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		return err == nil && len(slice.Endpoints) == 1 && slice.Endpoints[0].Addresses[0] == self, nil
	})
	if err != nil {
		t.Errorf("kubernetes EndpointSlice = %+v, want only %s", slice, self)
	}
}

// TestNetworkPlan: --service-cidr and --cluster-dns place the cluster
// Services and the Services' cluster IPs; changing them on a restart moves
// the cluster Services (their cluster IPs cannot change in place).
func TestNetworkPlan(t *testing.T) {
	dir := t.TempDir()
	opts := testserver.Options{DataDir: dir, DisableScheduler: true, Controllers: []string{"namespace"},
		ServiceCIDR: "10.96.0.0/16", ClusterCIDR: "10.244.0.0/16", ClusterDNSPort: -1}
	s := testserver.Start(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	clusterIP := func(ns, name string) string {
		var ip string
		_ = wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			svc, err := s.Client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
			if err == nil {
				ip = svc.Spec.ClusterIP
			}
			return err == nil, nil
		})
		return ip
	}
	if got := clusterIP("default", "kubernetes"); got != "10.96.0.1" {
		t.Errorf("kubernetes Service at %q, want 10.96.0.1", got)
	}
	if got := clusterIP("kube-system", "kube-dns"); got != "10.96.0.10" {
		t.Errorf("kube-dns Service at %q, want 10.96.0.10", got)
	}
	svc, err := s.Client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ip := netip.MustParseAddr(svc.Spec.ClusterIP); !netip.MustParsePrefix("10.96.0.0/16").Contains(ip) {
		t.Errorf("a Service got %s, outside the service CIDR", ip)
	}

	s.Stop()
	opts.ServiceCIDR, opts.ClusterDNS, opts.Port = "10.97.0.0/24", "10.97.0.53", s.Port()
	s = testserver.Start(t, opts)
	ctx, cancel = context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, want := range []struct{ ns, name, ip string }{{"default", "kubernetes", "10.97.0.1"}, {"kube-system", "kube-dns", "10.97.0.53"}} {
		var got string
		_ = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			got = clusterIP(want.ns, want.name)
			return got == want.ip, nil
		})
		if got != want.ip {
			t.Errorf("after the restart, %s/%s at %q, want %s", want.ns, want.name, got, want.ip)
		}
	}
	// Pods reach the API at the kubernetes Service's new address.
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", u.Host, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if ips := conn.ConnectionState().PeerCertificates[0].IPAddresses; !slices.ContainsFunc(ips, func(ip net.IP) bool { return ip.Equal(net.ParseIP("10.97.0.1")) }) {
		t.Errorf("serving certificate's addresses %v lack 10.97.0.1", ips)
	}
}
