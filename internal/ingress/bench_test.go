package ingress

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

// benchConcurrency is the number of client goroutines (and keep-alive
// connections) in BenchmarkProxy.
const benchConcurrency = 16

// BenchmarkProxy measures requests per second against one backend directly
// and through the ingress proxy, with the same keep-alive client, in the
// same run, and reports both and their ratio.
func BenchmarkProxy(b *testing.B) {
	body := []byte("hello from the backend\n")
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(body)
	}))
	// Counting the backend's connections shows whether keep-alive holds:
	// it should stay near 2*benchConcurrency whatever b.N is.
	var conns atomic.Int64
	be.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	be.Start()
	defer be.Close()

	ing := newIngress("ns", "bench", 1, rule("bench.example.com", path(prefix, "/", "web")))
	client := fake.NewClientset(ing, service("ns", "web"), endpointSlice(b, "ns", "web", "web-1", be))
	factory := informers.NewSharedInformerFactory(client, 0)
	c := New(Config{Client: client, Logger: slog.New(slog.DiscardHandler)}, factory)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.Context())
	var wg sync.WaitGroup
	wg.Go(func() { _ = c.Run(ctx) })
	wg.Go(func() { _ = c.Serve(ctx, ln, nil) })
	defer func() {
		cancel()
		wg.Wait()
		factory.Shutdown()
	}()

	hc := &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: benchConcurrency,
		DisableCompression:  true,
	}}
	do := func(url string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Host = "bench.example.com"
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return &statusError{resp.StatusCode}
		}
		return err
	}
	// run sends n requests from benchConcurrency goroutines.
	run := func(url string, n int) time.Duration {
		var left atomic.Int64
		left.Store(int64(n))
		var failed atomic.Value
		var wg sync.WaitGroup
		start := time.Now()
		for range benchConcurrency {
			wg.Go(func() {
				for left.Add(-1) >= 0 {
					if err := do(url); err != nil {
						failed.Store(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if err := failed.Load(); err != nil {
			b.Fatalf("%s: %v", url, err)
		}
		return time.Since(start)
	}

	direct, proxied := be.URL+"/", "http://"+ln.Addr().String()+"/"
	deadline := time.Now().Add(5 * time.Second)
	for do(proxied) != nil {
		if time.Now().After(deadline) {
			b.Fatal("route never came up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Warm up both paths so connection set-up is not measured.
	run(direct, 10*benchConcurrency)
	run(proxied, 10*benchConcurrency)

	// Alternate the two in rounds so that load from other processes on a
	// shared machine falls on both alike.
	const rounds = 10
	var dDirect, dProxy time.Duration
	b.ResetTimer()
	for i := range rounds {
		n := b.N / rounds
		if i == 0 {
			n += b.N % rounds
		}
		dDirect += run(direct, n)
		dProxy += run(proxied, n)
	}
	b.StopTimer()

	directRPS := float64(b.N) / dDirect.Seconds()
	proxyRPS := float64(b.N) / dProxy.Seconds()
	b.ReportMetric(directRPS, "direct-rps")
	b.ReportMetric(proxyRPS, "proxy-rps")
	b.ReportMetric(proxyRPS/directRPS, "ratio")
	b.ReportMetric(float64(conns.Load()), "backend-conns")
}

type statusError struct{ code int }

func (e *statusError) Error() string { return http.StatusText(e.code) }
