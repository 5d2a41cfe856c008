package validation

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	_ "time/tzdata" // CronJob time zones must not depend on the host's zoneinfo.

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The job controller's labels; see the defaults package, which sets them.
const (
	controllerUIDLabel       = "batch.kubernetes.io/controller-uid"
	jobNameLabel             = "batch.kubernetes.io/job-name"
	legacyControllerUIDLabel = "controller-uid"
	legacyJobNameLabel       = "job-name"
)

// A CronJob's jobs are named <cronjob>-<11-character suffix> and job names
// end up in a 63-character label.
const maxCronJobNameLength = 63 - 11

func validateJob(j *batchv1.Job) field.ErrorList {
	spec := &j.Spec
	errs := validateJobSpec(spec, specPath)
	if spec.Selector == nil {
		errs = append(errs, field.Required(specPath.Child("selector"), ""))
	} else {
		errs = append(errs, labelSelector(spec.Selector, specPath.Child("selector"))...)
	}
	// Upstream checks the match for any selector (nil included, which
	// matches nothing).
	if s, err := metav1.LabelSelectorAsSelector(spec.Selector); err == nil && !s.Matches(labels.Set(spec.Template.Labels)) {
		errs = append(errs, field.Invalid(specPath.Child("template", "metadata", "labels"), spec.Template.Labels, selectorMismatchMsg))
	}
	return append(errs, generatedSelector(j)...)
}

// generatedSelector checks that a job which did not ask for a manual
// selector carries exactly the selector and labels generated for it.
func generatedSelector(j *batchv1.Job) field.ErrorList {
	if j.Spec.ManualSelector != nil && *j.Spec.ManualSelector {
		return nil
	}
	var errs field.ErrorList
	if j.UID == "" {
		errs = append(errs, field.InternalError(metadataPath.Child("uid"), fmt.Errorf("uid for selector generation")))
	}
	metaPath := specPath.Child("template", "metadata")
	hasLabel := func(key, want string) {
		p := metaPath.Child("labels").Key(key)
		got, ok := j.Spec.Template.Labels[key]
		switch {
		case !ok:
			errs = append(errs, field.Required(p, want))
		case got != want:
			errs = append(errs, field.Invalid(p, j.Spec.Template.Labels, want))
		}
	}
	hasLabel(legacyControllerUIDLabel, string(j.UID))
	hasLabel(legacyJobNameLabel, j.Name)
	hasLabel(controllerUIDLabel, string(j.UID))
	hasLabel(jobNameLabel, j.Name)
	s, err := metav1.LabelSelectorAsSelector(j.Spec.Selector)
	if err == nil && !s.Matches(labels.Set{controllerUIDLabel: string(j.UID)}) {
		errs = append(errs, field.Invalid(specPath.Child("selector"), j.Spec.Selector, "`selector` not auto-generated"))
	}
	return errs
}

