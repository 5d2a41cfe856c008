package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/lotse/lotse/internal/containerd"
	"github.com/lotse/lotse/internal/images"
)

// TestNode runs real pods on the server's own node — containerd, runc and
// the CNI plugins from Debian — and checks with kubectl what a user sees:
// the node, pods Running with an IP, logs, exec, port-forward, graceful
// deletion, crash loops, OOM kills, probes, volumes and env, init
// containers, and pods surviving a restart of lotse.
func TestNode(t *testing.T) {
	if err := containerd.CheckBinaries(); err != nil {
		t.Fatal(err) // CI installs them; a machine without them cannot pass
	}
	bin, err := lotseBinary()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	ports := pickNetworkPorts(t)
	// Small container logs, so that the log rotation test fills one fast.
	logLimits := []string{"--container-log-max-size", "16Ki", "--container-log-max-files", "2"}
	srv, err := startNodeServer(bin, dataDir, append(ports.args(), logLimits...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if srv != nil {
			cleanupNode(t, srv)
			// The bridge would keep this pod CIDR's address for the next run.
			_ = exec.Command("ip", "link", "del", "lotse-e2e0").Run()
		}
	}()
	k := srv.kubectl(t)

	// The node registers with what `get nodes -o wide` shows.
	waitFor(t, 30*time.Second, "node Ready", func() (bool, string) {
		r := k.run(t, "get", "nodes", "-o", "wide")
		return strings.Contains(r.stdout, " Ready ") && strings.Contains(r.stdout, "containerd://"), r.String()
	})
	node := getJSON(t, k, "node", "e2e-node")
	for _, res := range []string{"cpu", "memory", "pods", "ephemeral-storage"} {
		if field(node, "status", "allocatable", res) == nil {
			t.Errorf("node has no allocatable %s", res)
		}
	}
	k.ok(t, "get", "lease", "-n", "kube-node-lease", "e2e-node")

	// Images come from lotse's own registry: no internet needed.
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	writeBusyboxArchive(t, archive, "busybox:1.36")
	out, err := exec.Command(bin, "image", "import", "--kubeconfig", srv.Kubeconfig, archive).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "imported docker.io/library/busybox:1.36") {
		t.Fatalf("lotse image import: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "image", "ls", "--kubeconfig", srv.Kubeconfig).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "docker.io/library/busybox") || !strings.Contains(string(out), "lotse.local/pause") {
		t.Fatalf("lotse image ls: %v\n%s", err, out)
	}
	k.createNamespace(t, "node")
	n := func(args ...string) []string { return append([]string{"-n", "node"}, args...) }

	t.Run("run, exec, port-forward", func(t *testing.T) {
		k.ok(t, n("run", "web", "--image=busybox:1.36", "--port=8080", "--", "httpd", "-f", "-p", "8080", "-h", "/etc")...)
		ip := waitRunning(t, k, "web")
		if !strings.HasPrefix(ip, "10.89.0.") {
			t.Errorf("pod IP %q is not from the node's pod CIDR 10.89.0.0/24", ip)
		}
		// The pod is reachable from the host on its IP.
		body := httpGet(t, "http://"+net.JoinHostPort(ip, "8080")+"/hostname")
		if strings.TrimSpace(body) != "web" {
			t.Errorf("GET /hostname on the pod IP = %q, want web", body)
		}
		if got := k.ok(t, n("exec", "web", "--", "hostname")...); strings.TrimSpace(got) != "web" {
			t.Errorf("exec hostname = %q", got)
		}
		r := k.runStdin(t, "echo from-stdin; exit 3\n", n("exec", "-i", "web", "--", "sh")...)
		if r.code == 0 || !strings.Contains(r.stdout, "from-stdin") || !strings.Contains(r.stderr, "exit code 3") {
			t.Errorf("exec -i with exit 3:\n%s", r)
		}
		// exec -it with a real terminal: script(1) gives kubectl a pty.
		tty := exec.Command("script", "-qec", "kubectl -n node exec -it web -- sh -c 'tty; stty size'", "/dev/null")
		tty.Env = append(os.Environ(), "KUBECONFIG="+k.kubeconfig, "KUBECACHEDIR="+k.cacheDir)
		tty.Stdin = strings.NewReader("")
		if out, err := tty.CombinedOutput(); err != nil || !strings.Contains(string(out), "/dev/pts/") {
			t.Errorf("exec -it: %v\n%s", err, out)
		}
		port := freePort(t)
		pf := k.start(t, n("port-forward", "pod/web", port+":8080")...)
		pf.waitFor(t, "port-forward to listen", func(s string) bool { return strings.Contains(s, "Forwarding from") })
		if body := httpGet(t, "http://127.0.0.1:"+port+"/hostname"); strings.TrimSpace(body) != "web" {
			t.Errorf("GET through port-forward = %q, want web", body)
		}
		pf.stop()
		// kubectl 1.27 speaks only SPDY; 1.33 tries WebSocket first.
		old := srv.kubectlBin(t, "kubectl.1.27")
		if got := old.ok(t, n("exec", "web", "--", "hostname")...); strings.TrimSpace(got) != "web" {
			t.Errorf("kubectl 1.27 exec hostname = %q", got)
		}
		port = freePort(t)
		pf = old.start(t, n("port-forward", "pod/web", port+":8080")...)
		pf.waitFor(t, "kubectl 1.27 port-forward to listen", func(s string) bool { return strings.Contains(s, "Forwarding from") })
		if body := httpGet(t, "http://127.0.0.1:"+port+"/hostname"); strings.TrimSpace(body) != "web" {
			t.Errorf("GET through kubectl 1.27 port-forward = %q, want web", body)
		}
		pf.stop()
	})

	t.Run("run -i --rm attaches", func(t *testing.T) {
		// kubectl run -i attaches to the container's stdin and output,
		// then deletes the pod.
		r := k.runStdin(t, "hello\n", n("run", "att", "--image=busybox:1.36", "-i", "--rm", "--restart=Never", "--", "sh", "-c", "read x; echo got $x")...)
		if r.code != 0 || !strings.Contains(r.stdout, "got hello") {
			t.Errorf("run -i --rm:\n%s", r)
		}
		waitFor(t, 30*time.Second, "the attached pod deleted", func() (bool, string) {
			r := k.run(t, n("get", "pod", "att")...)
			return r.code != 0 && strings.Contains(r.stderr, "NotFound"), r.String()
		})
		// A command that ends at once still shows its output: kubectl
		// finds the pod ended and prints its logs.
		for i := range 3 {
			name := fmt.Sprintf("quick%d", i)
			r := k.run(t, n("run", name, "--image=busybox:1.36", "-i", "--rm", "--restart=Never", "--", "echo", "quick-"+name)...)
			if r.code != 0 || !strings.Contains(r.stdout, "quick-"+name) {
				t.Errorf("run -i --rm of a command that ends at once:\n%s", r)
			}
		}
	})

	t.Run("service account token", func(t *testing.T) {
		// Every pod gets kube-api-access: a token bound to it, the
		// cluster CA and its namespace, which in-cluster clients use.
		k.ok(t, n("run", "sa", "--image=busybox:1.36", "--", "sleep", "3600")...)
		waitRunning(t, k, "sa")
		const dir = "/var/run/secrets/kubernetes.io/serviceaccount/"
		token := k.ok(t, n("exec", "sa", "--", "cat", dir+"token")...)
		ca := k.ok(t, n("exec", "sa", "--", "cat", dir+"ca.crt")...)
		if ns := k.ok(t, n("exec", "sa", "--", "cat", dir+"namespace")...); ns != "node" {
			t.Errorf("namespace file = %q, want node", ns)
		}
		// A client with nothing but the pod's files is the pod's account.
		whoami := func(token string) result {
			path := filepath.Join(t.TempDir(), "sa.kubeconfig")
			cfg := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: %q, certificate-authority-data: %s}}]\n"+
				"users: [{name: u, user: {token: %q}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
				srv.URL, base64.StdEncoding.EncodeToString([]byte(ca)), strings.TrimSpace(token))
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			as := *k
			as.kubeconfig = path
			return as.run(t, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
		}
		if r := whoami(token); r.code != 0 || r.stdout != "system:serviceaccount:node:default" {
			t.Errorf("auth whoami with the pod's token:\n%s", r)
		}
		// kubectl create token asks the TokenRequest API for one.
		if r := whoami(k.ok(t, n("create", "token", "default", "--duration", "10m")...)); r.code != 0 || r.stdout != "system:serviceaccount:node:default" {
			t.Errorf("auth whoami with kubectl create token's token:\n%s", r)
		}
		// The pod's token dies with the pod.
		k.ok(t, n("delete", "pod", "sa", "--grace-period=1")...)
		waitFor(t, 30*time.Second, "the pod's token refused", func() (bool, string) {
			r := whoami(token)
			return r.code != 0 && strings.Contains(r.stderr, "Unauthorized"), r.String()
		})
	})

	t.Run("persistent volume claim on local-path", func(t *testing.T) {
		// A claim without a class gets the built-in local-path default,
		// which binds when its first pod is scheduled: the volume is a
		// directory on the node that outlives the pod and goes with the
		// claim.
		pod := func(name, cmd string) string {
			return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: "busybox:1.36", command: [sh, -c, %q], volumeMounts: [{name: data, mountPath: /data}]}
  volumes:
  - {name: data, persistentVolumeClaim: {claimName: data}}
`, name, cmd)
		}
		claim := `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 10Mi}}}
