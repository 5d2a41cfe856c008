package defaults

import (
	"math"
	"reflect"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestJobDefaults(t *testing.T) {
	tests := []struct {
		name                                 string
		spec                                 batchv1.JobSpec
		completions, parallelism, backoffLim *int32
		replacement                          batchv1.PodReplacementPolicy
	}{
		{"nothing set", batchv1.JobSpec{}, ptrTo(int32(1)), ptrTo(int32(1)), ptrTo(int32(6)), batchv1.TerminatingOrFailed},
		{"parallelism only", batchv1.JobSpec{Parallelism: ptrTo(int32(3))}, nil, ptrTo(int32(3)), ptrTo(int32(6)), batchv1.TerminatingOrFailed},
		{"completions only", batchv1.JobSpec{Completions: ptrTo(int32(5))}, ptrTo(int32(5)), ptrTo(int32(1)), ptrTo(int32(6)), batchv1.TerminatingOrFailed},
		{"backoff per index", batchv1.JobSpec{BackoffLimitPerIndex: ptrTo(int32(1))}, ptrTo(int32(1)), ptrTo(int32(1)), ptrTo(int32(math.MaxInt32)), batchv1.TerminatingOrFailed},
		{"pod failure policy", batchv1.JobSpec{PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
			OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget}}}}}},
			ptrTo(int32(1)), ptrTo(int32(1)), ptrTo(int32(6)), batchv1.Failed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := &batchv1.Job{Spec: tt.spec}
			Apply(j)
			s := j.Spec
			if !reflect.DeepEqual(s.Completions, tt.completions) || !reflect.DeepEqual(s.Parallelism, tt.parallelism) || !reflect.DeepEqual(s.BackoffLimit, tt.backoffLim) {
				t.Errorf("completions/parallelism/backoffLimit = %v/%v/%v", s.Completions, s.Parallelism, *s.BackoffLimit)
			}
			if *s.PodReplacementPolicy != tt.replacement || *s.CompletionMode != batchv1.NonIndexedCompletion || *s.Suspend {
				t.Errorf("got %+v", s)
			}
			if p := s.PodFailurePolicy; p != nil && p.Rules[0].OnPodConditions[0].Status != corev1.ConditionTrue {
				t.Errorf("pod condition status not defaulted")
			}
		})
	}
}

func TestJobSelectorGeneration(t *testing.T) {
	want := map[string]string{
		"batch.kubernetes.io/controller-uid": "u1", "batch.kubernetes.io/job-name": "pi",
		"controller-uid": "u1", "job-name": "pi",
	}

	// An unlabelled job gets the generated labels, on the template and on
	// itself.
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "pi", UID: "u1"}}
	Apply(j)
	if !reflect.DeepEqual(j.Spec.Template.Labels, want) || !reflect.DeepEqual(j.Labels, want) {
		t.Errorf("labels: template %v, job %v", j.Spec.Template.Labels, j.Labels)
	}
	if !reflect.DeepEqual(j.Spec.Selector, &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": "u1"}}) {
		t.Errorf("selector %v", j.Spec.Selector)
	}
	before := j.DeepCopy()
	Apply(j)
	if !reflect.DeepEqual(before, j) {
		t.Errorf("second Apply changed the job")
	}

	// With template labels the job takes only the user's labels.
	j = &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "pi", UID: "u1"}}
	j.Spec.Template.Labels = map[string]string{"app": "pi"}
	Apply(j)
	if !reflect.DeepEqual(j.Labels, map[string]string{"app": "pi"}) || j.Spec.Template.Labels["controller-uid"] != "u1" {
		t.Errorf("labels: template %v, job %v", j.Spec.Template.Labels, j.Labels)
	}

	// A manual selector and a job without a UID are left alone.
	for _, j := range []*batchv1.Job{
		{ObjectMeta: metav1.ObjectMeta{Name: "pi", UID: "u1"}, Spec: batchv1.JobSpec{ManualSelector: ptrTo(true)}},
		{ObjectMeta: metav1.ObjectMeta{Name: "pi"}},
	} {
		Apply(j)
		if j.Spec.Selector != nil || j.Spec.Template.Labels != nil {
			t.Errorf("selector generated for %+v", j.ObjectMeta)
		}
	}
}

func TestCronJobDefaults(t *testing.T) {
	c := &batchv1.CronJob{}
	c.Spec.JobTemplate.Spec.Template.Spec.Containers = []corev1.Container{{Image: "busybox:1"}}
	Apply(c)
	s := c.Spec
	if s.ConcurrencyPolicy != batchv1.AllowConcurrent || *s.Suspend || *s.SuccessfulJobsHistoryLimit != 3 || *s.FailedJobsHistoryLimit != 1 {
		t.Errorf("got %+v", s)
	}
	// Job-level defaults are for the jobs the controller creates.
	if s.JobTemplate.Spec.BackoffLimit != nil || s.JobTemplate.Spec.Template.Spec.Containers[0].ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("job template %+v", s.JobTemplate.Spec)
	}
}
