package daemonset

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/client-go/util/workqueue"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

var now = time.Unix(10_000, 0)

// dpod is a daemon pod on node with template hash; readyFor < 0 means
// not ready, otherwise ready for that long.
func dpod(name, node, hash string, readyFor time.Duration, created int) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(name), Labels: map[string]string{"app": "ds", hashLabel: hash},
			CreationTimestamp: metav1.NewTime(time.Unix(int64(created), 0))},
		Spec:   corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	if readyFor >= 0 {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-readyFor))}}
	}
	return p
}

func rolling(surge, unavailable intstr.IntOrString, minReady int32) *appsv1.DaemonSet {
	ds := mkDS(nil)
	ds.Spec.MinReadySeconds = minReady
	ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxSurge: &surge, MaxUnavailable: &unavailable}}
	return ds
}

func nodes(names ...string) []*corev1.Node {
	var out []*corev1.Node
	for _, n := range names {
		out = append(out, mkNode(n, nil))
	}
	return out
}

func byNode(pods ...*corev1.Pod) map[string][]*corev1.Pod {
	m := map[string][]*corev1.Pod{}
	for _, p := range pods {
		m[p.Spec.NodeName] = append(m[p.Spec.NodeName], p)
	}
	return m
}

func names(pods []*corev1.Pod) []string {
	out := []string{}
	for _, p := range pods {
		out = append(out, p.Name)
	}
	sort.Strings(out)
	return out
}

func TestPlanRollingUpdate(t *testing.T) {
	i := intstr.FromInt32
	s := intstr.FromString
	const up = time.Hour // ready long enough to be available
	tests := []struct {
		name       string
		ds         *appsv1.DaemonSet
		nodes      []*corev1.Node
		pods       map[string][]*corev1.Pod
		wantRemove []string
		wantCreate []string
	}{
		{"maxUnavailable 1 deletes one old pod", rolling(i(0), i(1), 0), nodes("n1", "n2", "n3"),
			byNode(dpod("a", "n1", "old", up, 1), dpod("b", "n2", "old", up, 1), dpod("c", "n3", "old", up, 1)),
			[]string{"a"}, nil},
		{"an unavailable new pod uses the budget", rolling(i(0), i(1), 0), nodes("n1", "n2"),
			byNode(dpod("a", "n1", "new", -1, 1), dpod("b", "n2", "old", up, 1)),
			nil, nil},
		{"a new pod within minReadySeconds is unavailable", rolling(i(0), i(1), 30), nodes("n1", "n2"),
			byNode(dpod("a", "n1", "new", 10*time.Second, 1), dpod("b", "n2", "old", up, 1)),
			nil, nil},
		{"a node still missing its pod uses the budget", rolling(i(0), i(1), 0), nodes("n1", "n2"),
			byNode(dpod("b", "n2", "old", up, 1)),
			nil, nil},
		{"unavailable old pods are replaced beyond the budget", rolling(i(0), i(2), 0), nodes("n1", "n2", "n3", "n4"),
			byNode(dpod("a", "n1", "old", up, 1), dpod("b", "n2", "old", -1, 1), dpod("c", "n3", "old", -1, 1), dpod("d", "n4", "old", up, 1)),
			[]string{"b", "c"}, nil}, // a was a candidate, but b and c used the budget
		{"percent rounds up", rolling(i(0), s("50%"), 0), nodes("n1", "n2", "n3"),
			byNode(dpod("a", "n1", "old", up, 1), dpod("b", "n2", "old", up, 1), dpod("c", "n3", "old", up, 1)),
			[]string{"a", "b"}, nil},
		{"all updated: nothing to do", rolling(i(0), i(1), 0), nodes("n1", "n2"),
			byNode(dpod("a", "n1", "new", up, 1), dpod("b", "n2", "new", up, 1)),
			nil, nil},
		{"zero surge and zero unavailable act as unavailable 1", rolling(i(0), i(0), 0), nodes("n1", "n2"),
			byNode(dpod("a", "n1", "old", up, 1), dpod("b", "n2", "old", up, 1)),
			[]string{"a"}, nil},
		{"surge creates beside available old pods", rolling(i(1), i(0), 0), nodes("n1", "n2", "n3"),
			byNode(dpod("a", "n1", "old", up, 1), dpod("b", "n2", "old", up, 1), dpod("c", "n3", "old", up, 1)),
			nil, []string{"n1"}},
		{"surge waits for the new pod", rolling(i(1), i(0), 0), nodes("n1", "n2"),
			byNode(dpod("a", "n1", "old", up, 1), dpod("a2", "n1", "new", -1, 2), dpod("b", "n2", "old", up, 1)),
			nil, nil},
		{"surge deletes the old pod once the new one is available", rolling(i(1), i(0), 0), nodes("n1", "n2"),
			byNode(dpod("a", "n1", "old", up, 1), dpod("a2", "n1", "new", up, 2), dpod("b", "n2", "old", up, 1)),
			[]string{"a"}, []string{"n2"}},
		{"surge replaces unavailable old pods at once", rolling(i(1), i(0), 0), nodes("n1", "n2", "n3"),
			byNode(dpod("a", "n1", "old", up, 1), dpod("a2", "n1", "new", -1, 2), dpod("b", "n2", "old", -1, 1), dpod("c", "n3", "old", -1, 1)),
			nil, []string{"n2", "n3"}},
		{"surge percent", rolling(s("50%"), i(0), 0), nodes("n1", "n2", "n3", "n4"),
			byNode(dpod("a", "n1", "old", up, 1), dpod("b", "n2", "old", up, 1), dpod("c", "n3", "old", up, 1), dpod("d", "n4", "old", up, 1)),
			nil, []string{"n1", "n2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			remove, create := planRollingUpdate(tt.ds, tt.nodes, tt.pods, "new", now)
			if got := names(remove); !reflect.DeepEqual(got, append([]string{}, tt.wantRemove...)) {
				t.Errorf("remove = %v, want %v", got, tt.wantRemove)
			}
			if !reflect.DeepEqual(create, tt.wantCreate) {
				t.Errorf("create = %v, want %v", create, tt.wantCreate)
			}
		})
	}
}

