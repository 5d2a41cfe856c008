package containerlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// cri formats one raw line the way containerd writes it.
func cri(d time.Duration, stream, tag, content string) string {
	return fmt.Sprintf("%s %s %s %s\n", t0.Add(d).Format(time.RFC3339Nano), stream, tag, content)
}

func writeLog(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func ptr[T any](v T) *T { return &v }

func copyAll(t *testing.T, path string, opt Options) string {
	t.Helper()
	var out bytes.Buffer
	if err := Copy(context.Background(), path, opt, &out, nil); err != nil {
		t.Fatalf("Copy() error = %v", err)
	}
	return out.String()
}

func TestCopy(t *testing.T) {
	sec := time.Second
	mixed := cri(1*sec, "stdout", "F", "one") +
		cri(2*sec, "stderr", "F", "two") +
		cri(3*sec, "stdout", "P", "th") +
		cri(3*sec+sec/2, "stdout", "P", "re") +
		cri(4*sec, "stdout", "F", "e") +
		"not a cri line\n" +
		cri(5*sec, "stderr", "F", "five") +
		cri(6*sec, "stdout", "F", "six")
	all := "one\ntwo\nthree\nnot a cri line\nfive\nsix\n"
	long := strings.Repeat("x", 3*chunkMax+17)

	tests := []struct {
		name string
		file string
		opt  Options
		want string
	}{
		{"all", mixed, Options{}, all},
		{"tail 0", mixed, Options{TailLines: ptr[int64](0)}, ""},
		{"tail 1", mixed, Options{TailLines: ptr[int64](1)}, "six\n"},
		{"tail 3 reaches malformed", mixed, Options{TailLines: ptr[int64](3)}, "not a cri line\nfive\nsix\n"},
		{"tail 4 joins partials", mixed, Options{TailLines: ptr[int64](4)}, "three\nnot a cri line\nfive\nsix\n"},
		{"tail 5", mixed, Options{TailLines: ptr[int64](5)}, "two\nthree\nnot a cri line\nfive\nsix\n"},
		{"tail beyond start", mixed, Options{TailLines: ptr[int64](100)}, all},
		{"negative tail is all", mixed, Options{TailLines: ptr[int64](-1)}, all},
		{"since on a line", mixed, Options{SinceTime: ptr(t0.Add(3 * sec))}, "three\nnot a cri line\nfive\nsix\n"},
		{"since judges a joined line by its first part", mixed, Options{SinceTime: ptr(t0.Add(3*sec + sec/4))}, "not a cri line\nfive\nsix\n"},
		{"since after everything", mixed, Options{SinceTime: ptr(t0.Add(time.Hour))}, "not a cri line\n"},
		{"tail then since", mixed, Options{TailLines: ptr[int64](4), SinceTime: ptr(t0.Add(5 * sec))}, "not a cri line\nfive\nsix\n"},
		{"timestamps", mixed, Options{Timestamps: true, TailLines: ptr[int64](4)},
			"2024-01-01T00:00:03Z three\nnot a cri line\n2024-01-01T00:00:05Z five\n2024-01-01T00:00:06Z six\n"},
		{"timestamps keep nanoseconds", cri(time.Nanosecond*1500, "stdout", "F", "n"), Options{Timestamps: true},
			"2024-01-01T00:00:00.0000015Z n\n"},
		{"limit cuts mid line", mixed, Options{LimitBytes: ptr[int64](10)}, "one\ntwo\nth"},
		{"limit counts timestamps", mixed, Options{LimitBytes: ptr[int64](25), Timestamps: true}, "2024-01-01T00:00:01Z one\n"},
		{"limit larger than log", mixed, Options{LimitBytes: ptr[int64](1 << 20)}, all},
		{"limit zero", mixed, Options{LimitBytes: ptr[int64](0)}, ""},
		{"empty file", "", Options{TailLines: ptr[int64](3)}, ""},
		{"unterminated last line", cri(sec, "stdout", "F", "a") + strings.TrimSuffix(cri(sec, "stdout", "F", "b"), "\n"),
			Options{TailLines: ptr[int64](1)}, "b\n"},
		{"partial at end stays open", cri(sec, "stdout", "F", "a") + cri(sec, "stdout", "P", "b"),
			Options{TailLines: ptr[int64](1)}, "b"},
		{"partial then malformed", cri(sec, "stdout", "P", "a") + "garbage\n" + cri(sec, "stdout", "F", "b"),
			Options{}, "a\ngarbage\nb\n"},
		{"partial then malformed tail 2", cri(sec, "stdout", "P", "a") + "garbage\n" + cri(sec, "stdout", "F", "b"),
			Options{TailLines: ptr[int64](2)}, "garbage\nb\n"},
		{"empty lines kept", cri(sec, "stdout", "F", "") + "\n" + cri(sec, "stdout", "F", "c"),
			Options{TailLines: ptr[int64](3)}, "\n\nc\n"},
		{"crlf", "2024-01-01T00:00:01Z stdout F dos\r\n", Options{}, "dos\n"},
		{"line longer than the read buffer", cri(sec, "stdout", "F", "a") + cri(2*sec, "stdout", "F", long) + cri(3*sec, "stdout", "F", "b"),
			Options{TailLines: ptr[int64](2), Timestamps: true}, "2024-01-01T00:00:02Z " + long + "\n2024-01-01T00:00:03Z b\n"},
		{"long line skipped by since", cri(sec, "stdout", "F", long) + cri(3*sec, "stdout", "F", "b"),
			Options{SinceTime: ptr(t0.Add(2 * sec))}, "b\n"},
		{"long malformed line", "z" + long + "\n" + cri(sec, "stdout", "F", "b"),
			Options{}, "z" + long + "\nb\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := copyAll(t, writeLog(t, tt.file), tt.opt)
			if got != tt.want {
				t.Errorf("Copy() =\n%.300q\nwant\n%.300q", got, tt.want)
			}
		})
	}
}

