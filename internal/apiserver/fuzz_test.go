package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lotse/lotse/internal/apiserver/registry"
	"github.com/lotse/lotse/internal/etcd"
	"github.com/lotse/lotse/internal/storage"
)

// apiServerForFuzz starts one API server over a real embedded etcd, shared
// by every iteration of a fuzz target (starting etcd per input would be far
// too slow), and stops it when the target ends.
func apiServerForFuzz(f *testing.F) *Server {
	f.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	member, err := etcd.Start(ctx, etcd.Config{DataDir: f.TempDir(), ClientURL: "http://127.0.0.1:0", PeerURL: "http://127.0.0.1:0", Unsafe: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { member.Close() })
	client, err := clientv3.New(clientv3.Config{Endpoints: member.Endpoints(), Logger: zap.NewNop()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { client.Close() })
	reg := registry.Default()
	specs := StorageResources(reg, 0)
	store, err := storage.New(storage.Config{Client: client, Resources: specs, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	store.Start(ctx)
	f.Cleanup(store.Stop)
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	if err := store.WaitReady(wctx); err != nil {
		f.Fatal(err)
	}
	s, err := New(Config{Registry: reg, Store: store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Authenticator: func(*http.Request) (*User, bool) {
			return &User{Name: "fuzz", Groups: []string{"system:masters"}}, true
		}})
	if err != nil {
		f.Fatal(err)
	}
	// The namespace and the objects that update, bind and scale inputs target.
	for _, req := range []struct{ path, body string }{
		{"/api/v1/namespaces", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"fuzz"}}`},
		{"/api/v1/namespaces/fuzz/pods", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"target"},"spec":{"containers":[{"name":"a","image":"x"}]}}`},
		{"/apis/apps/v1/namespaces/fuzz/deployments", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"target"},
"spec":{"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"a","image":"x"}]}}}}`},
	} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("POST", req.path, bytes.NewBufferString(req.body)))
		if rec.Code != http.StatusCreated {
			f.Fatalf("setting up %s: %d %s", req.path, rec.Code, rec.Body)
		}
	}
	return s
}

var decodeTargets = []struct{ method, path string }{
	{"POST", "/api/v1/namespaces/fuzz/configmaps"},
	{"POST", "/api/v1/namespaces/fuzz/pods"},
	{"POST", "/apis/apps/v1/namespaces/fuzz/deployments"},
	{"PUT", "/api/v1/namespaces/fuzz/pods/target"},
	{"POST", "/api/v1/namespaces/fuzz/pods/target/binding"},
	{"PUT", "/apis/apps/v1/namespaces/fuzz/deployments/target/scale"},
	{"DELETE", "/api/v1/namespaces/fuzz/configmaps/none"},
	{"PATCH", "/api/v1/namespaces/fuzz/pods/target"},
	{"PATCH", "/apis/apps/v1/namespaces/fuzz/deployments/target/scale"},
}

var contentTypes = []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf", "", "text/plain", "application/json; charset=utf-8",
	"application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json"}

var fieldValidations = []string{"", "Strict", "Warn", "Ignore"}

// FuzzDecode sends arbitrary bodies through the real handler: whatever the
// bytes, the server must not panic and must answer a client error (or
// succeed), never a 5xx.
func FuzzDecode(f *testing.F) {
	s := apiServerForFuzz(f)
	f.Add([]byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}`), uint8(0), uint8(0), uint8(0))
	f.Add([]byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i","ports":[{"containerPort":-1}]}]}}`), uint8(1), uint8(1), uint8(0))
	f.Add([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}}}\n"), uint8(2), uint8(2), uint8(1))
	f.Add([]byte(`{"metadata":{"name":"target","name":"x"}}`), uint8(3), uint8(0), uint8(1))
	f.Add([]byte("k8s\x00\n\x02v1\x12\x03Pod"), uint8(1), uint8(0), uint8(2))
	f.Add([]byte(`{"apiVersion":"v1","kind":"Binding","metadata":{"name":"target"},"target":{"name":"n"}}`), uint8(4), uint8(0), uint8(0))
	f.Add([]byte(`{"apiVersion":"autoscaling/v1","kind":"Scale","spec":{"replicas":1e99}}`), uint8(5), uint8(0), uint8(0))
	f.Add([]byte(`{"kind":"DeleteOptions","gracePeriodSeconds":-5,"propagationPolicy":"x"}`), uint8(6), uint8(0), uint8(0))
	f.Add([]byte(`[]`), uint8(0), uint8(0), uint8(4))
	f.Add([]byte(`{"spec":{"containers":[{"name":"a","image":"y"}]}}`), uint8(7), uint8(1), uint8(8))
	f.Add([]byte(`{"spec":{"replicas":2}}`), uint8(8), uint8(0), uint8(7))
	f.Fuzz(func(t *testing.T, body []byte, target, fv, ct uint8) {
		tg := decodeTargets[int(target)%len(decodeTargets)]
		path := tg.path
		if v := fieldValidations[int(fv)%len(fieldValidations)]; v != "" {
			path += "?fieldValidation=" + v
		}
		req := httptest.NewRequest(tg.method, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", contentTypes[int(ct)%len(contentTypes)])
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code >= 500 || rec.Code < 200 {
			t.Fatalf("%s %s with %q answered %d: %s", tg.method, path, body, rec.Code, rec.Body.String())
		}
		if rec.Code >= 400 {
			var st metav1.Status
			if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || st.Kind != "Status" || int(st.Code) != rec.Code {
				t.Fatalf("error answer %d is not a matching Status: %s", rec.Code, rec.Body.String())
			}
		}
	})
}

