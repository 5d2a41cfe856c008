package bench

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Figure 1: pod creates/s and gets/s through the API against raw etcd
// transactions and reads of the same protobuf values, same etcd, same run.
func BenchmarkPodCreateGet(b *testing.B) {
	for _, tc := range []struct {
		name        string
		contentType string
		noFsync     bool
	}{
		{"json", jsonType, false},
		{"protobuf", protobufType, false},
		{"json-nofsync", jsonType, true},
	} {
		b.Run(tc.name, func(b *testing.B) { benchCreateGet(b, tc.contentType, tc.noFsync) })
	}
}

func benchCreateGet(b *testing.B, contentType string, noFsync bool) {
	const creates, gets = 3000, 12000
	c := startCluster(b, noFsync)
	ctx := context.Background()
	const ns = "bench"
	c.createNamespace(b, ns)
	tmpl := c.storedTemplate(b, ns)

	clients := make([]kubernetes.Interface, workers)
	raws := make([]*clientv3.Client, workers)
	for w := range clients {
		clients[w] = c.ownConnection(contentType)
		raws[w] = c.newEtcdClient(b)
	}
	// Warm every connection once so dialing and TLS are not measured.
	for w := range clients {
		if _, err := clients[w].CoreV1().Pods(ns).Get(ctx, "template", metav1.GetOptions{}); err != nil {
			b.Fatal(err)
		}
		if _, err := raws[w].Get(ctx, "/warm"); err != nil {
			b.Fatal(err)
		}
	}

	// The wire clients do what the etcd baseline's clients do: send bytes
	// encoded before the clock starts and read the answer without decoding
	// it, so that the API's own cost is compared, not client-go's encoder
	// and decoder running on the same two cores.
	wire := func(w int) rest.Interface { return clients[w].CoreV1().RESTClient() }
	var rawCreate, apiCreate, wireCreate, rawGet, apiGet, wireGet time.Duration
	b.ResetTimer()
	for iter := 0; iter < b.N; iter++ {
		prefix := "pod" + strconv.Itoa(iter)
		// The baseline keys sit beside /registry so that the server's watch
		// cache does not decode them while the baseline runs; they have the
		// same shape and length class as the API's keys.
		rawKey := func(i int) string { return "/baseline/pods/" + ns + "/" + podName(prefix, i) }
		values := make([][]byte, creates)
		for i := range values {
			values[i] = encodePod(b, tmpl, podName(prefix, i))
		}

		bodies := make([][]byte, creates)
		for i := range bodies {
			bodies[i] = encodeRequest(b, contentType, newPod(ns, podName("w"+prefix, i)))
		}

		rawCreate += parallel(b, creates, func(w, i int) error {
			return putRaw(ctx, raws[w], rawKey(i), values[i])
		})
		wireCreate += parallel(b, creates, func(w, i int) error {
			_, err := wire(w).Post().Namespace(ns).Resource("pods").SetHeader("Content-Type", contentType).Body(bodies[i]).DoRaw(ctx)
			return err
		})
		apiCreate += parallel(b, creates, func(w, i int) error {
			_, err := clients[w].CoreV1().Pods(ns).Create(ctx, newPod(ns, podName(prefix, i)), metav1.CreateOptions{})
			return err
		})
		rawGet += parallel(b, gets, func(w, i int) error {
			resp, err := raws[w].Get(ctx, rawKey(i%creates))
			if err == nil && len(resp.Kvs) != 1 {
				err = fmt.Errorf("raw get %d: not found", i)
			}
			return err
		})
		// No resourceVersion: a quorum read from etcd, like the baseline.
		apiGet += parallel(b, gets, func(w, i int) error {
			_, err := clients[w].CoreV1().Pods(ns).Get(ctx, podName(prefix, i%creates), metav1.GetOptions{})
			return err
		})
		wireGet += parallel(b, gets, func(w, i int) error {
			_, err := wire(w).Get().Namespace(ns).Resource("pods").Name(podName("w"+prefix, i%creates)).DoRaw(ctx)
			return err
		})
	}
	b.StopTimer()
	n := float64(b.N)
	rc, ac := n*creates/rawCreate.Seconds(), n*creates/apiCreate.Seconds()
	rg, ag := n*gets/rawGet.Seconds(), n*gets/apiGet.Seconds()
	wc, wg := n*creates/wireCreate.Seconds(), n*gets/wireGet.Seconds()
	b.ReportMetric(ac, "api-creates/s")
	b.ReportMetric(wc, "wire-creates/s")
	b.ReportMetric(rc, "etcd-creates/s")
	b.ReportMetric(rc/ac, "create-ratio")
	b.ReportMetric(rc/wc, "wire-create-ratio")
	b.ReportMetric(ag, "api-gets/s")
	b.ReportMetric(wg, "wire-gets/s")
	b.ReportMetric(rg, "etcd-gets/s")
	b.ReportMetric(rg/ag, "get-ratio")
	b.ReportMetric(rg/wg, "wire-get-ratio")
	b.ReportMetric(float64(len(encodePod(b, tmpl, podName("pod0", 0)))), "B-stored")
}

