package cronjob_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/controller"
	"github.com/lotse/lotse/internal/controller/cronjob"
	"github.com/lotse/lotse/internal/testserver"
)

// startController runs the CronJob controller against s on a fake clock
// that starts at the real time, since the server stamps creation times
// from the real clock.
func startController(t *testing.T, s *testserver.Server) *clocktesting.FakeClock {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Now())
	factory := informers.NewSharedInformerFactory(s.Client, 0)
	c, err := cronjob.New(&controller.Context{
		Client: s.Client, Informers: factory, Clock: clk,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	factory.Start(ctx.Done())
	go func() { _ = c.Run(ctx) }()
	return clk
}

func newCronJob(name string, policy batchv1.ConcurrencyPolicy) *batchv1.CronJob {
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.CronJobSpec{
			Schedule:                   "*/1 * * * *",
			ConcurrencyPolicy:          policy,
			SuccessfulJobsHistoryLimit: ptr.To(int32(1)),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"cron": name}},
				Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "c", Image: "busybox:1.36"}},
				}}},
			},
		},
	}
}

func jobName(cj string, scheduled time.Time) string {
	return fmt.Sprintf("%s-%d", cj, scheduled.Unix()/60)
}

// TestCronJobSchedulesJobs drives two every-minute CronJobs through two
// activations with a fake clock: each creates its job at the minute;
// Forbid skips while its job runs and catches up once it finishes;
// Replace swaps the running job for a new one; finished jobs beyond the
// history limit are deleted.
func TestCronJobSchedulesJobs(t *testing.T) {
	s := testserver.Start(t, testserver.Options{DisableScheduler: true, Controllers: []string{"garbagecollector"}})
	ctx := context.Background()
	clk := startController(t, s)
	cronJobs := s.Client.BatchV1().CronJobs("default")
	jobs := s.Client.BatchV1().Jobs("default")

	// waitFor polls and nudges the fake clock a little each time, so
	// that the queue's retry back-off (also on that clock) elapses.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 15*time.Second, true, func(context.Context) (bool, error) {
			clk.Step(10 * time.Millisecond)
			return cond(), nil
		})
		if err != nil {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
	getCJ := func(name string) *batchv1.CronJob {
		cj, err := cronJobs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return cj
	}
	jobExists := func(name string) bool {
		_, err := jobs.Get(ctx, name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		return err == nil
	}
	activeNames := func(cj *batchv1.CronJob) []string {
		var out []string
		for _, r := range cj.Status.Active {
			out = append(out, r.Name)
		}
		return out
	}
	hasEvent := func(cj, reason string) bool {
		ev, err := s.Client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + cj + ",reason=" + reason})
		return err == nil && len(ev.Items) > 0
	}
	finish := func(name string, started, completed time.Time) {
		t.Helper()
		j, err := jobs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		now := metav1.NewTime(completed)
		j.Status.StartTime = &metav1.Time{Time: started}
		j.Status.CompletionTime = &now
		j.Status.Succeeded = 1
		j.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now},
		}
		if _, err := jobs.UpdateStatus(ctx, j, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	var m1 time.Time
	for _, cj := range []*batchv1.CronJob{newCronJob("forbid", batchv1.ForbidConcurrent), newCronJob("replace", batchv1.ReplaceConcurrent)} {
		created, err := cronJobs.Create(ctx, cj, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Only the latest due run is started, so both CronJobs run at the
		// later of their first minutes.
		if first := created.CreationTimestamp.Truncate(time.Minute).Add(time.Minute); first.After(m1) {
			m1 = first
		}
	}
	m2 := m1.Add(time.Minute)

	// Nothing is due before the first minute.
	time.Sleep(200 * time.Millisecond)
	if jobExists(jobName("forbid", m1)) {
		t.Fatal("a job was created before its time")
	}

	// First minute: both create a job named after it.
	clk.SetTime(m1.Add(time.Second))
	waitFor("the first runs in status", func() bool {
		f, r := getCJ("forbid"), getCJ("replace")
		return len(f.Status.Active) == 1 && len(r.Status.Active) == 1 &&
			f.Status.LastScheduleTime != nil && f.Status.LastScheduleTime.Equal(&metav1.Time{Time: m1})
	})
	j, err := jobs.Get(ctx, jobName("forbid", m1), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(j); ref == nil || ref.Kind != "CronJob" || ref.Name != "forbid" || ref.UID != getCJ("forbid").UID {
		t.Errorf("job controller ref = %+v", ref)
	}
	if got, want := j.Annotations[batchv1.CronJobScheduledTimestampAnnotation], m1.UTC().Format(time.RFC3339); got != want {
		t.Errorf("scheduled-timestamp annotation = %q, want %q", got, want)
	}
	if j.Labels["cron"] != "forbid" {
		t.Errorf("job labels = %v, want the template's", j.Labels)
	}
	if got := activeNames(getCJ("forbid")); len(got) != 1 || got[0] != j.Name {
		t.Errorf("forbid active = %v", got)
	}
	if !hasEvent("forbid", "SuccessfulCreate") {
		t.Error("no SuccessfulCreate event")
	}

	// Second minute: Forbid skips; Replace deletes its job and starts anew.
	clk.SetTime(m2.Add(time.Second))
	waitFor("replace to swap its job", func() bool {
		got := activeNames(getCJ("replace"))
		return len(got) == 1 && got[0] == jobName("replace", m2) && !jobExists(jobName("replace", m1))
	})
	waitFor("a JobAlreadyActive event", func() bool { return hasEvent("forbid", "JobAlreadyActive") })
	if jobExists(jobName("forbid", m2)) {
		t.Fatal("Forbid started a second job while the first was active")
	}
	if !hasEvent("replace", "SuccessfulDelete") {
		t.Error("no SuccessfulDelete event for the replaced job")
	}

	// The forbid job finishes: the held-back run starts late.
	done1 := m2.Add(10 * time.Second)
	finish(jobName("forbid", m1), m1.Add(time.Second), done1)
	waitFor("the late run", func() bool {
		cj := getCJ("forbid")
		got := activeNames(cj)
		return len(got) == 1 && got[0] == jobName("forbid", m2) &&
			cj.Status.LastSuccessfulTime != nil && cj.Status.LastSuccessfulTime.Equal(&metav1.Time{Time: done1})
	})
	if !hasEvent("forbid", "SawCompletedJob") {
		t.Error("no SawCompletedJob event")
	}

	// The second finishes too: with successfulJobsHistoryLimit 1 the
	// older success is deleted.
	done2 := m2.Add(20 * time.Second)
	finish(jobName("forbid", m2), m2.Add(12*time.Second), done2)
	waitFor("history cleanup", func() bool {
		cj := getCJ("forbid")
		return !jobExists(jobName("forbid", m1)) && jobExists(jobName("forbid", m2)) &&
			len(cj.Status.Active) == 0 && cj.Status.LastSuccessfulTime.Equal(&metav1.Time{Time: done2})
	})
	waitFor("a SuccessfulDelete event", func() bool { return hasEvent("forbid", "SuccessfulDelete") })
}

// TestSuspendedCronJobDoesNothing checks that a suspended CronJob creates
// nothing at its minute, and runs the latest missed minute once resumed.
func TestSuspendedCronJobDoesNothing(t *testing.T) {
	s := testserver.Start(t, testserver.Options{DisableScheduler: true, Controllers: []string{"garbagecollector"}})
	ctx := context.Background()
	clk := startController(t, s)
	cronJobs := s.Client.BatchV1().CronJobs("default")

	cj := newCronJob("sleepy", batchv1.AllowConcurrent)
	cj.Spec.Suspend = ptr.To(true)
	created, err := cronJobs.Create(ctx, cj, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m1 := created.CreationTimestamp.Truncate(time.Minute).Add(time.Minute)
	clk.SetTime(m1.Add(2 * time.Minute).Add(time.Second))
	time.Sleep(500 * time.Millisecond)
	list, err := s.Client.BatchV1().Jobs("default").List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 0 {
		t.Fatalf("a suspended CronJob created jobs: %v %v", list, err)
	}

	created.Spec.Suspend = ptr.To(false)
	if _, err := cronJobs.Update(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := jobName("sleepy", m1.Add(2*time.Minute))
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 15*time.Second, true, func(ctx context.Context) (bool, error) {
		clk.Step(10 * time.Millisecond)
		list, err := s.Client.BatchV1().Jobs("default").List(ctx, metav1.ListOptions{})
		return err == nil && len(list.Items) == 1 && list.Items[0].Name == want, nil
	})
	if err != nil {
		t.Fatalf("after resuming, expected exactly job %s", want)
	}
}
