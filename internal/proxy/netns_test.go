package proxy

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

// The kernel tests re-run this test binary inside network namespaces as a
// tiny server or client; helperEnv selects the role.
const helperEnv = "LOTSE_PROXY_TEST_HELPER"

func TestMain(m *testing.M) {
	switch role := os.Getenv(helperEnv); {
	case strings.HasPrefix(role, "serve "):
		serve(strings.TrimPrefix(role, "serve "))
	case strings.HasPrefix(role, "dial "):
		dial(strings.TrimPrefix(role, "dial "))
	case strings.HasPrefix(role, "probe "):
		probe(strings.TrimPrefix(role, "probe "))
	case strings.HasPrefix(role, "userve "):
		serveUDP(strings.TrimPrefix(role, "userve "))
	case strings.HasPrefix(role, "usend "):
		sendUDP(strings.TrimPrefix(role, "usend "))
	default:
		os.Exit(m.Run())
	}
}

// serve answers every TCP connection with the address it came from, so
// that clients can see whether they were masqueraded.
func serve(addr string) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("listening")
	for {
		c, err := l.Accept()
		if err != nil {
			os.Exit(1)
		}
		ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
		fmt.Fprintf(c, "%s\n", ap.Addr())
		c.Close()
	}
}

// dial connects once and prints what the server said, or the error.
func dial(addr string) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(0)
	}
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(0)
	}
	fmt.Print(line)
	os.Exit(0)
}

// probe connects to addr over and over until its stdin closes, then
// prints how many connections got an answer and the first failure.
func probe(addr string) {
	stop := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stop) }()
	fmt.Println("listening") // what startHelper waits for
	ok, failed, first := 0, 0, ""
	for {
		select {
		case <-stop:
			fmt.Printf("ok %d failed %d %s\n", ok, failed, first)
			os.Exit(0)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(time.Second))
			_, err = bufio.NewReader(c).ReadString('\n')
			c.Close()
		}
		if err != nil {
			if failed++; first == "" {
				first = err.Error()
			}
			continue
		}
		ok++
	}
}

// serveUDP ("ADDR NAME") answers every datagram with NAME, so that clients
// can see which endpoint their flow reached.
func serveUDP(args string) {
	addr, name, _ := strings.Cut(args, " ")
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("listening")
	buf := make([]byte, 512)
	for {
		_, from, err := c.ReadFrom(buf)
		if err != nil {
			os.Exit(1)
		}
		c.WriteTo([]byte(name), from)
	}
}

// sendUDP ("LPORT ADDR") sends one datagram to ADDR from local port LPORT
// and prints the answer or the error. A fixed source port makes every call
// part of one conntrack flow, as a resolver's queries are.
func sendUDP(args string) {
	lport, addr, _ := strings.Cut(args, " ")
	port, err := strconv.Atoi(lport)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(0)
	}
	to, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(0)
	}
	c, err := net.ListenUDP("udp", &net.UDPAddr{Port: port})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(0)
	}
	c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.WriteTo([]byte("?"), to); err != nil {
		fmt.Println("error:", err)
		os.Exit(0)
	}
	buf := make([]byte, 512)
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(0)
	}
	fmt.Println(string(buf[:n]))
	os.Exit(0)
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and nftables")
	}
}

func sh(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newNetns creates a network namespace with a random name, loopback up,
// and deletes it when the test ends.
func newNetns(t testing.TB, role string) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := "lotse-pxy-" + role + "-" + hex.EncodeToString(b)
	sh(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Logf("ip netns del %s: %v %s", name, err, out)
		}
	})
	sh(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// baseChainHandles returns the kernel's handle of each base chain of
// table, which a chain deleted and added again does not keep.
func baseChainHandles(t *testing.T, ns, table string) map[string]string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "nft", "-a", "list", "table", "ip", table).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list: %v: %s", err, out)
	}
	handles := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s*chain (\S+) \{ # handle (\d+)`).FindAllStringSubmatch(string(out), -1) {
		if isBaseChain(m[1]) {
			handles[m[1]] = m[2]
		}
	}
	if len(handles) != len(baseChains) {
		t.Fatalf("%d base chains listed, want %d: %v", len(handles), len(baseChains), handles)
	}
	return handles
}

// nftIn is a Config.Run that applies scripts inside netns ns.
func nftIn(ns string) func(context.Context, string) error {
	return func(ctx context.Context, script string) error {
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			return &NftError{Err: err, Stderr: string(out)}
		}
		return nil
	}
}

