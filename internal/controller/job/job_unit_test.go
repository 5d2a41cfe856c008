package job

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/kubernetes/fake"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/controller"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

func TestIntervals(t *testing.T) {
	tests := []struct {
		in          string
		completions int
		add         []int
		want        string
		total       int
	}{
		{"", 10, nil, "", 0},
		{"", 10, []int{0, 1, 2, 5}, "0-2,5", 4},
		{"0,1", 10, nil, "0,1", 2},
		{"0,1", 10, []int{2}, "0-2", 3},
		{"1,3-5,7", 10, []int{2, 6}, "1-7", 7},
		{"3-5", 10, []int{0, 9, 4}, "0,3-5,9", 5},
		{"0-20", 10, nil, "0-9", 10},                 // clipped to completions
		{"x,2,4-y,12", 10, nil, "2", 1},              // corrupt pieces dropped
		{"5,1", 10, nil, "1,5", 2},                   // normalised order
		{"2-4", 10, []int{4, 3, 7, 8}, "2-4,7,8", 5}, // duplicates and neighbours
	}
	for _, tt := range tests {
		got := parseIntervals(tt.in, tt.completions).withIndexes(tt.add)
		if got.String() != tt.want || got.total() != tt.total {
			t.Errorf("parse(%q)+%v = %q (total %d), want %q (%d)", tt.in, tt.add, got.String(), got.total(), tt.want, tt.total)
		}
	}
	iv := parseIntervals("1,3-5,7", 10)
	for ix, want := range map[int]bool{0: false, 1: true, 2: false, 3: true, 5: true, 6: false, 7: true, 8: false} {
		if iv.has(ix) != want {
			t.Errorf("has(%d) = %v", ix, !want)
		}
	}
}

func TestFirstPendingIndexes(t *testing.T) {
	tests := []struct {
		taken              string
		count, completions int
		want               []int
	}{
		{"", 3, 5, []int{0, 1, 2}},
		{"0,1", 2, 5, []int{2, 3}},
		{"1,3", 5, 5, []int{0, 2, 4}},
		{"0-4", 2, 5, nil},
		{"2-3", 10, 5, []int{0, 1, 4}},
		{"", 0, 5, nil},
	}
	for _, tt := range tests {
		got := firstPendingIndexes(tt.count, tt.completions, parseIntervals(tt.taken, tt.completions))
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("firstPendingIndexes(%d, %d, %q) = %v, want %v", tt.count, tt.completions, tt.taken, got, tt.want)
		}
	}
}

func TestWantActiveAndComplete(t *testing.T) {
	tests := []struct {
		name                           string
		completions                    *int32
		parallelism, succeeded, active int32
		want                           int32
		complete                       bool
	}{
		{"fresh", ptr.To[int32](3), 2, 0, 0, 2, false},
		{"last completion", ptr.To[int32](3), 2, 2, 1, 1, false},
		{"done", ptr.To[int32](3), 2, 3, 0, 0, true},
		{"more succeeded than asked", ptr.To[int32](3), 2, 4, 0, 0, true},
		{"work queue running", nil, 3, 0, 3, 3, false},
		{"work queue one done, others finish", nil, 3, 1, 2, 2, false},
		{"work queue done", nil, 3, 1, 0, 0, true},
		{"zero parallelism", ptr.To[int32](3), 0, 0, 0, 0, false},
	}
	for _, tt := range tests {
		job := &batchv1.Job{Spec: batchv1.JobSpec{Completions: tt.completions, Parallelism: &tt.parallelism}}
		if got := wantActive(job, tt.succeeded, tt.active); got != tt.want {
			t.Errorf("%s: wantActive = %d, want %d", tt.name, got, tt.want)
		}
		if got := complete(job, tt.succeeded, tt.active); got != tt.complete {
			t.Errorf("%s: complete = %v", tt.name, got)
		}
	}
}

type podOpt func(*corev1.Pod)

func mkPod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(name), CreationTimestamp: metav1.NewTime(t0),
			Finalizers: []string{batchv1.JobTrackingFinalizer}},
		Spec:   corev1.PodSpec{NodeName: "n1"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func phase(ph corev1.PodPhase) podOpt { return func(p *corev1.Pod) { p.Status.Phase = ph } }
func index(ix int) podOpt {
	return func(p *corev1.Pod) {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[batchv1.JobCompletionIndexAnnotation] = fmt.Sprint(ix)
	}
}
func ready(p *corev1.Pod) {
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue})
}
func noFinalizer(p *corev1.Pod) { p.Finalizers = nil }
func deleting(p *corev1.Pod)    { p.DeletionTimestamp = &metav1.Time{Time: t0} }
func exited(container string, code int32) podOpt {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: container,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, FinishedAt: metav1.NewTime(t0)}}})
	}
}
func finishedAt(t time.Time) podOpt {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: metav1.NewTime(t)}}}}
	}
}

