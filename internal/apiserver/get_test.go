package apiserver_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/kubernetes/scheme"
)

// TestGetServesCachedEncodings checks that a GET answered from the watch
// cache's memoized bytes is what the general encoder writes, and that an
// object changed a moment ago is never answered from an older memo.
func TestGetServesCachedEncodings(t *testing.T) {
	e := start(t)
	ns := e.namespace("get")
	pods := e.s.Client.CoreV1().Pods(ns)
	created, err := pods.Create(e.ctx, newPod("p", map[string]string{"v": "1"}, "c"), metav1.CreateOptions{})
	must(t, err)
	path := "/api/v1/namespaces/" + ns + "/pods/p"
	// Once the cache holds the revision etcd returns, GETs share its bytes.
	deadline := time.Now().Add(10 * time.Second)
	for e.do(http.MethodGet, path+"?resourceVersion=0", nil).code != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the pod never reached the watch cache")
		}
		time.Sleep(10 * time.Millisecond)
	}

	first := e.do(http.MethodGet, path, nil, "Accept: application/json")
	second := e.do(http.MethodGet, path, nil, "Accept: application/json")
	cached := e.do(http.MethodGet, path+"?resourceVersion=0", nil, "Accept: application/json")
	pretty := e.do(http.MethodGet, path+"?pretty=true", nil, "Accept: application/json")
	for _, r := range []response{first, second, cached, pretty} {
		if r.code != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("GET: %d %q: %s", r.code, r.header.Get("Content-Type"), r.body)
		}
	}
	// pretty=true takes the general encoder; compacted, it must be the
	// very bytes of the memoized answers.
	var general bytes.Buffer
	must(t, json.Compact(&general, pretty.body))
	general.WriteByte('\n')
	for name, r := range map[string]response{"first": first, "second": second, "resourceVersion=0": cached} {
		if !bytes.Equal(r.body, general.Bytes()) {
			t.Errorf("%s GET differs from the general encoder:\n%s\nwant\n%s", name, r.body, general.Bytes())
		}
	}

	proto := e.do(http.MethodGet, path, nil, "Accept: application/vnd.kubernetes.protobuf")
	if proto.code != http.StatusOK || proto.header.Get("Content-Type") != "application/vnd.kubernetes.protobuf" {
		t.Fatalf("protobuf GET: %d %q", proto.code, proto.header.Get("Content-Type"))
	}
	fromProto, fromJSON := &corev1.Pod{}, &corev1.Pod{}
	if _, _, err := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme).Decode(proto.body, nil, fromProto); err != nil {
		t.Fatalf("decoding the protobuf GET: %v", err)
	}
	must(t, runtime.DecodeInto(scheme.Codecs.UniversalDeserializer(), first.body, fromJSON))
	if !apiequality.Semantic.DeepEqual(fromProto, fromJSON) {
		t.Errorf("protobuf and JSON GET differ:\n%v\n%v", fromProto, fromJSON)
	}
	if fromJSON.ResourceVersion != created.ResourceVersion {
		t.Errorf("GET resourceVersion %s, created %s", fromJSON.ResourceVersion, created.ResourceVersion)
	}

	// Right after an update, a GET answers the update, whether or not the
	// cache has caught up.
	for i := range 20 {
		cur, err := pods.Get(e.ctx, "p", metav1.GetOptions{})
		must(t, err)
		want := cur.DeepCopy()
		want.Labels["v"] = string(rune('a' + i))
		updated, err := pods.Update(e.ctx, want, metav1.UpdateOptions{})
		must(t, err)
		got, err := pods.Get(e.ctx, "p", metav1.GetOptions{})
		must(t, err)
		if got.ResourceVersion != updated.ResourceVersion || got.Labels["v"] != want.Labels["v"] {
			t.Fatalf("GET after update %d: resourceVersion %s label %q, want %s %q",
				i, got.ResourceVersion, got.Labels["v"], updated.ResourceVersion, want.Labels["v"])
		}
	}
}