// Figure 2: LIST of 10,000 pods, served from the watch cache, as JSON and
// protobuf, against a raw etcd range read of the same 10,000 values.
func BenchmarkList10k(b *testing.B) {
	const pods, rounds = 10000, 7
	c := startCluster(b, false)
	ctx := context.Background()
	const ns = "list"
	c.createNamespace(b, "tmpl")
	tmpl := c.storedTemplate(b, "tmpl")
	tmpl.Namespace = ns
	c.createNamespace(b, ns)
	raws := make([]*clientv3.Client, workers)
	for w := range raws {
		raws[w] = c.newEtcdClient(b)
	}
	// Written straight to etcd under the API's keys: the watch cache picks
	// them up exactly as if the API had created them, only faster.
	parallel(b, pods, func(w, i int) error {
		name := podName("pod", i)
		return putRaw(ctx, raws[w], "/registry/pods/"+ns+"/"+name, encodePod(b, tmpl, name))
	})

	jsonClient := c.ownConnection(jsonType)
	protoClient := c.ownConnection(protobufType)
	rawList := func(cs kubernetes.Interface, accept, rv string) func() (int, error) {
		// Read and counted, not kept: the bytes a client must hold are
		// its own cost, which in this shared process is paid on the
		// server's cores (io.ReadAll growing a 43 MB buffer was half the
		// figure).
		return func() (int, error) {
			body, err := cs.CoreV1().RESTClient().Get().Namespace(ns).Resource("pods").
				Param("resourceVersion", rv).SetHeader("Accept", accept).Stream(ctx)
			if err != nil {
				return 0, err
			}
			defer body.Close()
			n, err := io.Copy(io.Discard, body)
			return int(n), err
		}
	}
	typedList := func(cs kubernetes.Interface) func() (int, error) {
		return func() (int, error) {
			l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err == nil && len(l.Items) != pods {
				err = fmt.Errorf("listed %d pods, want %d", len(l.Items), pods)
			}
			return len(l.Items), err
		}
	}
	cases := []struct {
		metric string
		fn     func() (int, error)
	}{
		{"etcd-range", func() (int, error) {
			resp, err := c.etcd.Get(ctx, "/registry/pods/"+ns+"/", clientv3.WithPrefix())
			if err == nil && len(resp.Kvs) != pods {
				err = fmt.Errorf("etcd range: %d values, want %d", len(resp.Kvs), pods)
			}
			return len(resp.Kvs), err
		}},
		// Time to the last byte of the response, not decoded: the server's
		// part of a list.
		{"api-json", rawList(jsonClient, jsonType, "")},
		{"api-protobuf", rawList(protoClient, protobufType, "")},
		{"api-protobuf-rv0", rawList(protoClient, protobufType, "0")},
		{"api-json-rv0", rawList(jsonClient, jsonType, "0")},
		// What a client-go program sees, decoding included.
		{"clientgo-json", typedList(jsonClient)},
		{"clientgo-protobuf", typedList(protoClient)},
	}
	// Warm-up: the consistent list waits for the cache to reach etcd's
	// revision, and every connection is dialed once.
	for _, tc := range cases {
		if _, err := tc.fn(); err != nil {
			b.Fatal(err)
		}
	}
	times := make([][]time.Duration, len(cases))
	sizes := make([]int, len(cases))
	b.ResetTimer()
	for iter := 0; iter < b.N; iter++ {
		// Interleaved so that background noise hits every case alike.
		for r := 0; r < rounds; r++ {
			for k, tc := range cases {
				start := time.Now()
				n, err := tc.fn()
				times[k] = append(times[k], time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				sizes[k] = n
			}
		}
	}
	b.StopTimer()
	base := median(times[0])
	for k, tc := range cases {
		m := median(times[k])
		b.ReportMetric(ms(m), "ms-"+tc.metric)
		if k > 0 {
			b.ReportMetric(float64(m)/float64(base), "ratio-"+tc.metric)
		}
	}
	b.ReportMetric(float64(sizes[1])/(1<<20), "MB-json")
	b.ReportMetric(float64(sizes[2])/(1<<20), "MB-protobuf")
}