func names(pods []*corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

func TestPodsForRemoval(t *testing.T) {
	indexed := &batchv1.Job{Spec: batchv1.JobSpec{Completions: ptr.To[int32](3), CompletionMode: ptr.To(batchv1.IndexedCompletion)}}
	plain := &batchv1.Job{Spec: batchv1.JobSpec{Completions: ptr.To[int32](3)}}
	tests := []struct {
		name string
		job  *batchv1.Job
		pods []*corev1.Pod
		n    int
		want []string
	}{
		{"least advanced first", plain, []*corev1.Pod{
			mkPod("ready", ready), mkPod("pending", phase(corev1.PodPending)),
			mkPod("unscheduled", phase(corev1.PodPending), func(p *corev1.Pod) { p.Spec.NodeName = "" }), mkPod("running")},
			3, []string{"unscheduled", "pending", "running"}},
		{"nothing to remove", plain, []*corev1.Pod{mkPod("a")}, 0, nil},
		{"indexed: bad and duplicate indexes go even when none is asked", indexed, []*corev1.Pod{
			mkPod("a0", index(0), ready), mkPod("b0", index(0)), mkPod("noindex"), mkPod("c5", index(5)), mkPod("d1", index(1))},
			0, []string{"b0", "noindex", "c5"}},
		{"indexed: then by progress", indexed, []*corev1.Pod{mkPod("a0", index(0), ready), mkPod("d1", index(1))}, 1, []string{"d1"}},
	}
	for _, tt := range tests {
		got := names(podsForRemoval(tt.job, tt.pods, tt.n))
		if !sets.New(got...).Equal(sets.New(tt.want...)) || len(got) != len(tt.want) {
			t.Errorf("%s: removes %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestMatchPodFailurePolicy(t *testing.T) {
	in := batchv1.PodFailurePolicyOnExitCodesOpIn
	notIn := batchv1.PodFailurePolicyOnExitCodesOpNotIn
	policy := &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
		{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}},
		{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{ContainerName: ptr.To("main"), Operator: in, Values: []int32{42}}},
		{Action: batchv1.PodFailurePolicyActionCount, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: notIn, Values: []int32{1, 2}}},
		{Action: batchv1.PodFailurePolicyActionFailIndex, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: in, Values: []int32{2}}},
	}}
	disrupted := func(p *corev1.Pod) {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue})
	}
	tests := []struct {
		name    string
		pod     *corev1.Pod
		action  string
		count   bool
		failJob string
	}{
		{"disruption ignored", mkPod("p", phase(corev1.PodFailed), disrupted, exited("main", 42)), "Ignore", false, ""},
		{"exit 42 in main fails the job", mkPod("p", phase(corev1.PodFailed), exited("main", 42)), "FailJob", true,
			"Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1"},
		{"exit 42 elsewhere is NotIn 1,2: counts", mkPod("p", phase(corev1.PodFailed), exited("side", 42)), "Count", true, ""},
		{"exit 2 fails the index", mkPod("p", phase(corev1.PodFailed), exited("main", 2)), "FailIndex", true, ""},
		{"exit 1 matches nothing: counts", mkPod("p", phase(corev1.PodFailed), exited("main", 1)), "", true, ""},
		{"exit 0 never matches", mkPod("p", phase(corev1.PodFailed), exited("main", 0)), "", true, ""},
		{"init container exit code matches too", mkPod("p", phase(corev1.PodFailed), func(p *corev1.Pod) {
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 42}}}}
		}), "FailJob", true, "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1"},
	}
	for _, tt := range tests {
		v := matchPodFailurePolicy(policy, tt.pod)
		action := ""
		if v.action != nil {
			action = string(*v.action)
		}
		if action != tt.action || v.count != tt.count || v.failJob != tt.failJob {
			t.Errorf("%s: got action %q count %v failJob %q; want %q %v %q", tt.name, action, v.count, v.failJob, tt.action, tt.count, tt.failJob)
		}
	}
	cond := &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
		{Action: batchv1.PodFailurePolicyActionFailJob, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget}}},
	}}
	if v := matchPodFailurePolicy(cond, mkPod("p", phase(corev1.PodFailed), disrupted)); v.failJob != "Pod ns/p has condition DisruptionTarget matching FailJob rule at index 0" {
		t.Errorf("condition FailJob message = %q", v.failJob)
	}
	if v := matchPodFailurePolicy(nil, mkPod("p")); v.action != nil || !v.count {
		t.Errorf("no policy: %+v", v)
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		name      string
		prev      backoffRecord
		succeeded []*corev1.Pod
		failed    []*corev1.Pod
		now       time.Time
		failures  int
		remaining time.Duration
	}{
		{"nothing", backoffRecord{}, nil, nil, t0, 0, 0},
		{"first failure waits 10s", backoffRecord{}, nil, []*corev1.Pod{mkPod("f", finishedAt(t0))}, t0.Add(4 * time.Second), 1, 6 * time.Second},
		{"third failure waits 40s", backoffRecord{2, t0}, nil, []*corev1.Pod{mkPod("f", finishedAt(t0))}, t0, 3, 40 * time.Second},
		{"capped at 10 minutes", backoffRecord{20, t0}, nil, []*corev1.Pod{mkPod("f", finishedAt(t0))}, t0, 21, 10 * time.Minute},
		{"success resets", backoffRecord{3, t0}, []*corev1.Pod{mkPod("s", finishedAt(t0.Add(time.Second)))}, nil, t0, 0, 0},
		{"only failures after the success count", backoffRecord{3, t0},
			[]*corev1.Pod{mkPod("s", finishedAt(t0.Add(5*time.Second)))},
			[]*corev1.Pod{mkPod("f1", finishedAt(t0.Add(time.Second))), mkPod("f2", finishedAt(t0.Add(8*time.Second)))},
			t0.Add(8 * time.Second), 1, 10 * time.Second},
		{"elapsed", backoffRecord{}, nil, []*corev1.Pod{mkPod("f", finishedAt(t0))}, t0.Add(11 * time.Second), 1, 0},
	}
	for _, tt := range tests {
		r := tt.prev.next(tt.succeeded, tt.failed)
		if r.failuresAfterLastSuccess != tt.failures {
			t.Errorf("%s: failures %d, want %d", tt.name, r.failuresAfterLastSuccess, tt.failures)
		}
		if got := r.remaining(tt.now, defaultPodFailureBackoff, maxPodFailureBackoff); got != tt.remaining {
			t.Errorf("%s: remaining %v, want %v", tt.name, got, tt.remaining)
		}
	}
}

