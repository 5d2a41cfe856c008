package openapi

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	openapi_v3 "github.com/google/gnostic-models/openapiv3"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/openapi"
	"k8s.io/client-go/openapi3"
	"k8s.io/client-go/rest"
	"k8s.io/kube-openapi/pkg/spec3"
	openapiproto "k8s.io/kube-openapi/pkg/util/proto"
	"k8s.io/kube-openapi/pkg/util/proto/validation"

	"github.com/lotse/lotse/internal/apiserver/registry"
)

var appsV1 = schema.GroupVersion{Group: "apps", Version: "v1"}

// newServer serves the documents of the default registry.
func newServer(t *testing.T) (*Documents, *httptest.Server) {
	t.Helper()
	d, err := Build(registry.Default(), "v1.33.0-lotse")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	return d, srv
}

func restConfig(srv *httptest.Server) *rest.Config {
	return &rest.Config{Host: srv.URL}
}

// TestV3ThroughClientGo reads the documents the way kubectl explain and
// kubectl's field-validation check do.
func TestV3ThroughClientGo(t *testing.T) {
	_, srv := newServer(t)
	dc, err := discovery.NewDiscoveryClientForConfig(restConfig(srv))
	if err != nil {
		t.Fatal(err)
	}
	root := openapi3.NewRoot(dc.OpenAPIV3())
	gvs, err := root.GroupVersions()
	if err != nil {
		t.Fatal(err)
	}
	want := registry.Default().GroupVersions()
	if len(gvs) != len(want) {
		t.Errorf("index lists %d group versions, want %d: %v", len(gvs), len(want), gvs)
	}
	for _, gv := range want {
		doc, err := root.GVSpec(gv)
		if err != nil {
			t.Fatalf("%s: %v", gv, err)
		}
		assertRefsResolve(t, gv.String(), doc)
	}

	doc, err := root.GVSpec(appsV1)
	if err != nil {
		t.Fatal(err)
	}
	strategy := doc.Components.Schemas["io.k8s.api.apps.v1.DeploymentStrategy"]
	if strategy == nil {
		t.Fatal("no io.k8s.api.apps.v1.DeploymentStrategy")
	}
	if !strings.Contains(strategy.Description, "replace existing pods") {
		t.Errorf("DeploymentStrategy description = %q", strategy.Description)
	}
	for _, tc := range []struct{ field, typ, ref, doc string }{
		{"type", "string", "", "Recreate"},
		{"rollingUpdate", "", "#/components/schemas/io.k8s.api.apps.v1.RollingUpdateDeployment", "RollingUpdate"},
	} {
		p, ok := strategy.Properties[tc.field]
		if !ok {
			t.Errorf("DeploymentStrategy has no %s", tc.field)
			continue
		}
		if got := strings.Join(p.Type, ""); got != tc.typ {
			t.Errorf("%s type = %q, want %q", tc.field, got, tc.typ)
		}
		if tc.ref != "" && (len(p.AllOf) != 1 || p.AllOf[0].Ref.String() != tc.ref) {
			t.Errorf("%s allOf = %+v, want ref %s", tc.field, p.AllOf, tc.ref)
		}
		if !strings.Contains(p.Description, tc.doc) {
			t.Errorf("%s description = %q, want it to mention %q", tc.field, p.Description, tc.doc)
		}
	}

	gvk := appsV1.WithKind("Deployment")
	if !hasGVK(doc.Components.Schemas["io.k8s.api.apps.v1.Deployment"].Extensions, gvk) {
		t.Errorf("Deployment lacks x-kubernetes-group-version-kind %v", gvk)
	}
	// kubectl decides that the server validates fields itself when every
	// PATCH of the kind offers fieldValidation.
	patches := 0
	for path, item := range doc.Paths.Paths {
		op := item.Patch
		if op == nil || !hasGVK(op.Extensions, gvk) {
			continue
		}
		patches++
		if !hasQueryParam(op.Parameters, "fieldValidation") {
			t.Errorf("PATCH %s has no fieldValidation parameter", path)
		}
		if op.RequestBody == nil || op.RequestBody.Content["application/strategic-merge-patch+json"] == nil {
			t.Errorf("PATCH %s does not accept strategic merge patches", path)
		}
	}
	if patches != 2 { // the deployment and its status
		t.Errorf("found %d PATCH operations for %v, want 2", patches, gvk)
	}
}

func hasGVK(ext map[string]any, gvk schema.GroupVersionKind) bool {
	match := func(v any) bool {
		m, _ := v.(map[string]any)
		return m["group"] == gvk.Group && m["version"] == gvk.Version && m["kind"] == gvk.Kind
	}
	switch v := ext["x-kubernetes-group-version-kind"].(type) {
	case []any:
		for _, e := range v {
			if match(e) {
				return true
			}
		}
	case map[string]any:
		return match(v)
	}
	return false
}