`
		k.okStdin(t, claim+"---\n"+pod("writer", "echo kept > /data/f; sleep 3600"), n("apply", "-f", "-")...)
		waitRunning(t, k, "writer")
		if got := k.ok(t, n("get", "pvc", "data", "-o", "jsonpath={.status.phase} {.spec.storageClassName}")...); got != "Bound local-path" {
			t.Fatalf("claim = %q, want Bound local-path", got)
		}
		pv := k.ok(t, n("get", "pvc", "data", "-o", "jsonpath={.spec.volumeName}")...)
		dir := k.ok(t, "get", "pv", pv, "-o", "jsonpath={.spec.hostPath.path}")
		if !strings.HasPrefix(dir, dataDir) {
			t.Errorf("local-path volume at %q, want it under the node's data dir %s", dir, dataDir)
		}
		k.ok(t, n("delete", "pod", "writer")...)
		k.okStdin(t, pod("reader", "sleep 3600"), n("apply", "-f", "-")...)
		waitRunning(t, k, "reader")
		if got := strings.TrimSpace(k.ok(t, n("exec", "reader", "--", "cat", "/data/f")...)); got != "kept" {
			t.Errorf("the second pod reads %q from the claim, want kept", got)
		}
		k.ok(t, n("delete", "pod", "reader")...)
		k.ok(t, n("delete", "pvc", "data")...)
		waitFor(t, 30*time.Second, "the volume and its directory gone", func() (bool, string) {
			r := k.run(t, "get", "pv", pv)
			_, err := os.Stat(dir)
			return r.code != 0 && os.IsNotExist(err), fmt.Sprintf("%s; stat: %v", r, err)
		})
	})

	t.Run("kubectl debug", func(t *testing.T) {
		// An ephemeral container joins a running pod and sees its target's
		// processes.
		k.ok(t, n("run", "dbg", "--image=busybox:1.36", "--", "sleep", "3600")...)
		waitRunning(t, k, "dbg")
		r := k.runStdin(t, "ps; exit\n", n("debug", "-i", "dbg", "--image=busybox:1.36", "--target=dbg", "-c", "debugger", "--", "sh")...)
		if r.code != 0 {
			t.Errorf("kubectl debug:\n%s", r)
		}
		waitFor(t, 30*time.Second, "the debugger terminated, the pod still Running", func() (bool, string) {
			got := k.ok(t, n("get", "pod", "dbg", "-o", `jsonpath={.status.ephemeralContainerStatuses[0].name} {.status.ephemeralContainerStatuses[0].state.terminated.exitCode} {.status.phase}`)...)
			return got == "debugger 0 Running", got
		})
		// Its ps saw the target's process. (Read from its log: kubectl
		// debug makes the ephemeral container without stdinOnce, and
		// containerd ends an attach's output when the attach's stdin
		// closes unless stdinOnce is set — the same with upstream's
		// kubelet on containerd — so with stdin piped from a file the
		// output after EOF never reaches kubectl, and stdout above is
		// not checked.)
		if out := k.ok(t, n("logs", "dbg", "-c", "debugger")...); !strings.Contains(out, "sleep 3600") {
			t.Errorf("the debugger's ps does not show its target's process:\n%s", out)
		}
		k.ok(t, n("delete", "pod", "dbg", "--grace-period=1")...)
	})

	t.Run("logs and graceful delete", func(t *testing.T) {
		k.ok(t, n("run", "logger", "--image=busybox:1.36", "--", "sh", "-c", `i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.2; done`)...)
		waitRunning(t, k, "logger")
		follow := k.start(t, n("logs", "-f", "logger")...)
		follow.waitFor(t, "followed log lines", func(s string) bool { return strings.Contains(s, "tick 10\n") })
		follow.stop()
		if got := strings.Split(strings.TrimSpace(k.ok(t, n("logs", "logger", "--tail=2")...)), "\n"); len(got) != 2 {
			t.Errorf("logs --tail=2 gave %d lines: %q", len(got), got)
		}
		ts := k.ok(t, n("logs", "logger", "--tail=1", "--timestamps")...)
		if _, err := time.Parse(time.RFC3339Nano, strings.Fields(ts)[0]); err != nil {
			t.Errorf("logs --timestamps: %q: %v", ts, err)
		}
		// sh ignores SIGTERM: the grace period runs out, then SIGKILL.
		start := time.Now()
		k.ok(t, n("delete", "pod", "logger", "--grace-period=2")...)
		if d := time.Since(start); d < 2*time.Second || d > 15*time.Second {
			t.Errorf("delete with a 2s grace period took %v", d)
		}
		k.fails(t, n("get", "pod", "logger")...)
	})

	t.Run("log rotation", func(t *testing.T) {
		// ~200 bytes ten times a second: over 16Ki within 10 s.
		k.ok(t, n("run", "chatty", "--image=busybox:1.36", "--", "sh", "-c",
			`i=0; while true; do echo "line $i $(printf '%0190d' 0)"; i=$((i+1)); sleep 0.1; done`)...)
		waitRunning(t, k, "chatty")
		follow := k.start(t, n("logs", "-f", "chatty")...)
		defer follow.stop()
		logs := filepath.Join(srv.DataDir, "agent", "logs")
		files := func() []string {
			m, _ := filepath.Glob(filepath.Join(logs, "node_chatty_*", "chatty", "0.log*"))
			return m
		}
		waitFor(t, 60*time.Second, "a rotated log", func() (bool, string) { return len(files()) == 2, fmt.Sprint(files()) })
		// The follower moves on to the new file: a line written after the
		// rotation reaches it.
		last := strings.Count(follow.stdout.String(), "\n")
		follow.waitFor(t, "lines after the rotation", func(s string) bool { return strings.Count(s, "\n") > last+20 })
		// Two rotations later there are still two files: the current one
		// and the newest rotated.
		first := files()
		waitFor(t, 60*time.Second, "another rotation", func() (bool, string) {
			now := files()
			return len(now) == 2 && !slices.Equal(now, first), fmt.Sprint(now)
		})
		if got := files(); len(got) > 2 {
			t.Errorf("log files kept: %v, want at most 2", got)
		}
		k.ok(t, n("delete", "pod", "chatty", "--grace-period=0", "--force")...)
	})

	t.Run("crash loop and OOM kill", func(t *testing.T) {
		k.okStdin(t, `apiVersion: v1