func TestExcessPods(t *testing.T) {
	const up = time.Hour
	i := intstr.FromInt32
	tests := []struct {
		name string
		ds   *appsv1.DaemonSet
		pods []*corev1.Pod
		want []string
	}{
		{"one pod", rolling(i(0), i(1), 0), []*corev1.Pod{dpod("a", "n", "old", up, 1)}, []string{}},
		{"no surge keeps the oldest", rolling(i(0), i(1), 0),
			[]*corev1.Pod{dpod("b", "n", "new", up, 2), dpod("a", "n", "old", up, 1), dpod("c", "n", "new", up, 3)}, []string{"b", "c"}},
		{"surge keeps old while new is not available", rolling(i(1), i(0), 0),
			[]*corev1.Pod{dpod("a", "n", "old", up, 1), dpod("b", "n", "new", -1, 2)}, []string{}},
		{"surge drops old once new is available", rolling(i(1), i(0), 0),
			[]*corev1.Pod{dpod("a", "n", "old", up, 1), dpod("b", "n", "new", up, 2)}, []string{"a"}},
		{"surge drops an old pod that is not ready", rolling(i(1), i(0), 0),
			[]*corev1.Pod{dpod("a", "n", "old", -1, 1), dpod("b", "n", "new", -1, 2)}, []string{"a"}},
		{"surge drops extra pods of either kind", rolling(i(1), i(0), 0),
			[]*corev1.Pod{dpod("a", "n", "old", up, 1), dpod("b", "n", "new", -1, 2), dpod("c", "n", "new", -1, 3), dpod("d", "n", "old", up, 4)}, []string{"c", "d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := names(excessPods(tt.ds, tt.pods, "new", now)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("excessPods = %v, want %v", got, tt.want)
			}
		})
	}
}

