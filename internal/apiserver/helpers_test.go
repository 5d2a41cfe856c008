package apiserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/lotse/lotse/internal/testserver"
)

// These integration tests check lotse against upstream Kubernetes
// behaviour: every expected code, reason and message below is what a real
// kube-apiserver answers, not what lotse happens to answer today.

// env is one started control plane plus raw HTTP access to it.
type env struct {
	t    *testing.T
	s    *testserver.Server
	http *http.Client // authenticates with the admin client certificate
	ctx  context.Context
}

func start(t *testing.T) *env {
	t.Helper()
	s := testserver.Start(t, apiOnly(testserver.Options{}))
	return newEnv(t, s)
}

func newEnv(t *testing.T, s *testserver.Server) *env {
	t.Helper()
	hc, err := rest.HTTPClientFor(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return &env{t: t, s: s, http: hc, ctx: ctx}
}

// anonymous returns an HTTP client that trusts the server but presents no
// client certificate.
func (e *env) anonymous() *http.Client {
	cfg := rest.CopyConfig(e.s.Config)
	cfg.TLSClientConfig.CertData, cfg.TLSClientConfig.KeyData = nil, nil
	cfg.TLSClientConfig.CertFile, cfg.TLSClientConfig.KeyFile = "", ""
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return hc
}

// response is a raw HTTP answer.
type response struct {
	code   int
	header http.Header
	body   []byte
}

// do sends one raw request; headers are "Name: value" strings.
func (e *env) do(method, path string, body []byte, headers ...string) response {
	e.t.Helper()
	return e.doWith(e.http, method, path, body, headers...)
}

func (e *env) doWith(hc *http.Client, method, path string, body []byte, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(e.ctx, method, e.s.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := hc.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}

// status decodes a metav1.Status body.
func (r response) status(t *testing.T) metav1.Status {
	t.Helper()
	var st metav1.Status
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatalf("answer %d is not a Status: %v: %s", r.code, err, r.body)
	}
	return st
}

// wantStatus checks a raw answer is a Status with code, reason and (when
// non-empty) a message containing msg.
func wantStatus(t *testing.T, r response, code int, reason metav1.StatusReason, msg string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("HTTP code = %d, want %d; body: %s", r.code, code, r.body)
	}
	st := r.status(t)
	if st.Kind != "Status" || st.APIVersion != "v1" {
		t.Errorf("body kind/apiVersion = %q/%q, want Status/v1", st.Kind, st.APIVersion)
	}
	if st.Status != metav1.StatusFailure {
		t.Errorf("status = %q, want Failure", st.Status)
	}
	if int(st.Code) != code {
		t.Errorf("Status.code = %d, want %d", st.Code, code)
	}
	if st.Reason != reason {
		t.Errorf("reason = %q, want %q (message %q)", st.Reason, reason, st.Message)
	}
	if msg != "" && !strings.Contains(st.Message, msg) {
		t.Errorf("message = %q, want it to contain %q", st.Message, msg)
	}
}

// wantAPIError checks a client-go error against code, reason and the
// exact message (when non-empty).
func wantAPIError(t *testing.T, err error, code int32, reason metav1.StatusReason, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %d %s", code, reason)
	}
	se, ok := err.(apierrors.APIStatus)
	if !ok {
		t.Fatalf("error %v (%T) is not an API status", err, err)
	}
	st := se.Status()
	if st.Code != code || st.Reason != reason {
		t.Fatalf("got %d %s (%q), want %d %s", st.Code, st.Reason, st.Message, code, reason)
	}
	if msg != "" && st.Message != msg {
		t.Errorf("message = %q\nwant      %q", st.Message, msg)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var nsCounter int

// namespace creates a fresh namespace for one test.
func (e *env) namespace(prefix string) string {
	e.t.Helper()
	nsCounter++
	name := fmt.Sprintf("%s-%d", prefix, nsCounter)
	_, err := e.s.Client.CoreV1().Namespaces().Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	must(e.t, err)
	return name
}

func podSpec(containers ...string) corev1.PodSpec {
	if len(containers) == 0 {
		containers = []string{"main"}
	}
	var cs []corev1.Container
	for _, c := range containers {
		cs = append(cs, corev1.Container{Name: c, Image: "busybox:1.36"})
	}
	return corev1.PodSpec{Containers: cs}
}

func newPod(name string, labels map[string]string, containers ...string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: podSpec(containers...)}
}

func newConfigMap(name string, labels map[string]string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Data: data}
}

func int32p(n int32) *int32 { return &n }

func newDeployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: int32p(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec()},
		},
	}
}

// apiOnly runs only the controllers that keep the API itself working
// (namespaces, their service accounts, garbage collection): no scheduler,
// no workload controllers (pods for the sets and jobs the tests create),
// no node lifecycle or pod GC (taints on hand-made nodes, pods on missing
// ones). These tests' expectations are the API's alone.
func apiOnly(o testserver.Options) testserver.Options {
	o.DisableScheduler = true
	o.Controllers = []string{"garbagecollector", "namespace", "serviceaccount"}
	return o
}
