package registry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// serve opens a registry in dir and serves it until the test ends.
func serve(t *testing.T, dir string) (*Registry, *httptest.Server) {
	t.Helper()
	reg, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	return reg, srv
}

// ref is a go-containerregistry reference to repo:tag on srv.
func ref(t *testing.T, srv *httptest.Server, repoTag string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://")+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func randomImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(1024, 3)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// do sends one raw request; ggcr's client hides the status codes and headers
// the API is judged on.
func do(t *testing.T, srv *httptest.Server, method, path, contentType string, body []byte, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) != 1 {
		t.Fatalf("error body %q is not a single spec error (%v)", body, err)
	}
	return e.Errors[0].Code
}

func TestPushPullRoundTrip(t *testing.T) {
	_, srv := serve(t, t.TempDir())
	tests := []struct {
		repoTag string
		index   bool
	}{
		{repoTag: "docker.io/shop/web:1"},
		{repoTag: "registry.k8s.io/pause:3.10"},
		{repoTag: "lotse.local/pause:latest"},
		{repoTag: "docker.io/library/multi:2", index: true},
		{repoTag: "shop/web:1"}, // no host: stored under that exact name
	}
	for _, tt := range tests {
		t.Run(tt.repoTag, func(t *testing.T) {
			r := ref(t, srv, tt.repoTag)
			var want v1.Hash
			if tt.index {
				idx, err := random.Index(512, 2, 3)
				if err != nil {
					t.Fatal(err)
				}
				if err := remote.WriteIndex(r, idx); err != nil {
					t.Fatalf("push: %v", err)
				}
				got, err := remote.Index(r)
				if err != nil {
					t.Fatalf("pull: %v", err)
				}
				if err := validate.Index(got); err != nil {
					t.Fatalf("pulled index invalid: %v", err)
				}
				want, _ = idx.Digest()
			} else {
				img := randomImage(t)
				if err := remote.Write(r, img); err != nil {
					t.Fatalf("push: %v", err)
				}
				got, err := remote.Image(r)
				if err != nil {
					t.Fatalf("pull: %v", err)
				}
				// validate reads every layer and checks every digest.
				if err := validate.Image(got); err != nil {
					t.Fatalf("pulled image invalid: %v", err)
				}
				want, _ = img.Digest()
			}
			desc, err := remote.Head(r)
			if err != nil {
				t.Fatal(err)
			}
			if desc.Digest != want {
				t.Errorf("HEAD digest = %s, want %s", desc.Digest, want)
			}
			tags, err := remote.List(r.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(tags) != 1 || tags[0] != r.Identifier() {
				t.Errorf("tags = %v, want [%s]", tags, r.Identifier())
			}
		})
	}

	repos, err := remote.Catalog(t.Context(), ref(t, srv, "x").Context().Registry)
	if err != nil {
		t.Fatal(err)
	}
	wantRepos := []string{"docker.io/library/multi", "docker.io/shop/web", "lotse.local/pause", "registry.k8s.io/pause", "shop/web"}
	if strings.Join(repos, " ") != strings.Join(wantRepos, " ") {
		t.Errorf("catalog = %v, want %v", repos, wantRepos)
	}
}

// TestMirrorRequests replays what containerd sends through a hosts.toml
// mirror, and the error cases, checking status, code and headers.
func TestMirrorRequests(t *testing.T) {
	_, srv := serve(t, t.TempDir())
	img := randomImage(t)
	if err := remote.Write(ref(t, srv, "docker.io/library/busybox:1.36"), img); err != nil {
		t.Fatal(err)
	}
	manifest, _ := img.RawManifest()
	mdigest := digestOf(manifest)
	layers, _ := img.Layers()
	layer, _ := layers[0].Digest()
	layerSize, _ := layers[0].Size()
	missing := digestOf([]byte("missing"))

	tests := []struct {
		name       string
		method     string
		path       string
		status     int
		code       string            // spec error code, for failures
		header     map[string]string // headers that must match
		bodyDigest string            // digest the body must have
	}{
		{name: "base", method: "GET", path: "/v2/", status: 200,
			header: map[string]string{"Docker-Distribution-API-Version": "registry/2.0"}},
		{name: "manifest by tag with ns", method: "GET", path: "/v2/library/busybox/manifests/1.36?ns=docker.io", status: 200,
			header:     map[string]string{"Content-Type": string(types.DockerManifestSchema2), "Docker-Content-Digest": mdigest},
			bodyDigest: mdigest},
		{name: "manifest HEAD with ns", method: "HEAD", path: "/v2/library/busybox/manifests/1.36?ns=docker.io", status: 200,
			header: map[string]string{"Docker-Content-Digest": mdigest, "Content-Length": strconv.Itoa(len(manifest))}},
		{name: "manifest by digest with ns", method: "GET", path: "/v2/library/busybox/manifests/" + mdigest + "?ns=docker.io", status: 200,
			bodyDigest: mdigest},
		{name: "manifest without ns, full name", method: "GET", path: "/v2/docker.io/library/busybox/manifests/1.36", status: 200,
			bodyDigest: mdigest},
		{name: "blob with ns", method: "GET", path: "/v2/library/busybox/blobs/" + layer.String() + "?ns=docker.io", status: 200,
			header:     map[string]string{"Docker-Content-Digest": layer.String()},
			bodyDigest: layer.String()},
		{name: "blob HEAD", method: "HEAD", path: "/v2/library/busybox/blobs/" + layer.String() + "?ns=docker.io", status: 200,
			header: map[string]string{"Content-Length": strconv.FormatInt(layerSize, 10)}},
		{name: "tags list with ns", method: "GET", path: "/v2/library/busybox/tags/list?ns=docker.io", status: 200},
		{name: "catalog", method: "GET", path: "/v2/_catalog", status: 200},

		{name: "other namespace", method: "GET", path: "/v2/library/busybox/manifests/1.36?ns=quay.io", status: 404, code: "MANIFEST_UNKNOWN"},
		{name: "unknown tag", method: "GET", path: "/v2/library/busybox/manifests/nope?ns=docker.io", status: 404, code: "MANIFEST_UNKNOWN"},
		{name: "unknown manifest digest", method: "GET", path: "/v2/library/busybox/manifests/" + missing + "?ns=docker.io", status: 404, code: "MANIFEST_UNKNOWN"},
		{name: "unknown blob", method: "GET", path: "/v2/library/busybox/blobs/" + missing + "?ns=docker.io", status: 404, code: "BLOB_UNKNOWN"},
		{name: "bad blob digest", method: "GET", path: "/v2/library/busybox/blobs/sha256:xyz?ns=docker.io", status: 400, code: "DIGEST_INVALID"},
		{name: "bad manifest digest", method: "GET", path: "/v2/library/busybox/manifests/sha256:12?ns=docker.io", status: 400, code: "DIGEST_INVALID"},
		{name: "bad name", method: "GET", path: "/v2/Library/busybox/manifests/1.36?ns=docker.io", status: 400, code: "NAME_INVALID"},
		{name: "traversal", method: "GET", path: "/v2/a/%2e%2e/b/manifests/1", status: 400, code: "NAME_INVALID"},
		{name: "bad ns", method: "GET", path: "/v2/library/busybox/manifests/1.36?ns=a/b", status: 400, code: "NAME_INVALID"},
		{name: "unknown repo tags", method: "GET", path: "/v2/nope/tags/list", status: 404, code: "NAME_UNKNOWN"},
		{name: "blob delete", method: "DELETE", path: "/v2/library/busybox/blobs/" + layer.String() + "?ns=docker.io", status: 405, code: "UNSUPPORTED"},
		{name: "base POST", method: "POST", path: "/v2/", status: 405, code: "UNSUPPORTED"},
		{name: "unknown endpoint", method: "GET", path: "/v2/library/busybox/whatever", status: 404, code: "NOT_FOUND"},
		{name: "unknown upload", method: "PATCH", path: "/v2/x/blobs/uploads/0123456789abcdef0123456789abcdef", status: 404, code: "BLOB_UPLOAD_UNKNOWN"},
		{name: "malformed upload id", method: "PATCH", path: "/v2/x/blobs/uploads/..", status: 404, code: "BLOB_UPLOAD_UNKNOWN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, srv, tt.method, tt.path, "", nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (body %s)", resp.StatusCode, tt.status, body)
			}
			if tt.code != "" && tt.method != "HEAD" {
				if got := errorCode(t, body); got != tt.code {
					t.Errorf("code = %s, want %s", got, tt.code)
				}
			}
			for k, v := range tt.header {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if tt.bodyDigest != "" && digestOf(body) != tt.bodyDigest {
				t.Errorf("body digest = %s, want %s", digestOf(body), tt.bodyDigest)
			}
			if tt.method == "HEAD" && len(body) != 0 {
				t.Errorf("HEAD returned a body of %d bytes", len(body))
			}
		})
	}
}

