package dns

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	corev1 "k8s.io/api/core/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
)

const (
	benchServices = 1000
	benchClients  = 16 // concurrent UDP clients, each with one query in flight
)

// BenchmarkQPS measures UDP queries per second for A records of random
// services among 1,000, and in the same run the same load generator against
// a server that only echoes a canned answer: the ceiling that loopback and
// the generator (sharing the CPU) allow. Reported: qps, baseline-qps and
// their ratio.
func BenchmarkQPS(b *testing.B) {
	objs := make([]k8sruntime.Object, 0, benchServices)
	queries := make([][]byte, benchServices)
	for i := range benchServices {
		name := fmt.Sprintf("svc-%d", i)
		objs = append(objs, service("bench", name, fmt.Sprintf("10.43.%d.%d", i/250, i%250+1), port("http", corev1.ProtocolTCP, 80)))
		queries[i] = makeQuery(b, name+".bench.svc.cluster.local.", dnsmessage.TypeA, queryOpts{})
	}
	s := newTestServer(b, Config{}, objs...)

	// Check once that the server answers what the generator asks.
	resp, _ := s.handle(newScratch(), queries[7], true)
	if m := unpack(b, resp); len(m.Answers) != 1 || rr(m.Answers[0]) != "svc-7.bench.svc.cluster.local. A 10.43.0.8" {
		b.Fatalf("unexpected answer %+v", m)
	}
	canned := slicesClone(resp)

	dnsAddr := startBenchServer(b, func(ctx context.Context, pc net.PacketConn) { s.Serve(ctx, pc, nil) })
	baseAddr := startBenchServer(b, func(ctx context.Context, pc net.PacketConn) { serveCanned(ctx, pc, canned) })

	b.ResetTimer()
	qps := load(b, dnsAddr, queries, b.N)
	b.StopTimer()
	base := load(b, baseAddr, queries, b.N)

	b.ReportMetric(qps, "qps")
	b.ReportMetric(base, "baseline-qps")
	b.ReportMetric(qps/base, "ratio")
}

func slicesClone(b []byte) []byte { return append([]byte(nil), b...) }

func startBenchServer(b *testing.B, serve func(context.Context, net.PacketConn)) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		serve(ctx, pc)
	}()
	b.Cleanup(func() {
		cancel()
		pc.Close()
		<-done
	})
	return pc.LocalAddr().String()
}

// serveCanned is the baseline server: as many readers as the real one, each
// answering every packet with canned under the query's ID.
func serveCanned(ctx context.Context, pc net.PacketConn, canned []byte) {
	uc := pc.(*net.UDPConn)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			req := make([]byte, udpReadSize)
			resp := slicesClone(canned)
			for {
				n, from, err := uc.ReadFromUDPAddrPort(req)
				if err != nil {
					return
				}
				if n >= 2 {
					copy(resp, req[:2])
					uc.WriteToUDPAddrPort(resp, from)
				}
			}
		})
	}
	<-ctx.Done()
	pc.Close()
	wg.Wait()
}

// load sends n queries for random services from benchClients concurrent
// clients, each waiting for its answer before the next query, and returns
// answered queries per second.
func load(b *testing.B, addr string, queries [][]byte, n int) float64 {
	var (
		next     atomic.Int64
		answered atomic.Int64
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range benchClients {
		conn, err := net.Dial("udp", addr)
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			defer conn.Close()
			buf := make([]byte, 1024)
			req := make([]byte, 0, 128)
			for next.Add(1) <= int64(n) {
				req = append(req[:0], queries[rand.IntN(len(queries))]...)
				id := uint16(rand.Uint32())
				binary.BigEndian.PutUint16(req, id)
				conn.SetReadDeadline(time.Now().Add(time.Second))
				if _, err := conn.Write(req); err != nil {
					continue
				}
				// A lost datagram costs one timeout, not the run.
				for {
					m, err := conn.Read(buf)
					if err != nil {
						break
					}
					if m >= 2 && binary.BigEndian.Uint16(buf) == id {
						answered.Add(1)
						break
					}
				}
			}
		})
	}
	wg.Wait()
	return float64(answered.Load()) / time.Since(start).Seconds()
}

// BenchmarkHandle is the in-process cost of answering one A question for a
// cluster-IP service, without sockets.
func BenchmarkHandle(b *testing.B) {
	s := newTestServer(b, Config{}, fixture()...)
	req := makeQuery(b, "web.default.svc.cluster.local.", dnsmessage.TypeA, queryOpts{})
	sc := newScratch()
	b.ReportAllocs()
	for b.Loop() {
		if resp, _ := s.handle(sc, req, true); resp == nil {
			b.Fatal("no answer")
		}
	}
}