// addPod links a new pod namespace to node with a routed veth pair: the
// pod holds ip/32 and routes everything via 10.42.0.1, the node address on
// its side, as a routed CNI would.
func addPod(t testing.TB, node, role, ip string) string {
	t.Helper()
	pod := newNetns(t, role)
	host := "veth" + role
	sh(t, "ip", "-n", node, "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", pod)
	sh(t, "ip", "-n", node, "addr", "add", "10.42.0.1/32", "dev", host)
	sh(t, "ip", "-n", node, "link", "set", host, "up")
	sh(t, "ip", "-n", node, "route", "add", ip+"/32", "dev", host)
	sh(t, "ip", "-n", pod, "addr", "add", ip+"/32", "dev", "eth0")
	sh(t, "ip", "-n", pod, "link", "set", "eth0", "up")
	sh(t, "ip", "-n", pod, "route", "add", "10.42.0.1/32", "dev", "eth0")
	sh(t, "ip", "-n", pod, "route", "add", "default", "via", "10.42.0.1")
	return pod
}

// startServer starts a TCP server helper in ns that runs until the test ends.
func startServer(t testing.TB, ns, addr string) {
	t.Helper()
	startHelper(t, ns, "serve "+addr)
}

// startHelper starts this binary in ns in a server role and waits until it
// listens.
func startHelper(t testing.TB, ns, role string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, exe)
	cmd.Env = append(os.Environ(), helperEnv+"="+role)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "listening\n" {
		t.Fatalf("server in %s did not start: %q", ns, line)
	}
}

// dialFrom connects to addr from ns and returns the server's answer (the
// source address it saw) or "error: ...".
func dialFrom(t testing.TB, ns, addr string) string {
	t.Helper()
	return runHelper(t, ns, "dial "+addr)
}

// sendFrom sends a UDP datagram from ns, source port lport, to addr and
// returns the answer (the name of the endpoint) or "error: ...".
func sendFrom(t testing.TB, ns string, lport int, addr string) string {
	t.Helper()
	return runHelper(t, ns, fmt.Sprintf("usend %d %s", lport, addr))
}

// runHelper runs this binary once in ns in a client role and returns what
// it printed.
func runHelper(t testing.TB, ns, role string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, exe)
	cmd.Env = append(os.Environ(), helperEnv+"="+role)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dial helper: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// eventually retries dialFrom until the answer satisfies ok: the proxy
// applies changes asynchronously.
func eventually(t *testing.T, ns, addr string, ok func(string) bool, what string) {
	t.Helper()
	until(t, func() string { return dialFrom(t, ns, addr) }, ok, fmt.Sprintf("%s %s from %s", what, addr, ns))
}

// until retries get until its answer satisfies ok, for up to 10s.
func until(t *testing.T, get func() string, ok func(string) bool, what string) {
	t.Helper()
	var got string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got = get(); ok(got) {
			return
		}
	}
	t.Fatalf("%s: got %q", what, got)
}

func is(want string) func(string) bool { return func(s string) bool { return s == want } }

func refused(s string) bool { return strings.Contains(s, "connection refused") }