kind: Pod
metadata: {name: crash}
spec:
  containers: [{name: c, image: "busybox:1.36", command: [sh, -c, "echo dying; exit 2"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: oom}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox:1.36
    command: [sh, -c, "x=a; while true; do x=$x$x; done"]
    resources: {limits: {memory: 20Mi}}
`, n("apply", "-f", "-")...)
		waitFor(t, 60*time.Second, "CrashLoopBackOff", func() (bool, string) {
			r := k.run(t, n("get", "pod", "crash", "--no-headers")...)
			return strings.Contains(r.stdout, "CrashLoopBackOff"), r.String()
		})
		pod := getJSON(t, k, n("pod", "crash")...)
		cs := field(pod, "status", "containerStatuses").([]any)[0]
		if rc, _ := field(cs, "restartCount").(float64); rc < 1 {
			t.Errorf("restartCount = %v, want >= 1", rc)
		}
		if code := field(cs, "lastState", "terminated", "exitCode"); code != float64(2) {
			t.Errorf("lastState exit code = %v, want 2", code)
		}
		if got := k.ok(t, n("logs", "crash", "--previous")...); !strings.Contains(got, "dying") {
			t.Errorf("logs --previous = %q", got)
		}
		waitFor(t, 60*time.Second, "OOMKilled", func() (bool, string) {
			r := k.run(t, n("get", "pod", "oom", "-o", "jsonpath={.status.phase} {.status.containerStatuses[0].state.terminated.reason} {.status.containerStatuses[0].state.terminated.exitCode}")...)
			return r.stdout == "Failed OOMKilled 137", r.String()
		})
		k.ok(t, n("delete", "pod", "crash", "oom", "--grace-period=0", "--force")...)
	})

	t.Run("probes", func(t *testing.T) {
		k.okStdin(t, `apiVersion: v1
kind: Pod
metadata: {name: probed}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: busybox:1.36
    command: [httpd, -f, -p, "8080", -h, /etc]
    readinessProbe: {httpGet: {path: /hostname, port: 8080}, periodSeconds: 1}
  - name: flaky
    image: busybox:1.36
    command: [sh, -c, "touch /tmp/alive; sleep 3; rm /tmp/alive; sleep 3600"]
    livenessProbe: {exec: {command: [test, -f, /tmp/alive]}, periodSeconds: 1, failureThreshold: 2}
  - name: never-ready
    image: busybox:1.36
    command: [sleep, "3600"]
    readinessProbe: {tcpSocket: {port: 9999}, periodSeconds: 1}
`, n("apply", "-f", "-")...)
		start := time.Now()
		waitFor(t, 60*time.Second, "liveness restart", func() (bool, string) {
			r := k.run(t, n("get", "pod", "probed", "-o", "jsonpath={.status.containerStatuses[?(@.name==\"flaky\")].restartCount}")...)
			c, _ := strconv.Atoi(strings.TrimSpace(r.stdout))
			return c >= 1, r.String()
		})
		t.Logf("liveness restart after %v", time.Since(start))
		waitFor(t, 30*time.Second, "web ready, never-ready not", func() (bool, string) {
			r := k.run(t, n("get", "pod", "probed", "-o", "jsonpath={range .status.containerStatuses[*]}{.name}={.ready} {end}")...)
			return strings.Contains(r.stdout, "web=true") && strings.Contains(r.stdout, "never-ready=false"), r.String()
		})
		if r := k.run(t, n("get", "pod", "probed", "--no-headers")...); !strings.Contains(r.stdout, "/3") || strings.Contains(r.stdout, "3/3") {
			t.Errorf("READY column with one unready container: %s", r)
		}
		if ev := k.ok(t, n("get", "events", "--field-selector", "involvedObject.name=probed")...); !strings.Contains(ev, "Liveness probe failed") {
			t.Errorf("no Unhealthy liveness event:\n%s", ev)
		}
		k.ok(t, n("delete", "pod", "probed", "--grace-period=0", "--force")...)
	})

	t.Run("volumes, env and init containers", func(t *testing.T) {
		k.ok(t, n("create", "secret", "generic", "creds", "--from-literal=password=s3cret")...)
		k.ok(t, n("create", "configmap", "settings", "--from-literal=mode=fast")...)
		k.okStdin(t, `apiVersion: v1
kind: Pod
metadata: {name: vols, labels: {app: vols}}
spec:
  restartPolicy: Never
  initContainers:
  - {name: prepare, image: "busybox:1.36", command: [sh, -c, "echo prepared > /work/state"], volumeMounts: [{name: work, mountPath: /work}]}
  containers:
  - name: main
    image: busybox:1.36
    command: [sh, -c, "cat /work/state; cat /secret/password; echo; mount | grep ' /secret '; echo mode=$MODE name=$POD_NAME app=$(cat /info/labels); sleep 3600"]
    env:
    - {name: MODE, valueFrom: {configMapKeyRef: {name: settings, key: mode}}}
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    volumeMounts:
    - {name: work, mountPath: /work}
    - {name: secret, mountPath: /secret}
    - {name: info, mountPath: /info}
    - {name: conf, mountPath: /conf}
  volumes:
  - {name: work, emptyDir: {}}
  - {name: secret, secret: {secretName: creds}}
  - {name: conf, configMap: {name: settings}}
  - {name: info, downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: "metadata.labels['app']"}}]}}
