package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The shared server is started by the first test that needs it and stopped
// by TestMain, so `go test -run TestParseTables` needs no binary at all.
var (
	sharedOnce sync.Once
	shared     *lotseServer
	sharedErr  error
	// scratch is a per-run temporary directory for binaries, data dirs
	// and kubectl caches; TestMain removes it.
	scratch string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lotse-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	scratch = dir
	code := m.Run()
	if shared != nil {
		if err := shared.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: shared lotse server did not stop cleanly: %v\n", err)
			code = 1
		}
		if code != 0 {
			fmt.Fprintf(os.Stderr, "e2e: last lines of the shared server's log:\n%s\n", shared.logTail(60))
		}
	}
	os.RemoveAll(scratch)
	os.Exit(code)
}

// cluster returns the shared server, starting it on first use. Tests that
// use it each work in their own namespace.
func cluster(t *testing.T) *lotseServer {
	t.Helper()
	sharedOnce.Do(func() {
		bin, err := lotseBinary()
		if err != nil {
			sharedErr = err
			return
		}
		shared, sharedErr = startServer(bin, filepath.Join(scratch, "shared-data"), "0", apiOnly...)
	})
	if sharedErr != nil {
		t.Fatalf("shared lotse server: %v", sharedErr)
	}
	return shared
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// lotseBinary returns $LOTSE_BIN, or builds ./cmd/lotse from the module root
// into the scratch directory once per run.
func lotseBinary() (string, error) {
	binOnce.Do(func() {
		if p := os.Getenv("LOTSE_BIN"); p != "" {
			if _, err := os.Stat(p); err != nil {
				binErr = fmt.Errorf("LOTSE_BIN=%s: %w", p, err)
			}
			binPath = p
			return
		}
		root, err := moduleRoot()
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(scratch, "lotse")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/lotse")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/lotse in %s: %v\n%s", root, err, out)
		}
	})
	return binPath, binErr
}

// moduleRoot finds the directory holding go.mod, starting from this source
// file (go test runs in the package directory, but -trimpath hides paths).
func moduleRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for d := dir; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				return d, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", errors.New("cannot find the module root (go.mod) above the test directory")
}

// lotseServer is one `lotse server` subprocess.
type lotseServer struct {
	URL        string
	Kubeconfig string
	DataDir    string
	logPath    string
	cmd        *exec.Cmd
	exited     chan struct{}
	waitErr    error
}

const startTimeout = 90 * time.Second

// startServer runs `lotse server` on dataDir and waits for the two lines it
// prints when ready. port is passed to --https-port ("0" picks one).
// apiOnly are the flags of a server for the API workflow tests (issue 2):
// a cluster without nodes whose expectations are written for the API
// alone, so it runs only the controllers that keep the API working
// (namespaces, service accounts, garbage collection). The scheduler,
// workload controllers, node lifecycle and pod GC would add pods, events,
// taints and status those expectations do not know; they have tests of
// their own (and TestSimulatedCluster and TestNode run them all).
var apiOnly = []string{"--disable-scheduler", "--controllers", "garbagecollector,namespace,serviceaccount"}

func startServer(bin, dataDir, port string, extraArgs ...string) (*lotseServer, error) {
	return launchServer(bin, dataDir, port, append([]string{"--disable-agent"}, extraArgs...))
}

// startNodeServer runs a server with its node: containerd, runc and CNI
// for real, on a pod network and bridge of its own so that it stays out
// of the way of a lotse the developer may run.
func startNodeServer(bin, dataDir string, extraArgs ...string) (*lotseServer, error) {
	return launchServer(bin, dataDir, "0", append([]string{"--agent-port", "-1", "--node-name", "e2e-node",
		"--pod-cidr", "10.89.0.0/24", "--cni-bridge", "lotse-e2e0"}, extraArgs...))
}

