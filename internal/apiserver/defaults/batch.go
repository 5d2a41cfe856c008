package defaults

import (
	"math"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels the job controller finds its pods by. Both the current
// batch.kubernetes.io/ spelling and the legacy one are set, as upstream does.
const (
	ControllerUIDLabel       = "batch.kubernetes.io/controller-uid"
	JobNameLabel             = "batch.kubernetes.io/job-name"
	LegacyControllerUIDLabel = "controller-uid"
	LegacyJobNameLabel       = "job-name"
)

func job(j *batchv1.Job) {
	spec := &j.Spec
	// A job that says nothing about parallelism runs one pod to completion;
	// one that sets either keeps the other unset (completions nil means
	// "any pod succeeding finishes the job").
	if spec.Completions == nil && spec.Parallelism == nil {
		spec.Completions = ptrTo(int32(1))
		spec.Parallelism = ptrTo(int32(1))
	}
	if spec.Parallelism == nil {
		spec.Parallelism = ptrTo(int32(1))
	}
	if spec.BackoffLimit == nil {
		if spec.BackoffLimitPerIndex != nil {
			spec.BackoffLimit = ptrTo(int32(math.MaxInt32))
		} else {
			spec.BackoffLimit = ptrTo(int32(6))
		}
	}
	if spec.CompletionMode == nil {
		spec.CompletionMode = ptrTo(batchv1.NonIndexedCompletion)
	}
	if spec.Suspend == nil {
		spec.Suspend = ptrTo(false)
	}
	if pfp := spec.PodFailurePolicy; pfp != nil {
		for i := range pfp.Rules {
			for k := range pfp.Rules[i].OnPodConditions {
				if pfp.Rules[i].OnPodConditions[k].Status == "" {
					pfp.Rules[i].OnPodConditions[k].Status = corev1.ConditionTrue
				}
			}
		}
	}
	if spec.PodReplacementPolicy == nil {
		if spec.PodFailurePolicy != nil {
			spec.PodReplacementPolicy = ptrTo(batchv1.Failed)
		} else {
			spec.PodReplacementPolicy = ptrTo(batchv1.TerminatingOrFailed)
		}
	}

	// Upstream copies the template labels onto an unlabelled job when it
	// decodes the request, before the selector is generated, and again when
	// it reads the stored job back. Doing it on both sides of
	// generateJobSelector gives the same result in one pass.
	jobLabelsFromTemplate(j)
	if (spec.ManualSelector == nil || !*spec.ManualSelector) && j.UID != "" {
		generateJobSelector(j)
	}
	jobLabelsFromTemplate(j)
	podTemplateSpec(&spec.Template)
}

func jobLabelsFromTemplate(j *batchv1.Job) {
	if j.Spec.Template.Labels != nil && len(j.Labels) == 0 {
		j.Labels = make(map[string]string, len(j.Spec.Template.Labels))
		for k, v := range j.Spec.Template.Labels {
			j.Labels[k] = v
		}
	}
}

// generateJobSelector labels the pod template with the job's name and UID
// and selects on the UID, so that a job only ever owns its own pods. Labels
// the user already set are kept; validation rejects wrong values.
func generateJobSelector(j *batchv1.Job) {
	t := &j.Spec.Template
	if t.Labels == nil {
		t.Labels = map[string]string{}
	}
	for _, k := range []string{LegacyJobNameLabel, JobNameLabel} {
		if _, ok := t.Labels[k]; !ok {
			t.Labels[k] = j.Name
		}
	}
	for _, k := range []string{LegacyControllerUIDLabel, ControllerUIDLabel} {
		if _, ok := t.Labels[k]; !ok {
			t.Labels[k] = string(j.UID)
		}
	}
	if j.Spec.Selector == nil {
		j.Spec.Selector = &metav1.LabelSelector{}
	}
	if j.Spec.Selector.MatchLabels == nil {
		j.Spec.Selector.MatchLabels = map[string]string{}
	}
	if _, ok := j.Spec.Selector.MatchLabels[ControllerUIDLabel]; !ok {
		j.Spec.Selector.MatchLabels[ControllerUIDLabel] = string(j.UID)
	}
}

func cronJob(c *batchv1.CronJob) {
	spec := &c.Spec
	if spec.ConcurrencyPolicy == "" {
		spec.ConcurrencyPolicy = batchv1.AllowConcurrent
	}
	if spec.Suspend == nil {
		spec.Suspend = ptrTo(false)
	}
	if spec.SuccessfulJobsHistoryLimit == nil {
		spec.SuccessfulJobsHistoryLimit = ptrTo(int32(3))
	}
	if spec.FailedJobsHistoryLimit == nil {
		spec.FailedJobsHistoryLimit = ptrTo(int32(1))
	}
	// The job template gets only the pod template defaults; the job-level
	// ones are applied when the controller creates each Job.
	podTemplateSpec(&spec.JobTemplate.Spec.Template)
}
