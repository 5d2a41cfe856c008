package containerd

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestCheckBinariesNamesThePackage(t *testing.T) {
	saved := required
	defer func() { required = saved }()
	required = []struct{ binary, pkg string }{{"lotse-no-such-binary", "lotse-pkg"}, {"/no/such/bridge", "cni-pkg"}}
	err := CheckBinaries()
	if err == nil {
		t.Fatal("missing binaries were not reported")
	}
	for _, want := range []string{"lotse-no-such-binary", "bridge", "apt-get install lotse-pkg cni-pkg"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not mention %q", err, want)
		}
	}
}

func TestSocketPathStaysShort(t *testing.T) {
	for _, dir := range []string{"/var/lib/lotse/agent/containerd", "/tmp/" + strings.Repeat("x", 120)} {
		if s := (Layout{Dir: dir}).Socket(); len(s) >= 108 {
			t.Errorf("socket %q is too long for a unix socket", s)
		}
	}
}

// TestSupervisorRestartsContainerd runs the real containerd with the
// configuration Write produces, kills it, and expects it back.
func TestSupervisorRestartsContainerd(t *testing.T) {
	if err := CheckBinaries(); err != nil {
		t.Fatal(err)
	}
	l := Layout{Dir: t.TempDir()}
	if err := l.Write(Settings{SandboxImage: "lotse.local/pause:1", MirrorURL: "http://127.0.0.1:1", PodCIDR: "10.99.0.0/24", Bridge: "lotsetest0"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	sup := &Supervisor{Layout: l, Log: slog.New(slog.DiscardHandler)}
	go func() { done <- sup.Run(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		log, _ := os.ReadFile(l.LogPath())
		t.Fatalf("containerd did not start: %v\n%s", err, log)
	case <-time.After(40 * time.Second):
		t.Fatal("containerd not ready after 40s")
	}
	conn, err := Dial(l.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	v, err := runtimeapi.NewRuntimeServiceClient(conn).Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil || v.RuntimeName != "containerd" {
		t.Fatalf("Version = %v, %v", v, err)
	}
	st, err := runtimeapi.NewRuntimeServiceClient(conn).Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st.Status.Conditions {
		if !c.Status {
			t.Errorf("runtime condition %s is false: %s %s", c.Type, c.Reason, c.Message)
		}
	}

	// Kill containerd behind the supervisor's back; it must come back.
	pid := pidOnSocket(t, l)
	if err := killPid(pid); err != nil {
		t.Fatal(err)
	}
	waitCtx, waitCancel := context.WithTimeout(ctx, 30*time.Second)
	defer waitCancel()
	time.Sleep(200 * time.Millisecond)
	if err := WaitReady(waitCtx, l.Endpoint()); err != nil {
		t.Fatalf("containerd was not restarted: %v", err)
	}
	if newPid := pidOnSocket(t, l); newPid == pid {
		t.Fatalf("still the old containerd (pid %d)", pid)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("supervisor did not stop")
	}
}