`, n("apply", "-f", "-")...)
		waitRunning(t, k, "vols")
		waitFor(t, 20*time.Second, "the container's output", func() (bool, string) {
			r := k.run(t, n("logs", "vols")...)
			return strings.Contains(r.stdout, "mode=fast"), r.String()
		})
		logs := k.ok(t, n("logs", "vols")...)
		for _, want := range []string{"prepared", "s3cret", "tmpfs on /secret", "mode=fast name=vols app=vols"} {
			if !strings.Contains(logs, want) {
				t.Errorf("output lacks %q:\n%s", want, logs)
			}
		}
		if got := k.ok(t, n("logs", "vols", "-c", "prepare")...); got != "" {
			t.Errorf("init container logged %q", got)
		}
		// A configMap volume follows its source in place.
		k.ok(t, n("patch", "configmap", "settings", "-p", `{"data":{"mode":"slow"}}`)...)
		waitFor(t, 40*time.Second, "configMap volume update", func() (bool, string) {
			r := k.run(t, n("exec", "vols", "--", "cat", "/conf/mode")...)
			return r.stdout == "slow", r.String()
		})
	})

	t.Run("sidecar", func(t *testing.T) {
		// A sidecar (init container with restartPolicy Always) starts
		// before the app container, runs beside it, and is stopped when
		// the pod completes.
		k.okStdin(t, `apiVersion: v1
