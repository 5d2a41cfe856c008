package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// Issue 5: the controllers under churn. A whole control plane (`lotse
// server --disable-agent`: etcd, API server, scheduler, controllers) in a
// process of its own and `lotse sim` in another; 1,000 Deployments of 30
// replicas on 1,000 simulated nodes are created, rolled to a new image
// and deleted. Each phase's clock runs from the first write to the
// moment a watch sees it converged; the control plane's CPU seconds are
// read from /proc for the phase, its peak RSS over the three phases.
//
// Baseline, same run, same processes: the same 30,000 pods created
// directly through the API by 16 clients (no controller in between, the
// scheduler and the simulated kubelets as for the Deployments) until all
// are Ready, then deleted until none is left. The ratio of a phase is its
// time over the baseline's; the roll's baseline is create plus delete,
// which is the work a rollout does.
//
//	go test -run '^$' -bench Churn -benchtime 1x -timeout 0 ./bench/
//	LOTSE_BENCH_SCALE=0.1 go test -run '^$' -bench Churn -benchtime 1x ./bench/
func BenchmarkChurn1kDeployments(b *testing.B) {
	const replicas = 30
	s := benchScale(b)
	deployments, nodes := scaled(1000, s), scaled(1000, s)
	checkMemory(b, 4*s)
	c := startChurnCluster(b, nodes)
	b.Logf("%d deployments of %d replicas on %d simulated nodes (scale %g)", deployments, replicas, nodes, s)

	b.ResetTimer()
	for iter := 0; iter < b.N; iter++ {
		b.StopTimer()
		base := c.directPods(b, fmt.Sprintf("direct-%d", iter), deployments*replicas)
		c.resetPeakRSS(b)
		phases := c.deploymentChurn(b, fmt.Sprintf("churn-%d", iter), deployments, replicas)
		peak := statusKB(b, c.server.cmd.Process.Pid, "VmHWM") / 1024

		for _, p := range append(base, phases...) {
			b.Logf("%-12s %6.1f s (writes done at %5.1f s)  control plane %6.1f CPU s, %5.0f MB at the end (%4.0f MB file-backed)  sim %5.1f CPU s",
				p.name, p.took.Seconds(), p.written.Seconds(), p.cpu, p.rssMB, p.fileMB, p.simCPU)
			b.ReportMetric(p.took.Seconds(), "s-"+p.name)
			b.ReportMetric(p.cpu, "cpu-s-"+p.name)
		}
		b.ReportMetric(peak, "MB-peak-rss")
		create, roll, del := phases[0].took, phases[1].took, phases[2].took
		baseCreate, baseDelete := base[0].took, base[1].took
		b.ReportMetric(float64(create)/float64(baseCreate), "ratio-create")
		b.ReportMetric(float64(roll)/float64(baseCreate+baseDelete), "ratio-roll")
		b.ReportMetric(float64(del)/float64(baseDelete), "ratio-delete")
	}
}

// churnCluster is the control plane process, the simulated nodes'
// process and a client of the bench's own.
type churnCluster struct {
	server, sim *proc
	client      kubernetes.Interface
}

func startChurnCluster(b *testing.B, nodes int) *churnCluster {
	b.Helper()
	lotse, _ := binaries(b)
	server := startProc(b, lotse, "server", "--data-dir", b.TempDir(), "--https-port", "0", "--disable-agent",
		"--bind-address", "127.0.0.1", "--cluster-dns-port", "0", "--ingress-http-port", "0", "--ingress-https-port", "0")
	kubeconfig := strings.TrimSpace(strings.TrimPrefix(server.waitLine(b, "admin kubeconfig:"), "admin kubeconfig:"))
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		b.Fatal(err)
	}
	cfg.QPS, cfg.Burst = -1, 0
	c := &churnCluster{server: server, client: kubernetes.NewForConfigOrDie(cfg)}
	// The simulated kubelets get no client-side limit either: 1,000 real
	// kubelets would each have their own.
	c.sim = startProc(b, lotse, "sim", "--kubeconfig", kubeconfig, "--nodes", strconv.Itoa(nodes), "--qps=-1")
	c.eventually(b, "simulated nodes Ready", 2*time.Minute, func() (bool, string) {
		list, err := c.client.CoreV1().Nodes().List(b.Context(), metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for i := range list.Items {
			if nodeReady(&list.Items[i]) {
				ready++
			}
		}
		return ready == nodes, fmt.Sprintf("%d of %d Ready", ready, nodes)
	})
	return c
}

