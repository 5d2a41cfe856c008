package apiserver

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Prometheus metrics at /metrics, for any authenticated client (upstream
// asks RBAC for the non-resource URL; lotse does not authorize yet): the
// process's (Go runtime, process, the embedded etcd member's) and the
// API's requests under upstream's names and labels, so that dashboards
// made for kube-apiserver read them.
var (
	requestLabels = []string{"verb", "group", "version", "resource", "subresource", "scope", "component"}

	requestsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apiserver_request_total",
		Help: "Counter of apiserver requests broken out for each verb, group, version, resource, scope, component, and HTTP response code.",
	}, append(requestLabels, "code"))
	requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "apiserver_request_duration_seconds",
		Help: "Response latency distribution in seconds for each verb, group, version, resource, subresource, scope and component.",
		// Upstream's buckets.
		Buckets: []float64{0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3,
			4, 5, 6, 8, 10, 15, 20, 30, 45, 60},
	}, requestLabels)
)

func init() {
	prometheus.MustRegister(requestsTotal, requestDuration)
}

// prometheusMetrics answers /metrics from the process's registry.
var prometheusMetrics = promhttp.Handler()

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Flush lets watches stream through the recorder.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController (the node proxy's upgrades) reach
// the connection.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// instrumented serves one resource request and counts it.
func instrumented(w http.ResponseWriter, r *http.Request, info *requestInfo, serve func(http.ResponseWriter)) {
	start := time.Now()
	// The labels come first: handlers fill in info (a create's name).
	verb := metricVerb(r, info)
	scope := "cluster"
	switch {
	case info.Name != "":
		scope = "resource"
	case info.Namespace != "":
		scope = "namespace"
	}
	labels := []string{verb, info.GroupVersion.Group, info.GroupVersion.Version, info.Resource, info.Subresource, scope, "apiserver"}
	rec := &statusRecorder{ResponseWriter: w}
	serve(rec)
	code := rec.code
	if code == 0 {
		code = http.StatusOK
	}
	requestsTotal.WithLabelValues(append(labels, strconv.Itoa(code))...).Inc()
	if verb != "WATCH" && verb != "CONNECT" {
		requestDuration.WithLabelValues(labels...).Observe(time.Since(start).Seconds())
	}
}

// metricVerb is upstream's verb label: the HTTP-ish verb in upper case,
// LIST and WATCH for collection reads, APPLY for server-side apply,
// CONNECT for exec, attach, port-forward and proxy.
func metricVerb(r *http.Request, info *requestInfo) string {
	switch info.Verb {
	case "list":
		return "LIST"
	case "watch":
		return "WATCH"
	}
	if nodeSubresources[info.Subresource] != "" && info.Subresource != "log" {
		return "CONNECT"
	}
	if r.Method == http.MethodPatch && strings.HasPrefix(r.Header.Get("Content-Type"), "application/apply-patch") {
		return "APPLY"
	}
	return r.Method
}