// validateJobSpec checks what a Job and a CronJob's job template share.
func validateJobSpec(spec *batchv1.JobSpec, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, nonNegativePtr(spec.Parallelism, fldPath.Child("parallelism"))...)
	errs = append(errs, nonNegativePtr(spec.Completions, fldPath.Child("completions"))...)
	errs = append(errs, nonNegativePtr(spec.ActiveDeadlineSeconds, fldPath.Child("activeDeadlineSeconds"))...)
	errs = append(errs, nonNegativePtr(spec.BackoffLimit, fldPath.Child("backoffLimit"))...)
	errs = append(errs, nonNegativePtr(spec.TTLSecondsAfterFinished, fldPath.Child("ttlSecondsAfterFinished"))...)
	if spec.CompletionMode != nil {
		errs = append(errs, oneOf(*spec.CompletionMode, fldPath.Child("completionMode"), batchv1.NonIndexedCompletion, batchv1.IndexedCompletion)...)
		if *spec.CompletionMode == batchv1.IndexedCompletion && spec.Completions == nil {
			errs = append(errs, field.Required(fldPath.Child("completions"), "when completion mode is Indexed"))
		}
	}
	indexed := spec.CompletionMode != nil && *spec.CompletionMode == batchv1.IndexedCompletion
	if spec.BackoffLimitPerIndex != nil {
		errs = append(errs, nonNegative(int64(*spec.BackoffLimitPerIndex), fldPath.Child("backoffLimitPerIndex"))...)
		if !indexed {
			errs = append(errs, field.Forbidden(fldPath.Child("backoffLimitPerIndex"), "requires indexed completion mode"))
		}
	}
	if spec.MaxFailedIndexes != nil {
		errs = append(errs, nonNegative(int64(*spec.MaxFailedIndexes), fldPath.Child("maxFailedIndexes"))...)
		if spec.BackoffLimitPerIndex == nil {
			errs = append(errs, field.Required(fldPath.Child("backoffLimitPerIndex"), "when maxFailedIndexes is specified"))
		}
	}
	if spec.PodReplacementPolicy != nil {
		errs = append(errs, oneOf(*spec.PodReplacementPolicy, fldPath.Child("podReplacementPolicy"), batchv1.TerminatingOrFailed, batchv1.Failed)...)
		if spec.PodFailurePolicy != nil && *spec.PodReplacementPolicy != batchv1.Failed {
			errs = append(errs, field.NotSupported(fldPath.Child("podReplacementPolicy"), *spec.PodReplacementPolicy, []batchv1.PodReplacementPolicy{batchv1.Failed}))
		}
	}

	tPath := fldPath.Child("template")
	errs = append(errs, validatePodTemplateSpec(&spec.Template, tPath)...)
	rp := spec.Template.Spec.RestartPolicy
	if rp != corev1.RestartPolicyOnFailure && rp != corev1.RestartPolicyNever && rp != "" {
		errs = append(errs, field.NotSupported(tPath.Child("spec", "restartPolicy"), rp,
			[]corev1.RestartPolicy{corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}))
	}
	if spec.PodFailurePolicy != nil && rp != corev1.RestartPolicyNever {
		errs = append(errs, field.Invalid(tPath.Child("spec", "restartPolicy"), rp, "only \"Never\" is supported when podFailurePolicy is specified"))
	}
	return errs
}

func validateJobUpdate(j, old *batchv1.Job) field.ErrorList {
	var errs field.ErrorList
	// An indexed job may be resized when completions and parallelism
	// change together (elastic indexed jobs).
	elastic := j.Spec.CompletionMode != nil && *j.Spec.CompletionMode == batchv1.IndexedCompletion &&
		equalPtr(j.Spec.Completions, j.Spec.Parallelism) && equalPtr(old.Spec.Completions, old.Spec.Parallelism)
	if !elastic {
		errs = append(errs, immutable(j.Spec.Completions, old.Spec.Completions, specPath.Child("completions"))...)
	}
	errs = append(errs, immutable(j.Spec.Selector, old.Spec.Selector, specPath.Child("selector"))...)
	errs = append(errs, immutable(j.Spec.CompletionMode, old.Spec.CompletionMode, specPath.Child("completionMode"))...)
	errs = append(errs, immutable(j.Spec.PodFailurePolicy, old.Spec.PodFailurePolicy, specPath.Child("podFailurePolicy"))...)
	errs = append(errs, immutable(j.Spec.BackoffLimitPerIndex, old.Spec.BackoffLimitPerIndex, specPath.Child("backoffLimitPerIndex"))...)
	errs = append(errs, immutable(j.Spec.ManagedBy, old.Spec.ManagedBy, specPath.Child("managedBy"))...)
	errs = append(errs, immutable(j.Spec.SuccessPolicy, old.Spec.SuccessPolicy, specPath.Child("successPolicy"))...)

	// The template is fixed once pods may exist. A job that is suspended
	// and has never started may still have its scheduling directives
	// changed, so that a queueing controller can place it.
	template, oldTemplate := j.Spec.Template.DeepCopy(), old.Spec.Template.DeepCopy()
	if old.Spec.Suspend != nil && *old.Spec.Suspend && old.Status.StartTime == nil {
		for _, t := range []*corev1.PodTemplateSpec{template, oldTemplate} {
			t.Labels, t.Annotations = nil, nil
			t.Spec.NodeSelector, t.Spec.Tolerations, t.Spec.Affinity, t.Spec.SchedulingGates = nil, nil, nil, nil
		}
	}
	if !apiequality.Semantic.DeepEqual(template, oldTemplate) {
		errs = append(errs, field.Invalid(specPath.Child("template"), j.Spec.Template, "field is immutable"))
	}
	return errs
}