func TestCopyMissingFile(t *testing.T) {
	err := Copy(context.Background(), filepath.Join(t.TempDir(), "nope.log"), Options{}, &bytes.Buffer{}, nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Copy() error = %v, want ErrNotExist", err)
	}
}

// TestTailMatchesForward checks the backward scan against printing the whole
// file and keeping its last lines, on random files big enough to span many
// read blocks.
func TestTailMatchesForward(t *testing.T) {
	for seed := range uint64(5) {
		rng := rand.New(rand.NewPCG(seed, 42))
		var b strings.Builder
		for i := 0; b.Len() < 6*tailBlock; i++ {
			content := strings.Repeat(string(rune('a'+i%26)), rng.IntN(300))
			switch r := rng.IntN(10); {
			case r < 4:
				b.WriteString(cri(time.Duration(i), "stdout", "P", content))
			case r == 4:
				b.WriteString(content + "\n") // malformed or empty
			case r == 5:
				b.WriteString(cri(time.Duration(i), "stderr", "F", content))
			default:
				b.WriteString(cri(time.Duration(i), "stdout", "F", content))
			}
		}
		path := writeLog(t, b.String())
		full := copyAll(t, path, Options{})
		lines := strings.SplitAfter(full, "\n")
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		for _, n := range []int{1, 2, 7, 100, len(lines) - 1, len(lines), len(lines) + 1} {
			want := strings.Join(lines[max(0, len(lines)-n):], "")
			if got := copyAll(t, path, Options{TailLines: ptr(int64(n))}); got != want {
				t.Errorf("seed %d tail %d: got %d bytes, want %d", seed, n, len(got), len(want))
			}
		}
	}
}

// syncBuffer collects output from the Copy goroutine and counts flushes.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	flushes int
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushes++
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func appendLog(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for out.String() != want {
		if time.Now().After(deadline) {
			t.Fatalf("output = %q, want %q", out.String(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCopyFollow(t *testing.T) {
	path := writeLog(t, cri(0, "stdout", "F", "a")+cri(time.Second, "stdout", "F", "b"))
	var out syncBuffer
	var running atomic.Bool
	running.Store(true)
	done := make(chan error, 1)
	go func() {
		done <- Copy(context.Background(), path, Options{Follow: true, TailLines: ptr[int64](1), Timestamps: true}, &out, running.Load)
	}()
	waitFor(t, &out, "2024-01-01T00:00:01Z b\n")

	// A line arriving in pieces, the first cut mid-header, must come out once
	// and whole.
	line := cri(2*time.Second, "stdout", "P", "c1") + cri(3*time.Second, "stderr", "F", "c2")
	appendLog(t, path, line[:10])
	time.Sleep(3 * pollInterval)
	appendLog(t, path, line[10:40])
	time.Sleep(3 * pollInterval)
	appendLog(t, path, line[40:])
	waitFor(t, &out, "2024-01-01T00:00:01Z b\n2024-01-01T00:00:02Z c1c2\n")

	// Rotation: the runtime's file is renamed and a new one started.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendLog(t, path, cri(4*time.Second, "stdout", "F", "d"))
	waitFor(t, &out, "2024-01-01T00:00:01Z b\n2024-01-01T00:00:02Z c1c2\n2024-01-01T00:00:04Z d\n")

	// The container writes its last line and stops: Copy drains and returns.
	appendLog(t, path, cri(5*time.Second, "stdout", "F", "e"))
	running.Store(false)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Copy() error = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Copy did not return after the container stopped")
	}
	want := "2024-01-01T00:00:01Z b\n2024-01-01T00:00:02Z c1c2\n2024-01-01T00:00:04Z d\n2024-01-01T00:00:05Z e\n"
	if got := out.String(); got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	if out.flushes == 0 {
		t.Error("Copy never flushed the writer")
	}
}

func TestCopyFollowStopsOnContext(t *testing.T) {
	path := writeLog(t, cri(0, "stdout", "F", "a"))
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- Copy(ctx, path, Options{Follow: true}, &out, nil) }()
	waitFor(t, &out, "a\n")
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Copy() error = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Copy did not return after the context ended")
	}
}

func TestCopyFollowLimit(t *testing.T) {
	path := writeLog(t, cri(0, "stdout", "F", "a"))
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- Copy(context.Background(), path, Options{Follow: true, LimitBytes: ptr[int64](4)}, &out, nil)
	}()
	waitFor(t, &out, "a\n")
	appendLog(t, path, cri(time.Second, "stdout", "F", "bcd"))
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Copy() error = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Copy did not return at the byte limit")
	}
	if got := out.String(); got != "a\nbc" {
		t.Errorf("output = %q, want %q", got, "a\nbc")
	}
}

func TestCopyFollowTruncated(t *testing.T) {
	path := writeLog(t, cri(0, "stdout", "F", "a")+"2024-01-01T00:00:01Z std")
	var out syncBuffer
	var running atomic.Bool
	running.Store(true)
	done := make(chan error, 1)
	go func() { done <- Copy(context.Background(), path, Options{Follow: true}, &out, running.Load) }()
	waitFor(t, &out, "a\n")
	time.Sleep(2 * pollInterval) // let Copy buffer the unfinished line
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * pollInterval)
	appendLog(t, path, cri(time.Second, "stdout", "F", "b"))
	waitFor(t, &out, "a\nb\n")
	running.Store(false)
	if err := <-done; err != nil {
		t.Fatalf("Copy() error = %v", err)
	}
}
