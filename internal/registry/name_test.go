package registry

import "testing"

func TestNormalize(t *testing.T) {
	const dgst = "sha256:4c5a2b1d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b"
	tests := []struct {
		ref      string
		repo     string
		tag      string
		wantFail bool
	}{
		{ref: "busybox", repo: "docker.io/library/busybox", tag: "latest"},
		{ref: "busybox:1.36", repo: "docker.io/library/busybox", tag: "1.36"},
		{ref: "shop/web:1", repo: "docker.io/shop/web", tag: "1"},
		{ref: "docker.io/busybox", repo: "docker.io/library/busybox", tag: "latest"},
		{ref: "index.docker.io/library/busybox:1", repo: "docker.io/library/busybox", tag: "1"},
		{ref: "docker.io/shop/web:1", repo: "docker.io/shop/web", tag: "1"},
		{ref: "localhost:5000/x", repo: "localhost:5000/x", tag: "latest"},
		{ref: "localhost/x:v2", repo: "localhost/x", tag: "v2"},
		{ref: "registry.k8s.io/pause:3.10", repo: "registry.k8s.io/pause", tag: "3.10"},
		{ref: "lotse.local/pause", repo: "lotse.local/pause", tag: "latest"},
		{ref: "quay.io/a/b/c:tag_1.2-x", repo: "quay.io/a/b/c", tag: "tag_1.2-x"},
		{ref: "busybox@" + dgst, repo: "docker.io/library/busybox", tag: dgst},
		{ref: "busybox:1.36@" + dgst, repo: "docker.io/library/busybox", tag: dgst},
		{ref: "localhost:5000/x@" + dgst, repo: "localhost:5000/x", tag: dgst},
		{ref: "my_org/my-app__x.y", repo: "docker.io/my_org/my-app__x.y", tag: "latest"},

		{ref: "", wantFail: true},
		{ref: ":1", wantFail: true},
		{ref: "Busybox", wantFail: true},
		{ref: "shop/Web", wantFail: true},
		{ref: "busybox:", wantFail: true},
		{ref: "busybox:-x", wantFail: true},
		{ref: "busybox@sha256:abc", wantFail: true},
		{ref: "busybox@md5:" + dgst[7:], wantFail: true},
		{ref: "a//b", wantFail: true},
		{ref: "a/../b", wantFail: true},
		{ref: "-a", wantFail: true},
		{ref: "host:port/x", wantFail: true},
		{ref: dgst[7:], wantFail: true},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			repo, tag, err := Normalize(tt.ref)
			if tt.wantFail {
				if err == nil {
					t.Fatalf("Normalize(%q) = %q, %q; want an error", tt.ref, repo, tag)
				}
				return
			}
			if err != nil {
				t.Fatalf("Normalize(%q): %v", tt.ref, err)
			}
			if repo != tt.repo || tag != tt.tag {
				t.Errorf("Normalize(%q) = %q, %q; want %q, %q", tt.ref, repo, tag, tt.repo, tt.tag)
			}
		})
	}
}

func TestValidRepo(t *testing.T) {
	tests := []struct {
		repo string
		want bool
	}{
		{"docker.io/library/busybox", true},
		{"localhost:5000/x", true},
		{"shop/web", true},
		{"busybox", true},
		{"Docker.IO/x", true},
		{"", false},
		{"docker.io", true}, // a plain one-component name
		{"localhost:5000", false},
		{"docker.io/Shop", false},
		{"docker.io/../x", false},
		{"docker.io/./x", false},
		{"a//b", false},
		{"a/_manifests", false},
		{"/a", false},
		{"a/", false},
	}
	for _, tt := range tests {
		if got := validRepo(tt.repo); got != tt.want {
			t.Errorf("validRepo(%q) = %v, want %v", tt.repo, got, tt.want)
		}
	}
}
