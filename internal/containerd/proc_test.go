package containerd

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// pidOnSocket finds the containerd process started with l's config.
func pidOnSocket(t *testing.T, l Layout) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), l.ConfigPath()) {
			return pid
		}
	}
	t.Fatal("no containerd process for", l.ConfigPath())
	return 0
}

func killPid(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }
