package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/lotse/lotse/internal/containerd"
)

// benchNode is a `lotse server --disable-agent` with one `lotse agent`
// node joined, each its own process, and busybox in the registry.
type benchNode struct {
	client   kubernetes.Interface
	agent    *proc
	started  time.Time // when the agent started
	agentDir string
	runtime  runtimeapi.RuntimeServiceClient
}

func startNode(b *testing.B) *benchNode {
	b.Helper()
	if err := containerd.CheckBinaries(); err != nil {
		b.Fatal(err)
	}
	lotse, _ := binaries(b)
	dir := b.TempDir()
	srv := startProc(b, lotse, "server", "--data-dir", dir, "--https-port", "0", "--disable-agent")
	url := strings.TrimPrefix(srv.waitLine(b, "lotse server is ready at "), "lotse server is ready at ")
	kubeconfig := filepath.Join(dir, "admin.kubeconfig")
	token, err := os.ReadFile(filepath.Join(dir, "node-token"))
	if err != nil {
		b.Fatal(err)
	}
	n := &benchNode{agentDir: b.TempDir(), started: time.Now()}
	// The agent runs from a copy of the binary, as on a machine of its
	// own: pages of one file mapped by both processes would be shared,
	// counted in both RSS figures, and could not be trimmed.
	agentBin := filepath.Join(n.agentDir, "lotse")
	if data, err := os.ReadFile(lotse); err != nil || os.WriteFile(agentBin, data, 0o755) != nil {
		b.Fatalf("copy the binary for the agent: %v", err)
	}
	// Registered before the agent starts, so run after it stopped: the
	// CNI bridge outlives the agent, and would keep its address.
	b.Cleanup(func() { _ = exec.Command("ip", "link", "del", "lotse-bench0").Run() })
	n.agent = startProc(b, agentBin, "agent", "--server", url, "--token", strings.TrimSpace(string(token)),
		"--data-dir", n.agentDir, "--node-name", "bench-node", "--agent-port", "0", "--cni-bridge", "lotse-bench0")
	n.agent.waitLine(b, "lotse agent: node")
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		b.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 500, 1000
	n.client = kubernetes.NewForConfigOrDie(cfg)
	if out, err := exec.Command(lotse, "image", "busybox", "--kubeconfig", kubeconfig, "busybox:1.36").CombinedOutput(); err != nil {
		b.Fatalf("lotse image busybox: %v\n%s", err, out)
	}
	conn, err := containerd.Dial(containerd.Layout{Dir: filepath.Join(n.agentDir, "containerd")}.Endpoint())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	n.runtime = runtimeapi.NewRuntimeServiceClient(conn)
	ctx := context.Background()
	deadline := time.Now().Add(time.Minute)
	for {
		node, err := n.client.CoreV1().Nodes().Get(ctx, "bench-node", metav1.GetOptions{})
		if err == nil && nodeReady(node) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("bench-node never became Ready")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := n.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.deleteAll(b) })
	// One pod first, so that the image is present for the figures.
	n.startPods(b, 1)
	n.deleteAll(b)
	return n
}

func nodeReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// startPods creates n pods at once and returns, per pod, the time from
// its create call to the watch showing it Running.
func (n *benchNode) startPods(b *testing.B, count int) []time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pods := n.client.CoreV1().Pods("bench")
	w, err := pods.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	var mu sync.Mutex
	created := map[string]time.Time{}
	errs := make(chan error, count)
	for i := 0; i < count; i++ {
		name := fmt.Sprintf("p-%d-%d", time.Now().UnixNano(), i)
		go func() {
			mu.Lock()
			created[name] = time.Now()
			mu.Unlock()
			_, err := pods.Create(ctx, benchPod(name), metav1.CreateOptions{})
			errs <- err
		}()
	}
	for i := 0; i < count; i++ {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	var out []time.Duration
	running := map[string]bool{}
	for len(out) < count {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				b.Fatal("watch ended")
			}
			pod, isPod := ev.Object.(*corev1.Pod)
			if !isPod || ev.Type == watch.Deleted || pod.Status.Phase != corev1.PodRunning || running[pod.Name] {
				continue
			}
			mu.Lock()
			t0, ours := created[pod.Name]
			mu.Unlock()
			if ours {
				running[pod.Name] = true
				out = append(out, time.Since(t0))
			}
		case <-ctx.Done():
			b.Fatalf("only %d of %d pods Running", len(out), count)
		}
	}
	return out
}

func benchPod(name string) *corev1.Pod {
	zero := int64(0)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &zero,
			Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36", Command: []string{"sleep", "3600"},
				ImagePullPolicy: corev1.PullIfNotPresent}},
		},
	}
}