func baseJob() *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "j", Namespace: "ns", UID: "uid"},
		Spec: batchv1.JobSpec{Completions: ptr.To[int32](2), Parallelism: ptr.To[int32](2), BackoffLimit: ptr.To[int32](1),
			Suspend: ptr.To(false), CompletionMode: ptr.To(batchv1.NonIndexedCompletion)},
		Status: batchv1.JobStatus{StartTime: &metav1.Time{Time: t0}},
	}
}

func TestAssessConditions(t *testing.T) {
	type want struct {
		cond      batchv1.JobConditionType
		reason    string
		succeeded int32
		failed    int32
	}
	tests := []struct {
		name string
		job  func(*batchv1.Job)
		pods []*corev1.Pod
		now  time.Time
		want want
	}{
		{"running", nil, []*corev1.Pod{mkPod("a"), mkPod("b")}, t0, want{}},
		{"one failure within the limit", nil, []*corev1.Pod{mkPod("a", phase(corev1.PodFailed))}, t0, want{failed: 1}},
		{"failures past the limit", nil, []*corev1.Pod{mkPod("a", phase(corev1.PodFailed)), mkPod("b", phase(corev1.PodFailed))}, t0,
			want{batchv1.JobFailureTarget, batchv1.JobReasonBackoffLimitExceeded, 0, 2}},
		{"counted failures count", func(j *batchv1.Job) { j.Status.Failed = 1 }, []*corev1.Pod{mkPod("a", phase(corev1.PodFailed))}, t0,
			want{batchv1.JobFailureTarget, batchv1.JobReasonBackoffLimitExceeded, 0, 2}},
		{"uncounted failures count once", func(j *batchv1.Job) {
			j.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{Failed: []types.UID{"a"}}
		}, []*corev1.Pod{mkPod("a", phase(corev1.PodFailed))}, t0, want{failed: 1}},
		{"a terminating pod counts as failed", nil, []*corev1.Pod{mkPod("a", deleting), mkPod("b", phase(corev1.PodFailed))}, t0,
			want{batchv1.JobFailureTarget, batchv1.JobReasonBackoffLimitExceeded, 0, 2}},
		{"but not when only failed pods are replaced", func(j *batchv1.Job) { j.Spec.PodReplacementPolicy = ptr.To(batchv1.Failed) },
			[]*corev1.Pod{mkPod("a", deleting), mkPod("b", phase(corev1.PodFailed))}, t0, want{failed: 1}},
		{"deadline", func(j *batchv1.Job) { j.Spec.ActiveDeadlineSeconds = ptr.To[int64](30) }, []*corev1.Pod{mkPod("a")}, t0.Add(30 * time.Second),
			want{batchv1.JobFailureTarget, batchv1.JobReasonDeadlineExceeded, 0, 0}},
		{"no deadline while suspended", func(j *batchv1.Job) { j.Spec.ActiveDeadlineSeconds = ptr.To[int64](30); j.Spec.Suspend = ptr.To(true) }, nil,
			t0.Add(time.Hour), want{}},
		{"FailureTarget becomes Failed", func(j *batchv1.Job) {
			j.Status.Conditions = []batchv1.JobCondition{*newCondition(batchv1.JobFailureTarget, "BackoffLimitExceeded", msgBackoffLimit, t0)}
		}, nil, t0, want{batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded, 0, 0}},
		{"success criteria stay", func(j *batchv1.Job) {
			j.Status.Conditions = []batchv1.JobCondition{*newCondition(batchv1.JobSuccessCriteriaMet, "CompletionsReached", msgCompletions, t0)}
			j.Status.Succeeded = 2
		}, []*corev1.Pod{mkPod("x", phase(corev1.PodFailed)), mkPod("y", phase(corev1.PodFailed))}, t0,
			want{batchv1.JobSuccessCriteriaMet, batchv1.JobReasonCompletionsReached, 2, 2}},
		{"pod failure policy FailJob", func(j *batchv1.Job) {
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{Action: batchv1.PodFailurePolicyActionFailJob,
				OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{3}}}}}
		}, []*corev1.Pod{mkPod("a", phase(corev1.PodFailed), exited("c", 3))}, t0,
			want{batchv1.JobFailureTarget, batchv1.JobReasonPodFailurePolicy, 0, 1}},
		{"ignored failures do not count", func(j *batchv1.Job) {
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{Action: batchv1.PodFailurePolicyActionIgnore,
				OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{3}}}}}
		}, []*corev1.Pod{mkPod("a", phase(corev1.PodFailed), exited("c", 3)), mkPod("b", phase(corev1.PodFailed), exited("c", 3))}, t0, want{}},
		{"indexed successes count by index", func(j *batchv1.Job) {
			j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
			j.Status.CompletedIndexes = "0"
			j.Status.Succeeded = 1
		}, []*corev1.Pod{mkPod("a", index(0), phase(corev1.PodSucceeded)), mkPod("b", index(1), phase(corev1.PodSucceeded)),
			mkPod("c", index(7), phase(corev1.PodSucceeded))}, t0, want{succeeded: 2}},
		{"per-index limit fails the job when all indexes are done", func(j *batchv1.Job) {
			j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
			j.Spec.BackoffLimitPerIndex = ptr.To[int32](1)
			j.Spec.BackoffLimit = ptr.To[int32](100)
		}, []*corev1.Pod{mkPod("a", index(0), phase(corev1.PodSucceeded)),
			mkPod("b", index(1), phase(corev1.PodFailed), func(p *corev1.Pod) { p.Annotations[batchv1.JobIndexFailureCountAnnotation] = "1" })},
			t0, want{batchv1.JobFailureTarget, batchv1.JobReasonFailedIndexes, 1, 1}},
	}
	for _, tt := range tests {
		job := baseJob()
		if tt.job != nil {
			tt.job(job)
		}
		st := assess(job, tt.pods, sets.New[types.UID](), backoffRecord{}, tt.now)
		var got want
		if st.finished != nil {
			got.cond, got.reason = st.finished.Type, st.finished.Reason
		}
		got.succeeded, got.failed = st.succeeded, st.failed
		if got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestAssessStartTime(t *testing.T) {
	job := baseJob()
	job.Status.StartTime = nil
	job.Spec.Suspend = ptr.To(true)
	assess(job, nil, sets.New[types.UID](), backoffRecord{}, t0)
	if job.Status.StartTime != nil {
		t.Fatal("a suspended job must not start")
	}
	job.Spec.Suspend = ptr.To(false)
	assess(job, nil, sets.New[types.UID](), backoffRecord{}, t0)
	if job.Status.StartTime == nil || !job.Status.StartTime.Time.Equal(t0) {
		t.Fatalf("startTime = %v", job.Status.StartTime)
	}
}

// TestAccountCountsOnce walks a pod through the two-phase tracking: parked
// in uncountedTerminatedPods, finalizer removed, then counted. No step
// may count it twice.
func TestAccountCountsOnce(t *testing.T) {
	job := baseJob()
	pods := []*corev1.Pod{mkPod("s", phase(corev1.PodSucceeded)), mkPod("f", phase(corev1.PodFailed)), mkPod("r")}

	st := assess(job, pods, sets.New[types.UID](), backoffRecord{}, t0)
	release, changed, _ := st.account()
	u := job.Status.UncountedTerminatedPods
	if !changed || !reflect.DeepEqual(u.Succeeded, []types.UID{"s"}) || !reflect.DeepEqual(u.Failed, []types.UID{"f"}) {
		t.Fatalf("first pass: changed %v, uncounted %+v", changed, u)
	}
	if got := names(release); !reflect.DeepEqual(got, []string{"s", "f"}) {
		t.Fatalf("release %v, want the finished pods", got)
	}
	// The same pods seen again (finalizer removal not yet visible) add nothing.
	st = assess(job, pods, sets.New[types.UID](), backoffRecord{}, t0)
	if _, changed, _ := st.account(); changed || len(u.Succeeded) != 1 || st.succeeded != 1 || st.failed != 1 {
		t.Fatalf("second pass: changed %v, uncounted %+v, succeeded %d failed %d", changed, u, st.succeeded, st.failed)
	}
	// Finalizers gone: the UIDs move into the counters, once.
	if !settleUncounted(&job.Status, sets.New[types.UID]("r")) {
		t.Fatal("settle reported no change")
	}
	if job.Status.Succeeded != 1 || job.Status.Failed != 1 || len(u.Succeeded)+len(u.Failed) != 0 {
		t.Fatalf("after settle: %+v", job.Status)
	}
	// A stale informer still shows the finalizers, but removals are in flight.
	st = assess(job, pods, sets.New[types.UID]("s", "f"), backoffRecord{}, t0)
	if _, changed, _ := st.account(); changed || st.succeeded != 1 || st.failed != 1 {
		t.Fatalf("stale pass: changed %v, succeeded %d failed %d", changed, st.succeeded, st.failed)
	}
}

func TestAccountFailingJobCountsRunningPodsAsFailed(t *testing.T) {
	job := baseJob()
	job.Status.Conditions = []batchv1.JobCondition{*newCondition(batchv1.JobFailureTarget, "DeadlineExceeded", msgDeadline, t0)}
	st := assess(job, []*corev1.Pod{mkPod("r1"), mkPod("r2", noFinalizer)}, sets.New[types.UID](), backoffRecord{}, t0)
	release, _, _ := st.account()
	if got := job.Status.UncountedTerminatedPods.Failed; !reflect.DeepEqual(got, []types.UID{"r1"}) || len(release) != 1 {
		t.Fatalf("uncounted failed %v, release %v", got, names(release))
	}
}

func TestAccountIndexed(t *testing.T) {
	job := baseJob()
	job.Spec.Completions = ptr.To[int32](6)
	job.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
	job.Status.CompletedIndexes = "0,1"
	job.Status.Succeeded = 2
	pods := []*corev1.Pod{
		mkPod("a", index(1), phase(corev1.PodSucceeded)), // counted before, finalizer not yet gone
		mkPod("b", index(2), phase(corev1.PodSucceeded)),
		mkPod("c", index(5), phase(corev1.PodSucceeded)),
		mkPod("d", index(3)),
	}
	st := assess(job, pods, sets.New[types.UID](), backoffRecord{}, t0)
	if _, changed, _ := st.account(); !changed {
		t.Fatal("no change")
	}
	if job.Status.CompletedIndexes != "0-2,5" || job.Status.Succeeded != 4 || len(job.Status.UncountedTerminatedPods.Succeeded) != 0 {
		t.Fatalf("status %q succeeded %d uncounted %v", job.Status.CompletedIndexes, job.Status.Succeeded, job.Status.UncountedTerminatedPods)
	}
}

func TestSetCondition(t *testing.T) {
	conds, changed := setCondition(nil, batchv1.JobSuspended, corev1.ConditionFalse, "JobResumed", "Job resumed", t0)
	if changed || len(conds) != 0 {
		t.Fatal("a False condition must not be added")
	}
	conds, changed = setCondition(conds, batchv1.JobSuspended, corev1.ConditionTrue, "JobSuspended", "Job suspended", t0)
	if !changed || len(conds) != 1 {
		t.Fatal("Suspended not added")
	}
	if _, changed = setCondition(conds, batchv1.JobSuspended, corev1.ConditionTrue, "JobSuspended", "Job suspended", t0.Add(time.Hour)); changed {
		t.Fatal("an unchanged condition must not be rewritten")
	}
	conds, changed = setCondition(conds, batchv1.JobSuspended, corev1.ConditionFalse, "JobResumed", "Job resumed", t0.Add(time.Hour))
	if !changed || conds[0].Status != corev1.ConditionFalse || !conds[0].LastTransitionTime.Time.Equal(t0.Add(time.Hour)) {
		t.Fatalf("resume: %+v", conds)
	}
}

func TestNewPod(t *testing.T) {
	job := baseJob()
	job.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
	job.Spec.BackoffLimitPerIndex = ptr.To[int32](2)
	job.Spec.Template = corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}, Annotations: map[string]string{"a": "b"}},
		Spec: corev1.PodSpec{Subdomain: "svc", Containers: []corev1.Container{
			{Name: "c"}, {Name: "d", Env: []corev1.EnvVar{{Name: completionIndexEnv, Value: "mine"}}}}},
	}
	tmpl := job.Spec.Template.DeepCopy()
	addIndexEnv(tmpl)
	failed := mkPod("old", index(3), phase(corev1.PodFailed), func(p *corev1.Pod) { p.Annotations[batchv1.JobIndexFailureCountAnnotation] = "1" })
	f, ig := nextFailureCounts(job, failed)
	pod := newPod(job, tmpl, 3, f, ig)

	if pod.GenerateName != "j-3-" || pod.Spec.Hostname != "j-3" || pod.Spec.Subdomain != "svc" {
		t.Errorf("names: generateName %q hostname %q subdomain %q", pod.GenerateName, pod.Spec.Hostname, pod.Spec.Subdomain)
	}
	wantLabels := map[string]string{"app": "x", labelControllerUID: "uid", labelLegacyControllerUID: "uid", labelJobName: "j", labelLegacyJobName: "j",
		batchv1.JobCompletionIndexAnnotation: "3"}
	if !reflect.DeepEqual(pod.Labels, wantLabels) {
		t.Errorf("labels %v", pod.Labels)
	}
	wantAnn := map[string]string{"a": "b", batchv1.JobCompletionIndexAnnotation: "3", batchv1.JobIndexFailureCountAnnotation: "2"}
	if !reflect.DeepEqual(pod.Annotations, wantAnn) {
		t.Errorf("annotations %v", pod.Annotations)
	}
	if !hasFinalizer(pod) || metav1.GetControllerOf(pod) == nil || metav1.GetControllerOf(pod).UID != "uid" {
		t.Errorf("finalizers %v owners %v", pod.Finalizers, pod.OwnerReferences)
	}
	env := pod.Spec.Containers[0].Env
	if len(env) != 1 || env[0].ValueFrom.FieldRef.FieldPath != "metadata.labels['batch.kubernetes.io/job-completion-index']" {
		t.Errorf("env %v", env)
	}
	if env := pod.Spec.Containers[1].Env; len(env) != 1 || env[0].Value != "mine" {
		t.Errorf("the user's own JOB_COMPLETION_INDEX was replaced: %v", env)
	}
	if job.Spec.Template.Spec.Containers[0].Env != nil || job.Spec.Template.Labels[labelJobName] != "" {
		t.Error("the job's template was modified")
	}
	if got := generateName(string(make([]byte, 70)), noIndex); len(got) != maxGeneratedNameLength {
		t.Errorf("long generateName has %d characters", len(got))
	}
}