kind: Pod
metadata: {name: sidecar}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: side
    image: busybox:1.36
    restartPolicy: Always
    command: [sh, -c, "echo from-side > /shared/x; sleep 3600"]
    volumeMounts: [{name: shared, mountPath: /shared}]
  containers:
  - name: main
    image: busybox:1.36
    command: [sh, -c, "sleep 1; cat /shared/x"]
    volumeMounts: [{name: shared, mountPath: /shared}]
  volumes: [{name: shared, emptyDir: {}}]
`, n("apply", "-f", "-")...)
		waitFor(t, 60*time.Second, "the pod with a sidecar completes", func() (bool, string) {
			r := k.run(t, n("get", "pod", "sidecar", "-o", "jsonpath={.status.phase} {.status.initContainerStatuses[0].state.terminated.reason}")...)
			return strings.HasPrefix(r.stdout, "Succeeded ") && r.stdout != "Succeeded ", r.String()
		})
		if got := k.ok(t, n("logs", "sidecar", "-c", "main")...); got != "from-side\n" {
			t.Errorf("main container read %q from the sidecar", got)
		}
		k.ok(t, n("delete", "pod", "sidecar")...)
	})

	t.Run("security context and readiness gates", func(t *testing.T) {
		k.okStdin(t, `apiVersion: v1
