package etcd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func testConfig(t *testing.T, dir string, log *slog.Logger) Config {
	t.Helper()
	return Config{
		DataDir:   dir,
		ClientURL: "http://127.0.0.1:0",
		PeerURL:   "http://127.0.0.1:0",
		Name:      "test",
		Unsafe:    true,
		Logger:    log,
	}
}

func mustStart(t *testing.T, cfg Config) (*Server, time.Duration) {
	t.Helper()
	begin := time.Now()
	s, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	took := time.Since(begin)
	t.Cleanup(func() { s.Close() })
	return s, took
}

func client(t *testing.T, s *Server) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: s.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRestartKeepsData(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etcd")
	s, took := mustStart(t, testConfig(t, dir, nil))
	t.Logf("start on an empty dir took %v", took)

	ctx := t.Context()
	c := client(t, s)
	const keys = 2000
	for i := range keys {
		if _, err := c.Put(ctx, fmt.Sprintf("/registry/pods/default/p%05d", i), strings.Repeat("x", 512)); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := c.Get(ctx, "/registry/pods/default/p00042")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get before restart: %v %v", resp, err)
	}
	rev := resp.Header.Revision
	c.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s2, took := mustStart(t, testConfig(t, dir, nil))
	t.Logf("start on a dir with %d keys took %v", keys, took)
	c2 := client(t, s2)
	resp, err = c2.Get(ctx, "/registry/pods/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != keys {
		t.Errorf("after restart %d keys, want %d", resp.Count, keys)
	}
	if resp.Header.Revision != rev {
		t.Errorf("after restart revision %d, want %d", resp.Header.Revision, rev)
	}
}

func TestTwoMembersSideBySide(t *testing.T) {
	var servers [2]*Server
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range servers {
		wg.Go(func() {
			cfg := testConfig(t, t.TempDir(), nil)
			servers[i], errs[i] = Start(t.Context(), cfg)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		t.Cleanup(func() { servers[i].Close() })
	}
	a, b := servers[0].Endpoints(), servers[1].Endpoints()
	if len(a) != 1 || len(b) != 1 || a[0] == b[0] {
		t.Fatalf("endpoints %v and %v should be one each and differ", a, b)
	}
	for _, ep := range append(a, b...) {
		u, err := url.Parse(ep)
		if err != nil || u.Hostname() != "127.0.0.1" || u.Port() == "0" {
			t.Errorf("endpoint %q is not a bound loopback URL", ep)
		}
	}

	ctx := t.Context()
	ca, cb := client(t, servers[0]), client(t, servers[1])
	if _, err := ca.Put(ctx, "k", "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.Put(ctx, "k", "b"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		c    *clientv3.Client
		want string
	}{{ca, "a"}, {cb, "b"}} {
		resp, err := tc.c.Get(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != tc.want {
			t.Errorf("got %v, want %q: members share data", resp.Kvs, tc.want)
		}
	}
}

func TestDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	first, _ := mustStart(t, testConfig(t, dir, nil))

	// Without our lock etcd would block forever on its own file locks.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := Start(ctx, testConfig(t, dir, nil))
	if !errors.Is(err, ErrDataDirInUse) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("second Start on a used dir: err = %v, want ErrDataDirInUse", err)
	}

	// Once the first member is closed the directory can be opened again.
	first.Close()
	mustStart(t, testConfig(t, dir, nil))
}

func TestStartErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no data dir", Config{ClientURL: "http://127.0.0.1:0", PeerURL: "http://127.0.0.1:0"}},
		{"https client URL", Config{DataDir: t.TempDir(), ClientURL: "https://127.0.0.1:0", PeerURL: "http://127.0.0.1:0"}},
		{"no port", Config{DataDir: t.TempDir(), ClientURL: "http://127.0.0.1", PeerURL: "http://127.0.0.1:0"}},
		{"garbage URL", Config{DataDir: t.TempDir(), ClientURL: "http://[::1", PeerURL: "http://127.0.0.1:0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := Start(t.Context(), tt.cfg); err == nil {
				s.Close()
				t.Fatal("Start succeeded, want an error")
			}
		})
	}
}

func TestStartHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s, err := Start(ctx, testConfig(t, t.TempDir(), nil))
	if err == nil {
		s.Close()
		t.Fatal("Start with a cancelled context succeeded")
	}
}

func TestLogsGoToSlogQuietly(t *testing.T) {
	var buf bytes.Buffer
	s, _ := mustStart(t, testConfig(t, t.TempDir(), slog.New(slog.NewTextHandler(&buf, nil))))
	s.Close()
	// A clean start and stop logs nothing at error level, and etcd's info
	// chatter is not passed on.
	if buf.Len() != 0 {
		t.Errorf("a clean start and stop logged:\n%s", buf.String())
	}

	// Errors before Close are passed on as errors, with their fields.
	buf.Reset()
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var closing atomic.Bool
	lg := zap.New(newSlogCore(log, zap.WarnLevel, &closing)).With(zap.String("member", "m1"))
	lg.Info("chatter")
	lg.Error("disk full", zap.Int("free", 0))
	lg.Error("failed to update storage version", zap.Error(errors.New("cannot detect storage schema version: missing term information")))
	closing.Store(true)
	lg.Error("listener closed")
	got := buf.String()
	for _, want := range []string{
		`level=ERROR msg="disk full" component=etcd member=m1 free=0`,
		`level=DEBUG msg="listener closed"`,
		`level=DEBUG msg="failed to update storage version"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "chatter") {
		t.Errorf("info entry passed a warn-level core:\n%s", got)
	}
}
