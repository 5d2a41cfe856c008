package statefulset

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// recorder is a podControl that only writes down what it is asked to do.
type recorder struct {
	mu      sync.Mutex
	actions []string
	stale   map[string]bool // pod names whose claims are stale
}

func (r *recorder) add(verb string, pod *corev1.Pod) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.actions = append(r.actions, verb+" "+pod.Name)
}

func (r *recorder) createPod(_ context.Context, _ *appsv1.StatefulSet, pod *corev1.Pod) error {
	r.add("create", pod)
	return nil
}
func (r *recorder) deletePod(_ context.Context, _ *appsv1.StatefulSet, pod *corev1.Pod) error {
	r.add("delete", pod)
	return nil
}
func (r *recorder) updatePod(_ context.Context, _ *appsv1.StatefulSet, pod *corev1.Pod) error {
	r.add("update", pod)
	return nil
}
func (r *recorder) claimsMatchPolicy(*appsv1.StatefulSet, *corev1.Pod) (bool, error) {
	return true, nil
}
func (r *recorder) fixClaimOwners(_ context.Context, _ *appsv1.StatefulSet, pod *corev1.Pod) error {
	r.add("fixclaims", pod)
	return nil
}
func (r *recorder) claimIsStale(_ *appsv1.StatefulSet, pod *corev1.Pod) (bool, error) {
	return r.stale[pod.Name], nil
}
func (r *recorder) createMissingClaims(context.Context, *appsv1.StatefulSet, *corev1.Pod) error {
	return nil
}

var now = time.Unix(1_000_000, 0)

func testSet(replicas int32, image string) *appsv1.StatefulSet {
	lbls := map[string]string{"app": "web"}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "set-uid", Generation: 3},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            ptr.To(replicas),
			Selector:            &metav1.LabelSelector{MatchLabels: lbls},
			ServiceName:         "web-svc",
			PodManagementPolicy: appsv1.OrderedReadyPodManagement,
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{
				Type:          appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To[int32](0)},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbls},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}},
		},
	}
}

func mustRevision(t *testing.T, set *appsv1.StatefulSet, n int64) *appsv1.ControllerRevision {
	t.Helper()
	rev, err := newRevision(set, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// state is a compact pod description: "ready", "running" (not ready),
// "pending", "failed", "terminating" (ready but being deleted).
func statePod(set *appsv1.StatefulSet, ord int, state, revision string) *corev1.Pod {
	p := newPod(set, ord)
	p.UID = types.UID(p.Name + "-uid")
	p.Labels[RevisionLabel] = revision
	switch state {
	case "pending":
		p.Status.Phase = corev1.PodPending
	case "running":
		p.Status.Phase = corev1.PodRunning
	case "failed":
		p.Status.Phase = corev1.PodFailed
	case "ready", "terminating", "fresh":
		p.Status.Phase = corev1.PodRunning
		since := now.Add(-time.Hour)
		if state == "fresh" {
			since = now.Add(-time.Second)
		}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(since)}}
		if state == "terminating" {
			p.DeletionTimestamp = &metav1.Time{Time: now}
		}
	}
	return p
}

