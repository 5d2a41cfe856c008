package cronjob

import (
	"reflect"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// at is 2025-06-02 (a Monday) at h:m:s UTC.
func at(h, m, s int) time.Time { return time.Date(2025, 6, 2, h, m, s, 0, time.UTC) }

func mtime(t time.Time) *metav1.Time { return &metav1.Time{Time: t} }

func newCronJob(schedule string) *batchv1.CronJob {
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "tick", Namespace: "ns", UID: "cj-uid", CreationTimestamp: metav1.NewTime(at(10, 0, 30))},
		Spec: batchv1.CronJobSpec{
			Schedule:                   schedule,
			ConcurrencyPolicy:          batchv1.AllowConcurrent,
			Suspend:                    ptr.To(false),
			SuccessfulJobsHistoryLimit: ptr.To(int32(3)),
			FailedJobsHistoryLimit:     ptr.To(int32(1)),
		},
	}
}

func activeRef(name string) corev1.ObjectReference {
	return corev1.ObjectReference{Kind: "Job", Namespace: "ns", Name: name, UID: types.UID(name + "-uid")}
}

func reasons(events []event) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.Reason)
	}
	return out
}

func TestDecide(t *testing.T) {
	dur := func(d time.Duration) *time.Duration { return &d }
	tm := func(t time.Time) *time.Time { return &t }
	tests := []struct {
		name    string
		mod     func(cj *batchv1.CronJob)
		now     time.Time
		create  *time.Time
		replace bool
		requeue *time.Duration
		events  []string
	}{
		{name: "before the first run: wait for it",
			now: at(10, 0, 50), requeue: dur(10*time.Second + nextScheduleDelta)},
		{name: "the first run is due",
			now: at(10, 1, 5), create: tm(at(10, 1, 0)), requeue: dur(55*time.Second + nextScheduleDelta)},
		{name: "this run was started already",
			mod: func(cj *batchv1.CronJob) { cj.Status.LastScheduleTime = mtime(at(10, 1, 0)) },
			now: at(10, 1, 30), requeue: dur(30*time.Second + nextScheduleDelta)},
		{name: "its job is active under the run's name",
			mod: func(cj *batchv1.CronJob) {
				cj.Status.Active = []corev1.ObjectReference{activeRef(jobName(cj, at(10, 1, 0)))}
			},
			now: at(10, 1, 30), requeue: dur(30*time.Second + nextScheduleDelta)},
		{name: "several missed: only the latest runs",
			now: at(10, 5, 10), create: tm(at(10, 5, 0)), requeue: dur(50*time.Second + nextScheduleDelta)},
		{name: "more than 100 missed: warn and run the latest",
			mod: func(cj *batchv1.CronJob) { cj.CreationTimestamp = metav1.NewTime(at(8, 0, 30)) },
			now: at(10, 30, 10), create: tm(at(10, 30, 0)), requeue: dur(50*time.Second + nextScheduleDelta),
			events: []string{"TooManyMissedTimes"}},
		{name: "exactly 100 missed is not too many",
			mod: func(cj *batchv1.CronJob) { cj.CreationTimestamp = metav1.NewTime(at(8, 20, 30)) },
			now: at(10, 0, 10), create: tm(at(10, 0, 0)), requeue: dur(50*time.Second + nextScheduleDelta)},
		{name: "more than 100 missed but the deadline bounds the count",
			mod: func(cj *batchv1.CronJob) {
				cj.CreationTimestamp = metav1.NewTime(at(0, 0, 30))
				cj.Spec.StartingDeadlineSeconds = ptr.To(int64(200))
			},
			now: at(10, 30, 10), create: tm(at(10, 30, 0)), requeue: dur(50*time.Second + nextScheduleDelta)},
		{name: "the latest run is older than the starting deadline: skip it",
			mod: func(cj *batchv1.CronJob) { cj.Spec.StartingDeadlineSeconds = ptr.To(int64(5)) },
			now: at(10, 5, 10), requeue: dur(50*time.Second + nextScheduleDelta)},
		{name: "within the starting deadline",
			mod: func(cj *batchv1.CronJob) { cj.Spec.StartingDeadlineSeconds = ptr.To(int64(30)) },
			now: at(10, 5, 10), create: tm(at(10, 5, 0)), requeue: dur(50*time.Second + nextScheduleDelta)},
		{name: "Allow runs beside an active job",
			mod: func(cj *batchv1.CronJob) {
				cj.Status.LastScheduleTime = mtime(at(10, 1, 0))
				cj.Status.Active = []corev1.ObjectReference{activeRef("tick-old")}
			},
			now: at(10, 2, 1), create: tm(at(10, 2, 0)), requeue: dur(59*time.Second + nextScheduleDelta)},
		{name: "Forbid skips while a job is active",
			mod: func(cj *batchv1.CronJob) {
				cj.Spec.ConcurrencyPolicy = batchv1.ForbidConcurrent
				cj.Status.LastScheduleTime = mtime(at(10, 1, 0))
				cj.Status.Active = []corev1.ObjectReference{activeRef("tick-old")}
			},
			now: at(10, 2, 1), requeue: dur(59*time.Second + nextScheduleDelta), events: []string{"JobAlreadyActive"}},
		{name: "Forbid runs late once nothing is active",
			mod: func(cj *batchv1.CronJob) {
				cj.Spec.ConcurrencyPolicy = batchv1.ForbidConcurrent
				cj.Status.LastScheduleTime = mtime(at(10, 1, 0))
			},
			now: at(10, 2, 40), create: tm(at(10, 2, 0)), requeue: dur(20*time.Second + nextScheduleDelta)},
		{name: "Replace deletes the active jobs, then runs",
			mod: func(cj *batchv1.CronJob) {
				cj.Spec.ConcurrencyPolicy = batchv1.ReplaceConcurrent
				cj.Status.LastScheduleTime = mtime(at(10, 1, 0))
				cj.Status.Active = []corev1.ObjectReference{activeRef("tick-old")}
			},
			now: at(10, 2, 1), create: tm(at(10, 2, 0)), replace: true, requeue: dur(59*time.Second + nextScheduleDelta)},
		{name: "Replace with nothing active only runs",
			mod: func(cj *batchv1.CronJob) { cj.Spec.ConcurrencyPolicy = batchv1.ReplaceConcurrent },
			now: at(10, 2, 1), create: tm(at(10, 2, 0)), requeue: dur(59*time.Second + nextScheduleDelta)},
		{name: "suspended: nothing, and no wake-up",
			mod: func(cj *batchv1.CronJob) { cj.Spec.Suspend = ptr.To(true) },
			now: at(10, 5, 10)},
		{name: "being deleted: nothing",
			mod: func(cj *batchv1.CronJob) { cj.DeletionTimestamp = mtime(at(10, 4, 0)) },
			now: at(10, 5, 10)},
		{name: "unparseable schedule",
			mod: func(cj *batchv1.CronJob) { cj.Spec.Schedule = "61 * * * *" },
			now: at(10, 5, 10), events: []string{"UnparseableSchedule"}},
		{name: "a schedule that never fires",
			mod: func(cj *batchv1.CronJob) { cj.Spec.Schedule = "0 0 30 2 *" },
			now: at(10, 5, 10), events: []string{"InvalidSchedule"}},
		{name: "unknown time zone",
			mod: func(cj *batchv1.CronJob) { cj.Spec.TimeZone = ptr.To("Mars/Olympus") },
			now: at(10, 5, 10), events: []string{"UnknownTimeZone"}},
		{name: "time zone: 09:00 in Tokyo is midnight UTC",
			mod: func(cj *batchv1.CronJob) {
				cj.Spec.Schedule = "0 9 * * *"
				cj.Spec.TimeZone = ptr.To("Asia/Tokyo")
				cj.CreationTimestamp = metav1.NewTime(at(0, 0, 0).Add(-time.Hour))
			},
			now: at(0, 0, 30), create: tm(at(0, 0, 0)), requeue: dur(24*time.Hour - 30*time.Second + nextScheduleDelta)},
		{name: "TZ= in the schedule still works, with a warning",
			mod: func(cj *batchv1.CronJob) { cj.Spec.Schedule = "TZ=UTC */1 * * * *" },
			now: at(10, 1, 5), create: tm(at(10, 1, 0)), requeue: dur(55*time.Second + nextScheduleDelta),
			events: []string{"UnsupportedSchedule"}},
		{name: "@every counts from the creation time",
			mod: func(cj *batchv1.CronJob) { cj.Spec.Schedule = "@every 5m" },
			now: at(10, 5, 40), create: tm(at(10, 5, 30)), requeue: dur(5*time.Minute - 10*time.Second + nextScheduleDelta)},
		{name: "@every with more than 100 missed",
			mod: func(cj *batchv1.CronJob) {
				cj.Spec.Schedule = "@every 1m"
				cj.CreationTimestamp = metav1.NewTime(at(0, 0, 30))
			},
			now: at(10, 0, 40), create: tm(at(10, 0, 30)), requeue: dur(50*time.Second + nextScheduleDelta),
			events: []string{"TooManyMissedTimes"}},
		{name: "a last schedule time ahead of the clock waits for the run after it",
			mod: func(cj *batchv1.CronJob) { cj.Status.LastScheduleTime = mtime(at(10, 10, 0)) },
			now: at(10, 5, 10), requeue: dur(5*time.Minute + 50*time.Second + nextScheduleDelta)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cj := newCronJob("*/1 * * * *")
			if tt.mod != nil {
				tt.mod(cj)
			}
			d := decide(cj, tt.now, time.UTC)
			if !reflect.DeepEqual(d.create, tt.create) {
				t.Errorf("create = %v, want %v", d.create, tt.create)
			}
			if d.replace != tt.replace {
				t.Errorf("replace = %v, want %v", d.replace, tt.replace)
			}
			if !reflect.DeepEqual(d.requeue, tt.requeue) {
				t.Errorf("requeue = %v, want %v", deref(d.requeue), deref(tt.requeue))
			}
			if got := reasons(d.events); !reflect.DeepEqual(got, tt.events) {
				t.Errorf("events = %v, want %v", got, tt.events)
			}
		})
	}
}

