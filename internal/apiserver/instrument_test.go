package apiserver_test

import (
	"net/http"
	"regexp"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPrometheusMetrics checks /metrics: for authenticated clients only,
// with the API's requests counted under upstream's names and labels, and
// the embedded etcd member's and Go runtime's metrics beside them.
func TestPrometheusMetrics(t *testing.T) {
	e := start(t)
	ns := e.namespace("metrics")
	count := func(body []byte, series string) int {
		t.Helper()
		m := regexp.MustCompile(regexp.QuoteMeta(series) + ` (\d+)`).FindSubmatch(body)
		if m == nil {
			return 0
		}
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}
	created := `apiserver_request_total{code="201",component="apiserver",group="",resource="configmaps",scope="namespace",subresource="",verb="POST",version="v1"}`
	missing := `apiserver_request_total{code="404",component="apiserver",group="",resource="configmaps",scope="resource",subresource="",verb="GET",version="v1"}`
	before := e.do("GET", "/metrics", nil)
	if before.code != http.StatusOK {
		t.Fatalf("/metrics = %d: %s", before.code, before.body)
	}
	cms := e.s.Client.CoreV1().ConfigMaps(ns)
	for i := range 3 {
		_, err := cms.Create(e.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c" + strconv.Itoa(i)}}, metav1.CreateOptions{})
		must(t, err)
	}
	if _, err := cms.Get(e.ctx, "nope", metav1.GetOptions{}); err == nil {
		t.Fatal("got a configmap that does not exist")
	}
	after := e.do("GET", "/metrics", nil)
	if d := count(after.body, created) - count(before.body, created); d != 3 {
		t.Errorf("%s grew by %d, want 3", created, d)
	}
	if d := count(after.body, missing) - count(before.body, missing); d != 1 {
		t.Errorf("%s grew by %d, want 1", missing, d)
	}
	for _, name := range []string{"apiserver_request_duration_seconds_bucket", "go_goroutines", "process_resident_memory_bytes", "etcd_server_has_leader"} {
		if !regexp.MustCompile(`(?m)^` + name + `[{ ]`).Match(after.body) {
			t.Errorf("/metrics has no %s", name)
		}
	}
	r := e.doWith(e.anonymous(), "GET", "/metrics", nil)
	wantStatus(t, r, http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "")
}