// phase is one timed step and the CPU it cost.
type phase struct {
	name          string
	took, written time.Duration // to convergence; to the last write done
	cpu           float64       // control plane CPU seconds
	simCPU        float64
	rssMB         float64 // the control plane's at the end
	fileMB        float64 // of which file-backed (etcd's mmap'd database)
}

// timed runs write, then waits for converged, and measures both.
func (c *churnCluster) timed(b *testing.B, name string, write func(), converged func() (bool, string)) phase {
	b.Helper()
	cpu0, sim0 := cpuSeconds(b, c.server), cpuSeconds(b, c.sim)
	profiled := c.saveProfile(b, "cpu-"+name, "profile")
	start := time.Now()
	write()
	written := time.Since(start)
	c.eventually(b, name, 30*time.Minute, converged)
	<-profiled
	return phase{name: name, took: time.Since(start), written: written, cpu: cpuSeconds(b, c.server) - cpu0, simCPU: cpuSeconds(b, c.sim) - sim0,
		rssMB: rssMB(b, c.server.cmd.Process.Pid), fileMB: statusKB(b, c.server.cmd.Process.Pid, "RssFile") / 1024}
}

// eventually polls cond every 100 ms until it holds; past timeout the
// benchmark fails with cond's last account of where things stand.
func (c *churnCluster) eventually(b *testing.B, what string, timeout time.Duration, cond func() (bool, string)) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: not converged after %v: %s", what, timeout, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// directPods is the baseline: n pods created and deleted by clients.
func (c *churnCluster) directPods(b *testing.B, ns string, n int) []phase {
	b.Helper()
	ctx := b.Context()
	c.createNamespace(b, ns)
	pods := c.watchPods(b, ns)
	create := c.timed(b, "base-create", func() {
		parallel(b, n, func(_, i int) error {
			_, err := c.client.CoreV1().Pods(ns).Create(ctx, churnPod(ns, podName("direct", i)), metav1.CreateOptions{})
			return err
		})
	}, func() (bool, string) { return pods.converged(n, churnImage(1)) })
	del := c.timed(b, "base-delete", func() {
		parallel(b, n, func(_, i int) error {
			return c.client.CoreV1().Pods(ns).Delete(ctx, podName("direct", i), metav1.DeleteOptions{})
		})
	}, func() (bool, string) { return pods.converged(0, "") })
	return []phase{create, del}
}

// deploymentChurn creates, rolls and deletes the Deployments.
func (c *churnCluster) deploymentChurn(b *testing.B, ns string, count, replicas int) []phase {
	b.Helper()
	ctx := b.Context()
	c.createNamespace(b, ns)
	pods := c.watchPods(b, ns)
	factory := informers.NewSharedInformerFactoryWithOptions(c.client, 0, informers.WithNamespace(ns))
	deploys := factory.Apps().V1().Deployments().Informer()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	b.Cleanup(factory.Shutdown)
	name := func(i int) string { return fmt.Sprintf("web-%04d", i) }
	// Converged as `kubectl rollout status` sees it, and as the pods are.
	rolledOut := func(image string) func() (bool, string) {
		return func() (bool, string) {
			done := 0
			for _, obj := range deploys.GetStore().List() {
				d := obj.(*appsv1.Deployment)
				st := d.Status
				if st.ObservedGeneration >= d.Generation && d.Spec.Template.Spec.Containers[0].Image == image &&
					st.UpdatedReplicas == int32(replicas) && st.Replicas == int32(replicas) && st.AvailableReplicas == int32(replicas) {
					done++
				}
			}
			if done < count {
				return false, fmt.Sprintf("%d of %d deployments rolled out", done, count)
			}
			return pods.converged(count*replicas, image)
		}
	}
	create := c.timed(b, "create", func() {
		parallel(b, count, func(_, i int) error {
			_, err := c.client.AppsV1().Deployments(ns).Create(ctx, churnDeployment(ns, name(i), int32(replicas)), metav1.CreateOptions{})
			return err
		})
	}, rolledOut(churnImage(1)))
	<-c.saveProfile(b, "heap-after-create", "heap")
	roll := c.timed(b, "roll", func() {
		patch := []byte(fmt.Sprintf(`[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":%q}]`, churnImage(2)))
		parallel(b, count, func(_, i int) error {
			_, err := c.client.AppsV1().Deployments(ns).Patch(ctx, name(i), types.JSONPatchType, patch, metav1.PatchOptions{})
			return err
		})
	}, rolledOut(churnImage(2)))
	del := c.timed(b, "delete", func() {
		background := metav1.DeletePropagationBackground // what kubectl delete asks for
		parallel(b, count, func(_, i int) error {
			return c.client.AppsV1().Deployments(ns).Delete(ctx, name(i), metav1.DeleteOptions{PropagationPolicy: &background})
		})
	}, func() (bool, string) {
		if n := len(deploys.GetStore().ListKeys()); n > 0 {
			return false, fmt.Sprintf("%d deployments left", n)
		}
		return pods.converged(0, "")
	})
	<-c.saveProfile(b, "heap-after-delete", "heap")
	return []phase{create, roll, del}
}

