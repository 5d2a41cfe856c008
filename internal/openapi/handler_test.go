package openapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func TestServeHTTP(t *testing.T) {
	d, srv := newServer(t)
	if err := d.Render(); err != nil {
		t.Fatal(err)
	}
	appsETag := d.v3["apis/apps/v1"].etag
	tests := []struct {
		name, method, path, accept, encoding string
		header                               map[string]string
		wantCode                             int
		wantType                             string
		wantHeader                           map[string]string
	}{
		{name: "v2 json by default", path: "/openapi/v2", wantCode: 200, wantType: mimeJSON},
		{name: "v2 wildcard", path: "/openapi/v2", accept: "*/*", wantCode: 200, wantType: mimeJSON},
		{name: "v2 protobuf as kubectl asks", path: "/openapi/v2", accept: mimeV2ProtoLegacy, wantCode: 200, wantType: mimeV2Proto},
		{name: "v2 protobuf new spelling", path: "/openapi/v2", accept: mimeV2Proto, wantCode: 200, wantType: mimeV2Proto},
		{name: "v2 quality order", path: "/openapi/v2", accept: "application/json;q=0.5, " + mimeV2ProtoLegacy, wantCode: 200, wantType: mimeV2Proto},
		{name: "v2 json preferred", path: "/openapi/v2", accept: "application/json, " + mimeV2ProtoLegacy + ";q=0.9", wantCode: 200, wantType: mimeJSON},
		{name: "v2 v3 protobuf not acceptable", path: "/openapi/v2", accept: mimeV3ProtoLegacy, wantCode: 406},
		{name: "v2 xml not acceptable", path: "/openapi/v2", accept: "application/xml", wantCode: 406},
		{name: "v3 index", path: "/openapi/v3", wantCode: 200, wantType: mimeJSON},
		{name: "v3 index ignores accept", path: "/openapi/v3", accept: mimeV3ProtoLegacy, wantCode: 200, wantType: mimeJSON},
		{name: "v3 group json", path: "/openapi/v3/apis/apps/v1", accept: mimeJSON, wantCode: 200, wantType: mimeJSON},
		{name: "v3 core protobuf", path: "/openapi/v3/api/v1", accept: mimeV3ProtoLegacy, wantCode: 200, wantType: mimeV3Proto},
		{name: "v3 current hash is immutable", path: "/openapi/v3/apis/apps/v1?hash=" + appsETag, wantCode: 200, wantType: mimeJSON,
			wantHeader: map[string]string{"Cache-Control": "public, immutable", "Etag": strconv.Quote(appsETag)}},
		{name: "v3 stale hash redirects", path: "/openapi/v3/apis/apps/v1?hash=0BAD", wantCode: 301,
			wantHeader: map[string]string{"Location": "/openapi/v3/apis/apps/v1?hash=" + appsETag}},
		{name: "v3 without hash is not immutable", path: "/openapi/v3/apis/apps/v1", wantCode: 200,
			wantHeader: map[string]string{"Cache-Control": "", "Vary": "Accept"}},
		{name: "v3 unknown group", path: "/openapi/v3/apis/example.com/v1", wantCode: 404},
		{name: "unknown path", path: "/openapi/v4", wantCode: 404},
		{name: "not modified", path: "/openapi/v3/apis/apps/v1", header: map[string]string{"If-None-Match": strconv.Quote(appsETag)}, wantCode: 304},
		{name: "changed", path: "/openapi/v3/apis/apps/v1", header: map[string]string{"If-None-Match": `"other"`}, wantCode: 200},
		{name: "gzip when accepted", path: "/openapi/v2", encoding: "gzip", wantCode: 200, wantHeader: map[string]string{"Content-Encoding": "gzip"}},
		{name: "identity otherwise", path: "/openapi/v2", encoding: "identity", wantCode: 200, wantHeader: map[string]string{"Content-Encoding": ""}},
		{name: "gzip refused", path: "/openapi/v2", encoding: "gzip;q=0", wantCode: 200, wantHeader: map[string]string{"Content-Encoding": ""}},
		{name: "head", method: "HEAD", path: "/openapi/v2", wantCode: 200, wantType: mimeJSON},
		{name: "post", method: "POST", path: "/openapi/v2", wantCode: 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "GET"
			}
			req, _ := http.NewRequest(method, srv.URL+tc.path, nil)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			req.Header.Set("Accept-Encoding", tc.encoding)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			body, resp := do(t, req)
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.wantCode, body)
			}
			if tc.wantType != "" && resp.Header.Get("Content-Type") != tc.wantType {
				t.Errorf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), tc.wantType)
			}
			for k, v := range tc.wantHeader {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if tc.wantCode == 200 && method == "GET" && len(body) == 0 {
				t.Error("empty body")
			}
			if tc.wantType == mimeJSON && method == "GET" && !json.Valid(body) {
				t.Errorf("body is not JSON: %.100s", body)
			}
		})
	}
}