func testController() (*Controller, *record.FakeRecorder, *clocktesting.FakeClock) {
	clk := clocktesting.NewFakeClock(now)
	rec := record.NewFakeRecorder(100)
	return &Controller{
		queue:    workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		expect:   newExpectations(clk),
		backoff:  flowcontrol.NewFakeBackOff(failedBackoffInitial, failedBackoffMax, clk),
		recorder: rec,
		clock:    clk,
		log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, rec, clk
}

func TestPodsShouldBeOnNode(t *testing.T) {
	const up = time.Hour
	ds := mkDS(nil)
	tainted := mkNode("n", nil, corev1.Taint{Key: "k", Effect: corev1.TaintEffectNoExecute})
	cordonedByTaint := mkNode("n", nil, corev1.Taint{Key: "k", Effect: corev1.TaintEffectNoSchedule})
	going := dpod("going", "n", "h", up, 1)
	going.DeletionTimestamp = ptr.To(metav1.NewTime(now))
	succeeded := dpod("done", "n", "h", -1, 1)
	succeeded.Status.Phase = corev1.PodSucceeded
	tests := []struct {
		name       string
		node       *corev1.Node
		pods       []*corev1.Pod
		wantCreate bool
		wantRemove []string
	}{
		{"missing", mkNode("n", nil), nil, true, []string{}},
		{"present", mkNode("n", nil), []*corev1.Pod{dpod("a", "n", "h", up, 1)}, false, []string{}},
		{"a terminating pod blocks the replacement", mkNode("n", nil), []*corev1.Pod{going}, false, []string{}},
		{"succeeded is replaced", mkNode("n", nil), []*corev1.Pod{succeeded}, false, []string{"done"}},
		{"duplicates", mkNode("n", nil), []*corev1.Pod{dpod("b", "n", "h", up, 2), dpod("a", "n", "h", up, 1)}, false, []string{"b"}},
		{"evicted by NoExecute", tainted, []*corev1.Pod{dpod("a", "n", "h", up, 1), going}, false, []string{"a"}},
		{"NoSchedule keeps the pod", cordonedByTaint, []*corev1.Pod{dpod("a", "n", "h", up, 1)}, false, []string{}},
		{"NoSchedule creates none", cordonedByTaint, nil, false, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, _ := testController()
			create, remove := c.podsShouldBeOnNode(ds, tt.node, tt.pods, "h")
			if create != tt.wantCreate || !reflect.DeepEqual(names(remove), tt.wantRemove) {
				t.Errorf("got create %v remove %v, want %v %v", create, names(remove), tt.wantCreate, tt.wantRemove)
			}
		})
	}
}

func TestFailedPodsAreReplacedWithBackoff(t *testing.T) {
	c, rec, clk := testController()
	ds := mkDS(nil)
	failed := dpod("f", "n", "h", -1, 1)
	failed.Status.Phase = corev1.PodFailed
	node := mkNode("n", nil)
	if _, remove := c.podsShouldBeOnNode(ds, node, []*corev1.Pod{failed}, "h"); len(remove) != 1 {
		t.Fatalf("first failure: remove %v, want the failed pod", names(remove))
	}
	if ev := <-rec.Events; !strings.Contains(ev, "FailedDaemonPod") || !strings.Contains(ev, "Found failed daemon pod default/f on node n, will try to kill it") {
		t.Errorf("event = %q", ev)
	}
	// The replacement failed at once too: wait out the back-off.
	if _, remove := c.podsShouldBeOnNode(ds, node, []*corev1.Pod{failed}, "h"); len(remove) != 0 {
		t.Fatalf("within back-off: remove %v, want none", names(remove))
	}
	clk.Step(3 * time.Second)
	if _, remove := c.podsShouldBeOnNode(ds, node, []*corev1.Pod{failed}, "h"); len(remove) != 1 {
		t.Fatalf("after back-off: remove %v, want the failed pod", names(remove))
	}
}

func TestComputeStatus(t *testing.T) {
	const up = time.Hour
	ds := mkDS(func(s *corev1.PodSpec) { s.NodeSelector = map[string]string{"run": "yes"} })
	ds.Spec.MinReadySeconds = 60
	ds.Status.CollisionCount = ptr.To(int32(2))
	yes := map[string]string{"run": "yes"}
	ns := []*corev1.Node{mkNode("n1", yes), mkNode("n2", yes), mkNode("n3", yes), mkNode("n4", yes), mkNode("n5", nil)}
	pods := byNode(
		dpod("a", "n1", "new", up, 1),             // ready, available, updated
		dpod("b", "n2", "old", 10*time.Second, 1), // ready, not yet available, old
		dpod("b2", "n2", "new", up, 2),            // newer: not counted
		dpod("c", "n3", "new", -1, 1),             // not ready
		dpod("e", "n5", "new", up, 1),             // misscheduled
	)
	got := computeStatus(ds, ns, pods, "new", now)
	want := appsv1.DaemonSetStatus{
		DesiredNumberScheduled: 4, CurrentNumberScheduled: 3, NumberMisscheduled: 1,
		NumberReady: 2, NumberAvailable: 1, NumberUnavailable: 3, UpdatedNumberScheduled: 2,
		CollisionCount: ptr.To(int32(2)),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("status = %+v\nwant     %+v", got, want)
	}
}