// saveProfile fetches /debug/pprof/profile from the control plane into
// $LOTSE_BENCH_PROFILES/name.pb.gz when that directory is set, in the
// background; the channel closes when it is written.
func (c *churnCluster) saveProfile(b *testing.B, name, profile string) <-chan struct{} {
	done := make(chan struct{})
	dir := os.Getenv("LOTSE_BENCH_PROFILES")
	if dir == "" {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		req := c.client.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/" + profile)
		if profile == "profile" {
			req.Param("seconds", "5") // a CPU profile of the first five seconds of a phase
		}
		data, err := req.DoRaw(b.Context())
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name+".pb.gz"), data, 0o644)
		}
		if err != nil {
			b.Errorf("profile %s: %v", name, err)
		}
	}()
	return done
}

func (c *churnCluster) createNamespace(b *testing.B, ns string) {
	b.Helper()
	createNamespace(b, c.client, ns)
}

// podView is what a pod informer of one namespace sees, each pod reduced
// to the little the convergence checks need.
type podView struct{ store cache.Store }

func (c *churnCluster) watchPods(b *testing.B, ns string) *podView {
	b.Helper()
	factory := informers.NewSharedInformerFactoryWithOptions(c.client, 0, informers.WithNamespace(ns),
		informers.WithTransform(func(obj any) (any, error) {
			p, ok := obj.(*corev1.Pod)
			if !ok {
				return obj, nil
			}
			return &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, ResourceVersion: p.ResourceVersion, DeletionTimestamp: p.DeletionTimestamp},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Image: p.Spec.Containers[0].Image}}},
				Status:     corev1.PodStatus{Conditions: p.Status.Conditions},
			}, nil
		}))
	inf := factory.Core().V1().Pods().Informer()
	factory.Start(b.Context().Done())
	factory.WaitForCacheSync(b.Context().Done())
	b.Cleanup(factory.Shutdown)
	return &podView{store: inf.GetStore()}
}

// converged reports whether exactly want pods exist, all Ready (and not
// being deleted) with image, and otherwise how far off that is.
func (v *podView) converged(want int, image string) (bool, string) {
	items := v.store.List()
	ready := 0
	for _, obj := range items {
		p := obj.(*corev1.Pod)
		if p.DeletionTimestamp == nil && p.Spec.Containers[0].Image == image && podReady(p) {
			ready++
		}
	}
	return len(items) == want && ready == want, fmt.Sprintf("%d pods, %d of them Ready with %s; want %d", len(items), ready, image, want)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func churnImage(version int) string {
	return fmt.Sprintf("registry.example.com/shop/frontend:v%d", version)
}

// churnPod is the realistic pod of the API figures with the churn's image
// and a grace period of one second (the simulated kubelet honours it),
// standing alone.
func churnPod(ns, name string) *corev1.Pod {
	p := newPod(ns, name)
	p.OwnerReferences = nil
	p.Spec.Containers[0].Image = churnImage(1)
	p.Spec.TerminationGracePeriodSeconds = ptr(int64(1))
	return p
}

func churnDeployment(ns, name string, replicas int32) *appsv1.Deployment {
	p := churnPod(ns, name)
	p.Labels = map[string]string{"app": name, "tier": "web"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: p.Labels, Annotations: p.Annotations}, Spec: p.Spec},
		},
	}
}

// cpuSeconds is the user plus system CPU time a process has used so far.
func cpuSeconds(b *testing.B, p *proc) float64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses and may
	// contain spaces: state is the first, utime the 12th, stime the 13th.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	const ticksPerSecond = 100 // USER_HZ on Linux
	return (utime + stime) / ticksPerSecond
}

// resetPeakRSS restarts the server's VmHWM from its current RSS, so the
// peak reported is that of the Deployment phases, not of the baseline.
func (c *churnCluster) resetPeakRSS(b *testing.B) {
	b.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", c.server.cmd.Process.Pid), []byte("5"), 0); err != nil {
		b.Fatalf("resetting the peak RSS: %v", err)
	}
}
