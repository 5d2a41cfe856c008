package job

import (
	"sort"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
)

// maxUncountedPods caps the UIDs parked in status.uncountedTerminatedPods
// per sync, as upstream: it keeps the status small and a huge Job from
// starving the others.
const maxUncountedPods = 500

// Condition messages upstream uses.
const (
	msgBackoffLimit      = "Job has reached the specified backoff limit"
	msgDeadline          = "Job was active longer than specified deadline"
	msgMaxFailedIndexes  = "Job has exceeded the specified maximal number of failed indexes"
	msgFailedIndexes     = "Job has failed indexes"
	msgCompletions       = "Reached expected number of succeeded pods"
	jobControllerManager = "kubernetes.io/job-controller"
)

// syncState is what one sync knows about a Job and its pods.
type syncState struct {
	job         *batchv1.Job // a private copy; its status is what gets written
	pods        []*corev1.Pod
	active      []*corev1.Pod
	ready       int32
	terminating int32

	uncountedSucceeded, uncountedFailed sets.Set[types.UID] // as read from status
	removing                            sets.Set[types.UID] // finalizer removals in flight

	// succeeded and failed are the counts the decisions use: recorded,
	// parked in uncountedTerminatedPods, and newly finished.
	succeeded, failed int32

	prevSucceededIdx, succeededIdx intervals
	failedIdx                      *intervals // nil without backoffLimitPerIndex
	// delayed holds, per index, the failed pod whose finalizer stays until
	// its replacement carries the index's failure count forward.
	delayed map[int]*corev1.Pod

	// finished is the condition the Job is heading for: FailureTarget or
	// SuccessCriteriaMet when first decided, Failed or Complete after.
	finished *batchv1.JobCondition
	backoff  backoffRecord
	// recheckIn, when positive, is when the active deadline expires.
	recheckIn time.Duration
}

