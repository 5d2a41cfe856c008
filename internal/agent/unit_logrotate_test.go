package agent

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// logRuntime is a runtime with one running container logging to path; a
// reopen starts a new, empty file there, as containerd does.
type logRuntime struct {
	runtimeapi.RuntimeServiceClient // unused methods panic
	path                            string
	reopens                         int
	failReopen                      bool
}

func (r *logRuntime) ListContainers(context.Context, *runtimeapi.ListContainersRequest, ...grpc.CallOption) (*runtimeapi.ListContainersResponse, error) {
	return &runtimeapi.ListContainersResponse{Containers: []*runtimeapi.Container{
		{Id: "ours", Labels: map[string]string{labelPodUID: "uid"}},
		{Id: "foreign", Labels: map[string]string{}},
	}}, nil
}

func (r *logRuntime) ContainerStatus(_ context.Context, req *runtimeapi.ContainerStatusRequest, _ ...grpc.CallOption) (*runtimeapi.ContainerStatusResponse, error) {
	if req.ContainerId != "ours" {
		return nil, errors.New("only ours is asked about")
	}
	return &runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{Id: "ours", LogPath: r.path}}, nil
}

func (r *logRuntime) ReopenContainerLog(context.Context, *runtimeapi.ReopenContainerLogRequest, ...grpc.CallOption) (*runtimeapi.ReopenContainerLogResponse, error) {
	if r.failReopen {
		return nil, errors.New("container is not running")
	}
	r.reopens++
	return &runtimeapi.ReopenContainerLogResponse{}, os.WriteFile(r.path, nil, 0o640)
}

func TestContainerLogRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "web", "0.log")
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	rt := &logRuntime{path: path}
	a := &Agent{cfg: Config{ContainerLogMaxSize: 1000, ContainerLogMaxFiles: 3}, runtime: rt, log: slog.New(slog.DiscardHandler)}
	write := func(n int, tag string) {
		t.Helper()
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(tag + strings.Repeat("x", n-len(tag))); err != nil {
			t.Fatal(err)
		}
	}
	rotated := func() []string {
		all, _ := filepath.Glob(path + ".*")
		slices.Sort(all)
		return all
	}
	ctx := context.Background()

	write(999, "small")
	must(t, a.rotateLogs(ctx))
	if rt.reopens != 0 || len(rotated()) != 0 {
		t.Fatalf("a log under the limit was rotated: %d reopens, files %v", rt.reopens, rotated())
	}
	for i, tag := range []string{"first", "second", "third"} {
		write(1000, tag)
		must(t, a.rotateLogs(ctx))
		if rt.reopens != i+1 {
			t.Fatalf("after %s: %d reopens, want %d", tag, rt.reopens, i+1)
		}
		if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
			t.Fatalf("after %s the current log is %v, %v; want a new empty one", tag, fi, err)
		}
	}
	// Three rotations, but only two rotated files beside the current one
	// are kept: the oldest (holding "small" and "first") went.
	files := rotated()
	if len(files) != 2 {
		t.Fatalf("rotated files = %v, want 2", files)
	}
	for i, want := range []string{"second", "third"} {
		b, err := os.ReadFile(files[i])
		if err != nil || !strings.HasPrefix(string(b), want) {
			t.Errorf("rotated file %d starts %.10q, want %q", i, b, want)
		}
	}

	// A runtime that cannot reopen keeps writing to the same file, which
	// must then keep its name.
	rt.failReopen = true
	write(2000, "stuck")
	must(t, a.rotateLogs(ctx))
	if b, err := os.ReadFile(path); err != nil || !strings.HasPrefix(string(b), "stuck") {
		t.Errorf("after a failed reopen the log is %.10q, %v; want it back in place", b, err)
	}
	if len(rotated()) != 2 {
		t.Errorf("a failed rotation left files %v", rotated())
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
