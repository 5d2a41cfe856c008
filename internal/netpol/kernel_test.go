package netpol

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

// The kernel test re-executes the test binary as servers and clients
// inside the pod namespaces; this variable says which role to play.
const helperEnv = "LOTSE_NETPOL_HELPER"

func TestHelperProcess(t *testing.T) {
	switch os.Getenv(helperEnv) {
	case "":
		return
	case "serve":
		ln, err := net.Listen("tcp", ":8080")
		if err != nil {
			fmt.Println("listen:", err)
			os.Exit(1)
		}
		fmt.Println("ready")
		// Exit when the test closes stdin, so no server outlives it.
		go func() { _, _ = io.Copy(io.Discard, os.Stdin); os.Exit(0) }()
		for {
			c, err := ln.Accept()
			if err != nil {
				os.Exit(1)
			}
			_, _ = c.Write([]byte("ok\n"))
			_ = c.Close()
		}
	case "dial":
		c, err := net.DialTimeout("tcp", os.Getenv("LOTSE_NETPOL_ADDR"), 700*time.Millisecond)
		if err != nil {
			os.Exit(1)
		}
		_ = c.SetReadDeadline(time.Now().Add(700 * time.Millisecond))
		line, _ := bufio.NewReader(c).ReadString('\n')
		if line != "ok\n" {
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// kernelNet is a node namespace with a bridge and three pod namespaces.
type kernelNet struct {
	t    *testing.T
	node string
	pods []string // netns names, pod i has 10.42.0.(i+2)
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func podAddr(i int) string { return fmt.Sprintf("10.42.0.%d", i+2) }

func newKernelNet(t *testing.T) *kernelNet {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	k := &kernelNet{t: t, node: "lnp-" + id + "-node"}
	addNS := func(name string) {
		run(t, "ip", "netns", "add", name)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	}
	addNS(k.node)
	inNode := func(args ...string) { run(t, append([]string{"ip", "netns", "exec", k.node}, args...)...) }
	inNode("ip", "link", "set", "lo", "up")
	inNode("ip", "link", "add", "lotse0", "type", "bridge")
	inNode("ip", "addr", "add", "10.42.0.1/24", "dev", "lotse0")
	inNode("ip", "link", "set", "lotse0", "up")
	inNode("sysctl", "-qw", "net.ipv4.ip_forward=1")
	// Per-netns on current kernels: bridged pod-to-pod traffic reaches the
	// ip forward hook only with this on in the namespace of the bridge.
	inNode("sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1")
	for i := range 3 {
		p := fmt.Sprintf("lnp-%s-p%d", id, i)
		addNS(p)
		k.pods = append(k.pods, p)
		veth := fmt.Sprintf("vh%d", i)
		inNode("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", p)
		inNode("ip", "link", "set", veth, "master", "lotse0", "up")
		inPod := func(args ...string) { run(t, append([]string{"ip", "netns", "exec", p}, args...)...) }
		inPod("ip", "link", "set", "lo", "up")
		inPod("ip", "addr", "add", podAddr(i)+"/24", "dev", "eth0")
		inPod("ip", "link", "set", "eth0", "up")
		inPod("ip", "route", "add", "default", "via", "10.42.0.1")
		k.serve(p)
	}
	return k
}

// serve starts a TCP server on port 8080 in a namespace.
func (k *kernelNet) serve(ns string) {
	exe, err := os.Executable()
	if err != nil {
		k.t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, exe, "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"=serve")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		k.t.Fatal(err)
	}
	k.t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "ready\n" {
		k.t.Fatalf("server in %s: %q", ns, line)
	}
}

// connects dials addr:8080 from inside ns.
func (k *kernelNet) connects(ns, addr string) bool {
	exe, _ := os.Executable()
	cmd := exec.Command("ip", "netns", "exec", ns, exe, "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"=dial", "LOTSE_NETPOL_ADDR="+addr+":8080")
	return cmd.Run() == nil
}

// matrix dials every pod from every other pod and from the node, in
// parallel, and renders the result as "from->to" for each success.
func (k *kernelNet) matrix() []string {
	type probe struct{ from, fromNS, to string }
	var probes []probe
	for j := range k.pods {
		probes = append(probes, probe{"node", k.node, podName(j)})
		for i := range k.pods {
			if i != j {
				probes = append(probes, probe{podName(i), k.pods[i], podName(j)})
			}
		}
	}
	ok := make([]bool, len(probes))
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Go(func() { ok[i] = k.connects(p.fromNS, podAddr(int(p.to[0]-'a'))) })
	}
	wg.Wait()
	var out []string
	for i, p := range probes {
		if ok[i] {
			out = append(out, p.from+"->"+p.to)
		}
	}
	return out
}

func podName(i int) string { return string(rune('a' + i)) }

// all is every connection of the matrix.
func all() []string {
	return []string{"node->a", "b->a", "c->a", "node->b", "a->b", "c->b", "node->c", "a->c", "b->c"}
}

func without(list []string, drop ...string) []string {
	var out []string
	for _, s := range list {
		if !strings.Contains(" "+strings.Join(drop, " ")+" ", " "+s+" ") {
			out = append(out, s)
		}
	}
	return out
}

// TestKernel checks the allow/deny matrix on real nftables: three pods on
// one bridge in a node namespace, the enforcer writing into that
// namespace.
func TestKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	k := newKernelNet(t)
	ctx := t.Context()

	client := fake.NewClientset(&v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "app"}})
	for i := range k.pods {
		p := pod("app", podName(i), "n1", podAddr(i), map[string]string{"app": podName(i)}, cport("http", 8080))
		if _, err := client.CoreV1().Pods("app").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	nftIn := func(ctx context.Context, script string) error {
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", k.node, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%w: %s\nscript:\n%s", err, out, script)
		}
		return nil
	}
	var logBuf syncBuffer
	e := New(Config{
		NodeName: "n1",
		HostIPs:  []netip.Addr{netip.MustParseAddr("10.42.0.1")},
		Run:      nftIn,
		Logger:   slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}, factory.Core().V1().Pods(), factory.Core().V1().Namespaces(), factory.Networking().V1().NetworkPolicies())
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	factory.Start(runCtx.Done())
	defer factory.Shutdown()
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx) }()

	set := func(pols ...*networkingv1.NetworkPolicy) {
		t.Helper()
		have, err := client.NetworkingV1().NetworkPolicies("app").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range have.Items {
			if err := client.NetworkingV1().NetworkPolicies("app").Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range pols {
			if _, err := client.NetworkingV1().NetworkPolicies("app").Create(ctx, p, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// expect polls until the matrix matches: the change travels through
	// the informer and the coalescing delay first.
	expect := func(name string, want []string) {
		t.Helper()
		deadline := time.Now().Add(6 * time.Second)
		for {
			got := k.matrix()
			if strings.Join(got, " ") == strings.Join(want, " ") {
				return
			}
			if time.Now().After(deadline) {
				table, _ := exec.Command("ip", "netns", "exec", k.node, "nft", "list", "table", "ip", "lotse-netpol").CombinedOutput()
				t.Fatalf("%s:\n want %v\n  got %v\ntable:\n%s\nlog:\n%s", name, want, got, table, logBuf.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	everyone := &metav1.LabelSelector{}
	onA := sel("app", "a")
	allowA := func(peers ...networkingv1.NetworkPolicyPeer) *networkingv1.NetworkPolicy {
		return withIngress(policy("app", "allow-a", onA, ing), networkingv1.NetworkPolicyIngressRule{
			From: peers, Ports: []networkingv1.NetworkPolicyPort{tcp(8080)},
		})
	}

	expect("no policy", all())

	set(policy("app", "deny-a", onA, ing))
	expect("default deny ingress to a", without(all(), "b->a", "c->a"))

	set(allowA(podPeer(sel("app", "b"))))
	expect("allow b to a by podSelector", without(all(), "c->a"))

	set(withIngress(policy("app", "allow-a", onA, ing), networkingv1.NetworkPolicyIngressRule{
		From: []networkingv1.NetworkPolicyPeer{podPeer(sel("app", "b"))}, Ports: []networkingv1.NetworkPolicyPort{tcp(9090)},
	}))
	expect("allow b to a on another port", without(all(), "b->a", "c->a"))

	set(withIngress(policy("app", "allow-a", onA, ing), networkingv1.NetworkPolicyIngressRule{
		Ports: []networkingv1.NetworkPolicyPort{named("http")},
	}))
	expect("allow all to a's named port", all())

	set(allowA(blockPeer("10.42.0.0/24", podAddr(1)+"/32")))
	expect("ipBlock except b", without(all(), "b->a"))

	set(policy("app", "deny-a-egress", onA, egr))
	expect("egress deny from a", without(all(), "a->b", "a->c"))

	set(withEgress(policy("app", "a-egress", onA, egr), networkingv1.NetworkPolicyEgressRule{
		To: []networkingv1.NetworkPolicyPeer{podPeer(sel("app", "b"))}, Ports: []networkingv1.NetworkPolicyPort{named("http")},
	}))
	expect("a may reach b's named port only", without(all(), "a->c"))

	set(withEgress(policy("app", "a-egress", onA, egr), networkingv1.NetworkPolicyEgressRule{
		To: []networkingv1.NetworkPolicyPeer{podPeer(sel("app", "b"))},
	}), policy("app", "deny-b", sel("app", "b"), ing))
	expect("both ends must allow", without(all(), "a->b", "a->c", "c->b"))

	set(policy("app", "deny-all", everyone, ing, egr))
	expect("default deny everything", []string{"node->a", "node->b", "node->c"})

	set()
	expect("policies removed", all())

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if out, err := exec.Command("ip", "netns", "exec", k.node, "nft", "list", "table", "ip", "lotse-netpol").CombinedOutput(); err == nil {
		t.Errorf("table still there after Run returned:\n%s", out)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