func hasQueryParam(ps []*spec3.Parameter, name string) bool {
	for _, p := range ps {
		if p.Name == name && p.In == "query" {
			return true
		}
	}
	return false
}

// assertRefsResolve checks that every reference in a v3 document names one
// of its own schemas.
func assertRefsResolve(t *testing.T, what string, doc *spec3.OpenAPI) {
	t.Helper()
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	const prefix = `"$ref":"#/components/schemas/`
	for rest := string(raw); ; {
		i := strings.Index(rest, prefix)
		if i < 0 {
			break
		}
		rest = rest[i+len(prefix):]
		name := rest[:strings.IndexByte(rest, '"')]
		if doc.Components.Schemas[name] == nil {
			t.Errorf("%s: dangling reference to %s", what, name)
		}
	}
}

// TestV2Protobuf reads /openapi/v2 as kubectl does (protobuf) and looks
// models up the way kubectl explain --output plaintext-openapiv2 does.
func TestV2Protobuf(t *testing.T) {
	_, srv := newServer(t)
	dc, err := discovery.NewDiscoveryClientForConfig(restConfig(srv))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := dc.OpenAPISchema()
	if err != nil {
		t.Fatal(err)
	}
	models, err := openapiproto.NewOpenAPIData(doc)
	if err != nil {
		t.Fatal(err)
	}
	strategy, ok := models.LookupModel("io.k8s.api.apps.v1.DeploymentStrategy").(*openapiproto.Kind)
	if !ok {
		t.Fatal("DeploymentStrategy is not a kind model")
	}
	if _, ok := strategy.Fields["rollingUpdate"].(openapiproto.Reference); !ok {
		t.Errorf("rollingUpdate is %T, want a reference", strategy.Fields["rollingUpdate"])
	}
	if d := strategy.Fields["type"].GetDescription(); !strings.Contains(d, "Recreate") {
		t.Errorf("type description = %q", d)
	}

	// kubectl finds a kind's model by the extension on the definition.
	found := false
	for _, name := range models.ListModels() {
		ext := models.LookupModel(name).GetExtensions()
		if list, ok := ext["x-kubernetes-group-version-kind"].([]any); ok {
			for _, e := range list {
				if m, _ := e.(map[any]any); m["kind"] == "Deployment" && m["group"] == "apps" && m["version"] == "v1" {
					found = name == "io.k8s.api.apps.v1.Deployment"
				}
			}
		}
	}
	if !found {
		t.Error("no model carries the apps/v1 Deployment group-version-kind")
	}

	// Client-side validation (kubectl --validate=true against old servers)
	// walks the same models.
	errs := validation.ValidateModel(map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web"},
		"spec": map[string]any{
			"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
			"strategy": map[string]any{"type": "RollingUpdate", "rollingUpdate": map[string]any{"maxSurge": "25%"}},
			"template": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "c", "image": "nginx"}}}},
		},
	}, models.LookupModel("io.k8s.api.apps.v1.Deployment"), "Deployment")
	if len(errs) > 0 {
		t.Errorf("valid deployment rejected: %v", errs)
	}
}

// TestAllProtobufForms parses every v3 document into protobuf, as served.
func TestAllProtobufForms(t *testing.T) {
	d, srv := newServer(t)
	if err := d.Render(); err != nil {
		t.Fatal(err)
	}
	for key := range d.v3 {
		req, _ := http.NewRequest("GET", srv.URL+"/openapi/v3/"+key, nil)
		req.Header.Set("Accept", openapi.ContentTypeOpenAPIV3PB)
		body, resp := do(t, req)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != mimeV3Proto {
			t.Fatalf("%s: %d %s", key, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var doc openapi_v3.Document
		if err := proto.Unmarshal(body, &doc); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if len(doc.GetPaths().GetPath()) == 0 {
			t.Errorf("%s: protobuf document has no paths", key)
		}
	}
	req, _ := http.NewRequest("GET", srv.URL+"/openapi/v2", nil)
	req.Header.Set("Accept", mimeV2ProtoLegacy)
	body, _ := do(t, req)
	var v2 openapi_v2.Document
	if err := proto.Unmarshal(body, &v2); err != nil || v2.GetSwagger() != "2.0" {
		t.Fatalf("v2 protobuf: %v, swagger=%q", err, v2.GetSwagger())
	}
}

func do(t *testing.T, req *http.Request) ([]byte, *http.Response) {
	t.Helper()
	resp, err := http.DefaultTransport.RoundTrip(req) // no transparent gunzip
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	return body, resp
}
