package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Figure 3: 1,000 watchers on pods each receive every one of N creates;
// the time until the last watcher has the last event, against the same
// with a single watcher.
func BenchmarkWatchFanout(b *testing.B) {
	const events, many = 100, 1000
	c := startCluster(b, false)
	writers := make([]kubernetes.Interface, workers)
	for w := range writers {
		writers[w] = c.ownConnection("")
	}
	transport, err := rest.TransportFor(c.cfg)
	if err != nil {
		b.Fatal(err)
	}
	hc := &http.Client{Transport: transport}

	var one, fan time.Duration
	b.ResetTimer()
	for iter := 0; iter < b.N; iter++ {
		one += c.fanout(b, hc, writers, fmt.Sprintf("one-%d", iter), 1, events)
		fan += c.fanout(b, hc, writers, fmt.Sprintf("many-%d", iter), many, events)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(ms(one)/n, "ms-1-watcher")
	b.ReportMetric(ms(fan)/n, "ms-1000-watchers")
	b.ReportMetric(float64(fan)/float64(one), "ratio")
	b.ReportMetric(n*many*events/fan.Seconds(), "events/s-delivered")
}

// fanout opens `watchers` JSON watches on a fresh namespace, creates
// `events` pods in it with 16 writers and returns the time from the first
// write to the last watcher receiving the last event.
func (c *cluster) fanout(b *testing.B, hc *http.Client, writers []kubernetes.Interface, ns string, watchers, events int) time.Duration {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.createNamespace(b, ns)
	list, err := c.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	url := fmt.Sprintf("%s/api/v1/namespaces/%s/pods?watch=1&resourceVersion=%s", c.cfg.Host, ns, list.ResourceVersion)

	var established, finished sync.WaitGroup
	errs := make(chan error, watchers)
	var mu sync.Mutex
	var last time.Time
	for i := 0; i < watchers; i++ {
		established.Add(1)
		finished.Add(1)
		go func() {
			defer finished.Done()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			req.Header.Set("Accept", "application/json")
			resp, err := hc.Do(req)
			established.Done()
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs <- fmt.Errorf("watch: %s", resp.Status)
				return
			}
			// Events are counted, not decoded: the server's fan-out is
			// measured, not client-go's JSON decoder.
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 64<<10), 4<<20)
			got := 0
			for sc.Scan() {
				if bytes.HasPrefix(sc.Bytes(), []byte(`{"type":"ADDED"`)) {
					got++
				}
				if got == events {
					now := time.Now()
					mu.Lock()
					if now.After(last) {
						last = now
					}
					mu.Unlock()
					return
				}
			}
			errs <- fmt.Errorf("watch ended after %d of %d events: %v", got, events, sc.Err())
		}()
	}
	established.Wait()
	start := time.Now()
	parallel(b, events, func(w, i int) error {
		_, err := writers[w].CoreV1().Pods(ns).Create(ctx, newPod(ns, podName("w", i)), metav1.CreateOptions{})
		return err
	})
	done := make(chan struct{})
	go func() { finished.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		b.Fatal("watchers did not receive every event within 2 minutes")
	}
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	return last.Sub(start)
}