// assess reads a Job's pods and decides whether it has failed or met its
// success criteria; it does not decide completion by count, which depends
// on what manage does. job must be a copy the caller owns.
func assess(job *batchv1.Job, pods []*corev1.Pod, removing sets.Set[types.UID], prev backoffRecord, now time.Time) *syncState {
	if job.Status.UncountedTerminatedPods == nil {
		job.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	}
	st := &syncState{
		job:                job,
		pods:               pods,
		removing:           removing,
		uncountedSucceeded: sets.New(job.Status.UncountedTerminatedPods.Succeeded...),
		uncountedFailed:    sets.New(job.Status.UncountedTerminatedPods.Failed...),
	}
	for _, p := range pods {
		switch {
		case isActive(p):
			st.active = append(st.active, p)
			if podReady(p) {
				st.ready++
			}
		case isTerminating(p):
			st.terminating++
		}
	}
	var newSucceeded, newFailed []*corev1.Pod
	ignored := 0
	for _, p := range pods {
		if !st.countable(p) {
			continue
		}
		switch {
		case p.Status.Phase == corev1.PodSucceeded && !st.uncountedSucceeded.Has(p.UID):
			newSucceeded = append(newSucceeded, p)
		case isPodFailed(p, job) && !st.uncountedFailed.Has(p.UID):
			newFailed = append(newFailed, p)
			if !matchPodFailurePolicy(job.Spec.PodFailurePolicy, p).count {
				ignored++
			}
		}
	}
	st.succeeded = job.Status.Succeeded + int32(len(newSucceeded)+st.uncountedSucceeded.Len())
	st.failed = job.Status.Failed + int32(len(newFailed)-ignored+st.uncountedFailed.Len())
	st.backoff = prev.next(newSucceeded, newFailed)

	if job.Status.StartTime == nil && !suspended(job) {
		t := metav1.NewTime(now)
		job.Status.StartTime = &t
	}

	if c := findCondition(job, batchv1.JobSuccessCriteriaMet); c != nil && c.Status == corev1.ConditionTrue {
		st.finished = c.DeepCopy()
	}
	if st.finished == nil {
		if c := findCondition(job, batchv1.JobFailureTarget); c != nil && c.Status == corev1.ConditionTrue {
			st.finished = newCondition(batchv1.JobFailed, c.Reason, c.Message, now)
		} else if msg := failJobMessage(job, pods); msg != "" {
			st.finished = newCondition(batchv1.JobFailureTarget, batchv1.JobReasonPodFailurePolicy, msg, now)
		}
	}
	if st.finished == nil {
		switch {
		case st.failed > deref(job.Spec.BackoffLimit, 6) || pastBackoffLimitOnFailure(job, pods):
			st.finished = newCondition(batchv1.JobFailureTarget, batchv1.JobReasonBackoffLimitExceeded, msgBackoffLimit, now)
		case pastActiveDeadline(job, now):
			st.finished = newCondition(batchv1.JobFailureTarget, batchv1.JobReasonDeadlineExceeded, msgDeadline, now)
		case job.Spec.ActiveDeadlineSeconds != nil && !suspended(job):
			st.recheckIn = time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second - now.Sub(job.Status.StartTime.Time)
		}
	}

	if isIndexed(job) {
		completions := deref(job.Spec.Completions, 0)
		st.prevSucceededIdx = parseIntervals(job.Status.CompletedIndexes, int(completions))
		var ixs []int
		for _, p := range pods {
			if p.Status.Phase == corev1.PodSucceeded && validIndex(p, completions) && hasFinalizer(p) {
				ixs = append(ixs, completionIndex(p))
			}
		}
		st.succeededIdx = st.prevSucceededIdx.withIndexes(ixs)
		st.succeeded = int32(st.succeededIdx.total())
		if job.Spec.BackoffLimitPerIndex != nil {
			st.failedIdx = failedIndexes(job, pods)
			total := st.failedIdx.total()
			if st.finished == nil {
				switch {
				case job.Spec.MaxFailedIndexes != nil && total > int(*job.Spec.MaxFailedIndexes):
					st.finished = newCondition(batchv1.JobFailureTarget, batchv1.JobReasonMaxFailedIndexesExceeded, msgMaxFailedIndexes, now)
				case total > 0 && total+st.succeededIdx.total() >= int(completions):
					st.finished = newCondition(batchv1.JobFailureTarget, batchv1.JobReasonFailedIndexes, msgFailedIndexes, now)
				}
			}
			st.delayed = st.delayedPerIndex()
		}
		if st.finished == nil {
			if msg, ok := matchSuccessPolicy(job.Spec.SuccessPolicy, completions, st.succeededIdx); ok {
				st.finished = newCondition(batchv1.JobSuccessCriteriaMet, batchv1.JobReasonSuccessPolicy, msg, now)
			}
		}
	}
	return st
}

// countable reports whether a finished pod may still need counting: it
// holds the tracking finalizer, no removal is in flight, and (Indexed) its
// index is valid.
func (st *syncState) countable(p *corev1.Pod) bool {
	if !hasFinalizer(p) || st.removing.Has(p.UID) {
		return false
	}
	return !isIndexed(st.job) || validIndex(p, deref(st.job.Spec.Completions, 0))
}

// failedFor reports whether the Job treats a pod as failed for good now:
// it failed, or the Job itself is failing and the pod never finished.
func (st *syncState) failedFor(p *corev1.Pod) bool {
	if isPodFailed(p, st.job) {
		return true
	}
	return st.finished != nil && !isSuccessCondition(st.finished) && p.Status.Phase != corev1.PodSucceeded
}

// canRemoveFinalizer: a pod is released once the Job is going away or has
// decided its outcome, once the pod succeeded, or once it failed, unless
// its index needs it a while longer to pass on the failure count.
func (st *syncState) canRemoveFinalizer(p *corev1.Pod, failed bool) bool {
	if st.job.DeletionTimestamp != nil || st.finished != nil || p.Status.Phase == corev1.PodSucceeded {
		return true
	}
	if !failed {
		return false
	}
	if d, ok := st.delayed[completionIndex(p)]; ok && d.UID == p.UID {
		return false
	}
	return true
}