// newNode makes the node namespace of the kernel tests and the outside one
// it routes to.
func newNode(t testing.TB) (node, outside string) {
	t.Helper()
	node = newNetns(t, "node")
	sh(t, "ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	outside = newNetns(t, "out")
	sh(t, "ip", "-n", node, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", outside)
	sh(t, "ip", "-n", node, "addr", "add", "192.168.77.1/24", "dev", "eth0")
	sh(t, "ip", "-n", node, "link", "set", "eth0", "up")
	sh(t, "ip", "-n", node, "route", "add", "default", "via", "192.168.77.2")
	sh(t, "ip", "-n", outside, "addr", "add", "192.168.77.2/24", "dev", "eth0")
	sh(t, "ip", "-n", outside, "link", "set", "eth0", "up")
	return node, outside
}

// TestKernel programs a real table in a node namespace and connects to
// Services from the node and from pods.
//
//	node ns:  eth0 192.168.77.1/24 (the node IP), default route to the
//	          outside ns, 10.42.0.1 on each pod veth, ip_forward=1, the table
//	outside:  192.168.77.2, a client outside the cluster
//	pod1 ns:  10.42.0.2, TCP server on :8080 (endpoint of ns/web)
//	pod2 ns:  10.42.0.3, client
func TestKernel(t *testing.T) {
	requireRoot(t)
	node, outside := newNode(t)
	pod1 := addPod(t, node, "p1", "10.42.0.2")
	pod2 := addPod(t, node, "p2", "10.42.0.3")
	startServer(t, pod1, ":8080")
	startServer(t, pod1, ":8081")

	web := testService(func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30080
		s.Spec.ExternalIPs = []string{"198.51.100.7"}
	})
	webSlice := testSlice("ns", "web", "web-1", 8080, readyEp("10.42.0.2", "node"))
	empty := svcNamed("empty", "10.43.0.11")
	sticky := svcNamed("sticky", "10.43.0.12")
	sticky.Spec.SessionAffinity = v1.ServiceAffinityClientIP
	stickySlice := testSlice("ns", "sticky", "sticky-1", 8080, readyEp("10.42.0.2", "node"))
	// Two endpoints: picked through the shared endpoint maps.
	multi := svcNamed("multi", "10.43.0.13")
	multiSlices := []*discovery.EndpointSlice{testSlice("ns", "multi", "multi-1", 8080, readyEp("10.42.0.2", "node")),
		testSlice("ns", "multi", "multi-2", 8081, readyEp("10.42.0.2", "node"))}
	client, _ := startProxy(t, Config{NodeName: "node", Run: nftIn(node), NetNS: netnsFD(t, node), Table: "lotse-test",
		MinSyncInterval: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))},
		web, webSlice, empty, sticky, stickySlice, multi, multiSlices[0], multiSlices[1])

	// Pod to cluster IP: DNAT, source kept (it is in the cluster CIDR).
	eventually(t, pod2, "10.43.0.10:80", is("10.42.0.3"), "pod to cluster IP")
	// Node to cluster IP (output hook): DNAT and masquerade, since the
	// node's source 192.168.77.1 is outside the cluster CIDR.
	eventually(t, node, "10.43.0.10:80", is("10.42.0.1"), "node to cluster IP")
	// Pod to NodePort on the node IP: external traffic is masqueraded.
	eventually(t, pod2, "192.168.77.1:30080", is("10.42.0.1"), "pod to NodePort")
	eventually(t, node, "192.168.77.1:30080", is("10.42.0.1"), "node to NodePort")
	eventually(t, pod2, "198.51.100.7:80", is("10.42.0.1"), "pod to external IP")
	eventually(t, outside, "192.168.77.1:30080", is("10.42.0.1"), "outside to NodePort")
	// Hairpin: the endpoint reaching itself through its Service.
	eventually(t, pod1, "10.43.0.10:80", is("10.42.0.1"), "hairpin")
	for range 4 {
		eventually(t, pod2, "10.43.0.13:80", is("10.42.0.3"), "pod to service with two endpoints")
	}
	eventually(t, node, "10.43.0.13:80", is("10.42.0.1"), "node to service with two endpoints")
	eventually(t, pod1, "10.43.0.13:80", is("10.42.0.1"), "hairpin through the endpoint map")
	// Affinity set gets filled in and the connection still works.
	eventually(t, pod2, "10.43.0.12:80", is("10.42.0.3"), "pod to sticky service")
	if out := sh(t, "ip", "netns", "exec", node, "nft", "list", "table", "ip", "lotse-test"); !strings.Contains(out, "10.42.0.3 expires") {
		t.Errorf("affinity set does not hold the client:\n%s", out)
	}
	// No endpoints: rejected at once, not timed out.
	start := time.Now()
	eventually(t, pod2, "10.43.0.11:80", refused, "service without endpoints")
	eventually(t, node, "10.43.0.11:80", refused, "service without endpoints")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("reject took %v", d)
	}
	// NodePort not served on loopback.
	eventually(t, node, "127.0.0.1:30080", refused, "loopback NodePort")

	// externalTrafficPolicy Local with the endpoint on this node: the
	// client address is kept.
	web.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	update(t, client.CoreV1().Services("ns").Update, web)
	eventually(t, pod2, "192.168.77.1:30080", is("10.42.0.3"), "pod to NodePort, policy Local")
	eventually(t, outside, "192.168.77.1:30080", is("192.168.77.2"), "outside to NodePort, policy Local")

	// The endpoint leaves: the Service now rejects.
	webSlice.Endpoints = nil
	update(t, client.DiscoveryV1().EndpointSlices("ns").Update, webSlice)
	eventually(t, pod2, "10.43.0.10:80", refused, "service after its endpoint left")
	eventually(t, pod2, "192.168.77.1:30080", refused, "NodePort after its endpoint left")
	eventually(t, outside, "192.168.77.1:30080", refused, "NodePort after its endpoint left")

	// It comes back as serving but terminating: used as the fallback.
	webSlice.Endpoints = testSlice("ns", "web", "web-1", 8080,
		epSpec{ip: "10.42.0.2", node: "node", serving: true, terminating: true}).Endpoints
	update(t, client.DiscoveryV1().EndpointSlices("ns").Update, webSlice)
	eventually(t, pod2, "10.43.0.10:80", is("10.42.0.3"), "terminating fallback")

	// Deleting the Service removes its rules: nothing answers any more.
	if err := client.CoreV1().Services("ns").Delete(t.Context(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, pod2, "10.43.0.10:80", func(s string) bool {
		return strings.HasPrefix(s, "error:") && !refused(s) || strings.Contains(s, "unreachable")
	},
		"deleted service")
	_ = discovery.AddressTypeIPv4
}