func equalPtr[T comparable](a, b *T) bool {
	return a != nil && b != nil && *a == *b
}

func validateCronJob(c *batchv1.CronJob) field.ErrorList {
	var errs field.ErrorList
	if len(c.Name) > maxCronJobNameLength {
		errs = append(errs, field.Invalid(metadataPath.Child("name"), c.Name, fmt.Sprintf("must be no more than %d characters", maxCronJobNameLength)))
	}
	spec := &c.Spec
	schedPath := specPath.Child("schedule")
	if spec.Schedule == "" {
		errs = append(errs, field.Required(schedPath, ""))
	} else {
		if err := parseCron(spec.Schedule); err != nil {
			errs = append(errs, field.Invalid(schedPath, spec.Schedule, err.Error()))
		}
		if strings.Contains(spec.Schedule, "TZ") {
			if spec.TimeZone != nil {
				errs = append(errs, field.Invalid(schedPath, spec.Schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"))
			} else {
				errs = append(errs, field.Invalid(schedPath, spec.Schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
			}
		}
	}
	errs = append(errs, validateTimeZone(spec.TimeZone, specPath.Child("timeZone"))...)
	errs = append(errs, oneOf(spec.ConcurrencyPolicy, specPath.Child("concurrencyPolicy"),
		batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent)...)
	errs = append(errs, nonNegativePtr(spec.StartingDeadlineSeconds, specPath.Child("startingDeadlineSeconds"))...)
	errs = append(errs, nonNegativePtr(spec.SuccessfulJobsHistoryLimit, specPath.Child("successfulJobsHistoryLimit"))...)
	errs = append(errs, nonNegativePtr(spec.FailedJobsHistoryLimit, specPath.Child("failedJobsHistoryLimit"))...)

	jtPath := specPath.Child("jobTemplate")
	errs = append(errs, validateJobSpec(&spec.JobTemplate.Spec, jtPath.Child("spec"))...)
	// The controller generates the selector of every job it creates.
	if spec.JobTemplate.Spec.Selector != nil {
		errs = append(errs, field.Invalid(jtPath.Child("spec", "selector"), spec.JobTemplate.Spec.Selector, "`selector` will be auto-generated"))
	}
	if m := spec.JobTemplate.Spec.ManualSelector; m != nil && *m {
		errs = append(errs, field.NotSupported(jtPath.Child("spec", "manualSelector"), *m, []string{"nil", "false"}))
	}
	return errs
}

var validTimeZoneCharacters = regexp.MustCompile(`^[A-Za-z\.\-_0-9+]{1,14}$`)

func validateTimeZone(tz *string, fldPath *field.Path) field.ErrorList {
	if tz == nil {
		return nil
	}
	if *tz == "" {
		return field.ErrorList{field.Invalid(fldPath, *tz, "timeZone must be nil or non-empty string")}
	}
	for _, part := range strings.Split(*tz, "/") {
		if part == "." || part == ".." || strings.HasPrefix(part, "-") || !validTimeZoneCharacters.MatchString(part) {
			return field.ErrorList{field.Invalid(fldPath, *tz, fmt.Sprintf("unknown time zone %s", *tz))}
		}
	}
	if strings.EqualFold(*tz, "Local") {
		return field.ErrorList{field.Invalid(fldPath, *tz, "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones")}
	}
	if _, err := time.LoadLocation(*tz); err != nil {
		return field.ErrorList{field.Invalid(fldPath, *tz, err.Error())}
	}
	return nil
}
