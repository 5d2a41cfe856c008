package memtrim

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestBinaryPagesLowersRSS checks that the test binary's resident file
// pages shrink, and that the process keeps working afterwards.
func TestBinaryPagesLowersRSS(t *testing.T) {
	before := rssFileKB(t)
	n, err := BinaryPages()
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no mapping of the executable was advised")
	}
	after := rssFileKB(t)
	if after >= before {
		t.Errorf("RssFile %d kB before, %d kB after: nothing was reclaimed", before, after)
	}
	// Code runs after its pages went: they fault back in.
	if s := strings.Repeat("x", 3); s != "xxx" {
		t.Fatal("code after trimming misbehaves")
	}
}

func rssFileKB(t *testing.T) int {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}
