package node

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Two nodes on different subnets, a router between them (three network
// namespaces the test creates):
//
//	node a 192.168.31.2/24 ── .1 router .1 ── 192.168.32.2/24 node b
//	pods 10.42.1.0/24                              pods 10.42.2.0/24
//
// and a third node c on a's subnet. Each node's "pods" are an address on a
// bridge, as the CNI bridge's gateway address is.

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func testNode(name, ip, cidr string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.NodeSpec{PodCIDR: cidr},
		Status:     corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}},
	}
}

// The test re-runs its own binary in the namespaces as a tiny TCP server
// or client (there may be no ping on the machine); helperEnv says which.
const helperEnv = "LOTSE_NODE_TEST_HELPER"

func TestMain(m *testing.M) {
	switch role := strings.Fields(os.Getenv(helperEnv)); {
	case len(role) == 2 && role[0] == "serve":
		l, err := net.Listen("tcp", role[1])
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("listening")
		for {
			c, err := l.Accept()
			if err != nil {
				os.Exit(1)
			}
			fmt.Fprintln(c, "hello")
			c.Close()
		}
	case len(role) == 3 && role[0] == "dial":
		d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(role[1])}}
		c, err := d.Dial("tcp", role[2])
		if err != nil {
			os.Exit(1)
		}
		c.SetDeadline(time.Now().Add(time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		if line != "hello\n" {
			os.Exit(1)
		}
		os.Exit(0)
	default:
		os.Exit(m.Run())
	}
}

// serveIn starts a server on addr in namespace ns for the rest of the test.
func serveIn(t *testing.T, ns, addr string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=serve "+addr)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "listening\n" {
		t.Fatalf("server in %s on %s: %q", ns, addr, line)
	}
}

// reaches reports whether a connection from src in namespace ns to the
// server at dst is answered.
func reaches(ns, src, dst string) bool {
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=dial "+src+" "+dst)
	return cmd.Run() == nil
}

func TestRoutesAcrossARouterUseVXLAN(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	suffix := fmt.Sprint(os.Getpid() % 100000)
	a, b, c, router := "lrt-a"+suffix, "lrt-b"+suffix, "lrt-c"+suffix, "lrt-r"+suffix
	for _, ns := range []string{a, b, c, router} {
		sh(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	// a and c share one L2 segment: a bridge in the router's namespace.
	sh(t, "ip", "-n", router, "link", "add", "seg1", "type", "bridge")
	sh(t, "ip", "-n", router, "addr", "add", "192.168.31.1/24", "dev", "seg1")
	sh(t, "ip", "-n", router, "link", "set", "seg1", "up")
	link := func(ns, addr, peer string) {
		sh(t, "ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", peer, "netns", router)
		sh(t, "ip", "-n", ns, "addr", "add", addr, "dev", "eth0")
		sh(t, "ip", "-n", ns, "link", "set", "eth0", "up")
		sh(t, "ip", "-n", router, "link", "set", peer, "up")
	}
	link(a, "192.168.31.2/24", "to-a")
	link(c, "192.168.31.3/24", "to-c")
	link(b, "192.168.32.2/24", "to-b")
	sh(t, "ip", "-n", router, "link", "set", "to-a", "master", "seg1")
	sh(t, "ip", "-n", router, "link", "set", "to-c", "master", "seg1")
	sh(t, "ip", "-n", router, "addr", "add", "192.168.32.1/24", "dev", "to-b")
	sh(t, "ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	pods := map[string]string{a: "10.42.1.1/24", b: "10.42.2.1/24", c: "10.42.3.1/24"}
	for ns, gw := range map[string]string{a: "192.168.31.1", b: "192.168.32.1", c: "192.168.31.1"} {
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
		sh(t, "ip", "-n", ns, "route", "add", "default", "via", gw)
		sh(t, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
		sh(t, "ip", "-n", ns, "link", "add", "pods", "type", "bridge")
		sh(t, "ip", "-n", ns, "addr", "add", pods[ns], "dev", "pods")
		sh(t, "ip", "-n", ns, "link", "set", "pods", "up")
	}
	nodeA := testNode("a", "192.168.31.2", "10.42.1.0/24")
	nodeB := testNode("b", "192.168.32.2", "10.42.2.0/24")
	nodeC := testNode("c", "192.168.31.3", "10.42.3.0/24")
	newRoutesIn := func(ns string, self *corev1.Node) *routes {
		r := newRoutes(self.Name, netip.MustParseAddr(self.Status.Addresses[0].Address), netip.MustParsePrefix(self.Spec.PodCIDR),
			DefaultBridge, slog.New(slog.NewTextHandler(os.Stderr, nil)))
		r.netns = ns
		return r
	}
	ra, rb, rc := newRoutesIn(a, nodeA), newRoutesIn(b, nodeB), newRoutesIn(c, nodeC)

	serveIn(t, a, "10.42.1.1:8080")
	serveIn(t, b, "10.42.2.1:8080")
	if reaches(b, "10.42.2.1", "10.42.1.1:8080") || reaches(c, "10.42.3.1", "10.42.1.1:8080") {
		t.Fatal("pods reach each other before any route was written; the test proves nothing")
	}
	for _, r := range []*routes{ra, rb, rc} {
		for _, n := range []*corev1.Node{nodeA, nodeB, nodeC} {
			r.set(n)
		}
	}
	if !reaches(b, "10.42.2.1", "10.42.1.1:8080") {
		t.Errorf("b's pods do not reach a's through the overlay; a's routes:\n%s", sh(t, "ip", "-n", a, "route"))
	}
	if !reaches(c, "10.42.3.1", "10.42.2.1:8080") {
		t.Errorf("c's pods do not reach b's through the overlay")
	}
	if !reaches(c, "10.42.3.1", "10.42.1.1:8080") {
		t.Errorf("c's pods do not reach a's on their shared subnet")
	}
	// a reaches c directly and b through the overlay.
	if got := sh(t, "ip", "-n", a, "route", "show", "10.42.3.0/24"); !strings.Contains(got, "via 192.168.31.3 dev eth0") {
		t.Errorf("a's route to c's pods = %q, want via c's address", got)
	}
	if got := sh(t, "ip", "-n", a, "route", "show", "10.42.2.0/24"); !strings.Contains(got, "via 10.42.2.0 dev lotse.vxlan onlink") {
		t.Errorf("a's route to b's pods = %q, want through lotse.vxlan", got)
	}

	// b goes away: its route goes; clear takes the device with it.
	ra.remove(nodeB)
	if got := sh(t, "ip", "-n", a, "route", "show", "10.42.2.0/24"); got != "" {
		t.Errorf("a still routes to removed b's pods: %q", got)
	}
	ra.clear()
	if exec.Command("ip", "-n", a, "link", "show", "lotse.vxlan").Run() == nil {
		t.Error("clear left the VXLAN device behind")
	}
	if got := sh(t, "ip", "-n", a, "route", "show", "10.42.3.0/24"); got != "" {
		t.Errorf("clear left the route to c's pods: %q", got)
	}
}
