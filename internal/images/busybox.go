package images

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

const (
	busyboxPasswd = "root:x:0:0:root:/root:/bin/sh\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	busyboxGroup = "root:x:0:\n" +
		"nobody:x:65534:\n"
	defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// Busybox returns a minimal shell image around the static busybox binary at
// path (Debian's busybox-static installs /bin/busybox): /bin/busybox with a
// link in /bin for each applet it reports, root and nobody in /etc/passwd
// and /etc/group, a world-writable /tmp, and "sh" as the command.
func Busybox(path string) (v1.Image, error) {
	bin, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("images: busybox: %w", err)
	}
	// A dynamically linked busybox would fail at run time inside the image,
	// far from the cause; refuse it here.
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return nil, fmt.Errorf("images: busybox %s: %w", path, err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("images: busybox %s is dynamically linked; want a static one (apt-get install busybox-static)", path)
		}
	}

	applets, err := busyboxApplets(path)
	if err != nil {
		return nil, err
	}
	files := map[string]File{
		"/bin/busybox": {Mode: 0o755, Data: bin},
		"/etc/passwd":  {Mode: 0o644, Data: []byte(busyboxPasswd)},
		"/etc/group":   {Mode: 0o644, Data: []byte(busyboxGroup)},
		"/root":        {Mode: fs.ModeDir | 0o700},
		"/tmp":         {Mode: fs.ModeDir | fs.ModeSticky | 0o777},
	}
	for _, a := range applets {
		if a == "busybox" {
			continue
		}
		files["/bin/"+a] = File{Symlink: "busybox"}
	}
	return FromFiles(files, v1.Config{
		Cmd: []string{"sh"},
		Env: []string{defaultPath},
	})
}

// busyboxApplets asks the binary which applets it was built with.
func busyboxApplets(path string) ([]string, error) {
	out, err := exec.Command(path, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("images: %s --list: %w", path, err)
	}
	var applets []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		a := strings.TrimSpace(sc.Text())
		if a == "" {
			continue
		}
		if a == "." || a == ".." || strings.Contains(a, "/") {
			return nil, fmt.Errorf("images: %s --list: bad applet name %q", path, a)
		}
		applets = append(applets, a)
	}
	if len(applets) == 0 {
		return nil, fmt.Errorf("images: %s --list printed no applets", path)
	}
	if !slices.Contains(applets, "sh") {
		return nil, fmt.Errorf("images: %s has no sh applet", path)
	}
	return applets, nil
}
