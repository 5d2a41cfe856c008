package images

import (
	"archive/tar"
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
)

const busyboxPath = "/bin/busybox"

func TestBusybox(t *testing.T) {
	if _, err := os.Stat(busyboxPath); err != nil {
		t.Fatalf("%v: the tests need a static busybox; apt-get install busybox-static", err)
	}
	img, err := Busybox(busyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := layerFiles(t, img)
	bin, err := os.ReadFile(busyboxPath)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		typ  byte
		mode int64
		link string
		has  []string // substrings of the content
	}{
		{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		{name: "bin/busybox", typ: tar.TypeReg, mode: 0o755},
		{name: "bin/sh", typ: tar.TypeSymlink, mode: 0o777, link: "busybox"},
		{name: "bin/ls", typ: tar.TypeSymlink, mode: 0o777, link: "busybox"},
		{name: "etc/passwd", typ: tar.TypeReg, mode: 0o644, has: []string{"root:x:0:0:", "nobody:x:65534:65534:"}},
		{name: "etc/group", typ: tar.TypeReg, mode: 0o644, has: []string{"root:x:0:", "nobody:x:65534:"}},
		{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		{name: "root/", typ: tar.TypeDir, mode: 0o700},
	} {
		e, ok := files[tc.name]
		if !ok {
			t.Errorf("image lacks %s", tc.name)
			continue
		}
		if e.hdr.Typeflag != tc.typ || e.hdr.Mode != tc.mode || e.hdr.Linkname != tc.link || e.hdr.Uid != 0 || e.hdr.Gid != 0 {
			t.Errorf("%s: type %q mode %o link %q owner %d:%d, want type %q mode %o link %q owner 0:0",
				tc.name, e.hdr.Typeflag, e.hdr.Mode, e.hdr.Linkname, e.hdr.Uid, e.hdr.Gid, tc.typ, tc.mode, tc.link)
		}
		for _, s := range tc.has {
			if !strings.Contains(string(e.data), s) {
				t.Errorf("%s lacks %q:\n%s", tc.name, s, e.data)
			}
		}
	}
	if !bytes.Equal(files["bin/busybox"].data, bin) {
		t.Error("bin/busybox differs from the host binary")
	}
	// Every other entry under bin/ is an applet link; there should be many.
	links := 0
	for name, e := range files {
		if strings.HasPrefix(name, "bin/") && e.hdr.Typeflag == tar.TypeSymlink {
			links++
		}
	}
	if links < 50 {
		t.Errorf("only %d applet links in bin/", links)
	}

	cf := configFile(t, img)
	if !slices.Equal(cf.Config.Cmd, []string{"sh"}) {
		t.Errorf("cmd %q, want [sh]", cf.Config.Cmd)
	}
	if !slices.Equal(cf.Config.Env, []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}) {
		t.Errorf("env %q", cf.Config.Env)
	}
}

func TestBusyboxErrors(t *testing.T) {
	notELF := t.TempDir() + "/script"
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\necho sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"missing", t.TempDir() + "/nope", "no such file"},
		{"not an ELF file", notELF, "bad magic"},
		// /bin/ls is dynamically linked on Debian and would not run in the image.
		{"dynamic binary", "/bin/ls", "dynamically linked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Busybox(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Busybox(%s) error = %v, want one containing %q", tc.path, err, tc.want)
			}
		})
	}
}