func deref(d *time.Duration) any {
	if d == nil {
		return nil
	}
	return *d
}

func TestDecideUsesTheControllerZoneWithoutTimeZone(t *testing.T) {
	cj := newCronJob("0 9 * * *")
	cj.CreationTimestamp = metav1.NewTime(at(0, 0, 0).Add(-time.Hour))
	tokyo := mustLoad(t, "Asia/Tokyo")
	if d := decide(cj, at(0, 0, 30), tokyo); d.create == nil || !d.create.Equal(at(0, 0, 0)) {
		t.Errorf("in a Tokyo controller: create = %v, want %s", d.create, at(0, 0, 0))
	}
	if d := decide(cj, at(0, 0, 30), time.UTC); d.create != nil {
		t.Errorf("in a UTC controller nothing is due at 00:00:30, got create %v", d.create)
	}
}

func job(name string, started time.Time, cond batchv1.JobConditionType, completed time.Time) *batchv1.Job {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(name + "-uid")}}
	if !started.IsZero() {
		j.Status.StartTime = mtime(started)
	}
	if cond != "" {
		j.Status.Conditions = []batchv1.JobCondition{{Type: cond, Status: corev1.ConditionTrue}}
		j.Status.CompletionTime = mtime(completed)
	}
	return j
}

func TestObserveJobs(t *testing.T) {
	running := job("running", at(10, 0, 0), "", time.Time{})
	done := job("done", at(10, 1, 0), batchv1.JobComplete, at(10, 1, 30))
	olderDone := job("older-done", at(9, 0, 0), batchv1.JobComplete, at(9, 0, 30))
	failed := job("failed", at(10, 2, 0), batchv1.JobFailed, at(10, 2, 30))
	stranger := job("stranger", at(10, 3, 0), "", time.Time{})
	suspendedFinishedFalse := job("not-finished", at(10, 3, 0), "", time.Time{})
	suspendedFinishedFalse.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionFalse}}

	status := batchv1.CronJobStatus{
		Active: []corev1.ObjectReference{
			activeRef("running"), activeRef("done"), activeRef("failed"), activeRef("gone"), activeRef("not-finished"),
		},
		LastSuccessfulTime: mtime(at(9, 30, 0)),
	}
	events := observeJobs(&status, []*batchv1.Job{running, done, olderDone, failed, stranger, suspendedFinishedFalse},
		map[types.UID]bool{"gone-uid": true})

	var active []string
	for _, r := range status.Active {
		active = append(active, r.Name)
	}
	if want := []string{"running", "not-finished"}; !reflect.DeepEqual(active, want) {
		t.Errorf("active = %v, want %v", active, want)
	}
	if !status.LastSuccessfulTime.Equal(mtime(at(10, 1, 30))) {
		t.Errorf("lastSuccessfulTime = %v, want the newest completion 10:01:30", status.LastSuccessfulTime)
	}
	wantEvents := []event{
		normal("SawCompletedJob", "Saw completed job: done, condition: Complete"),
		normal("SawCompletedJob", "Saw completed job: failed, condition: Failed"),
		warning("UnexpectedJob", "Saw a job that the controller did not create or forgot: stranger"),
		normal("MissingJob", "Active job went missing: gone"),
	}
	if !reflect.DeepEqual(events, wantEvents) {
		t.Errorf("events =\n%v\nwant\n%v", events, wantEvents)
	}

	// The first success is recorded even when no time was known before.
	status = batchv1.CronJobStatus{}
	observeJobs(&status, []*batchv1.Job{olderDone}, nil)
	if !status.LastSuccessfulTime.Equal(mtime(at(9, 0, 30))) {
		t.Errorf("first lastSuccessfulTime = %v", status.LastSuccessfulTime)
	}
}

