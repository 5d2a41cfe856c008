package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

// recorder is a fake Config.Run and tableAccess: it keeps every script
// (and the elements written through netlink, as nft would write them) and
// can fail on cue.
type recorder struct {
	mu      sync.Mutex
	scripts chan string
	failN   int          // fail this many of the next scripts
	objs    tableObjects // what objects answers
}

func (r *recorder) objects(context.Context, string) (tableObjects, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.objs, nil
}

func (r *recorder) addElements(_ context.Context, table string, maps []mapElements) error {
	var w strings.Builder
	for _, m := range maps {
		fmt.Fprintf(&w, "add element ip %s %s { ", table, m.name)
		for i, e := range m.elems {
			if i > 0 {
				w.WriteString(", ")
			}
			w.WriteString(e[0] + " : " + e[1])
		}
		w.WriteString(" }\n")
	}
	r.scripts <- w.String()
	return nil
}

// nextFull returns the three writes of a full sync, joined: the script
// that makes the endpoint maps, their elements, and the transaction.
func (r *recorder) nextFull(t *testing.T) string {
	t.Helper()
	return r.next(t) + r.next(t) + r.next(t)
}

func newRecorder() *recorder { return &recorder{scripts: make(chan string, 100)} }

func (r *recorder) run(_ context.Context, script string) error {
	r.mu.Lock()
	fail := r.failN > 0
	if fail {
		r.failN--
	}
	r.mu.Unlock()
	r.scripts <- script
	if fail {
		return errors.New("injected failure")
	}
	return nil
}

func (r *recorder) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-r.scripts:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no nft script written within 5s")
		return ""
	}
}

// quiet asserts nothing more is written for a while.
func (r *recorder) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case s := <-r.scripts:
		t.Fatalf("unexpected script:\n%s", s)
	case <-time.After(d):
	}
}

var testLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// startProxy runs a Proxy on a fake clientset holding objs. Config
// fields left zero get test defaults.
func startProxy(t *testing.T, cfg Config, objs ...runtime.Object) (*fake.Clientset, *Proxy) {
	t.Helper()
	client := fake.NewSimpleClientset(objs...)
	f := informers.NewSharedInformerFactory(client, 0)
	if cfg.Table == "" {
		cfg.Table = "t"
	}
	if cfg.NodeName == "" {
		cfg.NodeName = "n1"
	}
	if !cfg.ClusterCIDR.IsValid() {
		cfg.ClusterCIDR = netip.MustParsePrefix("10.42.0.0/16")
	}
	if cfg.MinSyncInterval == 0 {
		cfg.MinSyncInterval = time.Millisecond
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger
	}
	if cfg.tables == nil && cfg.NetNS == 0 {
		t.Fatal("startProxy: no tables fake and no netns: the test would write to the host's nftables")
	}
	if cfg.ClearConntrack == nil {
		// Never the default: it would delete entries on the test host.
		cfg.ClearConntrack = func(context.Context, []ConntrackFilter) (int, error) { return 0, nil }
	}
	p := New(cfg, f.Core().V1().Services(), f.Discovery().V1().EndpointSlices())
	ctx, cancel := context.WithCancel(t.Context())
	f.Start(ctx.Done())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		f.Shutdown()
	})
	return client, p
}

// svcNamed is testService under another name and cluster IP.
func svcNamed(name, ip string) *v1.Service {
	s := testService()
	s.Name, s.Spec.ClusterIP, s.Spec.ClusterIPs = name, ip, []string{ip}
	return s
}

// chainsOf lists every chain name the Service name would own (port 8080,
// port name http).
func chainsOf(name string) []string {
	key := "ns/" + name + "/tcp/http"
	return []string{hashName("svc-", key), hashName("ext-", key), hashName("loc-", key)}
}

var rv int

// bump gives an object a fresh resourceVersion: the fake clientset keeps
// whatever it is given, and the proxy ignores updates that keep the version.
func bump(o metav1.Object) {
	rv++
	o.SetResourceVersion(strconv.Itoa(100 + rv))
}

