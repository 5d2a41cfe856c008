package agent

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

// atomicDir is a fresh directory for writeAtomic, whose tmpfs is
// unmounted before the test's temporary directory is removed.
func atomicDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("writeAtomic mounts a tmpfs, which needs root")
	}
	dir := filepath.Join(t.TempDir(), "vol")
	t.Cleanup(func() {
		if isMountPoint(dir) {
			_ = syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

// checkLayout verifies the kubelet's layout: ..data links to a
// timestamped directory holding exactly files, each top-level name links
// through ..data, and nothing else is visible.
func checkLayout(t *testing.T, dir string, files map[string]file) string {
	t.Helper()
	stamp, err := os.Readlink(filepath.Join(dir, "..data"))
	if err != nil {
		t.Fatalf("..data: %v", err)
	}
	if !strings.HasPrefix(stamp, "..") || strings.Contains(stamp, "/") {
		t.Errorf("..data -> %q, want a hidden sibling directory", stamp)
	}
	if st, err := os.Stat(filepath.Join(dir, stamp)); err != nil || !st.IsDir() {
		t.Errorf("data directory %s: %v", stamp, err)
	}
	top := map[string]bool{}
	for name, f := range files {
		first, _, _ := strings.Cut(name, "/")
		top[first] = true
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != string(f.data) {
			t.Errorf("%s = %q, %v; want %q", name, got, err, f.data)
		}
		st, err := os.Stat(filepath.Join(dir, stamp, name))
		if err != nil || st.Mode().Perm() != f.mode.Perm() {
			t.Errorf("%s mode = %v, %v; want %v", name, st.Mode().Perm(), err, f.mode.Perm())
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == "..data" || name == stamp:
		case strings.HasPrefix(name, ".."):
			t.Errorf("left over %s", name)
		case !top[name]:
			t.Errorf("unexpected entry %s", name)
		default:
			if target, err := os.Readlink(filepath.Join(dir, name)); err != nil || target != filepath.Join("..data", name) {
				t.Errorf("%s -> %q, %v; want a link into ..data", name, target, err)
			}
		}
	}
	if !same(dir, files) {
		t.Error("same reports a difference right after writing")
	}
	return stamp
}

func TestWriteAtomic(t *testing.T) {
	a := newTestAgent(t)
	dir := atomicDir(t)
	v1 := map[string]file{
		"config.yaml": {[]byte("a: 1\n"), 0o644},
		"tls/key.pem": {[]byte("secret"), 0o600},
		"tls/crt.pem": {[]byte("public"), 0o644},
	}
	if err := a.writeAtomic(dir, v1); err != nil {
		t.Fatal(err)
	}
	if !isMountPoint(dir) {
		t.Error("volume is not a tmpfs mount")
	}
	stamp1 := checkLayout(t, dir, v1)

	// Writing the same again changes nothing.
	if err := a.writeAtomic(dir, v1); err != nil {
		t.Fatal(err)
	}
	if stamp := checkLayout(t, dir, v1); stamp != stamp1 {
		t.Errorf("unchanged content rewritten: %s -> %s", stamp1, stamp)
	}

	// An update swaps the whole set; names that left disappear, and so
	// does the old data directory.
	v2 := map[string]file{
		"config.yaml": {[]byte("a: 2\n"), 0o644},
		"extra":       {[]byte("x"), 0o400},
	}
	if err := a.writeAtomic(dir, v2); err != nil {
		t.Fatal(err)
	}
	stamp2 := checkLayout(t, dir, v2)
	if stamp2 == stamp1 {
		t.Error("update kept the data directory")
	}
	if _, err := os.Lstat(filepath.Join(dir, stamp1)); !os.IsNotExist(err) {
		t.Errorf("old data directory still there: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "tls")); !os.IsNotExist(err) {
		t.Errorf("removed name tls still there: %v", err)
	}

	// A mode change alone is an update too.
	v3 := map[string]file{"config.yaml": {[]byte("a: 2\n"), 0o640}, "extra": {[]byte("x"), 0o400}}
	if err := a.writeAtomic(dir, v3); err != nil {
		t.Fatal(err)
	}
	checkLayout(t, dir, v3)

	// A top-level name can turn from a file into a directory.
	v4 := map[string]file{"config.yaml/inner": {[]byte("nested"), 0o644}}
	if err := a.writeAtomic(dir, v4); err != nil {
		t.Fatal(err)
	}
	checkLayout(t, dir, v4)
}

func TestWriteAtomicRejectsEscapes(t *testing.T) {
	for _, name := range []string{"../escape", "a/../../escape", "/etc/passwd", "..data"} {
		t.Run(name, func(t *testing.T) {
			a := newTestAgent(t)
			dir := atomicDir(t)
			if err := a.writeAtomic(dir, map[string]file{name: {[]byte("x"), 0o644}}); err == nil {
				t.Errorf("writeAtomic accepted %q", name)
			}
			if _, err := os.Lstat(filepath.Join(filepath.Dir(dir), "escape")); !os.IsNotExist(err) {
				t.Errorf("a file was written outside the volume")
			}
		})
	}
}

func TestSame(t *testing.T) {
	a := newTestAgent(t)
	dir := atomicDir(t)
	files := map[string]file{"a": {[]byte("1"), 0o644}, "d/b": {[]byte("2"), 0o600}}
	if same(dir, files) {
		t.Error("same before anything was written")
	}
	if err := a.writeAtomic(dir, files); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		files map[string]file
		want  bool
	}{
		{"identical", map[string]file{"a": {[]byte("1"), 0o644}, "d/b": {[]byte("2"), 0o600}}, true},
		{"content differs", map[string]file{"a": {[]byte("9"), 0o644}, "d/b": {[]byte("2"), 0o600}}, false},
		{"mode differs", map[string]file{"a": {[]byte("1"), 0o600}, "d/b": {[]byte("2"), 0o600}}, false},
		{"a file is missing", map[string]file{"a": {[]byte("1"), 0o644}, "d/b": {[]byte("2"), 0o600}, "c": {nil, 0o644}}, false},
		{"an extra file", map[string]file{"a": {[]byte("1"), 0o644}}, false},
		{"renamed", map[string]file{"a": {[]byte("1"), 0o644}, "d/c": {[]byte("2"), 0o600}}, false},
	}
	for _, tt := range tests {
		if got := same(dir, tt.files); got != tt.want {
			t.Errorf("%s: same = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestHostPath(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "dir")
	regular := filepath.Join(root, "file")
	sock := filepath.Join(root, "sock")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(regular, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	missing := filepath.Join(root, "missing")

	tests := []struct {
		name    string
		path    string
		typ     *corev1.HostPathType
		want    string
		wantErr bool
		// created is what must exist afterwards: "dir" or "file".
		created string
	}{
		{name: "unset type, missing path", path: missing, want: missing},
		{name: "empty type", path: dir, typ: ptr.To(corev1.HostPathUnset), want: dir},
		{name: "path is cleaned", path: dir + "/./sub/..//", typ: ptr.To(corev1.HostPathDirectory), want: dir},
		{name: "directory", path: dir, typ: ptr.To(corev1.HostPathDirectory), want: dir},
		{name: "directory, is a file", path: regular, typ: ptr.To(corev1.HostPathDirectory), wantErr: true},
		{name: "directory, missing", path: missing, typ: ptr.To(corev1.HostPathDirectory), wantErr: true},
		{name: "file", path: regular, typ: ptr.To(corev1.HostPathFile), want: regular},
		{name: "file, is a directory", path: dir, typ: ptr.To(corev1.HostPathFile), wantErr: true},
		{name: "file, missing", path: missing, typ: ptr.To(corev1.HostPathFile), wantErr: true},
		{name: "socket", path: sock, typ: ptr.To(corev1.HostPathSocket), want: sock},
		{name: "socket, is a file", path: regular, typ: ptr.To(corev1.HostPathSocket), wantErr: true},
		{name: "directory or create, exists", path: dir, typ: ptr.To(corev1.HostPathDirectoryOrCreate), want: dir},
		{name: "directory or create, missing", path: filepath.Join(root, "new/deep"), typ: ptr.To(corev1.HostPathDirectoryOrCreate),
			want: filepath.Join(root, "new/deep"), created: "dir"},
		{name: "file or create, exists", path: regular, typ: ptr.To(corev1.HostPathFileOrCreate), want: regular},
		{name: "file or create, missing", path: filepath.Join(root, "newdir/f"), typ: ptr.To(corev1.HostPathFileOrCreate),
			want: filepath.Join(root, "newdir/f"), created: "file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := hostPath(&corev1.HostPathVolumeSource{Path: tt.path, Type: tt.typ})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("path = %q, want %q", got, tt.want)
			}
			switch tt.created {
			case "dir":
				if st, err := os.Stat(tt.want); err != nil || !st.IsDir() || st.Mode().Perm() != 0o755 {
					t.Errorf("created directory: %v %v", st, err)
				}
			case "file":
				if st, err := os.Stat(tt.want); err != nil || !st.Mode().IsRegular() || st.Size() != 0 {
					t.Errorf("created file: %v %v", st, err)
				}
			}
		})
	}
	if data, _ := os.ReadFile(regular); string(data) != "x" {
		t.Errorf("FileOrCreate changed an existing file: %q", data)
	}
}

func TestContainerMounts(t *testing.T) {
	root := t.TempDir()
	vol := filepath.Join(root, "vol")
	if err := os.Mkdir(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	env := &podEnv{volumes: map[string]string{"data": vol}, hostsFile: filepath.Join(root, "etc-hosts")}
	mount := func(name, path, sub string) corev1.VolumeMount {
		return corev1.VolumeMount{Name: name, MountPath: path, SubPath: sub}
	}

	t.Run("invalid", func(t *testing.T) {
		for _, m := range []corev1.VolumeMount{
			mount("data", "/d", "../etc"),
			mount("data", "/d", "a/../../etc"),
			mount("data", "/d", ".."),
			mount("data", "/d", "/etc"),
			mount("ghost", "/d", ""),
		} {
			a := newTestAgent(t)
			pod := testPod(corev1.RestartPolicyAlways, nil, "app")
			pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{m}
			if _, err := a.containerMounts(pod, &pod.Spec.Containers[0], env, 0, nil); err == nil {
				t.Errorf("mount %+v accepted", m)
			}
		}
		if _, err := os.Lstat(filepath.Join(root, "etc")); !os.IsNotExist(err) {
			t.Error("a directory was created outside the volume")
		}
	})

	t.Run("valid", func(t *testing.T) {
		a := newTestAgent(t)
		pod := testPod(corev1.RestartPolicyAlways, nil, "app")
		c := &pod.Spec.Containers[0]
		c.TerminationMessagePath = "/dev/termination-log"
		c.VolumeMounts = []corev1.VolumeMount{
			mount("data", "/data", ""),
			{Name: "data", MountPath: "/logs", SubPath: "logs/app", ReadOnly: true, MountPropagation: ptr.To(corev1.MountPropagationHostToContainer)},
			{Name: "data", MountPath: "/shared", MountPropagation: ptr.To(corev1.MountPropagationBidirectional)},
		}
		mounts, err := a.containerMounts(pod, c, env, 3, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := []*runtimeapi.Mount{
			{ContainerPath: "/data", HostPath: vol, Propagation: runtimeapi.MountPropagation_PROPAGATION_PRIVATE},
			{ContainerPath: "/logs", HostPath: filepath.Join(vol, "logs/app"), Readonly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
			{ContainerPath: "/shared", HostPath: vol, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL},
			{ContainerPath: "/etc/hosts", HostPath: env.hostsFile},
			{ContainerPath: "/dev/termination-log", HostPath: a.terminationLogPath(pod.UID, "app", 3)},
		}
		if len(mounts) != len(want) {
			t.Fatalf("mounts = %v, want %v", mounts, want)
		}
		for i := range want {
			g, w := mounts[i], want[i]
			if g.ContainerPath != w.ContainerPath || g.HostPath != w.HostPath || g.Readonly != w.Readonly || g.Propagation != w.Propagation {
				t.Errorf("mount %d = %v, want %v", i, g, w)
			}
		}
		if st, err := os.Stat(filepath.Join(vol, "logs/app")); err != nil || !st.IsDir() {
			t.Errorf("subPath directory not created: %v", err)
		}
		if st, err := os.Stat(a.terminationLogPath(pod.UID, "app", 3)); err != nil || st.Size() != 0 {
			t.Errorf("termination log file: %v", err)
		}
	})

	t.Run("the container's own /etc/hosts and termination path win", func(t *testing.T) {
		a := newTestAgent(t)
		pod := testPod(corev1.RestartPolicyAlways, nil, "app")
		c := &pod.Spec.Containers[0]
		c.TerminationMessagePath = "/msg"
		c.VolumeMounts = []corev1.VolumeMount{mount("data", "/etc/hosts", ""), mount("data", "/msg", "")}
		mounts, err := a.containerMounts(pod, c, env, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(mounts) != 2 || mounts[0].HostPath != vol || mounts[1].HostPath != vol {
			t.Errorf("mounts = %v, want only the two volume mounts", mounts)
		}
	})

	t.Run("no hosts file and no termination path", func(t *testing.T) {
		a := newTestAgent(t)
		pod := testPod(corev1.RestartPolicyAlways, nil, "app")
		mounts, err := a.containerMounts(pod, &pod.Spec.Containers[0], &podEnv{}, 0, nil)
		if err != nil || len(mounts) != 0 {
			t.Errorf("mounts = %v, %v; want none", mounts, err)
		}
	})
}