// TestPush drives the upload and manifest endpoints directly, including the
// ways a push can go wrong.
func TestPush(t *testing.T) {
	dir := t.TempDir()
	_, srv := serve(t, dir)
	blob := []byte("hello, layer")
	blobDigest := digestOf(blob)
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	configDigest := digestOf(config)
	manifestFor := func(cfg string, layers ...string) []byte {
		m := map[string]any{
			"schemaVersion": 2,
			"mediaType":     string(types.OCIManifestSchema1),
			"config":        map[string]any{"mediaType": string(types.OCIConfigJSON), "digest": cfg, "size": len(config)},
			"layers":        []any{},
		}
		for _, l := range layers {
			m["layers"] = append(m["layers"].([]any), map[string]any{"mediaType": string(types.OCILayer), "digest": l, "size": len(blob)})
		}
		b, _ := json.Marshal(m)
		return b
	}
	good := manifestFor(configDigest, blobDigest)

	type step struct {
		method, path, contentType string
		body                      []byte
		header                    []string
		status                    int
		code                      string
	}
	// "{loc}" is replaced by the Location of the previous step.
	tests := []struct {
		name  string
		steps []step
	}{
		{name: "monolithic upload", steps: []step{
			{method: "POST", path: "/v2/docker.io/x/blobs/uploads/?digest=" + configDigest, body: config, status: 201},
			{method: "HEAD", path: "/v2/docker.io/x/blobs/" + configDigest, status: 200},
		}},
		{name: "chunked upload", steps: []step{
			{method: "POST", path: "/v2/docker.io/x/blobs/uploads/", status: 202},
			{method: "PATCH", path: "{loc}", body: blob[:5], header: []string{"Content-Range", "0-4"}, status: 202},
			{method: "PATCH", path: "{loc}", body: blob[5:7], header: []string{"Content-Range", "0-1"}, status: 416, code: "BLOB_UPLOAD_INVALID"},
			{method: "PATCH", path: "{loc}", body: blob[5:7], header: []string{"Content-Range", "5-6"}, status: 202},
			{method: "PUT", path: "{loc}&digest=" + blobDigest, body: blob[7:], status: 201},
			{method: "GET", path: "/v2/docker.io/x/blobs/" + blobDigest, status: 200},
		}},
		{name: "mount existing blob", steps: []step{
			{method: "POST", path: "/v2/docker.io/y/blobs/uploads/?mount=" + blobDigest + "&from=docker.io/x", status: 201},
		}},
		{name: "mount missing blob starts upload", steps: []step{
			{method: "POST", path: "/v2/docker.io/y/blobs/uploads/?mount=" + digestOf([]byte("no")) + "&from=docker.io/x", status: 202},
		}},
		{name: "wrong digest on finish", steps: []step{
			{method: "POST", path: "/v2/docker.io/x/blobs/uploads/", status: 202},
			{method: "PATCH", path: "{loc}", body: []byte("abc"), status: 202},
			{method: "PUT", path: "{loc}&digest=" + digestOf([]byte("abd")), status: 400, code: "DIGEST_INVALID"},
			{method: "GET", path: "/v2/docker.io/x/blobs/" + digestOf([]byte("abd")), status: 404, code: "BLOB_UNKNOWN"},
		}},
		{name: "wrong monolithic digest", steps: []step{
			{method: "POST", path: "/v2/docker.io/x/blobs/uploads/?digest=" + digestOf([]byte("abd")), body: []byte("abc"), status: 400, code: "DIGEST_INVALID"},
			{method: "HEAD", path: "/v2/docker.io/x/blobs/" + digestOf([]byte("abd")), status: 404},
		}},
		{name: "finish without digest", steps: []step{
			{method: "POST", path: "/v2/docker.io/x/blobs/uploads/", status: 202},
			{method: "PUT", path: "{loc}", status: 400, code: "DIGEST_INVALID"},
		}},
		{name: "cancel upload", steps: []step{
			{method: "POST", path: "/v2/docker.io/x/blobs/uploads/", status: 202},
			{method: "DELETE", path: "{loc}", status: 204},
			{method: "GET", path: "{loc}", status: 404, code: "BLOB_UPLOAD_UNKNOWN"},
		}},
		{name: "manifest", steps: []step{
			{method: "PUT", path: "/v2/docker.io/x/manifests/v1", contentType: string(types.OCIManifestSchema1), body: good, status: 201},
			{method: "GET", path: "/v2/x/manifests/v1?ns=docker.io", status: 200},
			{method: "PUT", path: "/v2/docker.io/x/manifests/" + digestOf(good), contentType: string(types.OCIManifestSchema1), body: good, status: 201},
		}},
		{name: "manifest digest mismatch", steps: []step{
			{method: "PUT", path: "/v2/docker.io/x/manifests/" + blobDigest, contentType: string(types.OCIManifestSchema1), body: good, status: 400, code: "DIGEST_INVALID"},
		}},
		{name: "manifest with missing layer", steps: []step{
			{method: "PUT", path: "/v2/docker.io/x/manifests/v2", contentType: string(types.OCIManifestSchema1), body: manifestFor(configDigest, digestOf([]byte("gone"))), status: 400, code: "MANIFEST_BLOB_UNKNOWN"},
			{method: "GET", path: "/v2/docker.io/x/manifests/v2", status: 404, code: "MANIFEST_UNKNOWN"},
		}},
		{name: "manifest not JSON", steps: []step{
			{method: "PUT", path: "/v2/docker.io/x/manifests/v3", contentType: string(types.OCIManifestSchema1), body: []byte("{"), status: 400, code: "MANIFEST_INVALID"},
		}},
		{name: "manifest type mismatch", steps: []step{
			{method: "PUT", path: "/v2/docker.io/x/manifests/v3", contentType: string(types.DockerManifestSchema2), body: good, status: 400, code: "MANIFEST_INVALID"},
		}},
		{name: "manifest of unknown type", steps: []step{
			{method: "PUT", path: "/v2/docker.io/x/manifests/v3", contentType: "application/json", body: []byte(`{"schemaVersion":1}`), status: 400, code: "MANIFEST_INVALID"},
		}},
		{name: "manifest with bad tag", steps: []step{
			{method: "PUT", path: "/v2/docker.io/x/manifests/-v", contentType: string(types.OCIManifestSchema1), body: good, status: 400, code: "MANIFEST_INVALID"},
		}},
		{name: "manifest too large", steps: []step{
			{method: "PUT", path: "/v2/docker.io/x/manifests/big", contentType: string(types.OCIManifestSchema1), body: make([]byte, maxManifestSize+1), status: 413, code: "SIZE_INVALID"},
		}},
		{name: "delete tag", steps: []step{
			{method: "PUT", path: "/v2/docker.io/z/manifests/gone", contentType: string(types.OCIManifestSchema1), body: good, status: 201},
			{method: "DELETE", path: "/v2/docker.io/z/manifests/gone", status: 202},
			{method: "GET", path: "/v2/docker.io/z/manifests/gone", status: 404, code: "MANIFEST_UNKNOWN"},
			{method: "GET", path: "/v2/docker.io/z/manifests/" + digestOf(good), status: 200},
			{method: "DELETE", path: "/v2/docker.io/z/manifests/" + digestOf(good), status: 202},
			{method: "GET", path: "/v2/docker.io/z/manifests/" + digestOf(good), status: 404, code: "MANIFEST_UNKNOWN"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := ""
			for i, s := range tt.steps {
				path := strings.Replace(s.path, "{loc}", loc, 1)
				if strings.HasPrefix(s.path, "{loc}&") && !strings.Contains(loc, "?") {
					path = strings.Replace(path, "&", "?", 1)
				}
				resp, body := do(t, srv, s.method, path, s.contentType, s.body, s.header...)
				if resp.StatusCode != s.status {
					t.Fatalf("step %d %s %s: status = %d, want %d (body %s)", i, s.method, path, resp.StatusCode, s.status, body)
				}
				if s.code != "" {
					if got := errorCode(t, body); got != s.code {
						t.Errorf("step %d: code = %s, want %s", i, got, s.code)
					}
				}
				if l := resp.Header.Get("Location"); l != "" {
					loc = l
				}
				if s.status == 202 && s.method != "DELETE" && resp.Header.Get("Docker-Upload-UUID") == "" {
					t.Errorf("step %d: no Docker-Upload-UUID", i)
				}
			}
		})
	}

	// No failed upload may leave anything under blobs/ but the two good blobs
	// and the manifest.
	entries, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Errorf("blobs stored = %d, want 3 (config, layer, manifest)", len(entries))
	}
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	_, srv := serve(t, dir)
	img := randomImage(t)
	if err := remote.Write(ref(t, srv, "docker.io/shop/web:1"), img); err != nil {
		t.Fatal(err)
	}
	// Leave an unfinished upload behind, as a crash would.
	resp, _ := do(t, srv, "POST", "/v2/docker.io/shop/web/blobs/uploads/", "", nil)
	if resp.StatusCode != 202 {
		t.Fatalf("POST upload: %d", resp.StatusCode)
	}
	srv.Close()

	reg2, srv2 := serve(t, dir)
	got, err := remote.Image(ref(t, srv2, "docker.io/shop/web:1"))
	if err != nil {
		t.Fatalf("pull after restart: %v", err)
	}
	if err := validate.Image(got); err != nil {
		t.Fatalf("pulled image invalid: %v", err)
	}
	resp, _ = do(t, srv2, "GET", resp.Header.Get("Location"), "", nil)
	if resp.StatusCode != 404 {
		t.Errorf("unfinished upload after restart: status %d, want 404", resp.StatusCode)
	}
	list, err := reg2.List()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if len(list) != 1 || list[0].Ref != "docker.io/shop/web:1" || list[0].Digest != want.String() {
		t.Errorf("List after restart = %+v", list)
	}
}

