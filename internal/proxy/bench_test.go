package proxy

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

// BenchmarkSync10kServices programs 10,000 Services with 10 endpoints each
// into a fresh network namespace, then changes one endpoint. Run it once:
//
//	go test -run '^$' -bench Sync10k -benchtime 1x ./internal/proxy/
//
// Metrics: full-ms (build + nft + netlink for the whole table, into an
// empty namespace), incremental-ms (one endpoint changed, build + nft),
// resync-ms (the whole table again, replacing the one in place, as after a
// restart), and baselines from the same namespace:
// nft-empty-ms (an nft run with a trivial transaction, i.e. process start
// and netlink round trip, with the big table in place) and nft-trivial-ms
// (one transaction with as many chains, rules and set elements as the full
// sync, each rule a bare counter, the elements in one plain set).
func BenchmarkSync10kServices(b *testing.B) {
	requireRoot(b)
	const nSvc, nEp = 10000, 10
	objs := make([]runtime.Object, 0, 2*nSvc)
	for i := range nSvc {
		name := fmt.Sprintf("svc-%05d", i)
		ip := fmt.Sprintf("10.43.%d.%d", i/250, i%250+1)
		svc := svcNamed(name, ip)
		if i%10 == 0 {
			svc.Spec.Type = v1.ServiceTypeNodePort
			svc.Spec.Ports[0].NodePort = int32(30000 + i/10)
		}
		var eps []epSpec
		for j := range nEp {
			k := i*nEp + j + 1 // 100k endpoints: 10.42.0.1 up to 10.43.134.160
			eps = append(eps, readyEp(fmt.Sprintf("10.%d.%d.%d", 42+k>>16, k>>8&255, k&255), "n1"))
		}
		objs = append(objs, svc, testSlice("ns", name, name+"-1", 8080, eps...))
	}
	ctx, cancel := context.WithCancel(b.Context())
	client := fake.NewSimpleClientset(objs...)
	f := informers.NewSharedInformerFactory(client, 0)
	node := newNetns(b, "bench")
	p := New(Config{NodeName: "n1", ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"), Table: "lotse-bench",
		Run: dumpingRun(nftIn(node)), NetNS: netnsFD(b, node), Logger: testLogger}, f.Core().V1().Services(), f.Discovery().V1().EndpointSlices())
	f.Start(ctx.Done())
	// Informers stop on cancel; Shutdown waits for them.
	defer f.Shutdown()
	defer cancel()
	if !cache.WaitForCacheSync(ctx.Done(), p.synced...) {
		b.Fatal("caches did not sync")
	}
	sliceStore := f.Discovery().V1().EndpointSlices().Informer().GetIndexer()

	// Shape of the full script, for the trivial-rules baseline.
	var chains, rules, elems int
	var full, incr, resync time.Duration
	b.ResetTimer()
	for range b.N {
		p.needFull = true
		start := time.Now()
		if err := p.syncAll(ctx); err != nil {
			b.Fatal(err)
		}
		full = time.Since(start)

		// One endpoint of one Service changes address.
		obj, _, _ := sliceStore.GetByKey("ns/svc-05000-1")
		s := obj.(*discovery.EndpointSlice).DeepCopy()
		s.Endpoints[3].Addresses = []string{"10.42.250.250"}
		bump(s)
		if err := sliceStore.Update(s); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		if err := p.syncServices(ctx, map[string]struct{}{"ns/svc-05000": {}}); err != nil {
			b.Fatal(err)
		}
		incr = time.Since(start)

		p.needFull = true
		start = time.Now()
		if err := p.syncAll(ctx); err != nil {
			b.Fatal(err)
		}
		resync = time.Since(start)
	}
	b.StopTimer()
	b.Logf("full sync %v, incremental %v, resync %v", full, incr, resync)
	for _, r := range p.written {
		chains += len(r.chains)
		for _, rs := range r.chains {
			rules += len(rs)
		}
		for _, e := range r.elems {
			elems += len(e)
		}
	}
	for d := range p.dispatch {
		var w strings.Builder
		writeDispatchChain(&w, "t", d)
		chains++
		rules += strings.Count(w.String(), "add rule")
	}

	// Baselines, in the same namespace with the big table in place.
	run := nftIn(node)
	timeIt := func(script string) time.Duration {
		var ds []time.Duration
		for range 5 {
			start := time.Now()
			if err := run(ctx, script); err != nil {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		return ds[2]
	}
	empty := timeIt("add table ip lotse-base\n")
	// The same no-op on the big table: what nft spends reading it back.
	emptyBig := timeIt("add table ip lotse-bench\n")
	var w strings.Builder
	w.WriteString("add table ip lotse-base\ndelete table ip lotse-base\nadd table ip lotse-base\n")
	// As many chains and rules as the real table, each rule a bare
	// counter, and as many elements, in one set.
	for c := range chains {
		fmt.Fprintf(&w, "add chain ip lotse-base c%d\n", c)
		for range rules / chains {
			fmt.Fprintf(&w, "add rule ip lotse-base c%d counter\n", c)
		}
	}
	w.WriteString("add set ip lotse-base s { type ipv4_addr . inet_service; }\nadd element ip lotse-base s { ")
	for i := range elems {
		if i > 0 {
			w.WriteString(", ")
		}
		fmt.Fprintf(&w, "10.%d.%d.%d . 80", i>>16&255, i>>8&255, i&255)
	}
	w.WriteString(" }\n")
	start := time.Now()
	if err := run(ctx, w.String()); err != nil {
		b.Fatal(err)
	}
	trivial := time.Since(start)

	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(full), "full-ms")
	b.ReportMetric(ms(incr), "incremental-ms")
	b.ReportMetric(ms(resync), "resync-ms")
	b.ReportMetric(ms(empty), "nft-empty-ms")
	b.ReportMetric(ms(emptyBig), "nft-noop-bigtable-ms")
	b.ReportMetric(ms(trivial), "nft-trivial-ms")
	b.ReportMetric(float64(chains), "chains")
	b.ReportMetric(float64(rules), "rules")
	b.ReportMetric(float64(elems), "map-elements")
	b.ReportMetric(full.Seconds()/trivial.Seconds(), "full/trivial")
	b.ReportMetric(incr.Seconds()/empty.Seconds(), "incremental/empty")
}

// dumpingRun saves each script to $LOTSE_PROXY_BENCH_DUMP.N when set, to
// replay by hand (nft -f) while studying where the time goes.
func dumpingRun(run func(context.Context, string) error) func(context.Context, string) error {
	dir := os.Getenv("LOTSE_PROXY_BENCH_DUMP")
	n := 0
	return func(ctx context.Context, script string) error {
		if dir != "" {
			n++
			os.WriteFile(fmt.Sprintf("%s.%d", dir, n), []byte(script), 0o644)
		}
		return run(ctx, script)
	}
}
