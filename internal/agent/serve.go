package agent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/lotse/lotse/internal/containerlog"
)

// APIServerUser is the client certificate user the API server presents to
// agents; agents serve nobody else (and members of system:masters).
const APIServerUser = "kube-apiserver-kubelet-client"

// serve runs the agent's HTTPS API until ctx ends.
func (a *Agent) serve(ctx context.Context, ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", a.authorized(a.serveLogs))
	mux.HandleFunc("/exec/{namespace}/{pod}/{container}", a.authorized(a.serveExec))
	mux.HandleFunc("/attach/{namespace}/{pod}/{container}", a.authorized(a.serveAttach))
	mux.HandleFunc("/portForward/{namespace}/{pod}", a.authorized(a.servePortForward))
	mux.HandleFunc("GET /metrics/resource", a.authorized(a.serveMetrics))
	srv := &http.Server{
		Handler: mux,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{a.cfg.ServingCert},
			ClientCAs:    a.cfg.ClientCAs,
			ClientAuth:   tls.VerifyClientCertIfGiven,
			MinVersion:   tls.VersionTLS12,
			// No HTTP/2: exec and port-forward upgrade the connection.
			NextProtos: []string{"http/1.1"},
		},
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		a.log.Error("agent API stopped", "err", err)
	}
}

// authorized lets through the API server's client certificate only.
func (a *Agent) authorized(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			writeStatus(w, apierrors.NewUnauthorized("a client certificate is required"))
			return
		}
		cert := r.TLS.PeerCertificates[0]
		if cert.Subject.CommonName != APIServerUser && !slices.Contains(cert.Subject.Organization, "system:masters") {
			writeStatus(w, apierrors.NewForbidden(corev1.Resource("nodes/proxy"), a.cfg.NodeName,
				fmt.Errorf("user %q may not use the node agent's API", cert.Subject.CommonName)))
			return
		}
		h(w, r)
	}
}

func writeStatus(w http.ResponseWriter, err *apierrors.StatusError) {
	st := err.Status()
	st.Kind, st.APIVersion = "Status", "v1"
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(st.Code))
	_ = json.NewEncoder(w).Encode(&st)
}

// target finds the pod and the newest instance of the named container.
func (a *Agent) target(r *http.Request) (*corev1.Pod, *runtimeapi.ContainerStatus, podRuntime, *apierrors.StatusError) {
	ns, name, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	pod, err := a.pods.Pods(ns).Get(name)
	if err != nil {
		return nil, nil, podRuntime{}, apierrors.NewNotFound(corev1.Resource("pods"), name)
	}
	rt, err := a.runtimeState(r.Context(), pod.UID)
	if err != nil {
		return nil, nil, podRuntime{}, apierrors.NewServiceUnavailable(err.Error())
	}
	if container == "" {
		return pod, nil, rt, nil
	}
	if findContainer(pod, container) == nil {
		return nil, nil, rt, apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", container, name))
	}
	cur := rt.latest(container)
	if cur == nil {
		reason := "ContainerCreating"
		for _, cs := range allStatuses(pod) {
			if cs.Name == container && cs.State.Waiting != nil {
				reason = cs.State.Waiting.Reason
			}
		}
		return nil, nil, rt, apierrors.NewBadRequest(fmt.Sprintf("container %q in pod %q is waiting to start: %s", container, name, reason))
	}
	return pod, cur, rt, nil
}

