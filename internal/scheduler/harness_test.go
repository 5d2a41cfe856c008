package scheduler

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"
)

// recorder is a Binder and Reporter that writes down what the scheduler
// decided instead of calling an API server.
type recorder struct {
	mu            sync.Mutex
	binds         map[string]string   // pod name -> node
	unschedulable map[string]string   // pod name -> message
	failBind      map[string]error    // pod name -> error to return once
	preemptions   map[string][]string // preemptor name -> node, then victim names
}

func newRecorder() *recorder {
	return &recorder{binds: map[string]string{}, unschedulable: map[string]string{}, failBind: map[string]error{}, preemptions: map[string][]string{}}
}

func (r *recorder) Bind(_ context.Context, pod *v1.Pod, node string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err, ok := r.failBind[pod.Name]; ok {
		delete(r.failBind, pod.Name)
		return err
	}
	r.binds[pod.Name] = node
	return nil
}

func (r *recorder) Preempt(_ context.Context, pod *v1.Pod, node string, victims []*v1.Pod) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := []string{node}
	for _, v := range victims {
		rec = append(rec, v.Name)
	}
	r.preemptions[pod.Name] = rec
	return nil
}

func (r *recorder) Unschedulable(_ context.Context, pod *v1.Pod, msg string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unschedulable[pod.Name] = msg
	return nil
}

func (r *recorder) Scheduled(*v1.Pod, string) {}

// harness is a scheduler with no API server: nodes and placed pods go
// straight into its cache, and pods are scheduled one Pop at a time.
type harness struct {
	t     testing.TB
	s     *Scheduler
	rec   *recorder
	clock *clocktesting.FakeClock
}

func newHarness(t testing.TB, nodes []*v1.Node, placed ...*v1.Pod) *harness {
	t.Helper()
	rec := newRecorder()
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s, err := New(Config{Binder: rec, Reporter: rec, Clock: clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		s.cache.AddNode(n)
	}
	for _, p := range placed {
		s.cache.AddPod(p)
	}
	return &harness{t: t, s: s, rec: rec, clock: clk}
}

// add puts API objects straight into the stores of the scheduler's
// informers, which the harness never starts, as their watches would.
func (h *harness) add(objs ...runtime.Object) {
	h.t.Helper()
	f := h.s.factory
	for _, o := range objs {
		var inf cache.SharedIndexInformer
		switch o.(type) {
		case *v1.PersistentVolumeClaim:
			inf = f.Core().V1().PersistentVolumeClaims().Informer()
		case *v1.PersistentVolume:
			inf = f.Core().V1().PersistentVolumes().Informer()
		case *storagev1.StorageClass:
			inf = f.Storage().V1().StorageClasses().Informer()
		case *v1.Namespace:
			inf = f.Core().V1().Namespaces().Informer()
		case *policyv1.PodDisruptionBudget:
			inf = f.Policy().V1().PodDisruptionBudgets().Informer()
		default:
			h.t.Fatalf("harness cannot add %T", o)
		}
		if err := inf.GetStore().Add(o); err != nil {
			h.t.Fatal(err)
		}
	}
}

// schedule queues pods and runs scheduling cycles until the active queue
// is empty, waiting for binds.
func (h *harness) schedule(pods ...*v1.Pod) {
	for _, p := range pods {
		h.s.queue.Add(h.s.podInfo(p))
	}
	ctx := context.Background()
	for {
		if active, _, _ := h.s.queue.Len(); active == 0 {
			break
		}
		h.s.scheduleOne(ctx)
	}
	h.s.binds.Wait()
}

var podSeq int

func node(name, cpu, mem string, labels map[string]string, mut ...func(*v1.Node)) *v1.Node {
	n := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Status: v1.NodeStatus{
			Allocatable: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse(mem), v1.ResourcePods: resource.MustParse("110")},
			Conditions:  []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}},
		},
	}
	for _, m := range mut {
		m(n)
	}
	return n
}

func pod(name, cpu, mem string, mut ...func(*v1.Pod)) *v1.Pod {
	podSeq++
	req := v1.ResourceList{}
	if cpu != "" {
		req[v1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		req[v1.ResourceMemory] = resource.MustParse(mem)
	}
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name),
			CreationTimestamp: metav1.NewTime(time.Unix(int64(podSeq), 0))},
		Spec: v1.PodSpec{SchedulerName: DefaultSchedulerName,
			Containers: []v1.Container{{Name: "c", Resources: v1.ResourceRequirements{Requests: req}}}},
	}
	for _, m := range mut {
		m(p)
	}
	return p
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