kind: Pod
metadata: {name: nonroot}
spec:
  securityContext: {runAsNonRoot: true}
  containers: [{name: c, image: "busybox:1.36", command: [sleep, "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: caps}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox:1.36
    command: [sh, -c, "if chown 1 /tmp 2>/dev/null; then echo chowned; else echo denied; fi; id -u"]
    securityContext: {capabilities: {drop: [CHOWN]}}
---
apiVersion: v1
kind: Pod
metadata: {name: gated}
spec:
  readinessGates: [{conditionType: example.com/ready}]
  containers: [{name: c, image: "busybox:1.36", command: [sleep, "3600"]}]
`, n("apply", "-f", "-")...)
		waitFor(t, 30*time.Second, "runAsNonRoot refused", func() (bool, string) {
			r := k.run(t, n("get", "pod", "nonroot", "-o", "jsonpath={.status.containerStatuses[0].state.waiting.reason}: {.status.containerStatuses[0].state.waiting.message}")...)
			return strings.HasPrefix(r.stdout, "CreateContainerConfigError: container has runAsNonRoot and image will run as root"), r.String()
		})
		waitFor(t, 30*time.Second, "dropped capability", func() (bool, string) {
			r := k.run(t, n("logs", "caps")...)
			return r.stdout == "denied\n0\n", r.String()
		})
		waitFor(t, 30*time.Second, "readiness gate holds Ready back", func() (bool, string) {
			r := k.run(t, n("get", "pod", "gated", "-o", `jsonpath={.status.phase} {.status.conditions[?(@.type=="ContainersReady")].status} {.status.conditions[?(@.type=="Ready")].reason}`)...)
			return r.stdout == "Running True ReadinessGatesNotReady", r.String()
		})
		k.ok(t, n("delete", "pod", "nonroot", "caps", "gated", "--grace-period=0", "--force")...)
	})

	t.Run("workloads on real pods", func(t *testing.T) {
		// The controllers with real containers: a Job runs to
		// completion, a DaemonSet puts one pod on the node, a
		// StatefulSet and a Deployment roll out.
		k.ok(t, n("create", "job", "hello", "--image=busybox:1.36", "--", "echo", "hello from a job")...)
		k.okStdin(t, `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: c, image: "busybox:1.36", command: [sleep, "3600"]}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: c, image: "busybox:1.36", command: [sleep, "3600"]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: front}
spec:
  replicas: 2
  selector: {matchLabels: {app: front}}
  template:
    metadata: {labels: {app: front}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: c, image: "busybox:1.36", command: [sleep, "3600"], resources: {requests: {cpu: 10m}}}]
