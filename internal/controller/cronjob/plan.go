package cronjob

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// This file holds the decisions of one sync as pure functions of the
// CronJob, its jobs and the time, so that they can be tested without an
// API server. The controller gathers the inputs and carries out the plan.

// nextScheduleDelta pads every requeue, as upstream's, so a clock running
// slightly behind the API server's still wakes after the activation.
const nextScheduleDelta = 100 * time.Millisecond

// tooManyMissed is how many missed activations are counted before the
// controller stops counting, warns, and considers only the latest.
const tooManyMissed = 100

// event is an event to record on the CronJob.
type event struct {
	Type, Reason, Message string
}

func normal(reason, format string, args ...any) event {
	return event{corev1.EventTypeNormal, reason, fmt.Sprintf(format, args...)}
}

func warning(reason, format string, args ...any) event {
	return event{corev1.EventTypeWarning, reason, fmt.Sprintf(format, args...)}
}

// plan is what one sync decided.
type plan struct {
	// status is the CronJob's status after looking at its jobs, before
	// any job is created or replaced.
	status batchv1.CronJobStatus
	events []event
	// cleanup lists finished jobs beyond the history limits, oldest first.
	cleanup []*batchv1.Job
	// create is the scheduled time of the job to create now, if any.
	create *time.Time
	// replace says to delete the active jobs first (concurrencyPolicy Replace).
	replace bool
	// requeue is when to look at the CronJob again; nil means only when
	// it or one of its jobs changes.
	requeue *time.Duration
}

// makePlan decides what to do about cj at now. jobs are the jobs it
// controls; missing holds the UIDs of active jobs confirmed gone from the
// API server. local is the zone of a schedule without spec.timeZone.
func makePlan(cj *batchv1.CronJob, jobs []*batchv1.Job, missing map[types.UID]bool, now time.Time, local *time.Location) plan {
	var p plan
	observed := cj.DeepCopy()
	p.events = observeJobs(&observed.Status, jobs, missing)
	p.status = observed.Status
	p.cleanup = historyToDelete(cj, jobs)
	d := decide(observed, now, local)
	p.events = append(p.events, d.events...)
	p.create, p.replace, p.requeue = d.create, d.replace, d.requeue
	return p
}

// observeJobs brings status up to date with the jobs: finished jobs leave
// the active list, the latest success is recorded, and active jobs that
// no longer exist are dropped.
func observeJobs(status *batchv1.CronJobStatus, jobs []*batchv1.Job, missing map[types.UID]bool) []event {
	var events []event
	for _, j := range jobs {
		cond, finished := finishedCondition(j)
		active := inActive(status, j.UID)
		if !finished {
			if !active {
				// Created by someone else (kubectl create job --from), or
				// by us just before a crash that lost the status update.
				events = append(events, warning("UnexpectedJob", "Saw a job that the controller did not create or forgot: %s", j.Name))
			}
			continue
		}
		if active {
			removeActive(status, j.UID)
			events = append(events, normal("SawCompletedJob", "Saw completed job: %s, condition: %v", j.Name, cond))
		}
		if cond == batchv1.JobComplete {
			// A success counts even if the job was never in the active list.
			done := j.Status.CompletionTime
			if status.LastSuccessfulTime == nil || (done != nil && done.After(status.LastSuccessfulTime.Time)) {
				status.LastSuccessfulTime = done.DeepCopy()
			}
		}
	}
	for _, ref := range append([]corev1.ObjectReference(nil), status.Active...) {
		if missing[ref.UID] {
			// Without this a CronJob with Forbid would wait forever for
			// a job someone deleted.
			removeActive(status, ref.UID)
			events = append(events, normal("MissingJob", "Active job went missing: %v", ref.Name))
		}
	}
	return events
}

// historyToDelete picks the finished jobs beyond successfulJobsHistoryLimit
// and failedJobsHistoryLimit, the earliest started first. A nil limit
// keeps every job of its kind.
func historyToDelete(cj *batchv1.CronJob, jobs []*batchv1.Job) []*batchv1.Job {
	var succeeded, failed []*batchv1.Job
	for _, j := range jobs {
		if j.DeletionTimestamp != nil {
			continue // already going; deleting it again would only repeat the event
		}
		switch cond, _ := finishedCondition(j); cond {
		case batchv1.JobComplete:
			succeeded = append(succeeded, j)
		case batchv1.JobFailed:
			failed = append(failed, j)
		}
	}
	var out []*batchv1.Job
	for _, h := range []struct {
		jobs  []*batchv1.Job
		limit *int32
	}{{succeeded, cj.Spec.SuccessfulJobsHistoryLimit}, {failed, cj.Spec.FailedJobsHistoryLimit}} {
		if h.limit == nil || len(h.jobs) <= int(*h.limit) {
			continue
		}
		sort.SliceStable(h.jobs, func(a, b int) bool { return startedBefore(h.jobs[a], h.jobs[b]) })
		out = append(out, h.jobs[:len(h.jobs)-int(*h.limit)]...)
	}
	return out
}