// account parks newly finished pods in status.uncountedTerminatedPods (or,
// for Indexed jobs' successes, completedIndexes) and returns the pods whose
// finalizer may go, whether the status changed, and whether the per-sync
// cap was hit.
func (st *syncState) account() (release []*corev1.Pod, changed, capped bool) {
	status := &st.job.Status
	uncounted := status.UncountedTerminatedPods
	indexed := isIndexed(st.job)
	completions := deref(st.job.Spec.Completions, 0)
	var newIdx []int
	for _, p := range st.pods {
		if !hasFinalizer(p) || st.removing.Has(p.UID) {
			continue // counted in an earlier sync
		}
		failed := isPodFailed(p, st.job)
		if !st.canRemoveFinalizer(p, failed) {
			continue
		}
		release = append(release, p)
		switch {
		case p.Status.Phase == corev1.PodSucceeded && !st.uncountedFailed.Has(p.UID):
			if indexed {
				// The index alone prevents double counting.
				if ix := completionIndex(p); validIndex(p, completions) && !st.prevSucceededIdx.has(ix) {
					newIdx = append(newIdx, ix)
					changed = true
				}
			} else if !st.uncountedSucceeded.Has(p.UID) {
				uncounted.Succeeded = append(uncounted.Succeeded, p.UID)
				st.uncountedSucceeded.Insert(p.UID)
				changed = true
			}
		case st.failedFor(p):
			if st.uncountedFailed.Has(p.UID) || (indexed && !validIndex(p, completions)) {
				break
			}
			if matchPodFailurePolicy(st.job.Spec.PodFailurePolicy, p).count {
				uncounted.Failed = append(uncounted.Failed, p.UID)
				st.uncountedFailed.Insert(p.UID)
				changed = true
			}
		}
		if len(newIdx)+len(uncounted.Succeeded)+len(uncounted.Failed) >= maxUncountedPods {
			capped = true
			break
		}
	}
	if indexed {
		st.succeededIdx = st.succeededIdx.withIndexes(newIdx)
		if s := st.succeededIdx.String(); s != status.CompletedIndexes {
			status.CompletedIndexes = s
			changed = true
		}
		status.Succeeded = int32(st.succeededIdx.total())
		var failedStr *string
		if st.failedIdx != nil {
			s := st.failedIdx.String()
			failedStr = &s
		}
		if !equalPtr(failedStr, status.FailedIndexes) {
			status.FailedIndexes = failedStr
			changed = true
		}
	}
	return release, changed, capped
}

// settleUncounted moves the UIDs of pods whose finalizer is gone (pod
// removed, or removal done) from uncountedTerminatedPods into the
// counters. withFinalizer holds the UIDs that still have one.
func settleUncounted(status *batchv1.JobStatus, withFinalizer sets.Set[types.UID]) bool {
	u := status.UncountedTerminatedPods
	keep := func(uids []types.UID) []types.UID {
		var out []types.UID
		for _, uid := range uids {
			if withFinalizer.Has(uid) {
				out = append(out, uid)
			}
		}
		return out
	}
	changed := false
	if left := keep(u.Succeeded); len(left) != len(u.Succeeded) {
		status.Succeeded += int32(len(u.Succeeded) - len(left))
		u.Succeeded, changed = left, true
	}
	if left := keep(u.Failed); len(left) != len(u.Failed) {
		status.Failed += int32(len(u.Failed) - len(left))
		u.Failed, changed = left, true
	}
	return changed
}

// wantActive is how many pods should run: parallelism, but never more than
// the completions still missing; a work-queue Job (no completions) stops
// adding pods after its first success.
func wantActive(job *batchv1.Job, succeeded, active int32) int32 {
	parallelism := deref(job.Spec.Parallelism, 1)
	if job.Spec.Completions == nil {
		if succeeded > 0 {
			return active
		}
		return parallelism
	}
	return max(0, min(*job.Spec.Completions-succeeded, parallelism))
}