// TestIndexHashes checks that the index points at each document by the
// ETag the document is then served with.
func TestIndexHashes(t *testing.T) {
	_, srv := newServer(t)
	req, _ := http.NewRequest("GET", srv.URL+"/openapi/v3", nil)
	body, _ := do(t, req)
	var index struct {
		Paths map[string]struct{ ServerRelativeURL string }
	}
	if err := json.Unmarshal(body, &index); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"api/v1", "apis/apps/v1", "apis/batch/v1", "apis/autoscaling/v1", "apis/autoscaling/v2", "apis/rbac.authorization.k8s.io/v1"} {
		e, ok := index.Paths[key]
		if !ok {
			t.Errorf("index has no %s", key)
			continue
		}
		if !strings.HasPrefix(e.ServerRelativeURL, "/openapi/v3/"+key+"?hash=") {
			t.Errorf("%s: URL %s", key, e.ServerRelativeURL)
			continue
		}
		req, _ := http.NewRequest("GET", srv.URL+e.ServerRelativeURL, nil)
		_, resp := do(t, req)
		hash := strings.TrimPrefix(e.ServerRelativeURL, "/openapi/v3/"+key+"?hash=")
		if resp.StatusCode != 200 || resp.Header.Get("Etag") != strconv.Quote(hash) {
			t.Errorf("%s: status %d, ETag %s, want hash %s", key, resp.StatusCode, resp.Header.Get("Etag"), hash)
		}
	}
}

func TestNegotiate(t *testing.T) {
	tests := []struct{ accept, want string }{
		{"", mimeJSON},
		{"*/*", mimeJSON},
		{"application/*", mimeJSON},
		{"application/json", mimeJSON},
		{"APPLICATION/JSON", mimeJSON},
		{mimeV3ProtoLegacy, mimeV3Proto},
		{mimeV3Proto, mimeV3Proto},
		{mimeV3ProtoLegacy + ", application/json", mimeV3Proto},
		{"application/json;q=0.1, " + mimeV3Proto + ";q=0.2", mimeV3Proto},
		{"application/json;q=0, */*;q=0", ""},
		{"text/html", ""},
		{mimeV2Proto, ""},
	}
	for _, tc := range tests {
		if got := negotiate(tc.accept, mimeV3Proto, mimeV3ProtoLegacy); got != tc.want {
			t.Errorf("negotiate(%q) = %q, want %q", tc.accept, got, tc.want)
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	tests := []struct {
		header string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"deflate, gzip", true},
		{"gzip;q=0.5", true},
		{"gzip;q=0", false},
		{"gzip; q=0.000", false},
		{"*", true},
		{"br", false},
	}
	for _, tc := range tests {
		if got := acceptsGzip(tc.header); got != tc.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
}

func TestBuildRejectsEmptyRegistry(t *testing.T) {
	if _, err := Build(nil, "v1"); err == nil {
		t.Error("Build(nil) succeeded")
	}
}
