package memtrim

import (
	"bufio"
	"context"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// madvPageout asks the kernel to reclaim the range's pages now (Linux 5.4+).
const madvPageout = 21

// BinaryPages reclaims the resident pages of the process's own executable
// mappings and reports how many mappings it advised. Clean file-backed
// pages only: nothing the process wrote is affected, and what it still
// uses faults back in on the next access.
func BinaryPages() (int, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	advised := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") {
			continue // not the binary, or a writable (data) mapping
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		_, _, errno := syscall.Syscall(syscall.SYS_MADVISE, uintptr(start), uintptr(end-start), madvPageout)
		if errno != 0 {
			return advised, errno
		}
		advised++
	}
	return advised, sc.Err()
}

// Loop hands back the binary's pages the process has not used lately: 20 s
// after start (start-up code), then every minute, until ctx is done. What
// it still uses faults back in from the page cache (minor faults, a few
// ms a minute).
func Loop(ctx context.Context, log *slog.Logger) {
	wait := 20 * time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if _, err := BinaryPages(); err != nil {
			log.Debug("could not trim the binary's pages", "err", err)
			return
		}
		wait = time.Minute
	}
}