// complete reports whether a Job's pods met its completions: the count
// reached (any success for a work-queue Job) and nothing still running.
func complete(job *batchv1.Job, succeeded, active int32) bool {
	if active != 0 {
		return false
	}
	if job.Spec.Completions == nil {
		return succeeded > 0
	}
	return succeeded >= *job.Spec.Completions
}

// podsForRemoval picks the active pods to delete: for Indexed jobs first
// those with a bad or duplicated index, then the least advanced pods until
// at least n are picked.
func podsForRemoval(job *batchv1.Job, active []*corev1.Pod, n int) []*corev1.Pod {
	var rm, rest []*corev1.Pod
	if isIndexed(job) {
		rm, rest = duplicateIndexPods(active, deref(job.Spec.Completions, 0))
	} else {
		rest = append(rest, active...)
	}
	if len(rm) < n {
		sortForDeletion(rest)
		rm = append(rm, rest[:min(n-len(rm), len(rest))]...)
	}
	return rm
}

// failedIndexes is status.failedIndexes plus the indexes of newly failed
// pods that used up the index's back-off or matched a FailIndex rule.
func failedIndexes(job *batchv1.Job, pods []*corev1.Pod) *intervals {
	completions := deref(job.Spec.Completions, 0)
	var out intervals
	if job.Status.FailedIndexes != nil {
		out = parseIntervals(*job.Status.FailedIndexes, int(completions))
	}
	var ixs []int
	for _, p := range pods {
		if hasFinalizer(p) && validIndex(p, completions) && indexFailed(job, p) {
			ixs = append(ixs, completionIndex(p))
		}
	}
	out = out.withIndexes(ixs)
	return &out
}

func indexFailed(job *batchv1.Job, p *corev1.Pod) bool {
	if !isPodFailed(p, job) {
		return false
	}
	v := matchPodFailurePolicy(job.Spec.PodFailurePolicy, p)
	if v.action != nil && *v.action == batchv1.PodFailurePolicyActionFailIndex {
		return true
	}
	return v.count && annotationCount(p, batchv1.JobIndexFailureCountAnnotation) >= deref(job.Spec.BackoffLimitPerIndex, 0)
}

// delayedPerIndex finds, for each index with nothing running, succeeded or
// failed for good, the latest failed pod: its finalizer stays until the
// replacement exists, so that the failure count is carried over.
func (st *syncState) delayedPerIndex() map[int]*corev1.Pod {
	activeIdx := sets.New(indexesOf(st.active)...)
	out := map[int]*corev1.Pod{}
	for _, p := range st.pods {
		if !hasFinalizer(p) || st.removing.Has(p.UID) || !isPodFailed(p, st.job) {
			continue
		}
		ix := completionIndex(p)
		if !validIndex(p, deref(st.job.Spec.Completions, 0)) || st.succeededIdx.has(ix) || st.failedIdx.has(ix) || activeIdx.Has(ix) {
			continue
		}
		if prev, ok := out[ix]; ok && (absoluteFailures(prev) > absoluteFailures(p) || finishedTime(p).Before(finishedTime(prev))) {
			continue
		}
		out[ix] = p
	}
	return out
}

// nextFailureCounts are the index failure counts a replacement for pod
// carries: the pod's own plus its failure, counted or ignored.
func nextFailureCounts(job *batchv1.Job, replaced *corev1.Pod) (failures, ignored int32) {
	if replaced == nil {
		return 0, 0
	}
	failures = annotationCount(replaced, batchv1.JobIndexFailureCountAnnotation)
	ignored = annotationCount(replaced, batchv1.JobIndexIgnoredFailureCountAnnotation)
	if matchPodFailurePolicy(job.Spec.PodFailurePolicy, replaced).count {
		failures++
	} else {
		ignored++
	}
	return failures, ignored
}

