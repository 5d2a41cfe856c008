package e2e

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lotse/lotse/internal/containerd"
)

// The second node's network namespace and the link between it and the
// machine (192.168.222.1 on the machine's side, .2 in the namespace).
const (
	twoNodesNS     = "lotse-e2e-b"
	twoNodesHostIF = "le2e-h0"
	twoNodesNodeIF = "le2e-b0"
	hostLinkIP     = "192.168.222.1"
	nodeLinkIP     = "192.168.222.2"
)

// twoNodesLayout is where the two nodes' addresses are: on the link's
// subnet (one L2 segment: host-gateway routes), or each on a subnet of its
// own routed over the link (as if a router were between them: the VXLAN
// overlay).
type twoNodesLayout struct {
	serverNodeIP, secondNodeIP string
	routed                     bool
}

// TestTwoNodes runs two nodes on one machine, each in its own network
// namespace with its own containerd: the server's node on the host, a
// joined one in a namespace linked by a veth pair. Pods reach each other
// across the nodes on their own addresses, and a Service spans both.
func TestTwoNodes(t *testing.T) {
	testTwoNodes(t, twoNodesLayout{serverNodeIP: hostLinkIP, secondNodeIP: nodeLinkIP})
}

// TestTwoNodesOverlay is TestTwoNodes with the nodes on different subnets:
// their pods reach each other through the VXLAN overlay.
func TestTwoNodesOverlay(t *testing.T) {
	testTwoNodes(t, twoNodesLayout{serverNodeIP: "192.168.224.1", secondNodeIP: "192.168.223.2", routed: true})
}