func TestSuccessPolicy(t *testing.T) {
	succeeded := parseIntervals("0-2,5", 10)
	tests := []struct {
		rules []batchv1.SuccessPolicyRule
		want  string
	}{
		{[]batchv1.SuccessPolicyRule{{SucceededIndexes: ptr.To("0-3")}}, ""},
		{[]batchv1.SuccessPolicyRule{{SucceededIndexes: ptr.To("0-3")}, {SucceededIndexes: ptr.To("1,2")}}, "Matched rules at index 1"},
		{[]batchv1.SuccessPolicyRule{{SucceededIndexes: ptr.To("0-9"), SucceededCount: ptr.To[int32](4)}}, "Matched rules at index 0"},
		{[]batchv1.SuccessPolicyRule{{SucceededCount: ptr.To[int32](5)}}, ""},
	}
	for i, tt := range tests {
		if got, _ := matchSuccessPolicy(&batchv1.SuccessPolicy{Rules: tt.rules}, 10, succeeded); got != tt.want {
			t.Errorf("case %d: %q, want %q", i, got, tt.want)
		}
	}
}

// newTestController builds a Controller on a fake clientset. Its listers
// read indexers the test fills, so the test decides what each informer has
// seen; status writes get growing resourceVersions, as from etcd.
func newTestController(t *testing.T, job *batchv1.Job, pods ...*corev1.Pod) (c *Controller, client *fake.Clientset, jobIdx, podIdx cache.Indexer) {
	t.Helper()
	objs := []runtime.Object{job}
	for _, p := range pods {
		objs = append(objs, p)
	}
	client = fake.NewClientset(objs...)
	rv := 100
	client.PrependReactor("update", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "status" {
			rv++
			a.(k8stesting.UpdateAction).GetObject().(*batchv1.Job).ResourceVersion = strconv.Itoa(rv)
		}
		return false, nil, nil // the tracker stores it
	})
	jobIdx = cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	// A pod informer never started: its indexer carries the controller
	// UID index that New adds, and the test fills it by hand.
	podInf := cache.NewSharedIndexInformer(&cache.ListWatch{}, &corev1.Pod{}, 0, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	if err := controller.AddControllerUIDIndex(podInf); err != nil {
		t.Fatal(err)
	}
	podIdx = podInf.GetIndexer()
	if err := jobIdx.Add(job); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		if err := podIdx.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	clk := clocktesting.NewFakeClock(t0.Add(time.Hour)) // every back-off has passed
	c = &Controller{
		client:        client,
		jobs:          batchlisters.NewJobLister(jobIdx),
		pods:          corelisters.NewPodLister(podIdx),
		podIndex:      podIdx,
		queue:         workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		orphans:       workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		expect:        newExpectations(clk),
		backoffs:      newBackoffStore(),
		recorder:      record.NewFakeRecorder(100),
		clock:         clk,
		log:           slog.New(slog.DiscardHandler),
		podBackoff:    defaultPodFailureBackoff,
		maxPodBackoff: maxPodFailureBackoff,
	}
	t.Cleanup(func() { c.queue.ShutDown(); c.orphans.ShutDown() })
	return c, client, jobIdx, podIdx
}