// TestKernelLoadBalancerSourceRanges checks the firewall of
// loadBalancerSourceRanges: traffic to the load balancer IP from outside
// the ranges is dropped, from inside them DNATed, and a change of the
// ranges applies to new connections.
func TestKernelLoadBalancerSourceRanges(t *testing.T) {
	requireRoot(t)
	node, outside := newNode(t)
	pod1 := addPod(t, node, "p1", "10.42.0.2")
	pod2 := addPod(t, node, "p2", "10.42.0.3")
	startServer(t, pod1, ":8080")
	sh(t, "ip", "-n", outside, "route", "add", "198.51.100.9", "via", "192.168.77.1")

	lb := testService(func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = 30081
		s.Spec.LoadBalancerSourceRanges = []string{"192.168.77.0/24"}
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "198.51.100.9"}}
	})
	slice := testSlice("ns", "web", "web-1", 8080, readyEp("10.42.0.2", "node"))
	client, _ := startProxy(t, Config{NodeName: "node", Run: nftIn(node), NetNS: netnsFD(t, node), Table: "lotse-test",
		MinSyncInterval: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}, lb, slice)

	dropped := func(s string) bool { return strings.HasPrefix(s, "error:") && !refused(s) }
	eventually(t, outside, "198.51.100.9:80", is("10.42.0.1"), "outside, in the ranges, to the LB IP")
	eventually(t, pod2, "198.51.100.9:80", dropped, "pod, outside the ranges, to the LB IP")
	// The NodePort is not limited, as upstream.
	eventually(t, pod2, "192.168.77.1:30081", is("10.42.0.1"), "pod to the NodePort")

	lb.Spec.LoadBalancerSourceRanges = []string{"10.42.0.0/16"}
	update(t, client.CoreV1().Services("ns").Update, lb)
	eventually(t, pod2, "198.51.100.9:80", is("10.42.0.1"), "pod, now in the ranges, to the LB IP")
	eventually(t, outside, "198.51.100.9:80", dropped, "outside, now outside the ranges, to the LB IP")

	// Without ranges the load balancer IP is open to all.
	lb.Spec.LoadBalancerSourceRanges = nil
	update(t, client.CoreV1().Services("ns").Update, lb)
	eventually(t, outside, "198.51.100.9:80", is("10.42.0.1"), "outside to the LB IP without ranges")
}

// conntrackIn is a Config.ClearConntrack that works in netns ns.
func conntrackIn(t testing.TB, ns string) func(context.Context, []ConntrackFilter) (int, error) {
	t.Helper()
	return netlinkConntrack(netnsFD(t, ns))
}