func testTwoNodes(t *testing.T, layout twoNodesLayout) {
	if err := containerd.CheckBinaries(); err != nil {
		t.Fatal(err)
	}
	bin, err := lotseBinary()
	if err != nil {
		t.Fatal(err)
	}
	makeNodeNamespace(t, layout)

	dataDir := filepath.Join(t.TempDir(), "data")
	srv, err := startNodeServer(bin, dataDir, "--bind-address", "0.0.0.0", "--node-ip", layout.serverNodeIP,
		"--pod-cidr", "10.42.0.0/24", "--cni-bridge", "lotse-e2e2", "--cluster-dns-port", freePort(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cleanupNode(t, srv)
		_ = exec.Command("ip", "link", "del", "lotse-e2e2").Run()
	}()
	token, err := os.ReadFile(filepath.Join(srv.DataDir, "node-token"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	agentDir := filepath.Join(t.TempDir(), "agent")
	log := logFile(t, "agent-b.log")
	// nsenter switches only the network namespace: `ip netns exec` would
	// also remount /sys, hiding the cgroup mounts runc needs.
	agent := exec.Command("nsenter", "--net=/run/netns/"+twoNodesNS, bin, "agent",
		"--server", "https://"+layout.serverNodeIP+":"+u.Port(), "--token", strings.TrimSpace(string(token)),
		"--data-dir", agentDir, "--node-name", "e2e-b", "--node-ip", layout.secondNodeIP, "--agent-port", "0",
		"--cni-bridge", "lotse-e2e1")
	agent.Stdout, agent.Stderr = log, log
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		// Pods go first (the agent stops them), then the agent.
		k := srv.kubectl(t)
		k.run(t, "delete", "namespace", "node", "--wait=true", "--timeout=55s")
		drainSandboxes(t, containerd.Layout{Dir: filepath.Join(agentDir, "containerd")}.Endpoint())
		stopAgentProcess(t, agent)
	}()

	k := srv.kubectl(t)
	waitFor(t, 90*time.Second, "both nodes Ready", func() (bool, string) {
		r := k.run(t, "get", "nodes", "--no-headers")
		return strings.Count(r.stdout, " Ready ") == 2, r.String()
	})
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	writeBusyboxArchive(t, archive, "busybox:1.36")
	if out, err := exec.Command(bin, "image", "import", "--kubeconfig", srv.Kubeconfig, archive).CombinedOutput(); err != nil {
		t.Fatalf("lotse image import: %v\n%s", err, out)
	}
	k.createNamespace(t, "node")
	n := func(args ...string) []string { return append([]string{"-n", "node"}, args...) }

	// One web pod per node (topology spread), and a client on each node.
	k.okStdin(t, webDeployment(`      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: web}}}
`)+`---
apiVersion: v1
kind: Pod
metadata: {name: client-a}
spec:
  nodeName: e2e-node
  containers: [{name: c, image: "busybox:1.36", command: [sleep, "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: client-b}
spec:
  nodeName: e2e-b
  containers: [{name: c, image: "busybox:1.36", command: [sleep, "3600"]}]
`, n("apply", "-f", "-")...)
	k.ok(t, n("rollout", "status", "deployment/web", "--timeout=55s")...)
	waitRunning(t, k, "client-a")
	waitRunning(t, k, "client-b")
	byNode := map[string]string{} // node -> web pod IP
	names := map[string]bool{}
	for _, line := range strings.Split(k.ok(t, n("get", "pods", "-l", "app=web", "-o",
		`jsonpath={range .items[*]}{.spec.nodeName} {.status.podIP} {.metadata.name}{"\n"}{end}`)...), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 {
			byNode[f[0]] = f[1]
			names[f[2]] = true
		}
	}
	if len(byNode) != 2 {
		t.Fatalf("web pods are not one per node: %v", byNode)
	}

	t.Run("pods reach pods on the other node", func(t *testing.T) {
		for client, node := range map[string]string{"client-a": "e2e-b", "client-b": "e2e-node"} {
			waitFor(t, 30*time.Second, client+" to reach the web pod on "+node, func() (bool, string) {
				r := k.run(t, n("exec", client, "--", "sh", "-c", httpOverNC(byNode[node], "8080"))...)
				return r.code == 0 && names[strings.TrimSpace(r.stdout)], r.String()
			})
		}
	})

	if layout.routed {
		// The nodes reached each other through the overlay, not directly.
		if out, err := exec.Command("ip", "-d", "link", "show", "lotse-e2e2.vx").CombinedOutput(); err != nil || !strings.Contains(string(out), "vxlan id 1") {
			t.Errorf("no VXLAN device on the server's node: %v\n%s", err, out)
		}
		if out, _ := exec.Command("ip", "route", "show", "10.42.1.0/24").CombinedOutput(); !strings.Contains(string(out), "dev lotse-e2e2.vx") {
			t.Errorf("the second node's pods are not routed through the overlay: %s", out)
		}
	}

	t.Run("a Service spans both nodes", func(t *testing.T) {
		k.ok(t, n("expose", "deployment", "web", "--port=80", "--target-port=8080")...)
		for _, client := range []string{"client-a", "client-b"} {
			seen := map[string]bool{}
			waitFor(t, 60*time.Second, client+" to be answered by both web pods through web.node", func() (bool, string) {
				r := k.run(t, n("exec", client, "--", "sh", "-c", httpOverNC("web.node.svc.cluster.local", "80"))...)
				if r.code == 0 && names[strings.TrimSpace(r.stdout)] {
					seen[strings.TrimSpace(r.stdout)] = true
				}
				return len(seen) == 2, r.String()
			})
		}
	})
}

// makeNodeNamespace creates the second node's network namespace, linked
// to the machine by a veth pair, with the nodes' addresses as layout says,
// and removes it when the test ends.
func makeNodeNamespace(t *testing.T, layout twoNodesLayout) {
	t.Helper()
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// Leftovers of an interrupted run go first.
	_ = exec.Command("ip", "netns", "del", twoNodesNS).Run()
	_ = exec.Command("ip", "link", "del", twoNodesHostIF).Run()
	ip("netns", "add", twoNodesNS)
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", twoNodesNS).Run()
		_ = exec.Command("ip", "link", "del", twoNodesHostIF).Run()
	})
	ip("link", "add", twoNodesHostIF, "type", "veth", "peer", "name", twoNodesNodeIF, "netns", twoNodesNS)
	ip("addr", "add", hostLinkIP+"/24", "dev", twoNodesHostIF)
	ip("link", "set", twoNodesHostIF, "up")
	ip("-n", twoNodesNS, "addr", "add", nodeLinkIP+"/24", "dev", twoNodesNodeIF)
	ip("-n", twoNodesNS, "link", "set", twoNodesNodeIF, "up")
	ip("-n", twoNodesNS, "link", "set", "lo", "up")
	ip("-n", twoNodesNS, "route", "add", "default", "via", hostLinkIP)
	if layout.routed {
		// Each node's address is its own /32, reached via the other end
		// of the link: a gateway, as a router between subnets would be.
		ip("addr", "add", layout.serverNodeIP+"/32", "dev", twoNodesHostIF)
		ip("-n", twoNodesNS, "addr", "add", layout.secondNodeIP+"/32", "dev", twoNodesNodeIF)
		ip("route", "add", layout.secondNodeIP+"/32", "via", nodeLinkIP)
	}
}
