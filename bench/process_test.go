package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// settle is how long a started process idles before its RSS is read.
const settle = 5 * time.Second

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds bin/lotse and the etcd-only baseline once per run, from
// the module this package sits in. LOTSE_BIN names a lotse binary to use
// instead of building one.
func binaries(b *testing.B) (lotse, etcdOnly string) {
	b.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "lotse-bench-bin")
		if buildErr != nil {
			return
		}
		pkgs := []string{"./cmd/lotse", "./bench/cmd/etcdonly"}
		if os.Getenv("LOTSE_BIN") != "" {
			pkgs = pkgs[1:]
		}
		for _, pkg := range pkgs {
			cmd := exec.Command("go", "build", "-o", binDir+"/", pkg)
			cmd.Dir = ".."
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	lotse = filepath.Join(binDir, "lotse")
	if env := os.Getenv("LOTSE_BIN"); env != "" {
		lotse = env
	}
	return lotse, filepath.Join(binDir, "etcdonly")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// proc is a started lotse or etcdonly process.
type proc struct {
	cmd   *exec.Cmd
	lines chan string
}

func startProc(b *testing.B, bin string, args ...string) *proc {
	b.Helper()
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	// Logs are not part of the figures; LOTSE_BENCH_STDERR=FILE keeps
	// them (with GODEBUG=gctrace=1, say) for a closer look.
	if path := os.Getenv("LOTSE_BENCH_STDERR"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close() // the child keeps its own descriptor
		cmd.Stderr = f
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &proc{cmd: cmd, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		close(p.lines)
	}()
	b.Cleanup(p.stop)
	return p
}

// waitLine waits for a stdout line starting with prefix and returns it.
func (p *proc) waitLine(b *testing.B, prefix string) string {
	b.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				b.Fatalf("%s exited before printing %q", p.cmd.Path, prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timeout:
			b.Fatalf("%s did not print %q within a minute", p.cmd.Path, prefix)
		}
	}
}

// stop sends SIGTERM and waits for a clean exit, so the data directory can
// be opened again.
func (p *proc) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

func freePort(b *testing.B) int {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var probe = &http.Client{
	Timeout: time.Second,
	Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // only a readiness probe
		DisableKeepAlives: true,
	},
}

// timeToLine starts bin and returns the time from exec until it prints a
// line starting with prefix.
func timeToLine(b *testing.B, prefix, bin string, args ...string) (time.Duration, *proc) {
	b.Helper()
	start := time.Now()
	p := startProc(b, bin, args...)
	p.waitLine(b, prefix)
	return time.Since(start), p
}

// timeTo200 starts bin and returns the time from exec until url first
// answers 200, polling every 2 ms.
func timeTo200(b *testing.B, url, bin string, args ...string) (time.Duration, *proc) {
	b.Helper()
	start := time.Now()
	p := startProc(b, bin, args...)
	deadline := start.Add(time.Minute)
	for time.Now().Before(deadline) {
		resp, err := probe.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), p
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.Fatalf("%s never answered 200", url)
	return 0, nil
}

// Figure 4: idle RSS of `lotse server` against an etcd-only process with
// the same embedded member. The server hands back its start-up pages 20 s
// after start and then every minute (internal/memtrim), so idle means
// sampled every second for the minute after the first trim: the mean,
// and the peak just before the next trim.
func BenchmarkIdleRSS(b *testing.B) {
	const (
		firstTrim = 25 * time.Second
		window    = 60 * time.Second
	)
	lotse, etcdOnly := binaries(b)
	var lotseMB, lotsePeakMB, etcdMB float64
	b.ResetTimer()
	for iter := 0; iter < b.N; iter++ {
		p := startProc(b, lotse, "server", "--data-dir", b.TempDir(), "--https-port", "0", "--disable-agent")
		p.waitLine(b, "lotse server is ready at")
		e := startProc(b, etcdOnly, "--data-dir", b.TempDir())
		e.waitLine(b, "etcd ready at")
		time.Sleep(firstTrim)
		var sum, peak, etcdSum float64
		samples := 0
		for end := time.Now().Add(window); time.Now().Before(end); time.Sleep(time.Second) {
			mb := rssMB(b, p.cmd.Process.Pid)
			sum, peak = sum+mb, max(peak, mb)
			etcdSum += rssMB(b, e.cmd.Process.Pid)
			samples++
		}
		lotseMB += sum / float64(samples)
		lotsePeakMB += peak
		etcdMB += etcdSum / float64(samples)
		p.stop()
		e.stop()
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(lotseMB/n, "MB-rss-lotse")
	b.ReportMetric(lotsePeakMB/n, "MB-rss-lotse-peak")
	b.ReportMetric(etcdMB/n, "MB-rss-etcd")
	b.ReportMetric(lotseMB/etcdMB, "ratio")
}

// Figure 5: time from exec to the first 200 from /readyz, on a fresh and
// on a warm data directory, against the etcd-only process's /health.
func BenchmarkStartup(b *testing.B) {
	const warmRuns = 9
	lotse, etcdOnly := binaries(b)
	var cold, etcdCold time.Duration
	var warm, etcdWarm, etcdWarmLine []time.Duration
	b.ResetTimer()
	for iter := 0; iter < b.N; iter++ {
		dir, edir := b.TempDir(), b.TempDir()
		port, eport := freePort(b), freePort(b)
		lotseArgs := []string{"server", "--data-dir", dir, "--https-port", strconv.Itoa(port), "--disable-agent"}
		readyz := fmt.Sprintf("https://127.0.0.1:%d/readyz", port)
		etcdArgs := []string{"--data-dir", edir, "--client-url", fmt.Sprintf("http://127.0.0.1:%d", eport)}
		health := fmt.Sprintf("http://127.0.0.1:%d/health", eport)
		for run := 0; run <= warmRuns; run++ {
			d, p := timeTo200(b, readyz, lotse, lotseArgs...)
			p.stop()
			ed, e := timeTo200(b, health, etcdOnly, etcdArgs...)
			e.stop()
			// etcd's /health also waits for a quorum read; the "ready"
			// line is ReadyNotify, the point lotse server waits for.
			el, e := timeToLine(b, "etcd ready at", etcdOnly, etcdArgs...)
			e.stop()
			if run == 0 {
				cold += d
				etcdCold += ed
				continue
			}
			warm = append(warm, d)
			etcdWarm = append(etcdWarm, ed)
			etcdWarmLine = append(etcdWarmLine, el)
		}
	}
	b.StopTimer()
	n := time.Duration(b.N)
	b.ReportMetric(ms(cold/n), "ms-cold")
	b.ReportMetric(ms(median(warm)), "ms-warm")
	b.ReportMetric(ms(etcdCold/n), "ms-etcd-cold")
	b.ReportMetric(ms(median(etcdWarm)), "ms-etcd-warm")
	b.ReportMetric(ms(median(etcdWarmLine)), "ms-etcd-warm-ready")
	// Against ReadyNotify, the point lotse server itself waits for.
	b.ReportMetric(float64(median(warm))/float64(median(etcdWarmLine)), "ratio-warm")
}

// RSS of `lotse server` holding 15,000 pods created through the API,
// against the etcd-only process holding the same 15,000 stored values.
func BenchmarkRSS15kPods(b *testing.B) {
	const pods = 15000
	lotse, etcdOnly := binaries(b)
	ctx := context.Background()
	var lotseMB, etcdMB float64
	b.ResetTimer()
	for iter := 0; iter < b.N; iter++ {
		p := startProc(b, lotse, "server", "--data-dir", b.TempDir(), "--https-port", "0", "--disable-agent")
		kubeconfig := strings.TrimSpace(strings.TrimPrefix(p.waitLine(b, "admin kubeconfig:"), "admin kubeconfig:"))
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			b.Fatal(err)
		}
		cfg.QPS, cfg.Burst = -1, 0
		cs := kubernetes.NewForConfigOrDie(cfg)
		const ns = "many"
		createNamespace(b, cs, ns)
		tmpl, err := cs.CoreV1().Pods(ns).Create(ctx, newPod(ns, "template"), metav1.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		parallel(b, pods, func(_, i int) error {
			_, err := cs.CoreV1().Pods(ns).Create(ctx, newPod(ns, podName("pod", i)), metav1.CreateOptions{})
			return err
		})

		eport := freePort(b)
		e := startProc(b, etcdOnly, "--data-dir", b.TempDir(), "--client-url", fmt.Sprintf("http://127.0.0.1:%d", eport))
		e.waitLine(b, "etcd ready at")
		ec, err := clientv3.New(clientv3.Config{Endpoints: []string{fmt.Sprintf("127.0.0.1:%d", eport)}, Logger: zap.NewNop()})
		if err != nil {
			b.Fatal(err)
		}
		parallel(b, pods, func(_, i int) error {
			name := podName("pod", i)
			return putRaw(ctx, ec, "/registry/pods/"+ns+"/"+name, encodePod(b, tmpl, name))
		})
		ec.Close()

		time.Sleep(settle)
		lotseMB += rssMB(b, p.cmd.Process.Pid)
		etcdMB += rssMB(b, e.cmd.Process.Pid)
		p.stop()
		e.stop()
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(lotseMB/n, "MB-rss-lotse")
	b.ReportMetric(etcdMB/n, "MB-rss-etcd")
	b.ReportMetric(lotseMB/etcdMB, "ratio")
}