// deleteAll deletes the bench pods and waits until the node has none.
func (n *benchNode) deleteAll(b *testing.B) {
	ctx := context.Background()
	_ = n.client.CoreV1().Pods("bench").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		list, err := n.client.CoreV1().Pods("bench").List(ctx, metav1.ListOptions{FieldSelector: fields.Everything().String()})
		if err == nil && len(list.Items) == 0 {
			sbs, err := n.runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
			if err == nil && len(sbs.Items) == 0 {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.Error("bench pods still present after 3 minutes")
}

// bareCRI starts count pods straight through CRI on the same containerd
// at once — sandbox, create, start; what the agent itself has to do — and
// returns the time each took: the floor the figures compare with.
func (n *benchNode) bareCRI(b *testing.B, count int) []time.Duration {
	b.Helper()
	ctx := context.Background()
	out := make([]time.Duration, count)
	ids := make([]string, count)
	var wg sync.WaitGroup
	for i := 0; i < count; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			cfg := &runtimeapi.PodSandboxConfig{
				Metadata:     &runtimeapi.PodSandboxMetadata{Name: fmt.Sprintf("bare-%d", i), Namespace: "bare", Uid: fmt.Sprintf("bare-%d-%d", start.UnixNano(), i)},
				LogDirectory: filepath.Join(n.agentDir, "bare-logs", fmt.Sprint(i)),
				Linux:        &runtimeapi.LinuxPodSandboxConfig{},
			}
			sb, err := n.runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
			if err != nil {
				b.Error(err)
				return
			}
			ids[i] = sb.PodSandboxId
			c, err := n.runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
				PodSandboxId: sb.PodSandboxId, SandboxConfig: cfg,
				Config: &runtimeapi.ContainerConfig{
					Metadata: &runtimeapi.ContainerMetadata{Name: "c"},
					Image:    &runtimeapi.ImageSpec{Image: "docker.io/library/busybox:1.36"},
					Command:  []string{"sleep", "3600"},
					LogPath:  "c.log",
					Linux:    &runtimeapi.LinuxContainerConfig{},
				},
			})
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := n.runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
				b.Error(err)
				return
			}
			out[i] = time.Since(start)
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != "" {
			_, _ = n.runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id})
			_, _ = n.runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
		}
	}
	return out
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	idx := int(float64(len(s))*p+0.5) - 1
	return s[min(max(idx, 0), len(s)-1)]
}

// Figure 7: pod start-up latency — create to Running, image present — for
// 1, 10 and 100 pods created at once on one node (server and agent in
// their own processes, scheduler included), against the same number of
// pods started with bare CRI calls on the same containerd.
func BenchmarkPodStartup(b *testing.B) {
	n := startNode(b)
	b.ResetTimer()
	for iter := 0; iter < b.N; iter++ {
		for _, count := range []int{1, 10, 100} {
			lat := n.startPods(b, count)
			n.deleteAll(b)
			base := n.bareCRI(b, count)
			for _, p := range []struct {
				name string
				q    float64
			}{{"p50", 0.5}, {"p99", 0.99}} {
				l, c := percentile(lat, p.q), percentile(base, p.q)
				b.ReportMetric(ms(l), fmt.Sprintf("ms-%s-lotse-%dpods", p.name, count))
				b.ReportMetric(ms(c), fmt.Sprintf("ms-%s-cri-%dpods", p.name, count))
				b.ReportMetric(float64(l)/float64(c), fmt.Sprintf("ratio-%s-%dpods", p.name, count))
			}
		}
	}
}

// Figure 8: RSS of `lotse agent` with 20 pods running, against the
// containerd it supervises (same node, same pods). The anonymous part
// (heap, stacks) is reported too: the rest is pages of the binary.
func BenchmarkAgentRSS20Pods(b *testing.B) {
	n := startNode(b)
	b.ResetTimer()
	for iter := 0; iter < b.N; iter++ {
		n.startPods(b, 20)
		// The agent trims the binary's pages 20 s after it starts, then
		// every minute: read after the first trim that follows the pods'
		// start, once the node has idled a little.
		running := time.Now()
		trim := n.started.Add(20 * time.Second)
		for !trim.After(running) {
			trim = trim.Add(time.Minute)
		}
		time.Sleep(time.Until(trim.Add(3 * settle)))
		agentMB := rssMB(b, n.agent.cmd.Process.Pid)
		b.ReportMetric(statusKB(b, n.agent.cmd.Process.Pid, "RssAnon")/1024, "MB-anon-agent")
		containerdMB := rssMB(b, containerdPid(b, n.agentDir))
		b.ReportMetric(agentMB, "MB-rss-agent")
		b.ReportMetric(containerdMB, "MB-rss-containerd")
		b.ReportMetric(agentMB/containerdMB, "ratio")
		n.deleteAll(b)
	}
}

// containerdPid finds the containerd the agent in agentDir supervises.
func containerdPid(b *testing.B, agentDir string) int {
	b.Helper()
	config := containerd.Layout{Dir: filepath.Join(agentDir, "containerd")}.ConfigPath()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(cmdline), config) && strings.HasPrefix(string(cmdline), "containerd") {
			return pid
		}
	}
	b.Fatal("containerd not found")
	return 0
}

// statusKB reads one "Name: N kB" line of /proc/PID/status.
func statusKB(b *testing.B, pid int, name string) float64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, name+":"); ok {
			var kb float64
			if _, err := fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), &kb); err != nil {
				b.Fatal(err)
			}
			return kb
		}
	}
	b.Fatalf("no %s for pid %d", name, pid)
	return 0
}