func TestTemplateGenerationMarksPodsUpdated(t *testing.T) {
	ds := mkDS(nil)
	ds.Annotations = map[string]string{appsv1.DeprecatedTemplateGeneration: "3"}
	c, _, _ := testController()
	tpl := c.podTemplate(ds, "h")
	if tpl.Labels[templateGenerationLabel] != "3" || tpl.Labels[hashLabel] != "h" || tpl.Labels["app"] != "ds" {
		t.Errorf("pod labels = %v", tpl.Labels)
	}
	if ds.Spec.Template.Labels[hashLabel] != "" || len(ds.Spec.Template.Spec.Tolerations) != 0 {
		t.Error("podTemplate must not change the DaemonSet")
	}
	byGen := dpod("p", "n", "other", -1, 1)
	byGen.Labels[templateGenerationLabel] = "3"
	if !isUpdated(ds, byGen, "h") || isUpdated(ds, dpod("q", "n", "other", -1, 1), "h") || !isUpdated(ds, dpod("r", "n", "h", -1, 1), "h") {
		t.Error("isUpdated must accept a matching hash or template generation, and nothing else")
	}
}

func TestRevisions(t *testing.T) {
	ds := mkDS(nil)
	ds.Spec.Template.Annotations = map[string]string{"b": "2", "a": "1"}
	patch, err := templatePatch(ds)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]map[string]map[string]any
	if err := json.Unmarshal(patch, &got); err != nil || got["spec"]["template"]["$patch"] != "replace" || len(got) != 1 || len(got["spec"]) != 1 {
		t.Fatalf("patch %s: want only spec.template with $patch replace (%v)", patch, err)
	}
	again, _ := templatePatch(ds.DeepCopy())
	if string(again) != string(patch) {
		t.Error("the patch must be byte-for-byte stable: kubectl compares bytes")
	}
	h0 := computeHash(&ds.Spec.Template, nil)
	if h0 != computeHash(&ds.Spec.Template, nil) || h0 == computeHash(&ds.Spec.Template, ptr.To(int32(1))) {
		t.Error("the hash must be stable and move with the collision count")
	}

	rev := func(n int64) *appsv1.ControllerRevision {
		return &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("r", n), Labels: map[string]string{hashLabel: fmt.Sprint("h", n)}}, Revision: n}
	}
	old := []*appsv1.ControllerRevision{rev(4), rev(1), rev(3), rev(2)}
	live := byNode(dpod("p", "n", "h1", -1, 1))
	tests := []struct {
		limit int32
		want  []string
	}{{10, nil}, {4, nil}, {2, []string{"r2", "r3"}}, {0, []string{"r2", "r3", "r4"}}}
	for _, tt := range tests {
		if got := revisionsToDelete(old, tt.limit, live); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("limit %d: delete %v, want %v", tt.limit, got, tt.want)
		}
	}
}

func TestExpectations(t *testing.T) {
	clk := clocktesting.NewFakeClock(now)
	e := newExpectations(clk)
	if !e.satisfied("a") {
		t.Fatal("no expectations must be satisfied")
	}
	e.expect("a", 1, []types.UID{"p1"})
	e.created("a")
	if e.satisfied("a") {
		t.Fatal("deletion not seen: not satisfied")
	}
	e.deleted("a", "p1")
	e.deleted("a", "p1") // seen twice (terminating, then gone): counts once
	if !e.satisfied("a") {
		t.Fatal("all seen: satisfied")
	}
	e.expect("a", 0, []types.UID{"p2"})
	e.deleted("a", "p1") // a late event of the previous round
	if e.satisfied("a") {
		t.Fatal("a stale deletion must not satisfy a new expectation")
	}
	clk.Step(expectationTTL + time.Second)
	if !e.satisfied("a") {
		t.Fatal("expired expectations must not block")
	}
}
