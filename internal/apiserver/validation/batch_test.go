package validation

import (
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validJob() *batchv1.Job {
	t := podTemplate(nil)
	t.Spec.RestartPolicy = corev1.RestartPolicyNever
	return defaulted(&batchv1.Job{ObjectMeta: meta("pi"), Spec: batchv1.JobSpec{Template: t}})
}

func TestJob(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(j *batchv1.Job)
		want   []want
	}{
		{"valid", func(j *batchv1.Job) {}, nil},
		{"restart Always", func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways },
			[]want{notSupported("spec.template.spec.restartPolicy")}},
		{"negative parallelism", func(j *batchv1.Job) { j.Spec.Parallelism = ptr(int32(-1)) }, []want{invalid("spec.parallelism")}},
		{"negative backoffLimit", func(j *batchv1.Job) { j.Spec.BackoffLimit = ptr(int32(-1)) }, []want{invalid("spec.backoffLimit")}},
		{"indexed without completions", func(j *batchv1.Job) {
			j.Spec.CompletionMode = ptr(batchv1.IndexedCompletion)
			j.Spec.Completions = nil
		}, []want{required("spec.completions")}},
		{"wrong uid label", func(j *batchv1.Job) { j.Spec.Template.Labels[controllerUIDLabel] = "other" },
			[]want{invalid("spec.template.metadata.labels[batch.kubernetes.io/controller-uid]"), invalid("spec.template.metadata.labels")}},
		{"foreign selector", func(j *batchv1.Job) {
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"job-name": "pi"}}
		}, []want{invalid("spec.selector")}},
		{"manual selector", func(j *batchv1.Job) {
			j.Spec.ManualSelector = ptr(true)
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"x": "y"}}
			j.Spec.Template.Labels = map[string]string{"x": "y"}
		}, nil},
		{"manual selector missing", func(j *batchv1.Job) {
			j.Spec.ManualSelector = ptr(true)
			j.Spec.Selector = nil
		}, []want{required("spec.selector"), invalid("spec.template.metadata.labels")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := validJob()
			tt.mutate(j)
			checkErrors(t, ValidateCreate(j), tt.want...)
		})
	}
}

func TestJobUpdate(t *testing.T) {
	old := validJob()
	j := old.DeepCopy()
	j.Spec.Parallelism = ptr(int32(3))
	checkErrors(t, ValidateUpdate(j, old))

	j = old.DeepCopy()
	j.Spec.Completions = ptr(int32(3))
	j.Spec.Template.Spec.Containers[0].Image = "perl:2"
	checkErrors(t, ValidateUpdate(j, old), invalid("spec.completions"), invalid("spec.template"))

	// A suspended job that never started may be re-targeted.
	old.Spec.Suspend = ptr(true)
	j = old.DeepCopy()
	j.Spec.Template.Spec.NodeSelector = map[string]string{"zone": "a"}
	checkErrors(t, ValidateUpdate(j, old))

	// Elastic indexed jobs scale completions and parallelism together.
	old = validJob()
	old.Spec.CompletionMode = ptr(batchv1.IndexedCompletion)
	old.Spec.Completions, old.Spec.Parallelism = ptr(int32(2)), ptr(int32(2))
	j = old.DeepCopy()
	j.Spec.Completions, j.Spec.Parallelism = ptr(int32(4)), ptr(int32(4))
	checkErrors(t, ValidateUpdate(j, old))
}

func validCronJob() *batchv1.CronJob {
	t := podTemplate(nil)
	t.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	return defaulted(&batchv1.CronJob{ObjectMeta: meta("backup"), Spec: batchv1.CronJobSpec{
		Schedule:    "*/5 * * * *",
		JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: t}},
	}})
}

func TestCronJob(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *batchv1.CronJob)
		want   []want
	}{
		{"valid", func(c *batchv1.CronJob) {}, nil},
		{"hourly", func(c *batchv1.CronJob) { c.Spec.Schedule = "@hourly" }, nil},
		{"every", func(c *batchv1.CronJob) { c.Spec.Schedule = "@every 1h30m" }, nil},
		{"names", func(c *batchv1.CronJob) { c.Spec.Schedule = "0 9 * jan-mar MON-FRI" }, nil},
		{"list and ranges", func(c *batchv1.CronJob) { c.Spec.Schedule = "0,30 8-18/2 1,15 * ?" }, nil},
		{"no schedule", func(c *batchv1.CronJob) { c.Spec.Schedule = "" }, []want{required("spec.schedule")}},
		{"four fields", func(c *batchv1.CronJob) { c.Spec.Schedule = "* * * *" }, []want{invalid("spec.schedule")}},
		{"minute 60", func(c *batchv1.CronJob) { c.Spec.Schedule = "60 * * * *" }, []want{invalid("spec.schedule")}},
		{"unknown descriptor", func(c *batchv1.CronJob) { c.Spec.Schedule = "@sometimes" }, []want{invalid("spec.schedule")}},
		{"TZ in schedule", func(c *batchv1.CronJob) { c.Spec.Schedule = "TZ=UTC 0 * * * *" }, []want{invalid("spec.schedule")}},
		{"time zone", func(c *batchv1.CronJob) { c.Spec.TimeZone = ptr("Europe/Berlin") }, nil},
		{"unknown time zone", func(c *batchv1.CronJob) { c.Spec.TimeZone = ptr("Mars/Olympus") }, []want{invalid("spec.timeZone")}},
		{"Local time zone", func(c *batchv1.CronJob) { c.Spec.TimeZone = ptr("Local") }, []want{invalid("spec.timeZone")}},
		{"bad concurrency", func(c *batchv1.CronJob) { c.Spec.ConcurrencyPolicy = "Sometimes" }, []want{notSupported("spec.concurrencyPolicy")}},
		{"negative history", func(c *batchv1.CronJob) { c.Spec.FailedJobsHistoryLimit = ptr(int32(-1)) }, []want{invalid("spec.failedJobsHistoryLimit")}},
		{"selector in template", func(c *batchv1.CronJob) { c.Spec.JobTemplate.Spec.Selector = &metav1.LabelSelector{} },
			[]want{invalid("spec.jobTemplate.spec.selector")}},
		{"template restart Always", func(c *batchv1.CronJob) {
			c.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
		},
			[]want{notSupported("spec.jobTemplate.spec.template.spec.restartPolicy")}},
		{"name too long", func(c *batchv1.CronJob) { c.Name = strings.Repeat("a", 53) }, []want{invalid("metadata.name")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validCronJob()
			tt.mutate(c)
			checkErrors(t, ValidateCreate(c), tt.want...)
		})
	}
}

func TestParseCronMessages(t *testing.T) {
	tests := []struct{ spec, want string }{
		{"* * * *", "expected exactly 5 fields, found 4: [* * * *]"},
		{"60 * * * *", "end of range (60) above maximum (59): 60"},
		{"* * 0 * *", "beginning of range (0) below minimum (1): 0"},
		{"5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"},
		{"x * * * *", "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax"},
		{"*/0 * * * *", "step of range should be a positive number: */0"},
		{"@weekly", ""},
		{"@foo", "unrecognized descriptor: @foo"},
		{"1-2-3 * * * *", "too many hyphens: 1-2-3"},
	}
	for _, tt := range tests {
		err := parseCron(tt.spec)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("parseCron(%q) = %q, want %q", tt.spec, got, tt.want)
		}
	}
}