func absoluteFailures(p *corev1.Pod) int32 {
	return annotationCount(p, batchv1.JobIndexFailureCountAnnotation) + annotationCount(p, batchv1.JobIndexIgnoredFailureCountAnnotation)
}

// annotationCount reads a non-negative int32 annotation, 0 when absent or bad.
func annotationCount(p *corev1.Pod, key string) int32 {
	n, err := strconv.ParseInt(p.Annotations[key], 10, 32)
	if err != nil || n < 0 {
		return 0
	}
	return int32(n)
}

// matchSuccessPolicy applies an Indexed Job's success policy rules in order.
func matchSuccessPolicy(policy *batchv1.SuccessPolicy, completions int32, succeeded intervals) (string, bool) {
	if policy == nil || succeeded.total() == 0 {
		return "", false
	}
	for i, rule := range policy.Rules {
		count := succeeded.total()
		need := 0
		if rule.SucceededIndexes != nil {
			want := parseIntervals(*rule.SucceededIndexes, int(completions))
			count = 0
			for _, v := range want {
				for ix := v.first; ix <= v.last; ix++ {
					if succeeded.has(ix) {
						count++
					}
				}
			}
			need = want.total()
		}
		if rule.SucceededCount != nil {
			need = int(*rule.SucceededCount)
		}
		if need > 0 && count >= need {
			return "Matched rules at index " + strconv.Itoa(i), true
		}
	}
	return "", false
}

// failJobMessage is the message of the first failed pod that matches a
// FailJob rule, if any.
func failJobMessage(job *batchv1.Job, pods []*corev1.Pod) string {
	if job.Spec.PodFailurePolicy == nil {
		return ""
	}
	for _, p := range pods {
		if isPodFailed(p, job) {
			if v := matchPodFailurePolicy(job.Spec.PodFailurePolicy, p); v.failJob != "" {
				return v.failJob
			}
		}
	}
	return ""
}

// pastBackoffLimitOnFailure: with restartPolicy OnFailure the kubelet
// restarts containers in place, so their restarts are the failures.
func pastBackoffLimitOnFailure(job *batchv1.Job, pods []*corev1.Pod) bool {
	if job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		return false
	}
	var restarts int32
	for _, p := range pods {
		if p.Status.Phase != corev1.PodRunning && p.Status.Phase != corev1.PodPending {
			continue
		}
		for _, cs := range p.Status.InitContainerStatuses {
			restarts += cs.RestartCount
		}
		for _, cs := range p.Status.ContainerStatuses {
			restarts += cs.RestartCount
		}
	}
	limit := deref(job.Spec.BackoffLimit, 6)
	if limit == 0 {
		return restarts > 0
	}
	return restarts >= limit
}

func pastActiveDeadline(job *batchv1.Job, now time.Time) bool {
	if job.Spec.ActiveDeadlineSeconds == nil || job.Status.StartTime == nil || suspended(job) {
		return false
	}
	return now.Sub(job.Status.StartTime.Time) >= time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second
}

// isPodFailed: a Failed pod, or, unless only failed pods are replaced, a
// pod being deleted before it succeeded (an orphan may never reach Failed).
// With a failure policy only the phase counts, since the policy needs the
// pod's final status.
func isPodFailed(p *corev1.Pod, job *batchv1.Job) bool {
	if p.Status.Phase == corev1.PodFailed {
		return true
	}
	if job.Spec.PodFailurePolicy != nil || onlyReplaceFailed(job) {
		return false
	}
	return p.DeletionTimestamp != nil && p.Status.Phase != corev1.PodSucceeded
}

func onlyReplaceFailed(job *batchv1.Job) bool {
	return job.Spec.PodFailurePolicy != nil ||
		(job.Spec.PodReplacementPolicy != nil && *job.Spec.PodReplacementPolicy == batchv1.Failed)
}