func (a *Agent) serveLogs(w http.ResponseWriter, r *http.Request) {
	pod, cur, rt, serr := a.target(r)
	if serr != nil {
		writeStatus(w, serr)
		return
	}
	q := r.URL.Query()
	instance := cur
	if q.Get("previous") == "true" {
		instance = rt.previous(cur.Metadata.Name)
		if instance == nil {
			writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("previous terminated container %q in pod %q not found", cur.Metadata.Name, pod.Name)))
			return
		}
	}
	opt := containerlog.Options{Follow: q.Get("follow") == "true", Timestamps: q.Get("timestamps") == "true"}
	if v := q.Get("tailLines"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeStatus(w, apierrors.NewBadRequest("tailLines: "+err.Error()))
			return
		}
		opt.TailLines = &n
	}
	if v := q.Get("limitBytes"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeStatus(w, apierrors.NewBadRequest("limitBytes: "+err.Error()))
			return
		}
		opt.LimitBytes = &n
	}
	if v := q.Get("sinceSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeStatus(w, apierrors.NewBadRequest("sinceSeconds: "+err.Error()))
			return
		}
		t := time.Now().Add(-time.Duration(n) * time.Second)
		opt.SinceTime = &t
	}
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			writeStatus(w, apierrors.NewBadRequest("sinceTime: "+err.Error()))
			return
		}
		opt.SinceTime = &t
	}
	path := instance.LogPath
	if !filepath.IsAbs(path) {
		path = filepath.Join(a.sandboxLogDir(pod), path)
	}
	running := func() bool {
		st, err := a.runtime.ContainerStatus(r.Context(), &runtimeapi.ContainerStatusRequest{ContainerId: instance.Id})
		return err == nil && st.Status.State == runtimeapi.ContainerState_CONTAINER_RUNNING
	}
	w.Header().Set("Content-Type", "text/plain")
	err := containerlog.Copy(r.Context(), path, opt, w, running)
	if errors.Is(err, os.ErrNotExist) {
		// Nothing logged yet: an empty log, as upstream.
		return
	}
	if err != nil && r.Context().Err() == nil {
		a.log.Debug("log stream ended", "err", err)
	}
}

func (a *Agent) serveExec(w http.ResponseWriter, r *http.Request) {
	_, cur, _, serr := a.target(r)
	if serr != nil {
		writeStatus(w, serr)
		return
	}
	q := r.URL.Query()
	resp, err := a.runtime.Exec(r.Context(), &runtimeapi.ExecRequest{
		ContainerId: cur.Id, Cmd: q["command"], Tty: q.Get("tty") == "true",
		Stdin: q.Get("stdin") == "true", Stdout: q.Get("stdout") == "true", Stderr: q.Get("stderr") == "true",
	})
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	a.proxyStream(w, r, resp.Url)
}

func (a *Agent) serveAttach(w http.ResponseWriter, r *http.Request) {
	_, cur, _, serr := a.target(r)
	if serr != nil {
		writeStatus(w, serr)
		return
	}
	q := r.URL.Query()
	resp, err := a.runtime.Attach(r.Context(), &runtimeapi.AttachRequest{
		ContainerId: cur.Id, Tty: q.Get("tty") == "true",
		Stdin: q.Get("stdin") == "true", Stdout: q.Get("stdout") == "true", Stderr: q.Get("stderr") == "true",
	})
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	a.proxyStream(w, r, resp.Url)
}

func (a *Agent) servePortForward(w http.ResponseWriter, r *http.Request) {
	_, _, rt, serr := a.target(r)
	if serr != nil {
		writeStatus(w, serr)
		return
	}
	sb := rt.readySandbox()
	if sb == nil {
		writeStatus(w, apierrors.NewBadRequest("pod is not running"))
		return
	}
	var ports []int32
	for _, p := range r.URL.Query()["ports"] {
		for _, s := range strings.Split(p, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n <= 0 || n > 65535 {
				writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("invalid port %q", s)))
				return
			}
			ports = append(ports, int32(n))
		}
	}
	resp, err := a.runtime.PortForward(r.Context(), &runtimeapi.PortForwardRequest{PodSandboxId: sb.Id, Port: ports})
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	a.proxyStream(w, r, resp.Url)
}

// proxyStream hands an upgrade request (SPDY or WebSocket) to the
// runtime's streaming server at rawURL and copies bytes both ways.
func (a *Agent) proxyStream(w http.ResponseWriter, r *http.Request, rawURL string) {
	target, err := url.Parse(rawURL)
	if err != nil {
		writeStatus(w, apierrors.NewInternalError(err))
		return
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = target
			pr.Out.Host = target.Host
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			writeStatus(w, apierrors.NewServiceUnavailable("runtime streaming: "+err.Error()))
		},
	}
	proxy.ServeHTTP(w, r)
}
