package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/lotse/lotse/internal/containerd"
)

// TestAgentJoin joins a node with `lotse agent --token` to a server that
// runs none, runs a pod on it, and checks that a pod deleted while the
// agent was down is cleaned up when it comes back.
func TestAgentJoin(t *testing.T) {
	if err := containerd.CheckBinaries(); err != nil {
		t.Fatal(err)
	}
	bin, err := lotseBinary()
	if err != nil {
		t.Fatal(err)
	}
	// A network plan of its own: the joined node must get it.
	srv, err := startServer(bin, filepath.Join(t.TempDir(), "data"), "0", "--cluster-cidr", "10.46.0.0/16", "--cluster-dns", "10.43.0.53")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.stop()
		_ = exec.Command("ip", "link", "del", "lotse-e2e1").Run()
	})
	token, err := os.ReadFile(filepath.Join(srv.DataDir, "node-token"))
	if err != nil {
		t.Fatal(err)
	}
	agentDir := filepath.Join(t.TempDir(), "agent")
	agentCmd := func(tok string) *exec.Cmd {
		return exec.Command(bin, "agent", "--server", srv.URL, "--token", tok, "--data-dir", agentDir,
			"--node-name", "e2e-worker", "--agent-port", "0", "--cni-bridge", "lotse-e2e1")
	}
	log := logFile(t, "agent.log")
	startAgent := func(tok string) *exec.Cmd {
		cmd := agentCmd(tok)
		cmd.Stdout, cmd.Stderr = log, log
		return cmd
	}

	// A wrong token is refused, in one line, and the agent exits.
	bad := agentCmd("abcdef.0123456789abcdef")
	out, err := bad.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "a valid node token is required") {
		t.Fatalf("agent with a wrong token: %v\n%s", err, out)
	}

	agent := startAgent(strings.TrimSpace(string(token)))
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	stopAgent := func() { stopAgentProcess(t, agent) }
	// However the test ends, the agent running then is stopped (agent is
	// the restarted one by then), so that no agent outlives a failure.
	t.Cleanup(func() {
		if agent.ProcessState == nil {
			stopAgent()
		}
	})
	k := srv.kubectl(t)
	waitFor(t, 60*time.Second, "joined node Ready", func() (bool, string) {
		r := k.run(t, "get", "node", "e2e-worker", "--no-headers")
		return strings.Contains(r.stdout, " Ready "), r.String()
	})
	if cidr := k.ok(t, "get", "node", "e2e-worker", "-o", "jsonpath={.spec.podCIDR}"); !strings.HasPrefix(cidr, "10.46.") || cidr == "10.46.0.0/24" {
		t.Errorf("joined node's pod CIDR = %q, want a /24 of 10.46.0.0/16 other than the server's", cidr)
	}
	if plan, err := os.ReadFile(filepath.Join(agentDir, "pki", "network")); err != nil || string(plan) != "10.46.0.0/16\n10.43.0.53\n" {
		t.Errorf("joined node's network plan = %q (%v)", plan, err)
	}
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	writeBusyboxArchive(t, archive, "busybox:1.36")
	if out, err := exec.Command(bin, "image", "import", "--kubeconfig", srv.Kubeconfig, archive).CombinedOutput(); err != nil {
		t.Fatalf("lotse image import: %v\n%s", err, out)
	}
	k.createNamespace(t, "node")
	k.ok(t, "-n", "node", "run", "sleeper", "--image=busybox:1.36", "--", "sleep", "3600")
	waitRunning(t, k, "sleeper")
	if got := k.ok(t, "-n", "node", "exec", "sleeper", "--", "echo", "hi"); strings.TrimSpace(got) != "hi" {
		t.Errorf("exec on the joined node = %q", got)
	}
	resolvesWith := func(pod, want string) {
		t.Helper()
		if got := k.ok(t, "-n", "node", "exec", pod, "--", "cat", "/etc/resolv.conf"); !strings.Contains(got, "nameserver "+want+"\n") {
			t.Errorf("%s's resolv.conf lacks nameserver %s:\n%s", pod, want, got)
		}
	}
	resolvesWith("sleeper", "10.43.0.53")

	// Delete the pod while the agent is down: it stays Terminating (no
	// agent confirms), then goes once the agent is back, containers too.
	stopAgent()
	k.ok(t, "-n", "node", "delete", "pod", "sleeper", "--wait=false")
	if r := k.run(t, "-n", "node", "get", "pod", "sleeper", "--no-headers"); !strings.Contains(r.stdout, "Terminating") {
		t.Errorf("pod deleted while its agent is down is not Terminating: %s", r)
	}
	k.ok(t, "-n", "node", "delete", "pod", "sleeper", "--grace-period=0", "--force")
	agent = startAgent(strings.TrimSpace(string(token)))
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	sock := containerd.Layout{Dir: filepath.Join(agentDir, "containerd")}.Endpoint()
	noSandboxes := func(what string) {
		t.Helper()
		waitFor(t, 60*time.Second, what, func() (bool, string) {
			conn, err := containerd.Dial(sock)
			if err != nil {
				return false, err.Error()
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			list, err := runtimeapi.NewRuntimeServiceClient(conn).ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
			if err != nil {
				return false, err.Error()
			}
			return len(list.Items) == 0, strings.Repeat("sandbox left\n", len(list.Items))
		})
	}
	noSandboxes("the orphaned sandbox removed")

	// Restarted, the agent reads the plan back from its data directory.
	k.ok(t, "-n", "node", "run", "sleeper2", "--image=busybox:1.36", "--", "sleep", "3600")
	waitRunning(t, k, "sleeper2")
	resolvesWith("sleeper2", "10.43.0.53")
	k.ok(t, "-n", "node", "delete", "pod", "sleeper2", "--grace-period=1")
	noSandboxes("sleeper2's sandbox removed")
}

// stopAgentProcess sends an agent SIGTERM and requires it to stop within
// 15 s (then kills it).
func stopAgentProcess(t *testing.T, agent *exec.Cmd) {
	_ = agent.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { agent.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		agent.Process.Kill()
		<-done
		t.Error("agent did not stop within 15s of SIGTERM")
	}
}

// logFile is a file in the test's temporary directory for a process's
// output, shown when the test fails.
func logFile(t *testing.T, name string) *os.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		if t.Failed() {
			data, _ := os.ReadFile(p)
			t.Logf("%s:\n%s", name, data)
		}
	})
	return f
}
