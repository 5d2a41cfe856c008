package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// probeManager runs the probes of running containers, one goroutine per
// container instance, and keeps their latest results.
type probeManager struct {
	a       *Agent
	mu      sync.Mutex
	running map[string]*containerProbes // by container ID
}

// containerProbes are one container instance's probe results.
type containerProbes struct {
	uid                     types.UID
	name                    string
	cancel                  context.CancelFunc
	started, ready, failing bool
}

// attachSettle is how long a container made for an attach (stdin once)
// waits to be Ready: longer than a relist, so that one that ended is seen
// ended.
const attachSettle = relistInterval + 200*time.Millisecond

func newProbeManager(a *Agent) *probeManager {
	return &probeManager{a: a, running: map[string]*containerProbes{}}
}

// started begins probing a container instance (once).
func (m *probeManager) started(pod *corev1.Pod, c *corev1.Container, id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.running[id]; ok {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	// A container kubectl run -i made (stdin once, no readiness probe) is
	// Ready only after attachSettle: kubectl attaches once the pod is
	// Ready, and a command that ends at once would have printed before
	// the attach and be gone (containerd does not replay output). Held
	// back, such a container is seen ended first, and kubectl prints its
	// logs instead — what upstream's once-a-second relist leads to.
	settle := c.Stdin && c.StdinOnce && c.ReadinessProbe == nil
	cp := &containerProbes{uid: pod.UID, name: c.Name, cancel: cancel,
		started: c.StartupProbe == nil, ready: c.ReadinessProbe == nil && !settle}
	m.running[id] = cp
	if settle {
		go func() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(attachSettle):
			}
			m.mu.Lock()
			cp.ready = true
			m.mu.Unlock()
			m.a.wake(string(pod.UID))
		}()
	}
	if c.StartupProbe == nil && c.ReadinessProbe == nil && c.LivenessProbe == nil {
		return
	}
	go m.run(ctx, pod.DeepCopy(), c.DeepCopy(), id, cp)
}

func (m *probeManager) get(id string) *containerProbes {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.running[id]
}

func (m *probeManager) startedOK(uid types.UID, name, id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	cp := m.running[id]
	return cp != nil && cp.started
}

func (m *probeManager) ready(uid types.UID, name, id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	cp := m.running[id]
	return cp != nil && cp.ready
}

// livenessFailed says the container failed its liveness (or startup)
// probe and must be restarted.
func (m *probeManager) livenessFailed(uid types.UID, name, id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	cp := m.running[id]
	return cp != nil && cp.failing
}

// forget stops probing every container of a pod.
func (m *probeManager) forget(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, cp := range m.running {
		if cp.uid == uid {
			cp.cancel()
			delete(m.running, id)
		}
	}
}

// stop ends probing of container instances that no longer run.
func (m *probeManager) stop(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cp := m.running[id]; cp != nil {
		cp.cancel()
		delete(m.running, id)
	}
}

// run probes one container: the startup probe until it succeeds, then
// liveness and readiness, each on its own period.
func (m *probeManager) run(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, cp *containerProbes) {
	set := func(f func()) {
		m.mu.Lock()
		f()
		m.mu.Unlock()
		m.a.wake(string(pod.UID))
	}
	if p := c.StartupProbe; p != nil {
		ok := m.loop(ctx, pod, c, id, p, "Startup", func(success bool) bool { return success })
		if !ok {
			set(func() { cp.failing = true })
			return
		}
		set(func() { cp.started = true })
	}
	var wg sync.WaitGroup
	if p := c.ReadinessProbe; p != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.loop(ctx, pod, c, id, p, "Readiness", func(success bool) bool {
				changed := false
				m.mu.Lock()
				changed = cp.ready != success
				cp.ready = success
				m.mu.Unlock()
				if changed {
					m.a.wake(string(pod.UID))
				}
				return false // never stops on its own
			})
		}()
	}
	if p := c.LivenessProbe; p != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !m.loop(ctx, pod, c, id, p, "Liveness", func(bool) bool { return false }) && ctx.Err() == nil {
				set(func() { cp.failing = true })
			}
		}()
	}
	wg.Wait()
}

