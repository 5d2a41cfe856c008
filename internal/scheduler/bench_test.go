package scheduler_test

import (
	"context"
	"fmt"
	"github.com/lotse/lotse/internal/scheduler"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/lotse/lotse/internal/testserver"
)

const (
	benchNodes = 500
	benchPods  = 2000
)

// BenchmarkSchedule2000PodsOn500Nodes measures, against the real test
// server, how fast the scheduler binds a backlog of pending pods, and in
// the same run how fast a scheduler that only binds round-robin (no
// filtering, no scoring, no events) gets through the same backlog. The
// difference is what filtering, scoring and event recording cost.
//
//	go test ./internal/scheduler/ -run '^$' -bench Schedule -benchtime 1x
func BenchmarkSchedule2000PodsOn500Nodes(b *testing.B) {
	srv := testserver.Start(b, testserver.Options{DisableScheduler: true})
	ctx := b.Context()
	fast := rest.CopyConfig(srv.Config)
	fast.QPS, fast.Burst = -1, 0 // no client-side throttling: measure the server
	client := kubernetes.NewForConfigOrDie(fast)
	parallel(benchNodes, 32, func(i int) {
		createNode(ctx, b, client, fmt.Sprintf("bench-node-%03d", i), "32", "256Gi", nil)
	})
	var sched, base float64
	for i := 0; b.Loop(); i++ {
		ns := fmt.Sprintf("bench-%d", i)
		b.StopTimer()
		createPods(ctx, b, client, ns+"-s", benchPods)
		b.StartTimer()
		sched += timeToBind(ctx, b, client, ns+"-s", func(ctx context.Context) {
			s, err := scheduler.New(scheduler.Config{Client: client, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			_ = s.Run(ctx)
		})
		b.StopTimer()
		createPods(ctx, b, client, ns+"-b", benchPods)
		base += timeToBind(ctx, b, client, ns+"-b", func(ctx context.Context) { roundRobin(ctx, client, ns+"-b") })
		b.StartTimer()
	}
	b.ReportMetric(sched/float64(b.N), "pods/s")
	b.ReportMetric(base/float64(b.N), "bind-only-pods/s")
}

// timeToBind runs run until every pod in ns is bound and returns pods/s.
func timeToBind(ctx context.Context, b *testing.B, c kubernetes.Interface, ns string, run func(context.Context)) float64 {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var bound atomic.Int64
	done := make(chan struct{})
	factory := informers.NewSharedInformerFactoryWithOptions(c, 0, informers.WithNamespace(ns))
	seen := sync.Map{}
	count := func(obj any) {
		if p, ok := obj.(*v1.Pod); ok && p.Spec.NodeName != "" {
			if _, dup := seen.LoadOrStore(p.Name, true); !dup && bound.Add(1) == benchPods {
				close(done)
			}
		}
	}
	_, _ = factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: count, UpdateFunc: func(_, obj any) { count(obj) },
	})
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	start := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() { run(ctx) })
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("%s: only %d of %d pods bound", ns, bound.Load(), benchPods)
	}
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	factory.Shutdown()
	return benchPods / elapsed.Seconds()
}

// roundRobin is the baseline: it binds every pending pod of ns to the
// next node in turn, with the same bind concurrency as the scheduler.
func roundRobin(ctx context.Context, c kubernetes.Interface, ns string) {
	factory := informers.NewSharedInformerFactoryWithOptions(c, 0, informers.WithNamespace(ns))
	pending := make(chan *v1.Pod, benchPods)
	_, _ = factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if p, ok := obj.(*v1.Pod); ok && p.Spec.NodeName == "" {
				pending <- p
			}
		},
	})
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case p := <-pending:
					node := fmt.Sprintf("bench-node-%03d", next.Add(1)%benchNodes)
					binding := &v1.Binding{
						ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, UID: p.UID},
						Target:     v1.ObjectReference{Kind: "Node", Name: node},
					}
					_ = c.CoreV1().Pods(p.Namespace).Bind(ctx, binding, metav1.CreateOptions{})
				}
			}
		})
	}
	wg.Wait()
}

func createPods(ctx context.Context, b *testing.B, c kubernetes.Interface, ns string, n int) {
	if _, err := c.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	parallel(n, 32, func(i int) {
		if _, err := c.CoreV1().Pods(ns).Create(ctx, apiPod(ns, fmt.Sprintf("p-%05d", i), "100m"), metav1.CreateOptions{}); err != nil {
			b.Error(err)
		}
	})
}

// parallel runs f(0..n-1) on workers goroutines.
func parallel(n, workers int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		})
	}
	wg.Wait()
}
