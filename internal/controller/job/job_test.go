package job_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sort"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/controller"
	"github.com/lotse/lotse/internal/controller/job"
	"github.com/lotse/lotse/internal/sim"
	"github.com/lotse/lotse/internal/testserver"
)

// podRunTime is how long simulated pods run before they succeed.
const podRunTime = 1500 * time.Millisecond

// startCluster starts the control plane with the scheduler and the
// garbage collector (but no job controller of its own), two simulated
// nodes, and this package's controller with a short pod back-off.
// The labels and variable upstream puts on a Job's pods.
const (
	labelControllerUID       = "batch.kubernetes.io/controller-uid"
	labelJobName             = "batch.kubernetes.io/job-name"
	labelLegacyControllerUID = "controller-uid"
	labelLegacyJobName       = "job-name"
	completionIndexEnv       = "JOB_COMPLETION_INDEX"
)

func startCluster(t *testing.T) kubernetes.Interface {
	t.Helper()
	s := testserver.Start(t, testserver.Options{Controllers: []string{"garbagecollector", "namespace", "serviceaccount"}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	t.Cleanup(func() { cancel(); <-done; <-done })

	nodes, err := sim.New(sim.Config{Client: s.Client, Nodes: 2, PodRunTime: podRunTime})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = nodes.Run(ctx); done <- struct{}{} }()

	inf := informers.NewSharedInformerFactory(s.Client, 0)
	c, err := job.New(&controller.Context{Client: s.Client, Informers: inf, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: clock.RealClock{}})
	if err != nil {
		t.Fatal(err)
	}
	job.SetPodBackoff(c, 100*time.Millisecond)
	inf.Start(ctx.Done())
	go func() { _ = c.Run(ctx); done <- struct{}{} }()
	waitFor(t, "sim nodes", func() bool { return nodes.Registered() == 2 })
	return s.Client
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 20*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

func newJob(name string, completions, parallelism *int32) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: batchv1.JobSpec{
			Completions: completions, Parallelism: parallelism,
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy:                 corev1.RestartPolicyNever,
				TerminationGracePeriodSeconds: ptr.To[int64](0),
				Containers:                    []corev1.Container{{Name: "pi", Image: "perl:5.34"}},
			}},
		},
	}
}

func getJob(t *testing.T, c kubernetes.Interface, name string) *batchv1.Job {
	t.Helper()
	j, err := c.BatchV1().Jobs("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func jobPods(t *testing.T, c kubernetes.Interface, job *batchv1.Job) []corev1.Pod {
	t.Helper()
	pods, err := c.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: labelControllerUID + "=" + string(job.UID)})
	if err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

func condition(j *batchv1.Job, ct batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range j.Status.Conditions {
		if j.Status.Conditions[i].Type == ct && j.Status.Conditions[i].Status == corev1.ConditionTrue {
			return &j.Status.Conditions[i]
		}
	}
	return nil
}

// anyCondition finds a condition of the type, whatever its status.
func anyCondition(j *batchv1.Job, ct batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range j.Status.Conditions {
		if j.Status.Conditions[i].Type == ct {
			return &j.Status.Conditions[i]
		}
	}
	return nil
}

func conditionTypes(j *batchv1.Job) []batchv1.JobConditionType {
	var out []batchv1.JobConditionType
	for _, c := range j.Status.Conditions {
		out = append(out, c.Type)
	}
	return out
}

func hasEvent(t *testing.T, c kubernetes.Interface, job, reason string) bool {
	t.Helper()
	ev, err := c.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + job + ",reason=" + reason})
	return err == nil && len(ev.Items) > 0
}