// TestReconcileOrdering checks, for sets of pods in given states, what
// the controller does next: the ordinal rules of OrderedReady and
// Parallel, scale-down and rolling updates with partitions.
func TestReconcileOrdering(t *testing.T) {
	type podSpec struct {
		ord      int
		state    string
		revision string // "old" or "new"
	}
	tests := []struct {
		name       string
		replicas   int32
		parallel   bool
		onDelete   bool
		partition  int32
		start      int32
		minReady   int32
		maxUnavail *intstr.IntOrString
		pods       []podSpec
		want       []string // in order; sorted when parallel
	}{
		{name: "empty ordered set creates only ordinal 0", replicas: 3, want: []string{"create web-0"}},
		{name: "waits for pending ordinal 0", replicas: 3, pods: []podSpec{{0, "pending", "new"}}},
		{name: "waits for running but unready ordinal 0", replicas: 3, pods: []podSpec{{0, "running", "new"}}},
		{name: "creates ordinal 1 once 0 is ready", replicas: 3, pods: []podSpec{{0, "ready", "new"}}, want: []string{"create web-1"}},
		{name: "fills a gap before the end", replicas: 3, pods: []podSpec{{0, "ready", "new"}, {2, "ready", "new"}}, want: []string{"create web-1"}},
		{name: "minReadySeconds holds ordinal 1 back", replicas: 3, minReady: 10, pods: []podSpec{{0, "fresh", "new"}}},
		{name: "minReadySeconds passed", replicas: 3, minReady: 10, pods: []podSpec{{0, "ready", "new"}}, want: []string{"create web-1"}},
		{name: "parallel creates all at once", replicas: 3, parallel: true, want: []string{"create web-0", "create web-1", "create web-2"}},
		{name: "parallel does not wait for readiness", replicas: 3, parallel: true, pods: []podSpec{{0, "pending", "new"}}, want: []string{"create web-1", "create web-2"}},
		{name: "start ordinal", replicas: 2, start: 5, want: []string{"create web-5"}},
		{name: "start ordinal condemns ordinals below it", replicas: 2, start: 1,
			pods: []podSpec{{0, "ready", "new"}, {1, "ready", "new"}, {2, "ready", "new"}}, want: []string{"delete web-0"}},
		{name: "scale down deletes the highest ordinal only", replicas: 2,
			pods: []podSpec{{0, "ready", "new"}, {1, "ready", "new"}, {2, "ready", "new"}, {3, "ready", "new"}}, want: []string{"delete web-3"}},
		{name: "scale down waits for the terminating pod", replicas: 2,
			pods: []podSpec{{0, "ready", "new"}, {1, "ready", "new"}, {2, "ready", "new"}, {3, "terminating", "new"}}},
		{name: "scale down stops on an unhealthy replica", replicas: 2,
			pods: []podSpec{{0, "running", "new"}, {1, "ready", "new"}, {2, "ready", "new"}}},
		{name: "an unhealthy condemned pod may go first", replicas: 1,
			pods: []podSpec{{0, "ready", "new"}, {1, "running", "new"}, {2, "ready", "new"}}, want: []string{"delete web-2"}},
		{name: "parallel scale down deletes all condemned", replicas: 1, parallel: true,
			pods: []podSpec{{0, "ready", "new"}, {1, "ready", "new"}, {2, "running", "new"}}, want: []string{"delete web-1", "delete web-2"}},
		{name: "failed pod is deleted, not yet replaced", replicas: 2,
			pods: []podSpec{{0, "failed", "new"}, {1, "ready", "new"}}, want: []string{"delete web-0"}},
		{name: "rolling update deletes the highest old pod", replicas: 3,
			pods: []podSpec{{0, "ready", "old"}, {1, "ready", "old"}, {2, "ready", "old"}}, want: []string{"delete web-2"}},
		{name: "rolling update moves down once the new pod is ready", replicas: 3,
			pods: []podSpec{{0, "ready", "old"}, {1, "ready", "old"}, {2, "ready", "new"}}, want: []string{"delete web-1"}},
		{name: "rolling update waits for the new pod", replicas: 3, parallel: true,
			pods: []podSpec{{0, "ready", "old"}, {1, "ready", "old"}, {2, "running", "new"}}},
		{name: "rolling update waits while a pod terminates", replicas: 3,
			pods: []podSpec{{0, "ready", "old"}, {1, "ready", "old"}, {2, "terminating", "old"}}},
		{name: "partition keeps lower ordinals", replicas: 3, partition: 2,
			pods: []podSpec{{0, "ready", "old"}, {1, "ready", "old"}, {2, "ready", "new"}}},
		{name: "partition: above it is updated", replicas: 4, partition: 2,
			pods: []podSpec{{0, "ready", "old"}, {1, "ready", "old"}, {2, "ready", "old"}, {3, "ready", "new"}}, want: []string{"delete web-2"}},
		{name: "OnDelete never deletes for an update", replicas: 2, onDelete: true,
			pods: []podSpec{{0, "ready", "old"}, {1, "ready", "old"}}},
		{name: "maxUnavailable 2 deletes two at once", replicas: 4, maxUnavail: ptr.To(intstr.FromInt32(2)),
			pods: []podSpec{{0, "ready", "old"}, {1, "ready", "old"}, {2, "ready", "old"}, {3, "ready", "old"}}, want: []string{"delete web-3", "delete web-2"}},
		{name: "maxUnavailable counts unavailable pods", replicas: 4, maxUnavail: ptr.To(intstr.FromInt32(2)), parallel: true,
			pods: []podSpec{{0, "ready", "old"}, {1, "ready", "old"}, {2, "ready", "old"}, {3, "running", "new"}}, want: []string{"delete web-2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oldSet := testSet(tt.replicas, "nginx:1")
			set := testSet(tt.replicas, "nginx:2")
			for _, s := range []*appsv1.StatefulSet{oldSet, set} {
				s.Spec.MinReadySeconds = tt.minReady
				if tt.parallel {
					s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
				}
				if tt.onDelete {
					s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
				} else {
					s.Spec.UpdateStrategy.RollingUpdate.Partition = ptr.To(tt.partition)
					s.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = tt.maxUnavail
				}
				if tt.start != 0 {
					s.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: tt.start}
				}
			}
			oldRev, newRev := mustRevision(t, oldSet, 1), mustRevision(t, set, 2)
			var pods []*corev1.Pod
			for _, p := range tt.pods {
				src, rev := set, newRev.Name
				if p.revision == "old" {
					src, rev = oldSet, oldRev.Name
				}
				pods = append(pods, statePod(src, p.ord, p.state, rev))
			}
			rec := &recorder{}
			r := &reconciler{ctl: rec, now: now}
			if _, err := r.reconcile(context.Background(), set, oldRev, newRev, 0, pods); err != nil {
				t.Fatal(err)
			}
			got := rec.actions
			if tt.parallel {
				sort.Strings(got)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("actions = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestReconcileStatus checks the counters and revisions reported.
func TestReconcileStatus(t *testing.T) {
	oldSet, set := testSet(3, "nginx:1"), testSet(3, "nginx:2")
	oldRev, newRev := mustRevision(t, oldSet, 1), mustRevision(t, set, 2)
	set.Spec.MinReadySeconds = 10
	pods := []*corev1.Pod{
		statePod(oldSet, 0, "ready", oldRev.Name),
		statePod(oldSet, 1, "fresh", oldRev.Name),
		statePod(set, 2, "running", newRev.Name),
	}
	r := &reconciler{ctl: &recorder{}, now: now}
	st, err := r.reconcile(context.Background(), set, oldRev, newRev, 4, pods)
	if err != nil {
		t.Fatal(err)
	}
	want := appsv1.StatefulSetStatus{
		ObservedGeneration: 3, Replicas: 3, ReadyReplicas: 2, AvailableReplicas: 1,
		CurrentReplicas: 2, UpdatedReplicas: 1, CurrentRevision: oldRev.Name, UpdateRevision: newRev.Name,
		CollisionCount: ptr.To[int32](4),
	}
	st.Conditions = nil
	if *st.CollisionCount != 4 || st.ObservedGeneration != want.ObservedGeneration || st.Replicas != want.Replicas ||
		st.ReadyReplicas != want.ReadyReplicas || st.AvailableReplicas != want.AvailableReplicas ||
		st.CurrentReplicas != want.CurrentReplicas || st.UpdatedReplicas != want.UpdatedReplicas ||
		st.CurrentRevision != want.CurrentRevision || st.UpdateRevision != want.UpdateRevision {
		t.Errorf("status = %+v, want %+v", st, want)
	}

	// All updated and ready: the update revision becomes current.
	done := &appsv1.StatefulSetStatus{Replicas: 3, ReadyReplicas: 3, UpdatedReplicas: 3, CurrentReplicas: 0, CurrentRevision: "a", UpdateRevision: "b"}
	completeRollingUpdate(set, done)
	if done.CurrentRevision != "b" || done.CurrentReplicas != 3 {
		t.Errorf("completed rollout status = %+v", done)
	}
	partial := &appsv1.StatefulSetStatus{Replicas: 3, ReadyReplicas: 3, UpdatedReplicas: 2, CurrentRevision: "a", UpdateRevision: "b"}
	completeRollingUpdate(set, partial)
	if partial.CurrentRevision != "a" {
		t.Errorf("partial rollout marked complete: %+v", partial)
	}
}

// TestReconcileCreatesAtTheRightRevision: a missing pod below the
// partition is recreated from the current revision, above it from the new.
func TestReconcileCreatesAtTheRightRevision(t *testing.T) {
	oldSet, set := testSet(3, "nginx:1"), testSet(3, "nginx:2")
	set.Spec.UpdateStrategy.RollingUpdate.Partition = ptr.To[int32](2)
	set.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
	oldRev, newRev := mustRevision(t, oldSet, 1), mustRevision(t, set, 2)
	var created []*corev1.Pod
	var mu sync.Mutex
	ctl := &capture{onCreate: func(p *corev1.Pod) { mu.Lock(); created = append(created, p); mu.Unlock() }}
	r := &reconciler{ctl: ctl, now: now}
	if _, err := r.reconcile(context.Background(), set, oldRev, newRev, 0, nil); err != nil {
		t.Fatal(err)
	}
	sort.Slice(created, func(i, j int) bool { return created[i].Name < created[j].Name })
	want := []struct{ rev, image string }{{oldRev.Name, "nginx:1"}, {oldRev.Name, "nginx:1"}, {newRev.Name, "nginx:2"}}
	if len(created) != 3 {
		t.Fatalf("created %d pods", len(created))
	}
	for i, p := range created {
		if p.Labels[RevisionLabel] != want[i].rev || p.Spec.Containers[0].Image != want[i].image {
			t.Errorf("%s: revision %s image %s, want %s %s", p.Name, p.Labels[RevisionLabel], p.Spec.Containers[0].Image, want[i].rev, want[i].image)
		}
	}
}

type capture struct {
	recorder
	onCreate func(*corev1.Pod)
}

func (c *capture) createPod(_ context.Context, _ *appsv1.StatefulSet, pod *corev1.Pod) error {
	c.onCreate(pod)
	return nil
}

func TestStaleClaimBlocksCreate(t *testing.T) {
	set := testSet(2, "nginx:1")
	rev := mustRevision(t, set, 1)
	rec := &recorder{stale: map[string]bool{"web-0": true}}
	r := &reconciler{ctl: rec, now: now}
	if _, err := r.reconcile(context.Background(), set, rev, rev, 0, nil); err != nil {
		t.Fatal(err)
	}
	if len(rec.actions) != 0 {
		t.Errorf("actions with a stale claim: %q", rec.actions)
	}
}

// TestRollOutMaxUnavailable walks a rolling update under
// rollingUpdate.maxUnavailable through its rounds: each pass deletes as
// many outdated pods, highest ordinal first, as the budget left by the
// pods already unavailable allows, and never below the partition.
func TestRollOutMaxUnavailable(t *testing.T) {
	type podSpec struct {
		ord      int
		state    string
		revision string // "old" or "new"
	}
	// states gives the pods of a set in ordinal order as
	// "state/revision", e.g. "ready/old".
	pods := func(states ...string) []podSpec {
		var out []podSpec
		for i, s := range states {
			state, rev, _ := strings.Cut(s, "/")
			out = append(out, podSpec{i, state, rev})
		}
		return out
	}
	allOld := pods("ready/old", "ready/old", "ready/old", "ready/old", "ready/old")
	two, pct := intstr.FromInt32(2), intstr.FromString
	tests := []struct {
		name       string
		ordered    bool // OrderedReady instead of Parallel
		maxUnavail *intstr.IntOrString
		partition  int32
		pods       []podSpec
		want       []string // sorted
	}{
		{name: "first round deletes the two highest", maxUnavail: &two, pods: allOld,
			want: []string{"delete web-3", "delete web-4"}},
		{name: "none while two terminate", maxUnavail: &two,
			pods: pods("ready/old", "ready/old", "ready/old", "terminating/old", "terminating/old")},
		{name: "none while two replacements are not ready", maxUnavail: &two,
			pods: pods("ready/old", "ready/old", "ready/old", "running/new", "pending/new")},
		{name: "one ready replacement frees one slot", maxUnavail: &two,
			pods: pods("ready/old", "ready/old", "ready/old", "running/new", "ready/new"), want: []string{"delete web-2"}},
		{name: "second round", maxUnavail: &two,
			pods: pods("ready/old", "ready/old", "ready/old", "ready/new", "ready/new"), want: []string{"delete web-1", "delete web-2"}},
		{name: "last round", maxUnavail: &two,
			pods: pods("ready/old", "ready/new", "ready/new", "ready/new", "ready/new"), want: []string{"delete web-0"}},
		{name: "an unavailable updated pod below counts", maxUnavail: &two,
			pods: pods("ready/old", "running/new", "ready/old", "ready/old", "ready/old"), want: []string{"delete web-4"}},
		{name: "minReadySeconds: a fresh pod is unavailable", maxUnavail: &two,
			pods: pods("ready/old", "ready/old", "ready/old", "fresh/new", "ready/new"), want: []string{"delete web-2"}},
		{name: "ordered: two at once", ordered: true, maxUnavail: &two, pods: allOld,
			want: []string{"delete web-3", "delete web-4"}},
		{name: "ordered: waits for the batch", ordered: true, maxUnavail: &two,
			pods: pods("ready/old", "ready/old", "ready/old", "running/new", "ready/new")},

		{name: "50% of 5 rounds down to 2", maxUnavail: ptr.To(pct("50%")), pods: allOld,
			want: []string{"delete web-3", "delete web-4"}},
		{name: "10% of 5 is at least 1", maxUnavail: ptr.To(pct("10%")), pods: allOld,
			want: []string{"delete web-4"}},
		{name: "39% of 5 rounds down to 1", maxUnavail: ptr.To(pct("39%")), pods: allOld,
			want: []string{"delete web-4"}},
		{name: "100% deletes all", maxUnavail: ptr.To(pct("100%")), pods: allOld,
			want: []string{"delete web-0", "delete web-1", "delete web-2", "delete web-3", "delete web-4"}},
		{name: "more than replicas deletes all", maxUnavail: ptr.To(intstr.FromInt32(9)),
			pods: pods("ready/old", "ready/old", "ready/new", "ready/old", "ready/old"),
			want: []string{"delete web-0", "delete web-1", "delete web-3", "delete web-4"}},

		{name: "partition caps the batch", maxUnavail: ptr.To(intstr.FromInt32(3)), partition: 3, pods: allOld,
			want: []string{"delete web-3", "delete web-4"}},
		{name: "partition: nothing left above it", maxUnavail: &two, partition: 3,
			pods: pods("ready/old", "ready/old", "ready/old", "ready/new", "ready/new")},
		{name: "partition: unavailable pod below it counts", maxUnavail: &two, partition: 2,
			pods: pods("running/old", "ready/old", "ready/old", "ready/old", "ready/old"), want: []string{"delete web-4"}},
		{name: "partition: unavailable pod below it is kept", maxUnavail: ptr.To(intstr.FromInt32(1)), partition: 2,
			pods: pods("running/old", "ready/old", "ready/old", "ready/old", "ready/old")},

		// Parallel: an outdated pod that is down anyway is replaced
		// outside the budget, so a broken revision can be rolled over.
		{name: "unavailable outdated pod is replaced first", maxUnavail: ptr.To(intstr.FromInt32(1)),
			pods: pods("running/old", "ready/old", "ready/old", "ready/old", "ready/old"), want: []string{"delete web-0"}},
		{name: "all outdated pods broken are replaced at once", maxUnavail: ptr.To(intstr.FromInt32(1)),
			pods: pods("pending/old", "running/old", "ready/old", "running/old", "ready/new"),
			want: []string{"delete web-0", "delete web-1", "delete web-3"}},
		{name: "broken pods use the budget up", maxUnavail: &two,
			pods: pods("running/old", "ready/old", "ready/old", "ready/old", "ready/old"),
			want: []string{"delete web-0", "delete web-4"}},

		// Without maxUnavailable nothing changes: one pod at a time from
		// the top, blind to unavailable pods below it.
		{name: "unset: one at a time", pods: allOld, want: []string{"delete web-4"}},
		{name: "unset: ignores an unavailable pod below", pods: pods("running/old", "ready/old", "ready/old", "ready/old", "ready/old"),
			want: []string{"delete web-4"}},
		{name: "unset: waits for the updated pod above", pods: pods("ready/old", "ready/old", "ready/old", "ready/old", "running/new")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oldSet, set := testSet(5, "nginx:1"), testSet(5, "nginx:2")
			for _, s := range []*appsv1.StatefulSet{oldSet, set} {
				s.Spec.MinReadySeconds = 10
				if !tt.ordered {
					s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
				}
				s.Spec.UpdateStrategy.RollingUpdate.Partition = ptr.To(tt.partition)
				s.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = tt.maxUnavail
			}
			oldRev, newRev := mustRevision(t, oldSet, 1), mustRevision(t, set, 2)
			var in []*corev1.Pod
			for _, p := range tt.pods {
				src, rev := set, newRev.Name
				if p.revision == "old" {
					src, rev = oldSet, oldRev.Name
				}
				in = append(in, statePod(src, p.ord, p.state, rev))
			}
			rec := &recorder{}
			r := &reconciler{ctl: rec, now: now}
			st, err := r.reconcile(context.Background(), set, oldRev, newRev, 0, in)
			if err != nil {
				t.Fatal(err)
			}
			got := rec.actions
			sort.Strings(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("actions = %q, want %q", got, tt.want)
			}
			// Each deletion takes a pod off the current revision.
			old := 0
			for _, p := range tt.pods {
				if p.revision == "old" && p.state != "terminating" {
					old++
				}
			}
			if want := int32(old - len(tt.want)); st.CurrentReplicas != want {
				t.Errorf("currentReplicas = %d, want %d", st.CurrentReplicas, want)
			}
		})
	}
}

func TestUnavailableLimit(t *testing.T) {
	tests := []struct {
		v        intstr.IntOrString
		replicas int
		want     int
		wantErr  bool
	}{
		{intstr.FromInt32(1), 5, 1, false},
		{intstr.FromInt32(3), 5, 3, false},
		{intstr.FromString("40%"), 5, 2, false},
		{intstr.FromString("59%"), 5, 2, false},
		{intstr.FromString("1%"), 5, 1, false},
		{intstr.FromString("100%"), 5, 5, false},
		{intstr.FromString("50%"), 0, 1, false},
		{intstr.FromString("many"), 5, 0, true},
	}
	for _, tt := range tests {
		got, err := unavailableLimit(&tt.v, tt.replicas)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("unavailableLimit(%s, %d) = %d, %v; want %d, error %t", tt.v.String(), tt.replicas, got, err, tt.want, tt.wantErr)
		}
	}
}
