package containerd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Supervisor keeps one containerd child process running.
type Supervisor struct {
	Layout Layout
	Log    *slog.Logger
	// Binary is the containerd executable; default "containerd".
	Binary string
}

// Run starts containerd, waits until its CRI answers, then calls ready and
// restarts containerd whenever it exits, until ctx ends. On the way out it
// stops containerd with SIGTERM; containers keep running in their shims
// and are adopted on the next start, as upstream's runtime does.
func (s *Supervisor) Run(ctx context.Context, ready func()) error {
	if err := os.MkdirAll(filepath.Dir(s.Layout.Socket()), 0o700); err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	backoff := time.Second
	first := true
	for {
		cmd, exited, err := s.start()
		if err != nil {
			return err
		}
		if first {
			waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := WaitReady(waitCtx, s.Layout.Endpoint())
			cancel()
			if err != nil {
				stop(cmd, exited)
				return fmt.Errorf("containerd did not come up (see %s): %w", s.Layout.LogPath(), err)
			}
			first = false
			ready()
		}
		started := time.Now()
		select {
		case <-ctx.Done():
			stop(cmd, exited)
			return nil
		case err := <-exited:
			s.Log.Error("containerd exited; restarting", "err", err, "log", s.Layout.LogPath())
		}
		if time.Since(started) > time.Minute {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (s *Supervisor) start() (*exec.Cmd, <-chan error, error) {
	bin := s.Binary
	if bin == "" {
		bin = "containerd"
	}
	logFile, err := os.OpenFile(s.Layout.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("containerd: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "--config", s.Layout.ConfigPath())
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group: a Ctrl-C at the terminal reaches lotse, which
	// then stops containerd in order, rather than both at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("containerd: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return cmd, exited, nil
}

func stop(cmd *exec.Cmd, exited <-chan error) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Dial connects to a CRI endpoint such as unix:///run/containerd/containerd.sock.
func Dial(endpoint string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(endpoint,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		return nil, fmt.Errorf("CRI endpoint %s: %w", endpoint, err)
	}
	return conn, nil
}

// WaitReady waits until the CRI runtime at endpoint answers Version.
func WaitReady(ctx context.Context, endpoint string) error {
	conn, err := Dial(endpoint)
	if err != nil {
		return err
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	for {
		callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := rt.Version(callCtx, &runtimeapi.VersionRequest{})
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