func TestHistoryToDelete(t *testing.T) {
	var jobs []*batchv1.Job
	// Five successes started at 10:01..10:05, listed out of order.
	for _, m := range []int{3, 1, 5, 2, 4} {
		jobs = append(jobs, job("ok-"+string(rune('0'+m)), at(10, m, 0), batchv1.JobComplete, at(10, m, 30)))
	}
	noStart := job("ok-nostart", time.Time{}, batchv1.JobComplete, at(10, 9, 0))
	deleting := job("ok-deleting", at(9, 0, 0), batchv1.JobComplete, at(9, 0, 1))
	deleting.DeletionTimestamp = mtime(at(10, 9, 0))
	failA := job("fail-a", at(10, 1, 0), batchv1.JobFailed, at(10, 1, 1))
	failB := job("fail-b", at(10, 1, 0), batchv1.JobFailed, at(10, 1, 1)) // same start: by name
	failC := job("fail-c", at(10, 7, 0), batchv1.JobFailed, at(10, 7, 1))
	running := job("running", at(9, 0, 0), "", time.Time{})
	jobs = append(jobs, noStart, deleting, failC, failB, failA, running)

	names := func(js []*batchv1.Job) []string {
		var out []string
		for _, j := range js {
			out = append(out, j.Name)
		}
		return out
	}
	tests := []struct {
		name             string
		success, failure *int32
		want             []string
	}{
		{"defaults 3 and 1", ptr.To(int32(3)), ptr.To(int32(1)), []string{"ok-1", "ok-2", "ok-3", "fail-a", "fail-b"}},
		{"keep none", ptr.To(int32(0)), ptr.To(int32(0)), []string{"ok-1", "ok-2", "ok-3", "ok-4", "ok-5", "ok-nostart", "fail-a", "fail-b", "fail-c"}},
		{"limits above the counts", ptr.To(int32(10)), ptr.To(int32(3)), nil},
		{"no limits keep everything", nil, nil, nil},
		{"only a failure limit", nil, ptr.To(int32(2)), []string{"fail-a"}},
	}
	for _, tt := range tests {
		cj := newCronJob("* * * * *")
		cj.Spec.SuccessfulJobsHistoryLimit, cj.Spec.FailedJobsHistoryLimit = tt.success, tt.failure
		if got := names(historyToDelete(cj, jobs)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: delete %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestMakePlanForbidRunsLateWhenTheActiveJobFinishes(t *testing.T) {
	cj := newCronJob("*/1 * * * *")
	cj.Spec.ConcurrencyPolicy = batchv1.ForbidConcurrent
	cj.Spec.SuccessfulJobsHistoryLimit = ptr.To(int32(1))
	cj.Status.LastScheduleTime = mtime(at(10, 1, 0))
	cj.Status.Active = []corev1.ObjectReference{activeRef("tick-a")}
	prev := job("tick-prev", at(10, 0, 0), batchv1.JobComplete, at(10, 0, 20))
	a := job("tick-a", at(10, 1, 0), batchv1.JobComplete, at(10, 2, 30))

	p := makePlan(cj, []*batchv1.Job{prev, a}, nil, at(10, 2, 40), time.UTC)
	if p.create == nil || !p.create.Equal(at(10, 2, 0)) {
		t.Errorf("create = %v, want the 10:02 run that Forbid held back", p.create)
	}
	if len(p.status.Active) != 0 || !p.status.LastSuccessfulTime.Equal(mtime(at(10, 2, 30))) {
		t.Errorf("status = %+v", p.status)
	}
	if len(p.cleanup) != 1 || p.cleanup[0].Name != "tick-prev" {
		t.Errorf("cleanup = %v, want the older success", p.cleanup)
	}
	if got := reasons(p.events); !reflect.DeepEqual(got, []string{"SawCompletedJob"}) {
		t.Errorf("events = %v", got)
	}
	if len(cj.Status.Active) != 1 {
		t.Error("makePlan must not modify the CronJob it is given")
	}
}

func TestJobFor(t *testing.T) {
	cj := newCronJob("*/1 * * * *")
	cj.Spec.TimeZone = ptr.To("Europe/Berlin")
	cj.Spec.JobTemplate = batchv1.JobTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "tick"}, Annotations: map[string]string{"note": "x"}},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To(int32(2)),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "c", Image: "busybox"}},
			}},
		},
	}
	scheduled := time.Date(2025, 6, 2, 10, 1, 0, 0, time.UTC)
	j, err := jobFor(cj, scheduled)
	if err != nil {
		t.Fatal(err)
	}
	if want := "tick-29147641"; j.Name != want { // 1748858460 s / 60
		t.Errorf("name = %s, want %s", j.Name, want)
	}
	if got := j.Annotations[batchv1.CronJobScheduledTimestampAnnotation]; got != "2025-06-02T12:01:00+02:00" {
		t.Errorf("scheduled annotation = %q, want the time in the CronJob's zone", got)
	}
	if j.Annotations["note"] != "x" || j.Labels["app"] != "tick" || j.Namespace != "ns" {
		t.Errorf("metadata not copied from the template: %+v", j.ObjectMeta)
	}
	ref := metav1.GetControllerOf(j)
	if ref == nil || ref.Kind != "CronJob" || ref.APIVersion != "batch/v1" || ref.UID != "cj-uid" || !*ref.BlockOwnerDeletion {
		t.Errorf("controller ref = %+v", ref)
	}
	if !reflect.DeepEqual(j.Spec, cj.Spec.JobTemplate.Spec) {
		t.Errorf("spec = %+v, want the template's", j.Spec)
	}
	j.Labels["app"] = "changed"
	*j.Spec.BackoffLimit = 9
	if cj.Spec.JobTemplate.Labels["app"] != "tick" || *cj.Spec.JobTemplate.Spec.BackoffLimit != 2 {
		t.Error("the job shares memory with the template")
	}

	cj.Spec.TimeZone = nil
	j, _ = jobFor(cj, scheduled)
	if got := j.Annotations[batchv1.CronJobScheduledTimestampAnnotation]; got != "2025-06-02T10:01:00Z" {
		t.Errorf("without a zone the annotation is UTC, got %q", got)
	}
}
