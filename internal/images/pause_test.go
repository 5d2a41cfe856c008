package images

import (
	"bytes"
	"debug/elf"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func requireAMD64(t *testing.T) {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		t.Skipf("the pause program exists only for amd64, not %s", runtime.GOARCH)
	}
}

func TestPauseBinaryIsMinimalStaticELF(t *testing.T) {
	requireAMD64(t)
	bin := PauseBinary()
	if n := len(bin); n == 0 || n > 512 {
		t.Fatalf("pause binary is %d bytes, want 1..512", n)
	}
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("not an ELF file: %v", err)
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC {
		t.Errorf("got %v %v %v, want ELFCLASS64 EM_X86_64 ET_EXEC", f.Class, f.Machine, f.Type)
	}
	if len(f.Progs) != 1 {
		t.Fatalf("got %d program headers, want 1", len(f.Progs))
	}
	p := f.Progs[0]
	if p.Type != elf.PT_LOAD || p.Flags != elf.PF_R|elf.PF_X {
		t.Errorf("segment is %v %v, want PT_LOAD PF_R+PF_X", p.Type, p.Flags)
	}
	if p.Off != 0 || p.Filesz != uint64(len(bin)) || p.Memsz != p.Filesz {
		t.Errorf("segment maps offset %d, %d/%d bytes; want the whole %d-byte file", p.Off, p.Filesz, p.Memsz, len(bin))
	}
	if f.Entry < p.Vaddr+codeOffset || f.Entry >= p.Vaddr+p.Memsz {
		t.Errorf("entry %#x outside the code at %#x..%#x", f.Entry, p.Vaddr+codeOffset, p.Vaddr+p.Memsz)
	}
	// Callers must not be able to change the shared copy.
	bin[0] = 0
	if PauseBinary()[0] != 0x7f {
		t.Error("PauseBinary returned its internal buffer")
	}
}

// pauseProc is a running pause program; done is closed once it has exited,
// and err then holds its Wait result.
type pauseProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// exited waits up to d for the process to end and reports whether it did.
func (p *pauseProc) exited(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// startPause writes the pause binary to a temp file and runs it, killing it
// when the test ends.
func startPause(t *testing.T) *pauseProc {
	t.Helper()
	requireAMD64(t)
	path := filepath.Join(t.TempDir(), "pause")
	if err := os.WriteFile(path, PauseBinary(), 0o755); err != nil {
		t.Fatal(err)
	}
	p := &pauseProc{cmd: exec.Command(path), done: make(chan struct{})}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("exec pause: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	// Give it time to install its handlers, and make sure it did not exit.
	if p.exited(200 * time.Millisecond) {
		t.Fatalf("pause exited on its own: %v", p.err)
	}
	return p
}

func TestPauseExitsZeroOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			p := startPause(t)
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if !p.exited(time.Second) {
				t.Fatalf("pause still running 1s after %v", sig)
			}
			if p.err != nil {
				t.Fatalf("pause after %v: %v, want exit status 0", sig, p.err)
			}
		})
	}
}

func TestPauseSurvivesSIGCHLDAndSIGWINCH(t *testing.T) {
	p := startPause(t)
	// SIGCHLD is ignored; SIGWINCH is ignored by default. Neither may stop
	// or confuse it.
	for _, sig := range []syscall.Signal{syscall.SIGCHLD, syscall.SIGWINCH} {
		if err := p.cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
	}
	if p.exited(200 * time.Millisecond) {
		t.Fatalf("pause exited after SIGCHLD/SIGWINCH: %v", p.err)
	}
}