// startedBefore orders jobs by start time, jobs that never started last,
// and by name among equals, as upstream does.
func startedBefore(a, b *batchv1.Job) bool {
	as, bs := a.Status.StartTime, b.Status.StartTime
	switch {
	case as == nil && bs != nil:
		return false
	case as != nil && bs == nil:
		return true
	case as.Equal(bs):
		return a.Name < b.Name
	}
	return as.Before(bs)
}

// decision is what the schedule asks for at a moment.
type decision struct {
	events  []event
	create  *time.Time
	replace bool
	requeue *time.Duration
}

// decide applies the schedule, the starting deadline and the concurrency
// policy to a CronJob whose status is up to date, in upstream's order.
func decide(cj *batchv1.CronJob, now time.Time, local *time.Location) decision {
	var d decision
	if cj.DeletionTimestamp != nil {
		return d
	}
	loc := local
	if tz := cj.Spec.TimeZone; tz != nil {
		l, err := time.LoadLocation(*tz)
		if err != nil {
			d.events = append(d.events, warning("UnknownTimeZone", "invalid timeZone: %q: %s", *tz, err))
			return d
		}
		loc = l
	}
	if cj.Spec.Suspend != nil && *cj.Spec.Suspend {
		return d // nothing to wake up for until the CronJob is resumed
	}
	sched, err := cronJobSchedule(cj, loc)
	if strings.Contains(cj.Spec.Schedule, "TZ") {
		d.events = append(d.events, warning("UnsupportedSchedule", "CRON_TZ or TZ used in schedule %q is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details", cj.Spec.Schedule))
	}
	if err != nil {
		// A user error: wait for the spec to change.
		d.events = append(d.events, warning("UnparseableSchedule", "unparseable schedule: %q : %s", cj.Spec.Schedule, err))
		return d
	}

	earliest := cj.CreationTimestamp.Time
	if cj.Status.LastScheduleTime != nil {
		earliest = cj.Status.LastScheduleTime.Time
	}
	// Runs missed by more than the starting deadline are not considered.
	window := earliest
	if sds := cj.Spec.StartingDeadlineSeconds; sds != nil {
		if deadline := now.Add(-time.Duration(*sds) * time.Second); deadline.After(window) {
			window = deadline
		}
	}
	scheduled, missed, err := mostRecent(sched, window, now)
	if err != nil {
		d.events = append(d.events, warning("InvalidSchedule", "invalid schedule: %s : %s", cj.Spec.Schedule, err))
		return d
	}
	d.requeue = requeueAfter(sched, earliest, now)
	if scheduled == nil {
		return d
	}
	if missed > tooManyMissed {
		d.events = append(d.events, warning("TooManyMissedTimes", "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew"))
	}
	if sds := cj.Spec.StartingDeadlineSeconds; sds != nil && scheduled.Add(time.Duration(*sds)*time.Second).Before(now) {
		d.events = append(d.events, warning("MissSchedule", "Missed scheduled time to start a job: %s", scheduled.UTC().Format(time.RFC1123Z)))
		return d
	}
	if inActiveByName(&cj.Status, jobName(cj, *scheduled)) ||
		(cj.Status.LastScheduleTime != nil && cj.Status.LastScheduleTime.Time.Equal(*scheduled)) {
		return d // this run was started already
	}
	if len(cj.Status.Active) > 0 {
		switch cj.Spec.ConcurrencyPolicy {
		case batchv1.ForbidConcurrent:
			// The run is not dropped: without a starting deadline it
			// starts late, once the active job finishes.
			d.events = append(d.events, normal("JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid"))
			return d
		case batchv1.ReplaceConcurrent:
			d.replace = true
		}
	}
	d.create = scheduled
	d.requeue = requeueAfter(sched, *scheduled, now)
	return d
}

// cronJobSchedule parses the CronJob's schedule in its zone. A TZ= prefix
// in the schedule wins over the zone, as upstream.
func cronJobSchedule(cj *batchv1.CronJob, loc *time.Location) (*Schedule, error) {
	s, err := ParseSchedule(cj.Spec.Schedule)
	if err != nil {
		return nil, err
	}
	return s.In(loc), nil
}