func launchServer(bin, dataDir, port string, extraArgs []string) (*lotseServer, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	logPath := filepath.Join(filepath.Dir(dataDir), filepath.Base(dataDir)+fmt.Sprintf("-%d.log", time.Now().UnixNano()))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	// No cluster DNS or Ingress ports unless a test asks: servers of
	// parallel tests would compete for them.
	args := append([]string{"server", "--data-dir", dataDir, "--bind-address", "127.0.0.1",
		"--https-port", port, "--log-level", "info",
		"--cluster-dns-port", "0", "--ingress-http-port", "0", "--ingress-https-port", "0"}, extraArgs...)
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	s := &lotseServer{DataDir: dataDir, logPath: logPath, cmd: cmd, exited: make(chan struct{})}

	// Everything the server prints on stdout goes to the log too; the two
	// readiness lines are picked out on the way.
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(logFile, "stdout: "+sc.Text())
			select {
			case lines <- sc.Text():
			default:
			}
		}
		close(lines)
	}()
	go func() {
		s.waitErr = cmd.Wait()
		logFile.Close()
		close(s.exited)
	}()

	deadline := time.After(startTimeout)
	for s.URL == "" || s.Kubeconfig == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				<-s.exited
				return nil, fmt.Errorf("lotse server exited before it was ready (%v); log:\n%s", s.waitErr, s.logTail(40))
			}
			if v, ok := strings.CutPrefix(line, "lotse server is ready at "); ok {
				s.URL = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(line, "admin kubeconfig: "); ok {
				s.Kubeconfig = strings.TrimSpace(v)
			}
		case <-deadline:
			s.cmd.Process.Kill()
			<-s.exited
			return nil, fmt.Errorf("lotse server printed no readiness lines in %v; log:\n%s", startTimeout, s.logTail(40))
		}
	}
	if _, err := os.Stat(s.Kubeconfig); err != nil {
		s.stop()
		return nil, fmt.Errorf("lotse server announced kubeconfig %s but: %v", s.Kubeconfig, err)
	}
	return s, nil
}

// stop sends SIGTERM and requires a clean exit (status 0) within 10s.
func (s *lotseServer) stop() error {
	select {
	case <-s.exited:
		return fmt.Errorf("lotse server had already exited: %v; log:\n%s", s.waitErr, s.logTail(40))
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-s.exited:
		if s.waitErr != nil {
			return fmt.Errorf("lotse server exited with %v after SIGTERM; log:\n%s", s.waitErr, s.logTail(20))
		}
		return nil
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("lotse server still running 10s after SIGTERM; killed it; log:\n%s", s.logTail(20))
	}
}

// logTail returns the last n lines of the server's log.
func (s *lotseServer) logTail(n int) string {
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// kubectl returns a runner for the kubectl dispatcher on PATH.
func (s *lotseServer) kubectl(t *testing.T) *kubectl {
	return s.kubectlBin(t, "kubectl")
}

// kubectlBin returns a runner for a named kubectl binary (e.g. kubectl.1.27
// from beside the dispatcher). Each runner has its own discovery cache so
// one binary's cached documents never answer for another's.
func (s *lotseServer) kubectlBin(t *testing.T, name string) *kubectl {
	t.Helper()
	bin := name
	if !strings.Contains(name, "/") {
		p, err := findKubectl(name)
		if err != nil {
			t.Fatal(err)
		}
		bin = p
	}
	cache := t.TempDir()
	return &kubectl{bin: bin, kubeconfig: s.Kubeconfig, cacheDir: cache}
}

// findKubectl resolves "kubectl" on PATH, and versioned names beside the
// real file the dispatcher's link points at.
func findKubectl(name string) (string, error) {
	disp, err := exec.LookPath("kubectl")
	if err != nil {
		return "", fmt.Errorf("kubectl is not on PATH; the e2e tests drive the installed kubectl: %w", err)
	}
	if name == "kubectl" {
		return disp, nil
	}
	real, err := filepath.EvalSymlinks(disp)
	if err != nil {
		return "", err
	}
	p := filepath.Join(filepath.Dir(real), name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s is not beside the kubectl dispatcher (%s): %w", name, real, err)
	}
	return p, nil
}

// writeFile writes content to a new file in the test's temp dir.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// readTestdata returns a file from testdata/.
func readTestdata(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// lockedBuffer collects a background command's output for polling.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var _ io.Writer = (*lockedBuffer)(nil)