// podJSON is the pod FuzzPatch patches.
var podJSON = []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"ns","labels":{"a":"b"},"finalizers":["x"]},
"spec":{"containers":[{"name":"a","image":"i","ports":[{"containerPort":80,"protocol":"TCP"}],"env":[{"name":"E","value":"1"}]},{"name":"b","image":"j"}],
"volumes":[{"name":"v","emptyDir":{}}],"tolerations":[{"key":"k","operator":"Exists"}]},"status":{"phase":"Pending","conditions":[{"type":"Ready","status":"False"}]}}`)

var patchTypes = []types.PatchType{types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType}

// FuzzPatch applies arbitrary patches of the three types to a pod: applyPatch
// must not panic, must fail only with a 4xx API error, and what it returns
// must be JSON.
func FuzzPatch(f *testing.F) {
	f.Add([]byte(`[{"op":"replace","path":"/spec/containers/0/image","value":"new"}]`), uint8(0))
	f.Add([]byte(`[{"op":"test","path":"/metadata/labels/a","value":"c"}]`), uint8(0))
	f.Add([]byte(`[{"op":"move","from":"/spec","path":"/spec/containers"}]`), uint8(0))
	f.Add([]byte(`[{"op":"copy","from":"/spec/containers","path":"/spec/containers/-"}]`), uint8(0))
	f.Add([]byte(`{"metadata":{"labels":{"a":null}},"spec":{"containers":null}}`), uint8(1))
	f.Add([]byte(`{"spec":{"containers":[{"name":"b","image":"k"}]}}`), uint8(2))
	f.Add([]byte(`{"spec":{"containers":[{"name":"a","$patch":"delete"}],"$setElementOrder/containers":[{"name":"b"}]}}`), uint8(2))
	f.Add([]byte(`{"spec":{"$retainKeys":["containers"],"volumes":{"$patch":"replace"}}}`), uint8(2))
	f.Add([]byte(`{"metadata":{"$deleteFromPrimitiveList/finalizers":["x"]}}`), uint8(2))
	f.Add([]byte(`{"spec":{"containers":[{"ports":[{"$patch":"merge"}]}]}}`), uint8(2))
	f.Add([]byte(`null`), uint8(1))
	f.Fuzz(func(t *testing.T, patch []byte, kind uint8) {
		pt := patchTypes[int(kind)%len(patchTypes)]
		// A panic is reported as a plain failure so that one crasher in the
		// corpus does not abort the whole test binary.
		defer func() {
			if v := recover(); v != nil {
				t.Fatalf("%s patch %q panicked: %v", pt, patch, v)
			}
		}()
		out, err := applyPatch(pt, podJSON, patch, &corev1.Pod{})
		if err != nil {
			var st apierrors.APIStatus
			if !asAPIStatus(err, &st) {
				t.Fatalf("%s patch %q: error %v is not an API status", pt, patch, err)
			}
			if code := st.Status().Code; code < 400 || code >= 500 {
				t.Fatalf("%s patch %q: answered %d, want 4xx", pt, patch, code)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("%s patch %q produced invalid JSON %q", pt, patch, out)
		}
	})
}

func asAPIStatus(err error, st *apierrors.APIStatus) bool {
	s, ok := err.(apierrors.APIStatus)
	if ok {
		*st = s
	}
	return ok
}