func TestPutList(t *testing.T) {
	reg, srv := serve(t, t.TempDir())
	img := randomImage(t)
	digest, _ := img.Digest()
	manifest, _ := img.RawManifest()
	cfg, _ := img.RawConfigFile()
	size := int64(len(manifest) + len(cfg))
	layers, _ := img.Layers()
	for _, l := range layers {
		n, _ := l.Size()
		size += n
	}

	tests := []struct {
		ref     string
		wantRef string
		fail    bool
	}{
		{ref: "busybox", wantRef: "docker.io/library/busybox:latest"},
		{ref: "shop/web:1", wantRef: "docker.io/shop/web:1"},
		{ref: "lotse.local/pause:3.10", wantRef: "lotse.local/pause:3.10"},
		{ref: "lotse.local/pinned@" + digest.String()}, // stored untagged
		{ref: "lotse.local/pinned@" + digestOf([]byte("other")), fail: true},
		{ref: "Bad/Name", fail: true},
	}
	for _, tt := range tests {
		err := reg.Put(tt.ref, img)
		if (err != nil) != tt.fail {
			t.Errorf("Put(%q) error = %v, want failure %v", tt.ref, err, tt.fail)
		}
	}

	list, err := reg.List()
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, im := range list {
		refs = append(refs, im.Ref)
		if im.Digest != digest.String() || im.Size != size || im.MediaType != string(types.DockerManifestSchema2) {
			t.Errorf("List entry %+v, want digest %s size %d", im, digest, size)
		}
	}
	wantRefs := "docker.io/library/busybox:latest docker.io/shop/web:1 lotse.local/pause:3.10"
	if strings.Join(refs, " ") != wantRefs {
		t.Errorf("List refs = %v, want %s", refs, wantRefs)
	}

	// What Put stored is what a node pulls through the mirror.
	resp, body := do(t, srv, "GET", "/v2/library/busybox/manifests/latest?ns=docker.io", "", nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, manifest) {
		t.Errorf("mirror pull of Put image: status %d, body %q", resp.StatusCode, body)
	}
	resp, _ = do(t, srv, "HEAD", "/v2/pinned/manifests/"+digest.String()+"?ns=lotse.local", "", nil)
	if resp.StatusCode != 200 {
		t.Errorf("pull by digest of Put image: status %d", resp.StatusCode)
	}
}

func TestListIndexSize(t *testing.T) {
	reg, srv := serve(t, t.TempDir())
	idx, err := random.Index(256, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref(t, srv, "docker.io/multi/arch:1"), idx); err != nil {
		t.Fatal(err)
	}
	raw, _ := idx.RawManifest()
	want := int64(len(raw))
	im, _ := idx.IndexManifest()
	for _, d := range im.Manifests {
		img, _ := idx.Image(d.Digest)
		m, _ := img.RawManifest()
		c, _ := img.RawConfigFile()
		want += int64(len(m) + len(c))
		ls, _ := img.Layers()
		for _, l := range ls {
			n, _ := l.Size()
			want += n
		}
	}
	list, err := reg.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Size != want || list[0].MediaType != string(types.OCIImageIndex) {
		t.Errorf("List = %+v, want one index of size %d", list, want)
	}
}