func isActive(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

func isTerminating(p *corev1.Pod) bool {
	return p.DeletionTimestamp != nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

func podReady(p *corev1.Pod) bool {
	return readySince(p) != nil
}

func readySince(p *corev1.Pod) *metav1.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			t := c.LastTransitionTime
			return &t
		}
	}
	return nil
}

func hasFinalizer(p *corev1.Pod) bool {
	for _, f := range p.Finalizers {
		if f == batchv1.JobTrackingFinalizer {
			return true
		}
	}
	return false
}

func isIndexed(job *batchv1.Job) bool {
	return job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion
}

func suspended(job *batchv1.Job) bool {
	return job.Spec.Suspend != nil && *job.Spec.Suspend
}

// finishedCondition returns a Job's true Complete or Failed condition.
func finishedCondition(job *batchv1.Job) *batchv1.JobCondition {
	for i := range job.Status.Conditions {
		c := &job.Status.Conditions[i]
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}

func findCondition(job *batchv1.Job, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range job.Status.Conditions {
		if job.Status.Conditions[i].Type == t {
			return &job.Status.Conditions[i]
		}
	}
	return nil
}

func isSuccessCondition(c *batchv1.JobCondition) bool {
	return c != nil && (c.Type == batchv1.JobSuccessCriteriaMet || c.Type == batchv1.JobComplete)
}

func newCondition(t batchv1.JobConditionType, reason, message string, now time.Time) *batchv1.JobCondition {
	return &batchv1.JobCondition{
		Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: message,
		LastProbeTime: metav1.NewTime(now), LastTransitionTime: metav1.NewTime(now),
	}
}

// setCondition sets a condition's status, reason and message, and reports
// whether anything changed. A False condition is never added where there
// was none: a Job never suspended has no Suspended condition.
func setCondition(conds []batchv1.JobCondition, t batchv1.JobConditionType, status corev1.ConditionStatus, reason, message string, now time.Time) ([]batchv1.JobCondition, bool) {
	for i := range conds {
		c := &conds[i]
		if c.Type != t {
			continue
		}
		if c.Status == status && c.Reason == reason && c.Message == message {
			return conds, false
		}
		if c.Status != status {
			c.LastTransitionTime = metav1.NewTime(now)
		}
		c.Status, c.Reason, c.Message, c.LastProbeTime = status, reason, message, metav1.NewTime(now)
		return conds, true
	}
	if status != corev1.ConditionTrue {
		return conds, false
	}
	return append(conds, *newCondition(t, reason, message, now)), true
}

// sortForDeletion orders pods so that the least advanced come first.
func sortForDeletion(pods []*corev1.Pod) {
	sort.SliceStable(pods, func(i, j int) bool { return deleteBefore(pods[i], pods[j]) })
}

// deleteBefore ranks pods as upstream's ActivePods: unscheduled before
// scheduled, pending before running, not ready before ready, ready for
// less time first, more restarts first, newer first.
func deleteBefore(a, b *corev1.Pod) bool {
	if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
		return a.Spec.NodeName == ""
	}
	rank := map[corev1.PodPhase]int{corev1.PodPending: 0, corev1.PodUnknown: 1, corev1.PodRunning: 2}
	if rank[a.Status.Phase] != rank[b.Status.Phase] {
		return rank[a.Status.Phase] < rank[b.Status.Phase]
	}
	ra, rb := readySince(a), readySince(b)
	if (ra == nil) != (rb == nil) {
		return ra == nil
	}
	if ra != nil && !ra.Equal(rb) {
		return rb.Before(ra)
	}
	if x, y := restarts(a), restarts(b); x != y {
		return x > y
	}
	return b.CreationTimestamp.Before(&a.CreationTimestamp)
}

func restarts(p *corev1.Pod) int32 {
	var n int32
	for _, cs := range p.Status.ContainerStatuses {
		n = max(n, cs.RestartCount)
	}
	return n
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func equalPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
