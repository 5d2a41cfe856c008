package podautoscaler

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// podSpec describes a test pod: its state and its sample (-1 = none).
type podSpec struct {
	name    string
	phase   corev1.PodPhase // Running if empty
	ready   corev1.ConditionStatus
	started time.Duration // before t0; 0 means long ago
	usage   int64         // milli-units; -1 for no sample
	request string        // "" for none
	deleted bool
}

func build(specs []podSpec, res corev1.ResourceName) ([]*corev1.Pod, map[string]sample) {
	var pods []*corev1.Pod
	samples := map[string]sample{}
	for _, s := range specs {
		phase, ready, started := s.phase, s.ready, s.started
		if phase == "" {
			phase = corev1.PodRunning
		}
		if ready == "" {
			ready = corev1.ConditionTrue
		}
		if started == 0 {
			started = time.Hour
		}
		start := metav1.NewTime(t0.Add(-started))
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: s.name},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}},
			Status: corev1.PodStatus{Phase: phase, StartTime: &start, Conditions: []corev1.PodCondition{
				{Type: corev1.PodReady, Status: ready, LastTransitionTime: metav1.NewTime(start.Add(time.Second))},
			}},
		}
		if s.request != "" {
			p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{res: resource.MustParse(s.request)}
		}
		if s.deleted {
			p.DeletionTimestamp = &start
		}
		pods = append(pods, p)
		if s.usage >= 0 {
			samples[s.name] = sample{value: s.usage, timestamp: t0, window: time.Minute}
		}
	}
	return pods, samples
}

func running(name string, usage int64) podSpec {
	return podSpec{name: name, usage: usage, request: "1"}
}

func TestUtilizationReplicas(t *testing.T) {
	tests := []struct {
		name     string
		res      corev1.ResourceName
		current  int32
		target   int32
		pods     []podSpec
		want     int32
		wantUtil int32
		wantErr  string
	}{
		{name: "within tolerance keeps the size", current: 3, target: 50,
			pods: []podSpec{running("a", 540), running("b", 540), running("c", 540)}, want: 3, wantUtil: 54},
		{name: "just outside tolerance scales", current: 3, target: 50,
			pods: []podSpec{running("a", 560), running("b", 560), running("c", 560)}, want: 4, wantUtil: 56},
		{name: "scale up rounds up", current: 3, target: 50,
			pods: []podSpec{running("a", 900), running("b", 900), running("c", 900)}, want: 6, wantUtil: 90},
		{name: "scale down", current: 4, target: 50,
			pods: []podSpec{running("a", 100), running("b", 100), running("c", 100), running("d", 100)}, want: 1, wantUtil: 10},
		{name: "missing metrics count as idle on scale-up", current: 3, target: 50,
			pods: []podSpec{running("a", 900), running("b", 900), running("c", -1)}, want: 4, wantUtil: 90},
		{name: "missing metrics count as 100% on scale-down", current: 4, target: 50,
			pods: []podSpec{running("a", 100), running("b", 100), running("c", 100), running("d", -1)}, want: 3, wantUtil: 10},
		{name: "missing metrics count as the target when it is above 100%", current: 4, target: 200,
			pods: []podSpec{running("a", 100), running("b", 100), running("c", 100), running("d", -1)}, want: 2, wantUtil: 10},
		{name: "pending pods count as idle on scale-up", current: 3, target: 50,
			pods: []podSpec{running("a", 900), running("b", 900), {name: "c", phase: corev1.PodPending, usage: -1, request: "1"}}, want: 4, wantUtil: 90},
		{name: "unready starting pods are ignored on scale-down", current: 3, target: 50,
			pods: []podSpec{running("a", 100), running("b", 100), {name: "c", ready: corev1.ConditionFalse, started: time.Minute, usage: 900, request: "1"}}, want: 1, wantUtil: 10},
		{name: "a scale-up that unready pods would reverse is dropped", current: 3, target: 50,
			pods: []podSpec{running("a", 600), {name: "b", phase: corev1.PodPending, usage: -1, request: "1"}, {name: "c", phase: corev1.PodPending, usage: -1, request: "1"}}, want: 3, wantUtil: 60},
		{name: "deleted and failed pods are ignored", current: 1, target: 50,
			pods: []podSpec{running("a", 900), {name: "b", usage: 900, request: "1", deleted: true}, {name: "c", phase: corev1.PodFailed, usage: 900, request: "1"}}, want: 2, wantUtil: 90},
		{name: "memory ignores readiness", res: corev1.ResourceMemory, current: 2, target: 50,
			pods: []podSpec{{name: "a", ready: corev1.ConditionFalse, started: time.Minute, usage: 900, request: "1"}, running("b", 900)}, want: 4, wantUtil: 90},
		{name: "a container without a request is an error", current: 1, target: 50,
			pods: []podSpec{{name: "a", usage: 100}}, wantErr: "missing request for cpu in container c of Pod a"},
		{name: "no usable samples is an error", current: 1, target: 50,
			pods: []podSpec{{name: "a", phase: corev1.PodPending, usage: 100, request: "1"}}, wantErr: "did not receive metrics"},
		{name: "no pods is an error", current: 1, target: 50, wantErr: "no pods returned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := tt.res
			if res == "" {
				res = corev1.ResourceCPU
			}
			pods, samples := build(tt.pods, res)
			calc := calculator{tolerance: 0.1, cpuInitialization: 5 * time.Minute, readinessDelay: 30 * time.Second, now: t0}
			got, util, _, err := calc.utilizationReplicas(tt.current, tt.target, res, "", pods, samples)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || util != tt.wantUtil {
				t.Errorf("replicas, utilization = %d, %d; want %d, %d", got, util, tt.want, tt.wantUtil)
			}
		})
	}
}