// netnsFD opens netns ns for as long as the test runs (registered before
// the proxy starts, so closed after it stops).
func netnsFD(t testing.TB, ns string) int {
	t.Helper()
	f, err := os.Open("/run/netns/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return int(f.Fd())
}

// TestKernelUDPConntrack checks that UDP flows, which conntrack pins to the
// endpoint of their first packet, move when the proxy syncs: off a removed
// endpoint, and onto the first endpoint of a Service they reached before
// it had one.
//
//	pod1 ns:  10.42.0.2, UDP server "A" on :5353
//	pod3 ns:  10.42.0.4, UDP server "B" on :5353
//	pod2 ns:  10.42.0.3, client, always from source port 40053 or 40054
func TestKernelUDPConntrack(t *testing.T) {
	requireRoot(t)
	node, _ := newNode(t)
	podA := addPod(t, node, "ua", "10.42.0.2")
	client := addPod(t, node, "uc", "10.42.0.3")
	podB := addPod(t, node, "ub", "10.42.0.4")
	startHelper(t, podA, "userve :5353 A")
	startHelper(t, podB, "userve :5353 B")
	epA, epB := readyEp("10.42.0.2", "node"), readyEp("10.42.0.4", "node")

	dns := udpService(func(s *v1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.43.0.20", []string{"10.43.0.20"} })
	dnsSlice := udpSlice("dns-1", 5353, epA)
	// The proxy's first write finds the Service with its first endpoint and
	// so clears what is tracked to the cluster IP; the pinned flow below
	// must be made after that, or the clearing may take it away.
	clear, cleared := conntrackIn(t, node), make(chan struct{}, 16)
	clearAndTell := func(ctx context.Context, f []ConntrackFilter) (int, error) {
		n, err := clear(ctx, f)
		select {
		case cleared <- struct{}{}:
		default:
		}
		return n, err
	}
	api, _ := startProxy(t, Config{NodeName: "node", Run: nftIn(node), NetNS: netnsFD(t, node), ClearConntrack: clearAndTell,
		Table: "lotse-test", MinSyncInterval: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))},
		dns, dnsSlice)
	const vip = "10.43.0.20:53"
	send := func(port int, addr string) func() string {
		return func() string { return sendFrom(t, client, port, addr) }
	}

	until(t, send(40053, vip), is("A"), "UDP to the cluster IP")
	select {
	case <-cleared:
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy did not clear the cluster IP's entries when the Service got its first endpoint")
	}
	until(t, send(40053, vip), is("A"), "UDP to the cluster IP after the first clearing")
	// B joins. Other source ports reach it once the table has it, but the
	// pinned flow stays on A: the premise of this test.
	dnsSlice.Endpoints = append(dnsSlice.Endpoints, udpSlice("x", 5353, epB).Endpoints...)
	update(t, api.DiscoveryV1().EndpointSlices("ns").Update, dnsSlice)
	port := 41000
	until(t, func() string { port++; return sendFrom(t, client, port, vip) }, is("B"), "UDP from fresh source ports")
	for range 5 {
		if got := sendFrom(t, client, 40053, vip); got != "A" {
			t.Fatalf("the flow from port 40053 left A before A was removed: got %q", got)
		}
	}

	// A leaves the slice (its server keeps answering): the flow must move.
	dnsSlice.Endpoints = dnsSlice.Endpoints[1:]
	update(t, api.DiscoveryV1().EndpointSlices("ns").Update, dnsSlice)
	until(t, send(40053, vip), is("B"), "UDP flow after its endpoint was removed")

	// A flow to a cluster IP that has no Service yet is routed away
	// untranslated, and its entry would keep it so.
	const late = "10.43.0.21:53"
	if got := sendFrom(t, client, 40054, late); !strings.HasPrefix(got, "error:") {
		t.Fatalf("UDP to an unknown cluster IP answered %q", got)
	}
	lateSvc := udpService(func(s *v1.Service) {
		s.Name, s.Spec.ClusterIP, s.Spec.ClusterIPs = "late", "10.43.0.21", []string{"10.43.0.21"}
	})
	lateSlice := udpSlice("late-1", 5353, epA)
	lateSlice.Labels[discovery.LabelServiceName] = "late"
	if _, err := api.CoreV1().Services("ns").Create(t.Context(), lateSvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.DiscoveryV1().EndpointSlices("ns").Create(t.Context(), lateSlice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	until(t, send(40054, late), is("A"), "UDP flow after its Service got an endpoint")
}

// TestKernelFullResync rebuilds a table that is in use, as after a restart
// or a failed write: a client connecting over and over to a Service never
// misses its DNAT, and the rebuilt table keeps nothing of the old one or
// of a rebuild that failed half-way.
func TestKernelFullResync(t *testing.T) {
	requireRoot(t)
	node, _ := newNode(t)
	pod1 := addPod(t, node, "p1", "10.42.0.2")
	pod2 := addPod(t, node, "p2", "10.42.0.3")
	startServer(t, pod1, ":8080")

	// Many Services, so that a rebuild takes long enough to be seen.
	objs := []runtime.Object{testService(), testSlice("ns", "web", "web-1", 8080, readyEp("10.42.0.2", "node"))}
	for i := range 2000 {
		name := fmt.Sprintf("filler-%d", i)
		var eps []epSpec
		for j := range 10 {
			eps = append(eps, readyEp(fmt.Sprintf("10.42.%d.%d", 100+i/250, j*25+i%25), "node"))
		}
		objs = append(objs, svcNamed(name, fmt.Sprintf("10.43.%d.%d", 10+i/250, i%250+1)), testSlice("ns", name, name+"-1", 8080, eps...))
	}
	client := fake.NewSimpleClientset(objs...)
	f := informers.NewSharedInformerFactory(client, 0)
	p := New(Config{NodeName: "node", Run: nftIn(node), NetNS: netnsFD(t, node), Table: "lotse-test", Logger: testLogger,
		ClearConntrack: func(context.Context, []ConntrackFilter) (int, error) { return 0, nil }},
		f.Core().V1().Services(), f.Discovery().V1().EndpointSlices())
	ctx, cancel := context.WithCancel(t.Context())
	f.Start(ctx.Done())
	t.Cleanup(func() { cancel(); f.Shutdown() })
	if !cache.WaitForCacheSync(ctx.Done(), p.synced...) {
		t.Fatal("caches did not sync")
	}
	if err := p.syncAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := dialFrom(t, pod2, "10.43.0.10:80"); got != "10.42.0.3" {
		t.Fatalf("pod to cluster IP after the first sync: %q", got)
	}

	// What a rebuild that failed after its first step leaves behind.
	if err := nftIn(node)(ctx, "add map ip lotse-test endpoints-cluster-1-g1 { typeof ip daddr . meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport; }\n"+
		"add chain ip lotse-test dispatch-cluster-7-g3\n"); err != nil {
		t.Fatal(err)
	}

	baseBefore := baseChainHandles(t, node, "lotse-test")

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", pod2, exe)
	cmd.Env = append(os.Environ(), helperEnv+"=probe 10.43.0.10:80")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	r := bufio.NewReader(out)
	if line, _ := r.ReadString('\n'); line != "listening\n" {
		t.Fatalf("probe did not start: %q", line)
	}
	gens := []int{}
	for range 3 {
		time.Sleep(50 * time.Millisecond)
		if err := p.syncAll(ctx); err != nil {
			t.Fatal(err)
		}
		gens = append(gens, p.build.gen)
	}
	time.Sleep(50 * time.Millisecond)
	stdin.Close()
	result, _ := r.ReadString('\n')
	var ok, failed int
	if _, err := fmt.Sscanf(result, "ok %d failed %d", &ok, &failed); err != nil || failed > 0 || ok < 10 {
		t.Errorf("connections during the rebuilds: %q", result)
	}
	// The hooked chains are the same chains, refilled: a packet crossing
	// a rebuild that replaced them could miss its DNAT (see baseChains),
	// which the probe above sees about once in a hundred runs.
	if baseAfter := baseChainHandles(t, node, "lotse-test"); !maps.Equal(baseBefore, baseAfter) {
		t.Errorf("base chains (name → handle) were replaced: %v, then %v", baseBefore, baseAfter)
	}
	// Generations alternate; 1 and 3 were taken by the leftovers.
	if !slices.Equal(gens, []int{2, 0, 1}) {
		t.Errorf("generations of the rebuilds: %v, want [2 0 1]", gens)
	}

	objs2, err := netlinkTables{netns: netnsFD(t, node)}.objects(ctx, "lotse-test")
	if err != nil {
		t.Fatal(err)
	}
	count := func(names []string, prefix string) int {
		n := 0
		for _, name := range names {
			if g, ok := generation(name, prefix); ok {
				n++
				if g != p.build.gen {
					t.Errorf("%s of generation %d left in the table", name, g)
				}
			}
		}
		return n
	}
	endpointMaps, dispatchChains := count(objs2.sets, endpointMapPrefix), count(objs2.chains, dispatchChainPrefix)
	if endpointMaps != 2*len(p.dispatch) || dispatchChains != len(p.dispatch) {
		t.Errorf("%d endpoint maps and %d dispatch chains for %d dispatch keys", endpointMaps, dispatchChains, len(p.dispatch))
	}
	if got := dialFrom(t, pod2, "10.43.0.10:80"); got != "10.42.0.3" {
		t.Fatalf("pod to cluster IP after the rebuilds: %q", got)
	}
}
