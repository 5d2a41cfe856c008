package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kubectl runs one kubectl binary against one server.
type kubectl struct {
	bin        string
	kubeconfig string
	cacheDir   string
}

// result is one finished kubectl run; String shows all of it so failure
// messages carry the full output.
type result struct {
	args   []string
	stdout string
	stderr string
	code   int
}

func (r result) String() string {
	return fmt.Sprintf("$ kubectl %s\n(exit %d)\n--- stdout ---\n%s--- stderr ---\n%s",
		shellJoin(r.args), r.code, ensureNL(r.stdout), ensureNL(r.stderr))
}

func ensureNL(s string) string {
	if s != "" && !strings.HasSuffix(s, "\n") {
		return s + "\n"
	}
	return s
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " '\"(){}[]!*$,;|&<>") {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		} else {
			q[i] = a
		}
	}
	return strings.Join(q, " ")
}

const kubectlTimeout = 60 * time.Second

func (k *kubectl) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, k.bin, args...)
	// KUBECONFIG and KUBECACHEDIR instead of flags, so the dispatcher sees
	// the same configuration as the kubectl it runs.
	cmd.Env = append(os.Environ(), "KUBECONFIG="+k.kubeconfig, "KUBECACHEDIR="+k.cacheDir)
	// A process group of its own, so a dispatcher's child goes too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}

// runStdin runs kubectl with stdin and returns whatever happened.
func (k *kubectl) runStdin(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kubectlTimeout)
	defer cancel()
	cmd := k.command(ctx, args...)
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	default:
		t.Fatalf("running %s: %v\n%s", k.bin, err, r)
	}
	if ctx.Err() != nil {
		t.Fatalf("kubectl did not finish in %v\n%s", kubectlTimeout, r)
	}
	return r
}

// run runs kubectl and returns whatever happened.
func (k *kubectl) run(t *testing.T, args ...string) result {
	t.Helper()
	return k.runStdin(t, "", args...)
}

// ok runs kubectl, fails the test unless it exits 0, and returns stdout.
func (k *kubectl) ok(t *testing.T, args ...string) string {
	t.Helper()
	r := k.run(t, args...)
	if r.code != 0 {
		t.Fatalf("kubectl failed:\n%s", r)
	}
	return r.stdout
}

// okStdin is ok with stdin (for `apply -f -`).
func (k *kubectl) okStdin(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	r := k.runStdin(t, stdin, args...)
	if r.code != 0 {
		t.Fatalf("kubectl failed:\n%s\n--- stdin ---\n%s", r, stdin)
	}
	return r.stdout
}

// fails runs kubectl and fails the test unless it exits non-zero.
func (k *kubectl) fails(t *testing.T, args ...string) result {
	t.Helper()
	r := k.run(t, args...)
	if r.code == 0 {
		t.Fatalf("kubectl succeeded but should have failed:\n%s", r)
	}
	return r
}

// background is a long-running kubectl (a watch) whose output is polled.
type background struct {
	args   []string
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdout lockedBuffer
	stderr lockedBuffer
	done   chan struct{}
}

func (k *kubectl) start(t *testing.T, args ...string) *background {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	b := &background{args: args, cancel: cancel, done: make(chan struct{})}
	b.cmd = k.command(ctx, args...)
	b.cmd.Stdout, b.cmd.Stderr = &b.stdout, &b.stderr
	if err := b.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() { b.cmd.Wait(); close(b.done) }()
	t.Cleanup(b.stop)
	return b
}

func (b *background) String() string {
	return fmt.Sprintf("$ kubectl %s\n--- stdout so far ---\n%s--- stderr so far ---\n%s",
		shellJoin(b.args), ensureNL(b.stdout.String()), ensureNL(b.stderr.String()))
}

// waitFor polls the output until ok holds or the timeout passes.
func (b *background) waitFor(t *testing.T, what string, ok func(stdout string) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok(b.stdout.String()) {
		select {
		case <-b.done:
			if ok(b.stdout.String()) {
				return
			}
			t.Fatalf("kubectl exited before %s:\n%s", what, b)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s:\n%s", what, b)
		}
	}
}

// stop kills the process group and waits for it.
func (b *background) stop() {
	select {
	case <-b.done:
	default:
		syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-b.done
	}
	b.cancel()
}

// table is one block of kubectl's column output.
type table struct {
	header []string
	rows   []map[string]string
}

var (
	// headerName matches one column name; names may hold single spaces
	// ("LAST SEEN"), columns are at least two spaces apart.
	headerName = regexp.MustCompile(`\S+( \S+)*`)
	blankLine  = regexp.MustCompile(`\n\s*\n`)
)