func update[T runtime.Object](t *testing.T, f func(context.Context, T, metav1.UpdateOptions) (T, error), obj T) {
	t.Helper()
	bump(any(obj).(metav1.Object))
	if _, err := f(t.Context(), obj, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestIncrementalSync(t *testing.T) {
	ipsA := []string{"10.42.1.1", "10.42.1.2", "10.42.1.3"}
	ipsB := []string{"10.42.2.1", "10.42.2.2", "10.42.2.3"}
	ipsC := []string{"10.42.3.1", "10.42.3.2", "10.42.3.3"}
	slice := func(svc string, ips ...string) *discovery.EndpointSlice {
		var eps []epSpec
		for _, ip := range ips {
			eps = append(eps, readyEp(ip, "n1"))
		}
		return testSlice("ns", svc, svc+"-abc", 8080, eps...)
	}
	sliceB := slice("b", ipsB...)
	rec := newRecorder()
	client, _ := startProxy(t, Config{Run: rec.run, tables: rec},
		svcNamed("a", "10.43.0.1"), svcNamed("b", "10.43.0.2"), svcNamed("c", "10.43.0.3"),
		slice("a", ipsA...), sliceB, slice("c", ipsC...))
	slices := client.DiscoveryV1().EndpointSlices("ns")

	full := rec.nextFull(t)
	if !strings.HasPrefix(full, "add table ip t\nadd map ip t endpoints-cluster-3 ") {
		t.Fatalf("first sync is not a table rebuild:\n%s", full)
	}
	for _, w := range []string{
		"add chain ip t dispatch-cluster-3\n",
		"add element ip t endpoints-cluster-3 { 10.43.0.1 . tcp . 80 . 0 : 10.42.1.1 . 8080, ",
		"add element ip t service-ips { 10.43.0.1 . tcp . 80 : goto dispatch-cluster-3, ",
		"add rule ip t masquerading ct status dnat update @hairpin { ip daddr . ip daddr }\n" +
			"add rule ip t masquerading ct status dnat ip saddr . ip daddr @hairpin jump mark-for-masquerade\n",
		"add rule ip t services ip saddr != 10.42.0.0/16 ip daddr . meta l4proto . th dport @service-ips jump mark-for-masquerade\n",
	} {
		if !strings.Contains(full, w) {
			t.Errorf("full sync lacks %q", w)
		}
	}
	if strings.Contains(full, chainsOf("a")[0]) {
		t.Errorf("a Service without affinity got a chain of its own:\n%s", full)
	}
	// Endpoint maps are filled before traffic is sent to them.
	if i, j := strings.Index(full, " : 10.42.3.3 . 8080"), strings.Index(full, "goto "+dispatchChainPrefix); i < 0 || j < i {
		t.Errorf("endpoint map elements come after the verdicts that send traffic to them:\n%s", full)
	}
	assertOnlyB := func(script string) {
		t.Helper()
		for _, s := range append([]string{"10.43.0.1 ", "10.43.0.3 ", "table", "delete chain", "flush"}, append(ipsA, ipsC...)...) {
			if strings.Contains(script, s) {
				t.Errorf("script mentions %q:\n%s", s, script)
			}
		}
	}

	// One endpoint more: b moves to the dispatch chain for 4 endpoints,
	// made now, and its elements move to that chain's map.
	sliceB.Endpoints = append(sliceB.Endpoints, slice("b", "10.42.2.4").Endpoints...)
	update(t, slices.Update, sliceB)
	got := rec.next(t)
	assertOnlyB(got)
	for _, w := range []string{
		"add chain ip t dispatch-cluster-4\n",
		"add rule ip t dispatch-cluster-4 meta l4proto tcp dnat ip addr . port to ip daddr . meta l4proto . th dport . numgen random mod 4 map @endpoints-cluster-4\n",
		"delete element ip t endpoints-cluster-3 { 10.43.0.2 . tcp . 80 . 2 }\n",
		"add element ip t endpoints-cluster-4 { 10.43.0.2 . tcp . 80 . 3 : 10.42.2.4 . 8080 }\n",
		"add element ip t service-ips { 10.43.0.2 . tcp . 80 : goto dispatch-cluster-4 }\n",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
	if n := strings.Count(got, "\n"); n > 20 {
		t.Errorf("one endpoint added took %d commands:\n%s", n, got)
	}

	// An endpoint changes its address: one map element changes, nothing
	// else.
	sliceB.Endpoints[3].Addresses = []string{"10.42.2.5"}
	update(t, slices.Update, sliceB)
	if got, want := rec.next(t), "delete element ip t endpoints-cluster-4 { 10.43.0.2 . tcp . 80 . 3 }\n"+
		"add element ip t endpoints-cluster-4 { 10.43.0.2 . tcp . 80 . 3 : 10.42.2.5 . 8080 }\n"; got != want {
		t.Errorf("address change wrote:\n%s\nwant:\n%s", got, want)
	}

	// One endpoint less: back to the existing chain for 3.
	sliceB.Endpoints = sliceB.Endpoints[1:]
	update(t, slices.Update, sliceB)
	got = rec.next(t)
	assertOnlyB(got)
	for _, w := range []string{
		"add element ip t service-ips { 10.43.0.2 . tcp . 80 : goto dispatch-cluster-3 }\n",
		"add element ip t endpoints-cluster-3 { 10.43.0.2 . tcp . 80 . 2 : 10.42.2.5 . 8080 }\n",
		"delete element ip t endpoints-cluster-4 { 10.43.0.2 . tcp . 80 . 0 }\n",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
	if strings.Contains(got, "add chain") {
		t.Errorf("the chain for 3 endpoints exists already:\n%s", got)
	}

	// An update that changes nothing writes nothing.
	update(t, slices.Update, sliceB)
	rec.quiet(t, 100*time.Millisecond)

	// No endpoints left: the map element moves from service-ips to a reject.
	sliceB.Endpoints = nil
	update(t, slices.Update, sliceB)
	got = rec.next(t)
	assertOnlyB(got)
	for _, w := range []string{
		"delete element ip t service-ips { 10.43.0.2 . tcp . 80 }\n",
		"add element ip t no-endpoint-services { 10.43.0.2 . tcp . 80 : goto reject-chain }\n",
		"delete element ip t endpoints-cluster-3 { 10.43.0.2 . tcp . 80 . 0 }\n",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
	if strings.Contains(got, "add chain") {
		t.Errorf("no chain should be added:\n%s", got)
	}

	// Deleting the Service removes what is left of it.
	if err := client.CoreV1().Services("ns").Delete(t.Context(), "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got = rec.next(t)
	assertOnlyB(got)
	if got != "delete element ip t no-endpoint-services { 10.43.0.2 . tcp . 80 }\n" {
		t.Errorf("deleting the service wrote:\n%s", got)
	}
}

// A failed write is followed by a full rebuild, and Run removes the table
// when it returns.
func TestFailedWriteRebuilds(t *testing.T) {
	rec := newRecorder()
	svc := svcNamed("a", "10.43.0.1")
	client, _ := startProxy(t, Config{Run: rec.run, tables: rec}, svc, testSlice("ns", "a", "a-1", 8080, readyEp("10.42.1.1", "")))
	rec.nextFull(t)

	rec.mu.Lock()
	rec.failN = 1
	rec.mu.Unlock()
	svc.Spec.Ports[0].Port = 81
	update(t, client.CoreV1().Services("ns").Update, svc)
	partial := rec.next(t)
	if strings.Contains(partial, "table") || !strings.Contains(partial, "10.43.0.1 . tcp . 81") {
		t.Fatalf("expected a partial sync, got:\n%s", partial)
	}
	full := rec.nextFull(t)
	if !strings.HasPrefix(full, "add table ip t\n") || !strings.Contains(full, "service-ips { 10.43.0.1 . tcp . 81 : goto") {
		t.Fatalf("expected a full rebuild after the failure, got:\n%s", full)
	}
	rec.quiet(t, 50*time.Millisecond)
}

// Changes that arrive within MinSyncInterval of the last sync become one
// transaction.
func TestBurstCoalesced(t *testing.T) {
	rec := newRecorder()
	a, b := svcNamed("a", "10.43.0.1"), svcNamed("b", "10.43.0.2")
	client, _ := startProxy(t, Config{Run: rec.run, tables: rec, MinSyncInterval: 300 * time.Millisecond}, a, b)
	rec.nextFull(t)
	for _, s := range []*v1.Service{a, b} {
		s.Spec.Ports[0].Port = 81
		update(t, client.CoreV1().Services("ns").Update, s)
	}
	got := rec.next(t)
	if !strings.Contains(got, "10.43.0.1 . tcp . 81") || !strings.Contains(got, "10.43.0.2 . tcp . 81") {
		t.Fatalf("burst was not coalesced into one script:\n%s", got)
	}
}

func TestCleanupOnReturn(t *testing.T) {
	rec := newRecorder()
	client := fake.NewSimpleClientset()
	f := informers.NewSharedInformerFactory(client, 0)
	p := New(Config{Table: "t", Run: rec.run, tables: rec, Logger: testLogger}, f.Core().V1().Services(), f.Discovery().V1().EndpointSlices())
	ctx, cancel := context.WithCancel(t.Context())
	f.Start(ctx.Done())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	rec.nextFull(t)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	f.Shutdown()
	if got := rec.next(t); got != "add table ip t\ndelete table ip t\n" {
		t.Fatalf("cleanup wrote %q", got)
	}
}

// Two Services claiming one external IP and port: the first by name keeps
// it, and the sync does not fail on a duplicate map element.
func TestAddressConflict(t *testing.T) {
	rec := newRecorder()
	a, b := svcNamed("a", "10.43.0.1"), svcNamed("b", "10.43.0.2")
	a.Spec.ExternalIPs, b.Spec.ExternalIPs = []string{"198.51.100.7"}, []string{"198.51.100.7"}
	client, _ := startProxy(t, Config{Run: rec.run, tables: rec}, a, b)
	full := rec.nextFull(t)
	if n := strings.Count(full, "198.51.100.7 . tcp . 80"); n != 1 {
		t.Fatalf("external IP written %d times:\n%s", n, full)
	}
	// b changes and still may not take a's element.
	b.Spec.ClusterIP, b.Spec.ClusterIPs = "10.43.0.22", []string{"10.43.0.22"}
	update(t, client.CoreV1().Services("ns").Update, b)
	if got := rec.next(t); strings.Contains(got, "198.51.100.7") {
		t.Fatalf("b took a's external IP:\n%s", got)
	}
}

// A full sync over a table in use: the transaction that switches traffic
// to the new table deletes nothing (a packet crossing its commit may still
// look up the old endpoint maps, and must meet the same base chains); what
// the new table lacks goes in a transaction after it.
func TestFullSyncSwitchDeletesNothing(t *testing.T) {
	rec := newRecorder()
	stale := chainsOf("gone")[0] // a Service deleted while no proxy ran
	rec.objs = tableObjects{
		chains: []string{chainNatPrerouting, chainServices, "dispatch-cluster-1", stale},
		sets:   []string{mapServiceIPs, setHairpin, "endpoints-cluster-1", "endpoints-np-cluster-1"},
		maps:   map[string]bool{mapServiceIPs: true, "endpoints-cluster-1": true, "endpoints-np-cluster-1": true},
	}
	startProxy(t, Config{Run: rec.run, tables: rec}, svcNamed("a", "10.43.0.1"), testSlice("ns", "a", "a-1", 8080, readyEp("10.42.1.1", "")))
	rec.next(t) // the new generation's dispatch chains and maps
	rec.next(t) // their elements
	sw, cleanup := rec.next(t), rec.next(t)

	for _, want := range []string{
		"flush chain ip t nat-prerouting\n", "flush chain ip t services\n", "flush map ip t service-ips\n", "flush set ip t hairpin\n",
		"add rule ip t nat-prerouting jump services\n", "service-ips { 10.43.0.1 . tcp . 80 : goto dispatch-cluster-1-g1",
	} {
		if !strings.Contains(sw, want) {
			t.Errorf("the switch lacks %q:\n%s", want, sw)
		}
	}
	for _, old := range []string{"delete ", "endpoints-cluster-1 ", "endpoints-np-cluster-1 ", "dispatch-cluster-1\n", stale} {
		if strings.Contains(sw, old) {
			t.Errorf("the switch has %q:\n%s", old, sw)
		}
	}
	wantCleanup := "flush chain ip t dispatch-cluster-1\nflush chain ip t " + stale + "\n" +
		"delete set ip t endpoints-cluster-1\ndelete set ip t endpoints-np-cluster-1\n" +
		"delete chain ip t dispatch-cluster-1\ndelete chain ip t " + stale + "\n"
	if cleanup != wantCleanup {
		t.Errorf("after the switch:\n%s\nwant:\n%s", cleanup, wantCleanup)
	}
	rec.quiet(t, 50*time.Millisecond)
}