func TestAverageValueReplicas(t *testing.T) {
	tests := []struct {
		name    string
		current int32
		target  int64
		pods    []podSpec
		want    int32
		wantAvg int64
	}{
		{name: "scale up", current: 2, target: 500, pods: []podSpec{running("a", 900), running("b", 900)}, want: 4, wantAvg: 900},
		{name: "within tolerance", current: 2, target: 500, pods: []podSpec{running("a", 520), running("b", 500)}, want: 2, wantAvg: 510},
		{name: "missing pods count as the target on scale-down", current: 3, target: 500,
			pods: []podSpec{running("a", 100), running("b", 100), running("c", -1)}, want: 2, wantAvg: 100},
		{name: "missing pods count as idle on scale-up", current: 3, target: 500,
			pods: []podSpec{running("a", 1000), running("b", 1000), running("c", -1)}, want: 4, wantAvg: 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pods, samples := build(tt.pods, corev1.ResourceMemory)
			calc := calculator{tolerance: 0.1, cpuInitialization: 5 * time.Minute, readinessDelay: 30 * time.Second, now: t0}
			got, avg, err := calc.averageValueReplicas(tt.current, tt.target, corev1.ResourceMemory, pods, samples)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || avg != tt.wantAvg {
				t.Errorf("replicas, average = %d, %d; want %d, %d", got, avg, tt.want, tt.wantAvg)
			}
		})
	}
}

func TestResourceSamples(t *testing.T) {
	q := resource.MustParse
	pms := []PodMetrics{
		{Name: "a", Containers: []ContainerMetrics{{Name: "app", Usage: corev1.ResourceList{"cpu": q("200m")}}, {Name: "side", Usage: corev1.ResourceList{"cpu": q("50m")}}}},
		{Name: "b", Containers: []ContainerMetrics{{Name: "app", Usage: corev1.ResourceList{"cpu": q("1")}}, {Name: "side", Usage: corev1.ResourceList{"memory": q("1Mi")}}}},
	}
	all, err := resourceSamples(pms, corev1.ResourceCPU, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all["a"].value != 250 {
		t.Errorf("pod sums = %+v, want only a=250 (b lacks cpu in one container)", all)
	}
	app, err := resourceSamples(pms, corev1.ResourceCPU, "app")
	if err != nil {
		t.Fatal(err)
	}
	if app["a"].value != 200 || app["b"].value != 1000 {
		t.Errorf("container samples = %+v", app)
	}
	if _, err := resourceSamples(pms, corev1.ResourceCPU, "nope"); err == nil {
		t.Error("an absent container is not an error")
	}
}
