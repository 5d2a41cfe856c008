package sim

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/lotse/lotse/internal/testserver"
)

// BenchmarkSimRegister1000Nodes registers 1,000 simulated nodes (Node and
// Lease each) against the in-process test server and reports nodes/s and
// the growth of the process' live heap per node. The server runs in the
// same process, so heap-B/node includes its watch cache of the nodes and
// leases, not only the sim's own memory.
func BenchmarkSimRegister1000Nodes(b *testing.B) {
	const nodes = 1000
	srv := testserver.Start(b, testserver.Options{DisableScheduler: true})
	var total time.Duration
	var heap int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		client := kubernetes.NewForConfigOrDie(srv.Config)
		s, err := New(Config{Client: client, Nodes: nodes, NamePrefix: fmt.Sprintf("b%d-", i)})
		if err != nil {
			b.Fatal(err)
		}
		before := liveHeap()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		b.StartTimer()
		start := time.Now()
		go func() { done <- s.Run(ctx) }()
		for s.Registered() < nodes {
			select {
			case err := <-done:
				b.Fatalf("Run returned early: %v", err)
			case <-time.After(5 * time.Millisecond):
			}
		}
		total += time.Since(start)
		b.StopTimer()
		heap += int64(liveHeap()) - int64(before)
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(nodes*b.N)/total.Seconds(), "nodes/s")
	b.ReportMetric(float64(heap)/float64(nodes*b.N), "heap-B/node")
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