// TestPauseSignalDispositions checks what the kernel records: handlers for
// SIGINT and SIGTERM, SIGCHLD ignored so orphans are reaped automatically.
func TestPauseSignalDispositions(t *testing.T) {
	p := startPause(t)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	masks := map[string]uint64{}
	for line := range strings.Lines(string(status)) {
		key, val, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (key != "SigIgn" && key != "SigCgt") {
			continue
		}
		m, err := strconv.ParseUint(strings.TrimSpace(val), 16, 64)
		if err != nil {
			t.Fatalf("parse %q: %v", line, err)
		}
		masks[key] = m
	}
	// Signal n is bit n-1 of the masks.
	bit := func(sig syscall.Signal) uint64 { return 1 << (uint(sig) - 1) }
	for _, tc := range []struct {
		mask string
		sig  syscall.Signal
		set  bool
	}{
		{"SigIgn", syscall.SIGCHLD, true},
		{"SigCgt", syscall.SIGCHLD, false},
		{"SigCgt", syscall.SIGTERM, true},
		{"SigCgt", syscall.SIGINT, true},
		{"SigIgn", syscall.SIGTERM, false},
		{"SigCgt", syscall.SIGHUP, false},
	} {
		m, ok := masks[tc.mask]
		if !ok {
			t.Fatalf("no %s in /proc status:\n%s", tc.mask, status)
		}
		if got := m&bit(tc.sig) != 0; got != tc.set {
			t.Errorf("%s %#x: %v set = %v, want %v", tc.mask, m, tc.sig, got, tc.set)
		}
	}
}

func TestPauseImage(t *testing.T) {
	requireAMD64(t)
	a, err := Pause()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Pause()
	if err != nil {
		t.Fatal(err)
	}
	if da, db := digest(t, a), digest(t, b); da != db {
		t.Errorf("Pause digests differ: %v vs %v", da, db)
	}

	files, order := layerFiles(t, a)
	if !slices.Equal(order, []string{"pause"}) {
		t.Fatalf("layer holds %q, want exactly [pause]", order)
	}
	e := files["pause"]
	if e.hdr.Typeflag != '0' || e.hdr.Mode != 0o755 || e.hdr.Uid != 0 || e.hdr.Gid != 0 {
		t.Errorf("pause entry: type %q mode %o owner %d:%d, want regular 0755 0:0",
			e.hdr.Typeflag, e.hdr.Mode, e.hdr.Uid, e.hdr.Gid)
	}
	if !bytes.Equal(e.data, PauseBinary()) {
		t.Error("layer's pause differs from PauseBinary()")
	}

	cf := configFile(t, a)
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("platform %s/%s, want linux/amd64", cf.OS, cf.Architecture)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/pause"}) || len(cf.Config.Cmd) != 0 {
		t.Errorf("entrypoint %q cmd %q, want [/pause] and none", cf.Config.Entrypoint, cf.Config.Cmd)
	}
	if !cf.Created.Time.Equal(epoch) {
		t.Errorf("created %v, want %v", cf.Created, epoch)
	}
}

// TestPauseDigestGolden pins the digest so an unintended change to the
// program or the image layout shows up; refresh with -update when intended.
func TestPauseDigestGolden(t *testing.T) {
	requireAMD64(t)
	img, err := Pause()
	if err != nil {
		t.Fatal(err)
	}
	got := digest(t, img).String()
	golden := filepath.Join("testdata", "pause-amd64.digest")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if strings.TrimSpace(string(want)) != got {
		t.Errorf("Pause digest %s, golden %s (run with -update if the change is intended)", got, strings.TrimSpace(string(want)))
	}
}

func TestPauseUnsupportedArch(t *testing.T) {
	for _, arch := range []string{"arm64", "riscv64", ""} {
		if b := pauseBinary(arch); b != nil {
			t.Errorf("pauseBinary(%q) = %d bytes, want nil", arch, len(b))
		}
		_, err := pauseImage(arch)
		if err == nil || !strings.Contains(err.Error(), "architecture") {
			t.Errorf("pauseImage(%q) error = %v, want one naming the architecture", arch, err)
		}
	}
}

// TestProgramLinkErrors covers the assembler's own checks.
func TestProgramLinkErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(p *program)
		want  string
	}{
		{"undefined label", func(p *program) { p.jmp("nowhere") }, "undefined label"},
		{"jump too far", func(p *program) {
			p.label("start")
			for range 200 {
				p.syscall()
			}
			p.jmp("start")
		}, "out of rel8 range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProgram()
			tc.build(p)
			_, err := p.link(loadAddr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("link error = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := linkELF(newProgram(), "_start"); err == nil {
		t.Error("linkELF without entry label succeeded")
	}
}