// countActions counts the client calls with verb on resource (and, if
// given, subresource).
func countActions(client *fake.Clientset, verb, resource, subresource string) int {
	n := 0
	for _, a := range client.Actions() {
		if a.GetVerb() == verb && a.GetResource().Resource == resource && a.GetSubresource() == subresource {
			n++
		}
	}
	return n
}

// TestSyncWaitsForJobInformer replays the race behind a flaky integration
// test: a sync counts the last pod, removes its finalizer and writes the
// Job's outcome; the pod informer shows the finalizer gone before the Job
// informer shows that write. A sync on that view counts the pod nowhere
// and must not replace it.
func TestSyncWaitsForJobInformer(t *testing.T) {
	tests := []struct {
		name string
		job  func(*batchv1.Job)
		pods []*corev1.Pod // the last one finishes and is counted by the first sync
		want batchv1.JobConditionType
	}{
		{"second failure passes backoffLimit 1", func(j *batchv1.Job) {
			j.Spec.Completions, j.Spec.Parallelism, j.Status.Failed = ptr.To[int32](1), ptr.To[int32](1), 1
		}, []*corev1.Pod{
			mkPod("a", phase(corev1.PodFailed), finishedAt(t0), noFinalizer),
			mkPod("b", phase(corev1.PodFailed), finishedAt(t0)),
		}, batchv1.JobFailed},
		{"last of 2 completions", func(j *batchv1.Job) {
			j.Spec.Parallelism, j.Status.Succeeded = ptr.To[int32](1), 1
		}, []*corev1.Pod{
			mkPod("a", phase(corev1.PodSucceeded), finishedAt(t0), noFinalizer),
			mkPod("b", phase(corev1.PodSucceeded), finishedAt(t0)),
		}, batchv1.JobComplete},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := baseJob()
			job.ResourceVersion = "10"
			job.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "j"}}
			tt.job(job)
			for _, p := range tt.pods {
				p.Labels = map[string]string{"app": "j"}
				p.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(job, kind)}
			}
			c, client, _, podIdx := newTestController(t, job, tt.pods...)
			ctx := context.Background()

			if err := c.sync(ctx, "ns/j"); err != nil {
				t.Fatalf("first sync: %v", err)
			}
			written, err := client.BatchV1().Jobs("ns").Get(ctx, "j", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if finishedCondition(written) == nil || finishedCondition(written).Type != tt.want {
				t.Fatalf("first sync wrote conditions %v, want %s", written.Status.Conditions, tt.want)
			}
			writes := countActions(client, "update", "jobs", "status")

			// The pod informer sees the finalizer gone; the Job informer
			// still holds the Job as it was before the first sync.
			last := tt.pods[len(tt.pods)-1]
			released := last.DeepCopy()
			released.Finalizers = nil
			if err := podIdx.Update(released); err != nil {
				t.Fatal(err)
			}
			c.podUpdated(last, released)
			if err := c.sync(ctx, "ns/j"); err != nil {
				t.Fatalf("stale sync: %v", err)
			}
			if n := countActions(client, "create", "pods", ""); n != 0 {
				t.Errorf("created %d pods on a stale view of the Job, want 0", n)
			}
			if n := countActions(client, "update", "jobs", "status") - writes; n != 0 {
				t.Errorf("wrote the status %d times on a stale view of the Job, want 0", n)
			}
		})
	}
}