// parseTables splits kubectl's human-readable output into tables (kubectl
// separates tables of different kinds with a blank line). Cells are cut at
// the header's column offsets, because kubectl left-aligns every column
// under its header and cells may be empty or contain single spaces.
func parseTables(out string) []table {
	var tables []table
	for _, block := range blankLine.Split(strings.Trim(out, "\n"), -1) {
		lines := strings.Split(block, "\n")
		if len(lines) == 0 || strings.TrimSpace(lines[0]) == "" {
			continue
		}
		var tb table
		var starts []int
		for _, loc := range headerName.FindAllStringIndex(lines[0], -1) {
			tb.header = append(tb.header, lines[0][loc[0]:loc[1]])
			starts = append(starts, loc[0])
		}
		for _, line := range lines[1:] {
			row := map[string]string{}
			for i, name := range tb.header {
				if starts[i] >= len(line) {
					row[name] = ""
					continue
				}
				end := len(line)
				if i+1 < len(starts) && starts[i+1] < end {
					end = starts[i+1]
				}
				row[name] = strings.TrimSpace(line[starts[i]:end])
			}
			tb.rows = append(tb.rows, row)
		}
		tables = append(tables, tb)
	}
	return tables
}

// row returns the row whose column col equals value.
func (tb table) row(col, value string) (map[string]string, bool) {
	for _, r := range tb.rows {
		if r[col] == value {
			return r, true
		}
	}
	return nil, false
}

// names returns the NAME column in order.
func (tb table) names() []string {
	var n []string
	for _, r := range tb.rows {
		n = append(n, r["NAME"])
	}
	return n
}

// oneTable parses out as exactly one table with the given header.
func oneTable(t *testing.T, out string, header ...string) table {
	t.Helper()
	tables := parseTables(out)
	if len(tables) != 1 {
		t.Fatalf("want one table, got %d in:\n%s", len(tables), out)
	}
	wantHeader(t, tables[0], out, header...)
	return tables[0]
}

func wantHeader(t *testing.T, tb table, out string, header ...string) {
	t.Helper()
	if strings.Join(tb.header, "|") != strings.Join(header, "|") {
		t.Fatalf("table header is %q, want %q; output:\n%s", tb.header, header, out)
	}
}

// wantRow checks that the table has a row named name whose listed
// columns have the given values; a value starting with "~" is a regexp.
func wantRow(t *testing.T, tb table, out, name string, cols map[string]string) {
	t.Helper()
	r, ok := tb.row("NAME", name)
	if !ok {
		t.Fatalf("no row NAME=%s in:\n%s", name, out)
	}
	for col, want := range cols {
		got, present := r[col]
		if !present {
			t.Errorf("row %s: no column %s in:\n%s", name, col, out)
			continue
		}
		if re, isRE := strings.CutPrefix(want, "~"); isRE {
			if !regexp.MustCompile("^(?:" + re + ")$").MatchString(got) {
				t.Errorf("row %s column %s = %q, want match of %q; output:\n%s", name, col, got, re, out)
			}
		} else if got != want {
			t.Errorf("row %s column %s = %q, want %q; output:\n%s", name, col, got, want, out)
		}
	}
}

// ageRE matches kubectl's AGE column for a young object ("0s", "12s", "3m4s").
const ageRE = `~\d+(s|m|m\d+s|h)`

// wantLines checks that out is exactly these lines (order matters).
func wantLines(t *testing.T, r result, out string, want ...string) {
	t.Helper()
	got := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("output lines differ\nwant:\n%s\n\ngot:\n%s", strings.Join(want, "\n"), r)
	}
}

// wantContains checks that s contains each substring.
func wantContains(t *testing.T, r result, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("output lacks %q:\n%s", sub, r)
		}
	}
}

// wantMatch checks that s matches each regexp (multi-line mode).
func wantMatch(t *testing.T, r result, s string, res ...string) {
	t.Helper()
	for _, re := range res {
		if !regexp.MustCompile("(?m)" + re).MatchString(s) {
			t.Errorf("output does not match %q:\n%s", re, r)
		}
	}
}

// okR is ok that also returns the result for messages.
func (k *kubectl) okR(t *testing.T, args ...string) result {
	t.Helper()
	r := k.run(t, args...)
	if r.code != 0 {
		t.Fatalf("kubectl failed:\n%s", r)
	}
	return r
}

// createNamespace makes a namespace for one test.
func (k *kubectl) createNamespace(t *testing.T, ns string) {
	t.Helper()
	r := k.okR(t, "create", "namespace", ns)
	wantLines(t, r, r.stdout, "namespace/"+ns+" created")
}

// podYAML is a minimal Pod manifest with labels.
func podYAML(name string, labels map[string]string, extra ...string) string {
	var b strings.Builder
	// Quoted: YAML reads a bare y or n as a boolean.
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: %q\n", name)
	if len(labels) > 0 {
		b.WriteString("  labels:\n")
		for k, v := range labels {
			fmt.Fprintf(&b, "    %s: %q\n", k, v)
		}
	}
	for _, e := range extra {
		b.WriteString(e)
	}
	b.WriteString("spec:\n  containers:\n  - name: c\n    image: nginx:1.25\n")
	return b.String()
}
