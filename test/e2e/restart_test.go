package e2e

import (
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestRestart stops a server of its own with SIGTERM and starts it again on
// the same data directory and port: objects, the CA (so old client
// certificates) and the last-applied state must all survive.
func TestRestart(t *testing.T) {
	bin, err := lotseBinary()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	extraKubeconfig := filepath.Join(t.TempDir(), "written.kubeconfig")
	first, err := startServer(bin, dataDir, "0", append(apiOnly, "--write-kubeconfig", extraKubeconfig)...)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			first.stop()
		}
	})
	if want := filepath.Join(dataDir, "admin.kubeconfig"); first.Kubeconfig != want {
		t.Errorf("admin kubeconfig announced at %s, want %s", first.Kubeconfig, want)
	}
	k := first.kubectl(t)
	const ns = "keep"

	var uid, rv string
	t.Run("before restart", func(t *testing.T) {
		// --write-kubeconfig gives a second, working copy.
		written := &kubectl{bin: k.bin, kubeconfig: extraKubeconfig, cacheDir: t.TempDir()}
		r := written.okR(t, "get", "--raw", "/readyz")
		wantLines(t, r, r.stdout, "ok")

		k.createNamespace(t, ns)
		r = k.okR(t, "-n", ns, "create", "configmap", "settings", "--from-literal=color=blue")
		wantLines(t, r, r.stdout, "configmap/settings created")
		r = k.okR(t, "-n", ns, "apply", "-f", appYAML)
		wantLines(t, r, r.stdout, appLines("created")...)
		k.ok(t, "-n", ns, "scale", "deployment", "web", "--replicas=4")
		out := k.ok(t, "-n", ns, "get", "cm", "settings", "-o", "jsonpath={.metadata.uid} {.metadata.resourceVersion}")
		f := strings.Fields(out)
		if len(f) != 2 {
			t.Fatalf("uid and resourceVersion: %q", out)
		}
		uid, rv = f[0], f[1]
	})

	// Keep the first run's kubeconfig: its client certificate must still
	// be accepted after the restart.
	oldKubeconfig := filepath.Join(t.TempDir(), "old.kubeconfig")
	data, err := os.ReadFile(first.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(oldKubeconfig, data, 0o600); err != nil {
		t.Fatal(err)
	}

	stopped = true
	if err := first.stop(); err != nil {
		t.Fatalf("first run: %v", err)
	}
	u, err := url.Parse(first.URL)
	if err != nil {
		t.Fatalf("server URL %q: %v", first.URL, err)
	}
	second, err := startServer(bin, dataDir, u.Port(), apiOnly...)
	if err != nil {
		t.Fatalf("restart on the same data dir: %v", err)
	}
	if second.URL != first.URL {
		t.Errorf("restarted at %s, want the same address %s", second.URL, first.URL)
	}
	k = &kubectl{bin: k.bin, kubeconfig: oldKubeconfig, cacheDir: t.TempDir()}

	t.Run("after restart", func(t *testing.T) {
		r := k.okR(t, "get", "ns", ns)
		tb := oneTable(t, r.stdout, "NAME", "STATUS", "AGE")
		wantRow(t, tb, r.stdout, ns, map[string]string{"STATUS": "Active"})
		r = k.okR(t, "-n", ns, "get", "cm", "settings", "-o", "jsonpath={.metadata.uid} {.metadata.resourceVersion} {.data.color}")
		wantLines(t, r, r.stdout, uid+" "+rv+" blue")
		r = k.okR(t, "-n", ns, "get", "deploy", "web", "-o", "jsonpath={.spec.replicas}")
		wantLines(t, r, r.stdout, "4")
		r = k.okR(t, "-n", ns, "get", "secret", "web-secret", "-o", "jsonpath={.data.password}")
		wantLines(t, r, r.stdout, "c2VjcmV0")
		r = k.okR(t, "get", "ns")
		tb = oneTable(t, r.stdout, "NAME", "STATUS", "AGE")
		for _, n := range []string{"default", "kube-system", "kube-public", "kube-node-lease", ns} {
			wantRow(t, tb, r.stdout, n, map[string]string{"STATUS": "Active"})
		}
		// last-applied survived: the manifest is unchanged except the
		// replicas that scale changed, which apply puts back.
		r = k.okR(t, "-n", ns, "apply", "-f", appYAML)
		wantLines(t, r, r.stdout,
			"deployment.apps/web configured",
			"service/web unchanged",
			"configmap/web-config unchanged",
			"secret/web-secret unchanged",
			"job.batch/migrate unchanged")
		// New writes carry on from the old revision.
		k.ok(t, "-n", ns, "create", "configmap", "later", "--from-literal=a=b")
		newRV := strings.TrimSpace(k.ok(t, "-n", ns, "get", "cm", "later", "-o", "jsonpath={.metadata.resourceVersion}"))
		oldN, err1 := strconv.ParseUint(rv, 10, 64)
		newN, err2 := strconv.ParseUint(newRV, 10, 64)
		if err1 != nil || err2 != nil || newN <= oldN {
			t.Errorf("resourceVersion after restart %q is not above %q from before it", newRV, rv)
		}
	})
	if err := second.stop(); err != nil {
		t.Errorf("second run: %v", err)
	}
}