// errInvalidSchedule is upstream's wording for a schedule that parses but
// never fires, such as the 30th of February.
var errInvalidSchedule = errors.New("time difference between two schedules is less than 1 second")

// mostRecent returns the latest activation in (after, now] and how many
// there were, counting no further than tooManyMissed+1.
func mostRecent(s *Schedule, after, now time.Time) (*time.Time, int, error) {
	first := s.Next(after)
	if first.IsZero() {
		return nil, 0, errInvalidSchedule
	}
	if first.After(now) {
		return nil, 0, nil
	}
	last, n := first, 1
	for t := s.Next(first); !t.IsZero() && !t.After(now); t = s.Next(t) {
		last, n = t, n+1
		if n > tooManyMissed {
			// Walking a clock that is off by years would take forever:
			// jump straight to the latest activation.
			if s.every > 0 {
				last = first.Add(now.Sub(first) / s.every * s.every)
			} else {
				last = s.Prev(now)
			}
			break
		}
	}
	return &last, n, nil
}

// requeueAfter is how long until the first activation after the latest
// one due by now (counting from last, the last run considered), padded by
// nextScheduleDelta; nil if the schedule never fires again.
func requeueAfter(s *Schedule, last, now time.Time) *time.Duration {
	next := s.Next(last)
	if !next.IsZero() && !next.After(now) {
		// Runs were missed since last: wake at the one after the latest.
		// (For @every that is not simply the one after now.)
		if recent, _, err := mostRecent(s, last, now); err == nil && recent != nil {
			next = s.Next(*recent)
		}
	}
	if next.IsZero() {
		return nil
	}
	d := next.Add(nextScheduleDelta).Sub(now)
	return &d
}

// jobName is the name of the job for one scheduled time: the CronJob's
// name and the minutes since the epoch. Being deterministic, it is the
// lock that keeps the same run from being created twice.
func jobName(cj *batchv1.CronJob, scheduled time.Time) string {
	return fmt.Sprintf("%s-%d", cj.Name, scheduled.Unix()/60)
}

// jobFor builds the Job of one scheduled run from the CronJob's template.
func jobFor(cj *batchv1.CronJob, scheduled time.Time) (*batchv1.Job, error) {
	tz := ""
	if cj.Spec.TimeZone != nil {
		tz = *cj.Spec.TimeZone
	}
	loc, err := time.LoadLocation(tz) // "" is UTC
	if err != nil {
		return nil, err
	}
	tmpl := &cj.Spec.JobTemplate
	labels := make(map[string]string, len(tmpl.Labels))
	for k, v := range tmpl.Labels {
		labels[k] = v
	}
	annotations := make(map[string]string, len(tmpl.Annotations)+1)
	for k, v := range tmpl.Annotations {
		annotations[k] = v
	}
	annotations[batchv1.CronJobScheduledTimestampAnnotation] = scheduled.In(loc).Format(time.RFC3339)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:            jobName(cj, scheduled),
			Namespace:       cj.Namespace,
			Labels:          labels,
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cj, kind)},
			// The server sets its own; upstream sends the scheduled time.
			CreationTimestamp: metav1.NewTime(scheduled),
		},
	}
	tmpl.Spec.DeepCopyInto(&job.Spec)
	return job, nil
}

// jobRef is the reference status.active holds for a job.
func jobRef(j *batchv1.Job) corev1.ObjectReference {
	return corev1.ObjectReference{
		Kind: "Job", APIVersion: batchv1.SchemeGroupVersion.String(),
		Namespace: j.Namespace, Name: j.Name, UID: j.UID, ResourceVersion: j.ResourceVersion,
	}
}

// finishedCondition reports whether the job has finished, and how.
func finishedCondition(j *batchv1.Job) (batchv1.JobConditionType, bool) {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.Type, true
		}
	}
	return "", false
}

func inActive(status *batchv1.CronJobStatus, uid types.UID) bool {
	for _, r := range status.Active {
		if r.UID == uid {
			return true
		}
	}
	return false
}

func inActiveByName(status *batchv1.CronJobStatus, name string) bool {
	for _, r := range status.Active {
		if r.Name == name {
			return true
		}
	}
	return false
}

func removeActive(status *batchv1.CronJobStatus, uid types.UID) {
	var keep []corev1.ObjectReference
	for _, r := range status.Active {
		if r.UID != uid {
			keep = append(keep, r)
		}
	}
	status.Active = keep
}