`, n("apply", "-f", "-")...)
		k.ok(t, n("wait", "--for=condition=complete", "job/hello", "--timeout=60s")...)
		if got := k.ok(t, n("logs", "job/hello")...); got != "hello from a job\n" {
			t.Errorf("logs job/hello = %q", got)
		}
		for _, w := range []string{"daemonset/agent", "statefulset/db", "deployment/front"} {
			k.ok(t, n("rollout", "status", w, "--timeout=60s")...)
		}
		if got := k.ok(t, n("get", "pod", "db-0", "db-1", "-o", "jsonpath={.items[*].status.phase}")...); got != "Running Running" {
			t.Errorf("StatefulSet pods: %q", got)
		}
		// A Service over the Deployment lists its pods' addresses.
		k.ok(t, n("expose", "deployment", "front", "--port=80", "--target-port=8080")...)
		ips := strings.Fields(k.ok(t, n("get", "pods", "-l", "app=front", "-o", "jsonpath={.items[*].status.podIP}")...))
		waitFor(t, 30*time.Second, "endpoints of the service", func() (bool, string) {
			r := k.run(t, n("get", "endpoints", "front", "-o", "jsonpath={.subsets[*].addresses[*].ip}")...)
			got := strings.Fields(r.stdout)
			slices.Sort(got)
			slices.Sort(ips)
			return len(ips) == 2 && slices.Equal(got, ips), r.String()
		})
		if r := k.run(t, n("get", "endpointslices", "-l", "kubernetes.io/service-name=front", "--no-headers")...); !strings.Contains(r.stdout, "8080") {
			t.Errorf("EndpointSlice of the service:\n%s", r)
		}
		k.ok(t, n("delete", "service", "front")...)
		// The autoscaler reads the pods' usage from metrics.k8s.io.
		k.ok(t, n("autoscale", "deployment", "front", "--min=2", "--max=3", "--cpu-percent=50")...)
		waitFor(t, 60*time.Second, "the autoscaler measuring cpu", func() (bool, string) {
			r := k.run(t, n("get", "hpa", "front", "-o", `jsonpath={.status.currentReplicas} {.status.conditions[?(@.type=="ScalingActive")].reason}`)...)
			return r.stdout == "2 ValidMetricFound", r.String()
		})
		if r := k.run(t, n("get", "hpa", "front", "--no-headers")...); !strings.Contains(r.stdout, "cpu: ") || !strings.Contains(r.stdout, "/50%") {
			t.Errorf("kubectl get hpa:\n%s", r)
		}
		k.ok(t, n("delete", "hpa", "front")...)
		k.ok(t, n("delete", "job", "hello")...)
		k.ok(t, n("delete", "daemonset", "agent")...)
		k.ok(t, n("delete", "statefulset", "db")...)
		k.ok(t, n("delete", "deployment", "front")...)
	})

	t.Run("kubectl top", func(t *testing.T) {
		// The agent samples every 5s; usage needs two samples.
		waitFor(t, 30*time.Second, "pod metrics", func() (bool, string) {
			r := k.run(t, n("top", "pod", "web", "--no-headers")...)
			return r.code == 0 && strings.HasPrefix(r.stdout, "web "), r.String()
		})
		r := k.run(t, "top", "nodes", "--no-headers")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "e2e-node ") {
			t.Errorf("kubectl top nodes:\n%s", r)
		}
		if r := k.run(t, n("top", "pod", "no-such-pod")...); r.code == 0 || !strings.Contains(r.stderr, "NotFound") {
			t.Errorf("kubectl top of a missing pod:\n%s", r)
		}
	})

	t.Run("services, DNS, ingress, network policy", func(t *testing.T) { testNetwork(t, k, ports) })

	t.Run("pods survive a restart of lotse", func(t *testing.T) {
		before := k.ok(t, n("get", "pod", "web", "-o", "jsonpath={.status.containerStatuses[0].containerID}")...)
		if err := srv.stop(); err != nil {
			t.Fatal(err)
		}
		// Fresh ports: those picked at the start were free then, but
		// since then any outgoing connection of the test may have been
		// given one of them as its local port, and a listener cannot
		// bind a port a connected socket holds.
		srv, err = startNodeServer(bin, dataDir, pickNetworkPorts(t).args()...)
		if err != nil {
			t.Fatal(err)
		}
		k = srv.kubectl(t)
		waitFor(t, 30*time.Second, "web Running after restart", func() (bool, string) {
			r := k.run(t, n("get", "pod", "web", "-o", "jsonpath={.status.phase} {.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].containerID}")...)
			return r.stdout == "Running 0 "+before, r.String()
		})
		// The agent is back once it has re-registered (its port is new).
		waitFor(t, 30*time.Second, "exec after restart", func() (bool, string) {
			r := k.run(t, n("exec", "web", "--", "hostname")...)
			return strings.TrimSpace(r.stdout) == "web", r.String()
		})
	})
}

// waitRunning waits for a pod to run and returns its IP.
func waitRunning(t *testing.T, k *kubectl, name string) string {
	t.Helper()
	var ip string
	waitFor(t, 60*time.Second, name+" Running", func() (bool, string) {
		r := k.run(t, "-n", "node", "get", "pod", name, "-o", "jsonpath={.status.phase} {.status.podIP}")
		phase, addr, _ := strings.Cut(r.stdout, " ")
		ip = addr
		return phase == "Running" && addr != "", r.String()
	})
	return ip
}

func waitFor(t *testing.T, timeout time.Duration, what string, ok func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, last := ok()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last:\n%s", timeout, what, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	var lastErr error
	for i := 0; i < 20; i++ {
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(body)
		}
		lastErr = err
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, lastErr)
	return ""
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// writeBusyboxArchive builds a busybox image from Debian's busybox-static
// and writes it as a docker archive tagged ref.
func writeBusyboxArchive(t *testing.T, path, ref string) {
	t.Helper()
	img, err := images.Busybox("/bin/busybox")
	if err != nil {
		t.Fatalf("%v (apt-get install busybox-static)", err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := images.WriteArchive(f, ref, img); err != nil {
		t.Fatal(err)
	}
}

// cleanupNode removes every pod the test left, through the API first
// (the agent stops them), then, for anything still there, straight
// through CRI, and stops the server: no containers outlive the test.
func cleanupNode(t *testing.T, srv *lotseServer) {
	k := srv.kubectl(t)
	k.run(t, "-n", "node", "delete", "pods", "--all", "--grace-period=1", "--wait=true", "--timeout=60s")
	k.run(t, "delete", "namespace", "node", "--wait=true", "--timeout=60s")
	drainSandboxes(t, containerd.Layout{Dir: filepath.Join(srv.DataDir, "agent", "containerd")}.Endpoint())
	if err := srv.stop(); err != nil {
		t.Error(err)
	}
}

// drainSandboxes waits for the runtime at sock to run no pod sandboxes,
// and after 30 s removes those left, failing the test.
func drainSandboxes(t *testing.T, sock string) {
	conn, err := containerd.Dial(sock)
	if err != nil {
		return
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// Force-deleted pods are torn down by the agent after they left
	// the API: give it a moment, then insist.
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		if err != nil || len(list.Items) == 0 {
			return
		}
		if time.Now().Before(deadline) {
			time.Sleep(250 * time.Millisecond)
			continue
		}
		for _, sb := range list.Items {
			t.Errorf("pod %s/%s still had a sandbox 30s after its namespace was deleted", sb.Metadata.Namespace, sb.Metadata.Name)
			_, _ = rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.Id})
			_, _ = rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id})
		}
		return
	}
}