func TestStaleJob(t *testing.T) {
	at := func(rv string) *batchv1.Job { return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{ResourceVersion: rv}} }
	tests := []struct {
		name     string
		wrote    string // "" for no write
		informer string
		after    time.Duration
		forget   bool
		want     bool
	}{
		{"nothing written", "", "5", 0, false, false},
		{"informer behind the write", "12", "10", 0, false, true},
		{"informer at the write", "12", "12", 0, false, false},
		{"informer past the write (someone else wrote)", "12", "15", 0, false, false},
		{"not a number", "12", "x", 0, false, false},
		{"behind, but the wait expired", "12", "10", expectationTTL + time.Second, false, false},
		{"behind, but the Job was deleted", "12", "10", 0, true, false},
	}
	for _, tt := range tests {
		clk := clocktesting.NewFakeClock(t0)
		e := newExpectations(clk)
		if tt.wrote != "" {
			e.wroteStatus("ns/j", at(tt.wrote))
		}
		clk.Step(tt.after)
		if tt.forget {
			e.forget("ns/j")
		}
		if got := e.staleJob("ns/j", at(tt.informer)); got != tt.want {
			t.Errorf("%s: staleJob = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestClaimPods checks which pods a Job's sync sees: its own that still
// match, and matching orphans of its namespace, which it adopts; pods of
// other controllers are never touched.
func TestClaimPods(t *testing.T) {
	job := baseJob()
	job.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "j"}}
	other := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "ns", UID: "other-uid"}}
	pod := func(name, ns, app string, owner *batchv1.Job) *corev1.Pod {
		p := mkPod(name)
		p.Namespace = ns
		p.Labels = map[string]string{"app": app}
		if owner != nil {
			p.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(owner, kind)}
		}
		return p
	}
	tests := []struct {
		name    string
		pod     *corev1.Pod
		owned   bool // returned as the Job's
		patched bool // ownerReferences written
	}{
		{"own and matching", pod("mine", "ns", "j", job), true, false},
		{"own, labels changed: released", pod("mine-changed", "ns", "x", job), false, true},
		{"matching orphan: adopted", pod("orphan", "ns", "j", nil), true, true},
		{"orphan not matching", pod("orphan-x", "ns", "x", nil), false, false},
		{"matching, another Job's", pod("others", "ns", "j", other), false, false},
		{"matching orphan elsewhere", pod("elsewhere", "ns2", "j", nil), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, client, _, _ := newTestController(t, job, tt.pod)
			owned, err := c.claimPods(context.Background(), job)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(owned) == 1 && owned[0].Name == tt.pod.Name; got != tt.owned || len(owned) > 1 {
				t.Errorf("claimed %v, want own=%v", names(owned), tt.owned)
			}
			if got := countActions(client, "patch", "pods", "") == 1; got != tt.patched {
				t.Errorf("patched = %v, want %v", got, tt.patched)
			}
		})
	}
}