// loop runs probe p every period. Results pass through the success and
// failure thresholds; report gets each thresholded result and returns
// true to end the loop with success. The loop returns false once the
// failure threshold is reached (a liveness or startup failure).
func (m *probeManager) loop(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, p *corev1.Probe, kind string, report func(bool) bool) bool {
	period := seconds(p.PeriodSeconds, 10)
	timeout := seconds(p.TimeoutSeconds, 1)
	successes, failures := int32(0), int32(0)
	successThreshold, failureThreshold := max(p.SuccessThreshold, 1), max(p.FailureThreshold, 1)
	select {
	case <-ctx.Done():
		return false
	case <-time.After(time.Duration(p.InitialDelaySeconds) * time.Second):
	}
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	for {
		err := m.probe(ctx, pod, c, id, p, timeout)
		if ctx.Err() != nil {
			return false
		}
		if err == nil {
			successes, failures = successes+1, 0
			if successes >= successThreshold && report(true) {
				return true
			}
		} else {
			successes, failures = 0, failures+1
			m.a.event(pod, corev1.EventTypeWarning, "Unhealthy", "%s probe failed: %v", kind, err)
			if failures >= failureThreshold {
				if kind != "Readiness" {
					return false
				}
				report(false)
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-ticker.C:
		}
	}
}

func seconds(v, def int32) time.Duration {
	if v <= 0 {
		v = def
	}
	return time.Duration(v) * time.Second
}

// probe runs one check of any of the four kinds.
func (m *probeManager) probe(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, p *corev1.Probe, timeout time.Duration) error {
	return m.a.runHandler(ctx, pod, c, id, p.ProbeHandler, timeout)
}

// runHandler performs a probe or lifecycle handler against a container.
func (a *Agent) runHandler(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, h corev1.ProbeHandler, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout+time.Second)
	defer cancel()
	host := pod.Status.PodIP
	if host == "" {
		host = a.podIP(ctx, pod)
	}
	switch {
	case h.Exec != nil:
		resp, err := a.runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: h.Exec.Command, Timeout: int64(timeout / time.Second)})
		if err != nil {
			return err
		}
		if resp.ExitCode != 0 {
			return fmt.Errorf("command %q exited with %d: %s", h.Exec.Command, resp.ExitCode, trimOutput(resp.Stdout, resp.Stderr))
		}
		return nil
	case h.HTTPGet != nil:
		g := h.HTTPGet
		port, err := resolvePort(g.Port, c)
		if err != nil {
			return err
		}
		if g.Host != "" {
			host = g.Host
		}
		scheme := "http"
		if g.Scheme == corev1.URISchemeHTTPS {
			scheme = "https"
		}
		u := url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port))}
		ref, err := url.Parse(g.Path)
		if err != nil {
			return err
		}
		u.Path, u.RawQuery = ref.Path, ref.RawQuery
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return err
		}
		req.Header.Set("User-Agent", "kube-probe/1.33")
		for _, hdr := range g.HTTPHeaders {
			req.Header.Add(hdr.Name, hdr.Value)
		}
		client := &http.Client{Timeout: timeout, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true,
		}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
		}
		return nil
	case h.TCPSocket != nil:
		port, err := resolvePort(h.TCPSocket.Port, c)
		if err != nil {
			return err
		}
		if h.TCPSocket.Host != "" {
			host = h.TCPSocket.Host
		}
		conn, err := (&net.Dialer{Timeout: timeout}).DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return conn.Close()
	case h.GRPC != nil:
		conn, err := grpc.NewClient(net.JoinHostPort(host, strconv.Itoa(int(h.GRPC.Port))), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer conn.Close()
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: derefString(h.GRPC.Service)})
		if err != nil {
			return err
		}
		if resp.Status != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("service unhealthy (responded with %q)", resp.Status)
		}
		return nil
	}
	return errors.New("probe has no handler")
}

// runHook runs a postStart or preStop handler.
func (a *Agent) runHook(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, h *corev1.LifecycleHandler, timeout time.Duration) error {
	if h.Sleep != nil {
		select {
		case <-ctx.Done():
		case <-time.After(min(time.Duration(h.Sleep.Seconds)*time.Second, timeout)):
		}
		return nil
	}
	return a.runHandler(ctx, pod, c, id, corev1.ProbeHandler{Exec: h.Exec, HTTPGet: h.HTTPGet, TCPSocket: h.TCPSocket}, timeout)
}

// podIP asks the runtime for the pod's address when the status does not
// carry it yet.
func (a *Agent) podIP(ctx context.Context, pod *corev1.Pod) string {
	rt, err := a.runtimeState(ctx, pod.UID)
	if err != nil || rt.readySandbox() == nil {
		return ""
	}
	st, err := a.runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: rt.readySandbox().Id})
	if err != nil {
		return ""
	}
	return st.GetStatus().GetNetwork().GetIp()
}

// resolvePort turns a number or a named container port into a number.
func resolvePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("container %s has no port named %q", c.Name, p.StrVal)
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func trimOutput(stdout, stderr []byte) string {
	out := string(stdout) + string(stderr)
	if len(out) > 256 {
		out = out[:256]
	}
	return out
}
