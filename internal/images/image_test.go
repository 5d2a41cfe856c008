package images

import (
	"archive/tar"
	"io/fs"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestFromFiles(t *testing.T) {
	type want struct {
		typ      byte
		mode     int64
		uid, gid int
		data     string
		link     string
	}
	for _, tc := range []struct {
		name  string
		files map[string]File
		order []string
		want  map[string]want
	}{{
		name:  "parents created",
		files: map[string]File{"/usr/share/doc/x": {Data: []byte("hi")}},
		order: []string{"usr/", "usr/share/", "usr/share/doc/", "usr/share/doc/x"},
		want: map[string]want{
			"usr/":            {typ: tar.TypeDir, mode: 0o755},
			"usr/share/doc/x": {typ: tar.TypeReg, mode: 0o644, data: "hi"},
		},
	}, {
		name: "explicit directory, special bits and owner",
		files: map[string]File{
			"tmp":          {Mode: fs.ModeDir | fs.ModeSticky | 0o777},
			"home/nobody/": {Mode: fs.ModeDir | 0o700, UID: 65534, GID: 65534},
			"bin/su":       {Mode: fs.ModeSetuid | 0o755, Data: []byte{}},
		},
		want: map[string]want{
			"tmp/":         {typ: tar.TypeDir, mode: 0o1777},
			"home/":        {typ: tar.TypeDir, mode: 0o755},
			"home/nobody/": {typ: tar.TypeDir, mode: 0o700, uid: 65534, gid: 65534},
			"bin/su":       {typ: tar.TypeReg, mode: 0o4755},
		},
	}, {
		name: "symlinks and sibling ordering",
		files: map[string]File{
			"/a-b":   {Data: []byte("1")},
			"/a/b":   {Symlink: "../a-b"},
			"/a/c/d": {Symlink: "/etc"},
		},
		// Everything under a/ stays together even though "-" sorts before "/".
		order: []string{"a/", "a/b", "a/c/", "a/c/d", "a-b"},
		want: map[string]want{
			"a/b":   {typ: tar.TypeSymlink, mode: 0o777, link: "../a-b"},
			"a/c/d": {typ: tar.TypeSymlink, mode: 0o777, link: "/etc"},
			"a-b":   {typ: tar.TypeReg, mode: 0o644, data: "1"},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := v1.Config{Cmd: []string{"true"}, Env: []string{"A=b"}}
			img, err := FromFiles(tc.files, cfg)
			if err != nil {
				t.Fatal(err)
			}
			files, order := layerFiles(t, img)
			if tc.order != nil && !slices.Equal(order, tc.order) {
				t.Errorf("order %q, want %q", order, tc.order)
			}
			for name, w := range tc.want {
				e, ok := files[name]
				if !ok {
					t.Errorf("missing %q in %q", name, order)
					continue
				}
				h := e.hdr
				if h.Typeflag != w.typ || h.Mode != w.mode || h.Uid != w.uid || h.Gid != w.gid ||
					string(e.data) != w.data || h.Linkname != w.link || !h.ModTime.Equal(epoch) {
					t.Errorf("%s: got type %q mode %o owner %d:%d data %q link %q mtime %v, want %+v",
						name, h.Typeflag, h.Mode, h.Uid, h.Gid, e.data, h.Linkname, h.ModTime, w)
				}
			}
			cf := configFile(t, img)
			if !slices.Equal(cf.Config.Cmd, cfg.Cmd) || !slices.Equal(cf.Config.Env, cfg.Env) || cf.OS != "linux" {
				t.Errorf("config %+v os %q, want cmd %q env %q os linux", cf.Config, cf.OS, cfg.Cmd, cfg.Env)
			}
			// Map order is random; the digest must not be.
			first := digest(t, img)
			for range 5 {
				again, err := FromFiles(tc.files, cfg)
				if err != nil {
					t.Fatal(err)
				}
				if d := digest(t, again); d != first {
					t.Fatalf("digest changed between identical calls: %v vs %v", first, d)
				}
			}
		})
	}
}

func TestFromFilesErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]File
		want  string
	}{
		{"empty path", map[string]File{"": {}}, "bad path"},
		{"root", map[string]File{"/": {Mode: fs.ModeDir}}, "bad path"},
		{"dot dot", map[string]File{"/a/../../etc/passwd": {}}, "bad path"},
		{"unclean", map[string]File{"a//b": {}}, "bad path"},
		{"same path twice", map[string]File{"/a": {}, "a": {}}, "twice"},
		{"file as parent", map[string]File{"a": {Data: []byte("x")}, "a/b": {}}, "to be a directory"},
		{"symlink as parent", map[string]File{"a": {Symlink: "b"}, "a/b": {}}, "to be a directory"},
		{"directory with data", map[string]File{"a": {Mode: fs.ModeDir, Data: []byte("x")}}, "directory"},
		{"symlink with data", map[string]File{"a": {Symlink: "b", Data: []byte("x")}}, "symlink"},
		{"device mode", map[string]File{"a": {Mode: fs.ModeDevice}}, "unsupported mode"},
		{"negative owner", map[string]File{"a": {UID: -1}}, "negative owner"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromFiles(tc.files, v1.Config{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("FromFiles error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