func TestJobController(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	jobs := c.BatchV1().Jobs("default")

	t.Run("completions 3, parallelism 2", func(t *testing.T) {
		job, err := jobs.Create(ctx, newJob("pi", ptr.To[int32](3), ptr.To[int32](2)), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "2 active", func() bool { return getJob(t, c, "pi").Status.Active == 2 })
		if n := len(jobPods(t, c, job)); n != 2 {
			t.Errorf("%d pods while 2 are active, want parallelism 2", n)
		}
		waitFor(t, "Complete", func() bool { return condition(getJob(t, c, "pi"), batchv1.JobComplete) != nil })
		j := getJob(t, c, "pi")
		if j.Status.Succeeded != 3 || j.Status.Failed != 0 || j.Status.Active != 0 || j.Status.CompletionTime == nil || j.Status.StartTime == nil {
			t.Errorf("status %+v", j.Status)
		}
		if got := conditionTypes(j); len(got) != 2 || got[0] != batchv1.JobSuccessCriteriaMet || got[1] != batchv1.JobComplete {
			t.Errorf("conditions %v, want SuccessCriteriaMet then Complete", got)
		}
		if cond := condition(j, batchv1.JobComplete); cond.Reason != batchv1.JobReasonCompletionsReached {
			t.Errorf("Complete reason %q", cond.Reason)
		}
		if u := j.Status.UncountedTerminatedPods; u != nil && len(u.Succeeded)+len(u.Failed) > 0 {
			t.Errorf("uncounted left: %+v", u)
		}
		pods := jobPods(t, c, job)
		if len(pods) != 3 {
			t.Errorf("%d pods, want exactly 3", len(pods))
		}
		for _, p := range pods {
			if slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer) {
				t.Errorf("pod %s keeps the tracking finalizer", p.Name)
			}
			if p.Labels[labelJobName] != "pi" || p.Labels[labelLegacyJobName] != "pi" || p.Labels[labelLegacyControllerUID] != string(job.UID) {
				t.Errorf("pod %s labels %v", p.Name, p.Labels)
			}
			if ref := metav1.GetControllerOf(&p); ref == nil || ref.UID != job.UID || !*ref.BlockOwnerDeletion {
				t.Errorf("pod %s controller %v", p.Name, ref)
			}
		}
		waitFor(t, "events", func() bool { return hasEvent(t, c, "pi", "SuccessfulCreate") && hasEvent(t, c, "pi", "Completed") })
	})

	t.Run("backoff limit", func(t *testing.T) {
		spec := newJob("fails", ptr.To[int32](1), ptr.To[int32](1))
		spec.Spec.BackoffLimit = ptr.To[int32](1)
		job, err := jobs.Create(ctx, spec, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Fail every pod the job starts, as a kubelet would report a
		// container exiting 1.
		failed := map[string]bool{}
		waitFor(t, "Failed", func() bool {
			for _, p := range jobPods(t, c, job) {
				if failed[p.Name] || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
					continue
				}
				p.Status.Phase = corev1.PodFailed
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "pi", State: corev1.ContainerState{
					Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", FinishedAt: metav1.Now()}}}}
				if _, err := c.CoreV1().Pods("default").UpdateStatus(ctx, &p, metav1.UpdateOptions{}); err == nil {
					failed[p.Name] = true
				}
			}
			return condition(getJob(t, c, "fails"), batchv1.JobFailed) != nil
		})
		j := getJob(t, c, "fails")
		if j.Status.Failed != 2 || j.Status.Succeeded != 0 || j.Status.Active != 0 {
			t.Errorf("status %+v", j.Status)
		}
		if got := conditionTypes(j); len(got) != 2 || got[0] != batchv1.JobFailureTarget || got[1] != batchv1.JobFailed {
			t.Errorf("conditions %v, want FailureTarget then Failed", got)
		}
		if cond := condition(j, batchv1.JobFailed); cond.Reason != batchv1.JobReasonBackoffLimitExceeded || cond.Message != "Job has reached the specified backoff limit" {
			t.Errorf("Failed %q %q", cond.Reason, cond.Message)
		}
		if len(failed) != 2 {
			t.Errorf("%d pods failed, want 2 (backoffLimit 1)", len(failed))
		}
		waitFor(t, "BackoffLimitExceeded event", func() bool { return hasEvent(t, c, "fails", "BackoffLimitExceeded") })
	})

	t.Run("indexed", func(t *testing.T) {
		spec := newJob("idx", ptr.To[int32](3), ptr.To[int32](3))
		spec.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
		job, err := jobs.Create(ctx, spec, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "Complete", func() bool { return condition(getJob(t, c, "idx"), batchv1.JobComplete) != nil })
		j := getJob(t, c, "idx")
		if j.Status.CompletedIndexes != "0-2" || j.Status.Succeeded != 3 {
			t.Errorf("completedIndexes %q succeeded %d", j.Status.CompletedIndexes, j.Status.Succeeded)
		}
		var got []string
		for _, p := range jobPods(t, c, job) {
			ix := p.Annotations[batchv1.JobCompletionIndexAnnotation]
			got = append(got, ix)
			if p.Labels[batchv1.JobCompletionIndexAnnotation] != ix || p.Spec.Hostname != "idx-"+ix {
				t.Errorf("pod %s: label %q hostname %q", p.Name, p.Labels[batchv1.JobCompletionIndexAnnotation], p.Spec.Hostname)
			}
			if len(p.Spec.Containers[0].Env) != 1 || p.Spec.Containers[0].Env[0].Name != completionIndexEnv {
				t.Errorf("pod %s env %v", p.Name, p.Spec.Containers[0].Env)
			}
		}
		sort.Strings(got)
		if len(got) != 3 || got[0] != "0" || got[1] != "1" || got[2] != "2" {
			t.Errorf("indexes %v, want 0 1 2", got)
		}
	})

	t.Run("suspend and resume", func(t *testing.T) {
		spec := newJob("sus", ptr.To[int32](2), ptr.To[int32](2))
		spec.Spec.Suspend = ptr.To(true)
		job, err := jobs.Create(ctx, spec, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "Suspended", func() bool { return condition(getJob(t, c, "sus"), batchv1.JobSuspended) != nil })
		if j := getJob(t, c, "sus"); j.Status.StartTime != nil || len(jobPods(t, c, job)) != 0 {
			t.Fatalf("a job created suspended started: %+v", j.Status)
		}
		setSuspend := func(v bool) {
			t.Helper()
			// The controller writes the job's status meanwhile: retry
			// on conflict, as any client does.
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				j := getJob(t, c, "sus")
				j.Spec.Suspend = ptr.To(v)
				_, err := jobs.Update(ctx, j, metav1.UpdateOptions{})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		setSuspend(false)
		waitFor(t, "2 active after resume", func() bool { return getJob(t, c, "sus").Status.Active == 2 })
		j := getJob(t, c, "sus")
		firstStart := j.Status.StartTime
		if firstStart == nil {
			t.Fatal("no startTime after resume")
		}
		if cond := anyCondition(j, batchv1.JobSuspended); cond == nil || cond.Status != corev1.ConditionFalse || cond.Reason != "JobResumed" {
			t.Errorf("Suspended condition after resume: %+v", cond)
		}
		setSuspend(true)
		waitFor(t, "pods deleted on suspend", func() bool {
			j := getJob(t, c, "sus")
			return j.Status.Active == 0 && condition(j, batchv1.JobSuspended) != nil && len(jobPods(t, c, job)) == 0
		})
		if j := getJob(t, c, "sus"); j.Status.Failed != 0 || j.Status.Succeeded != 0 {
			t.Errorf("pods deleted on suspend were counted: %+v", j.Status)
		}
		time.Sleep(1100 * time.Millisecond) // startTime has second precision
		setSuspend(false)
		waitFor(t, "Complete after resume", func() bool { return condition(getJob(t, c, "sus"), batchv1.JobComplete) != nil })
		if j := getJob(t, c, "sus"); !firstStart.Before(j.Status.StartTime) || j.Status.Succeeded != 2 {
			t.Errorf("startTime %v (first %v), succeeded %d", j.Status.StartTime, firstStart, j.Status.Succeeded)
		}
	})

	t.Run("ttl after finished", func(t *testing.T) {
		spec := newJob("ttl", nil, ptr.To[int32](1))
		spec.Spec.TTLSecondsAfterFinished = ptr.To[int32](1)
		job, err := jobs.Create(ctx, spec, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// With a 1 s TTL the job may already be gone when a slow poll
		// looks; only a finished job is ever deleted for its TTL.
		waitFor(t, "Complete", func() bool {
			j, err := jobs.Get(ctx, "ttl", metav1.GetOptions{})
			return apierrors.IsNotFound(err) || err == nil && condition(j, batchv1.JobComplete) != nil
		})
		waitFor(t, "job deleted", func() bool {
			_, err := jobs.Get(ctx, "ttl", metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		})
		waitFor(t, "pods deleted", func() bool { return len(jobPods(t, c, job)) == 0 })
	})
}
