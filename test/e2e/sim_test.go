package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSimulatedCluster runs the whole control plane — scheduler and
// controllers — on `lotse sim` nodes and drives a Deployment through its
// life with kubectl: create, roll out, update, roll back, scale, delete.
func TestSimulatedCluster(t *testing.T) {
	bin, err := lotseBinary()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := startServer(bin, filepath.Join(t.TempDir(), "data"), "0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.stop() })
	sim := exec.Command(bin, "sim", "--kubeconfig", srv.Kubeconfig, "--nodes", "2", "--name-prefix", "e2e-")
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sim.Process.Signal(syscall.SIGTERM)
		_ = sim.Wait()
	})
	k := srv.kubectl(t)
	k.createNamespace(t, "sim")
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := k.run(t, "get", "nodes", "-l", "type=lotse-sim", "--no-headers")
		if strings.Count(out.stdout, " Ready ") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("simulated nodes not Ready: %s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// A short grace period keeps terminations (the sim honours it) quick.
	app := writeFile(t, "web.yaml", `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: web, image: "nginx:1.25", resources: {requests: {cpu: 100m}}}]
`)
	r := k.okR(t, "-n", "sim", "apply", "-f", app)
	wantLines(t, r, r.stdout, "deployment.apps/web created")
	r = k.okR(t, "-n", "sim", "rollout", "status", "deployment/web", "--timeout=60s")
	wantMatch(t, r, r.stdout, `deployment "web" successfully rolled out`)
	r = k.okR(t, "-n", "sim", "get", "pods", "-o", "wide", "--no-headers")
	if n := strings.Count(r.stdout, "Running"); n != 3 || !strings.Contains(r.stdout, "e2e-") {
		t.Fatalf("want 3 Running pods on e2e- nodes:\n%s", r)
	}

	k.ok(t, "-n", "sim", "set", "image", "deployment/web", "web=nginx:1.26")
	r = k.okR(t, "-n", "sim", "rollout", "status", "deployment/web", "--timeout=90s")
	wantMatch(t, r, r.stdout, `deployment "web" successfully rolled out`)
	r = k.okR(t, "-n", "sim", "rollout", "history", "deployment/web")
	wantMatch(t, r, r.stdout, `^1\s+<none>$`, `^2\s+<none>$`)
	k.ok(t, "-n", "sim", "rollout", "undo", "deployment/web")
	r = k.okR(t, "-n", "sim", "rollout", "status", "deployment/web", "--timeout=90s")
	wantMatch(t, r, r.stdout, `deployment "web" successfully rolled out`)
	img := k.ok(t, "-n", "sim", "get", "deployment", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
	if img != "nginx:1.25" {
		t.Fatalf("after undo the image is %q, want nginx:1.25", img)
	}

	k.ok(t, "-n", "sim", "scale", "deployment", "web", "--replicas=5")
	r = k.okR(t, "-n", "sim", "rollout", "status", "deployment/web", "--timeout=60s")
	wantMatch(t, r, r.stdout, `deployment "web" successfully rolled out`)

	// Drain a node under a PodDisruptionBudget: the eviction API lets
	// pods go one at a time as their replacements become ready on the
	// other node (429 in between, which kubectl drain retries).
	k.okStdin(t, `apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  minAvailable: 4
  selector: {matchLabels: {app: web}}
`, "-n", "sim", "apply", "-f", "-")
	deadline = time.Now().Add(30 * time.Second)
	for {
		r := k.run(t, "-n", "sim", "get", "pdb", "web", "--no-headers")
		if f := strings.Fields(r.stdout); len(f) >= 4 && f[1] == "4" && f[3] == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the budget never allowed one disruption:\n%s", r)
		}
		time.Sleep(200 * time.Millisecond)
	}
	r = k.okR(t, "drain", "e2e-0", "--ignore-daemonsets", "--timeout=120s")
	wantMatch(t, r, r.stdout, `node/e2e-0 drained`)
	r = k.okR(t, "-n", "sim", "get", "pods", "-o", "wide", "--no-headers", "--field-selector", "spec.nodeName=e2e-0")
	if strings.TrimSpace(r.stdout) != "" {
		t.Errorf("pods left on the drained node:\n%s", r)
	}
	r = k.okR(t, "get", "node", "e2e-0", "--no-headers")
	wantMatch(t, r, r.stdout, `SchedulingDisabled`)
	k.ok(t, "uncordon", "e2e-0")

	// Deleting the deployment takes its ReplicaSets and pods with it.
	k.ok(t, "-n", "sim", "delete", "deployment", "web")
	deadline = time.Now().Add(60 * time.Second)
	for {
		out := k.run(t, "-n", "sim", "get", "rs,pods", "--no-headers")
		if strings.TrimSpace(out.stdout) == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica sets and pods not collected:\n%s", out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
