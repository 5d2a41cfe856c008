package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/lotse/lotse/internal/controller"
)

var kind = batchv1.SchemeGroupVersion.WithKind("Job")

// maxPodChangesPerSync caps pod creations and deletions in one sync, as
// upstream.
const maxPodChangesPerSync = 500

const workers = 5

// Controller is the Job controller together with the ttl-after-finished
// loop (see ttl.go).
type Controller struct {
	client   kubernetes.Interface
	jobs     batchlisters.JobLister
	pods     corelisters.PodLister
	podIndex cache.Indexer // the same pods, with controller.ControllerUIDIndex
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	orphans  workqueue.TypedRateLimitingInterface[string] // pod keys
	expect   *expectations
	backoffs *backoffStore
	recorder record.EventRecorder
	events   record.EventBroadcaster
	clock    clock.WithTicker
	log      *slog.Logger
	ttl      *ttlController

	// podBackoff and maxPodBackoff delay pod re-creation after failures;
	// fields so that tests need not wait upstream's ten seconds.
	podBackoff, maxPodBackoff time.Duration
}

// New builds the Job controller and the ttl-after-finished controller on
// the shared informers; Run runs both.
func New(ctx *controller.Context) (controller.Controller, error) {
	jobInf := ctx.Informers.Batch().V1().Jobs()
	podInf := ctx.Informers.Core().V1().Pods()
	broadcaster := record.NewBroadcaster()
	c := &Controller{
		client:   ctx.Client,
		jobs:     jobInf.Lister(),
		pods:     podInf.Lister(),
		podIndex: podInf.Informer().GetIndexer(),
		synced:   []cache.InformerSynced{jobInf.Informer().HasSynced, podInf.Informer().HasSynced},
		// Failed syncs (API errors, conflicts on status) retry quickly
		// at first and back off to a minute, as upstream's API back-off.
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](10*time.Millisecond, time.Minute),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "job", Clock: ctx.Clock}),
		orphans: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "job_orphan_pod", Clock: ctx.Clock}),
		expect:        newExpectations(ctx.Clock),
		backoffs:      newBackoffStore(),
		events:        broadcaster,
		recorder:      broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "job-controller"}),
		clock:         ctx.Clock,
		log:           ctx.Logger.With("controller", "job"),
		podBackoff:    defaultPodFailureBackoff,
		maxPodBackoff: maxPodFailureBackoff,
	}
	if err := controller.AddControllerUIDIndex(podInf.Informer()); err != nil {
		return nil, err
	}
	if _, err := jobInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueJob,
		UpdateFunc: func(_, obj any) { c.enqueueJob(obj) },
		DeleteFunc: c.jobDeleted,
	}); err != nil {
		return nil, err
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.podAdded,
		UpdateFunc: c.podUpdated,
		DeleteFunc: c.podDeleted,
	}); err != nil {
		return nil, err
	}
	ttl, err := newTTLController(ctx, jobInf)
	if err != nil {
		return nil, err
	}
	c.ttl = ttl
	return c, nil
}

func (c *Controller) enqueueJob(obj any) {
	if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
		c.queue.Add(key)
	}
}

func (c *Controller) jobDeleted(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	job, ok := obj.(*batchv1.Job)
	if !ok {
		return
	}
	key := job.Namespace + "/" + job.Name
	c.expect.forget(key)
	c.queue.Add(key)
	// Its pods may still hold the tracking finalizer; nobody else will
	// take it off.
	pods, _ := controller.ControlledOrOrphaned[*corev1.Pod](c.podIndex, job)
	for _, p := range pods {
		if ref := metav1.GetControllerOf(p); ref != nil && ref.UID == job.UID && hasFinalizer(p) {
			c.orphans.Add(p.Namespace + "/" + p.Name)
		}
	}
}

// ownerKey is the key of the Job controlling pod, if any.
func ownerKey(pod *corev1.Pod) string {
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.Kind != kind.Kind || ref.APIVersion != kind.GroupVersion().String() {
		return ""
	}
	return pod.Namespace + "/" + ref.Name
}

func (c *Controller) podAdded(obj any) {
	pod := obj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil {
		// Seen for the first time already terminating (a relist):
		// nothing more will announce its deletion.
		c.podDeleted(pod)
		return
	}
	if key := ownerKey(pod); key != "" {
		c.expect.observe(key, 1, 0)
	}
	c.enqueueForPod(pod)
}

func (c *Controller) podUpdated(oldObj, obj any) {
	old, pod := oldObj.(*corev1.Pod), obj.(*corev1.Pod)
	if key := ownerKey(pod); key != "" {
		if old.DeletionTimestamp == nil && pod.DeletionTimestamp != nil {
			c.expect.observe(key, 0, 1)
		}
		if !hasFinalizer(pod) {
			c.expect.removalObserved(key, pod.UID)
		}
	}
	if ownerKey(old) != ownerKey(pod) {
		c.enqueueForPod(old)
	}
	c.enqueueForPod(pod)
}

func (c *Controller) podDeleted(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if key := ownerKey(pod); key != "" {
		if pod.DeletionTimestamp == nil {
			// Removed at once, with no terminating update before.
			c.expect.observe(key, 0, 1)
		}
		c.expect.removalObserved(key, pod.UID)
		c.queue.Add(key)
	}
}

// enqueueForPod queues the pod's Job; an orphan goes to every Job that
// could adopt it and, if it holds the tracking finalizer, to the orphan
// queue.
func (c *Controller) enqueueForPod(pod *corev1.Pod) {
	if key := ownerKey(pod); key != "" {
		c.queue.Add(key)
		if hasFinalizer(pod) {
			if _, err := c.jobs.Jobs(pod.Namespace).Get(metav1.GetControllerOf(pod).Name); apierrors.IsNotFound(err) {
				c.orphans.Add(pod.Namespace + "/" + pod.Name)
			}
		}
		return
	}
	if metav1.GetControllerOf(pod) != nil {
		return // someone else's
	}
	if hasFinalizer(pod) {
		c.orphans.Add(pod.Namespace + "/" + pod.Name)
	}
	for _, job := range c.jobsSelecting(pod) {
		c.queue.Add(job.Namespace + "/" + job.Name)
	}
}

func (c *Controller) jobsSelecting(pod *corev1.Pod) []*batchv1.Job {
	jobs, err := c.jobs.Jobs(pod.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []*batchv1.Job
	for _, j := range jobs {
		sel, err := metav1.LabelSelectorAsSelector(j.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(pod.Labels)) {
			out = append(out, j)
		}
	}
	return out
}

// Run syncs Jobs and runs the ttl-after-finished loop until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	defer utilruntime.HandleCrash()
	defer c.queue.ShutDown()
	defer c.orphans.ShutDown()
	c.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer c.events.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return errors.New("job: informers did not sync")
	}
	ttlDone := make(chan error, 1)
	go func() { ttlDone <- c.ttl.Run(ctx) }()
	for i := 0; i < workers; i++ {
		go wait.UntilWithContext(ctx, c.worker, time.Second)
	}
	go wait.UntilWithContext(ctx, c.orphanWorker, time.Second)
	<-ctx.Done()
	return <-ttlDone
}

func (c *Controller) worker(ctx context.Context) {
	controller.ProcessQueue(ctx, c.queue, c.log, "job", c.sync)
}

func (c *Controller) orphanWorker(ctx context.Context) {
	controller.ProcessQueue(ctx, c.orphans, c.log, "releasing orphan pod", c.releaseOrphan)
}

// sync brings one Job a step closer to its outcome: it counts finished
// pods, creates or deletes pods, and writes the status.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	shared, err := c.jobs.Jobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.expect.forget(key)
		c.backoffs.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	if m := shared.Spec.ManagedBy; m != nil && *m != jobControllerManager {
		return nil // another controller owns this Job's status
	}
	if c.expect.staleJob(key, shared) {
		// The informer lags behind our own status write; its update
		// event queues the Job again.
		return nil
	}
	job := shared.DeepCopy()
	if mode := job.Spec.CompletionMode; mode != nil && *mode != batchv1.NonIndexedCompletion && *mode != batchv1.IndexedCompletion {
		c.recorder.Event(job, corev1.EventTypeWarning, "UnknownCompletionMode", "Skipped Job sync because completion mode is unknown")
		return nil
	}
	// Read the expectations before the pods: a pod that arrives in
	// between then only defers the sync, never causes a double create.
	satisfied := c.expect.satisfied(key)
	pods, err := c.claimPods(ctx, job)
	if err != nil {
		return err
	}
	if finishedCondition(job) != nil {
		c.backoffs.forget(key)
		// Counted long ago; a finalizer left behind only pins the pod.
		_, err := c.removeFinalizers(ctx, key, withFinalizer(pods))
		return err
	}

	now := c.clock.Now()
	hadStart := job.Status.StartTime != nil
	st := assess(job, pods, c.expect.removing(key), c.backoffs.get(key), now)
	if st.recheckIn > 0 {
		c.queue.AddAfter(key, st.recheckIn)
	}
	active, ready, terminating := int32(len(st.active)), st.ready, st.terminating
	var manageErr error
	conditionsChanged := false
	if st.finished != nil {
		// The outcome is decided: stop what still runs. The finalizers
		// stay, so that these pods are counted as failed.
		deletedReady, deleted, err := c.deletePods(ctx, job, st.active, false)
		if int(deleted) != len(st.active) || !satisfied {
			// Pods may remain, or be unseen yet: not finished this time.
			st.finished = nil
		}
		active -= deleted
		terminating += deleted
		ready -= deletedReady
		manageErr = err
	} else {
		managed := false
		if satisfied && job.DeletionTimestamp == nil {
			var d podDelta
			d, manageErr = c.manage(ctx, st)
			active += d.created - d.deleted
			terminating += d.deleted
			ready -= d.deletedReady
			managed = true
		}
		switch {
		case complete(job, st.succeeded, active):
			st.finished = newCondition(batchv1.JobSuccessCriteriaMet, batchv1.JobReasonCompletionsReached, msgCompletions, now)
		case managed && suspended(job):
			var changed bool
			job.Status.Conditions, changed = setCondition(job.Status.Conditions, batchv1.JobSuspended, corev1.ConditionTrue, "JobSuspended", "Job suspended", now)
			if changed {
				conditionsChanged = true
				c.recorder.Event(job, corev1.EventTypeNormal, "Suspended", "Job suspended")
			}
		case managed:
			var changed bool
			job.Status.Conditions, changed = setCondition(job.Status.Conditions, batchv1.JobSuspended, corev1.ConditionFalse, "JobResumed", "Job resumed", now)
			if changed {
				conditionsChanged = true
				c.recorder.Event(job, corev1.EventTypeNormal, "Resumed", "Job resumed")
				// activeDeadlineSeconds counts continuous activity, so
				// the clock restarts on resume.
				t := metav1.NewTime(now)
				job.Status.StartTime = &t
			}
		}
	}

	needsFlush := conditionsChanged || hadStart != (job.Status.StartTime != nil) ||
		active != job.Status.Active || !equalPtr(&ready, job.Status.Ready) || !equalPtr(&terminating, job.Status.Terminating)
	job.Status.Active = active
	job.Status.Ready = &ready
	job.Status.Terminating = &terminating
	if err := c.trackStatus(ctx, key, st, needsFlush); err != nil {
		return fmt.Errorf("tracking status: %w", err)
	}
	return manageErr
}

// podDelta is what manage did.
type podDelta struct{ created, deleted, deletedReady int32 }

// manage creates or deletes pods towards the wanted number of active pods;
// a suspended Job wants none.
func (c *Controller) manage(ctx context.Context, st *syncState) (podDelta, error) {
	job := st.job
	key := job.Namespace + "/" + job.Name
	active := int32(len(st.active))
	if suspended(job) {
		c.expect.expect(key, 0, len(st.active))
		ready, deleted, err := c.deletePods(ctx, job, st.active, true)
		return podDelta{deleted: deleted, deletedReady: ready}, err
	}
	want := wantActive(job, st.succeeded, active)
	if rm := podsForRemoval(job, st.active, int(max(0, active-want))); len(rm) > 0 {
		rm = rm[:min(len(rm), maxPodChangesPerSync)]
		c.expect.expect(key, 0, len(rm))
		ready, deleted, err := c.deletePods(ctx, job, rm, true)
		// Deleting and creating in one sync could fight over an index;
		// deletion goes first and creation waits for the next sync.
		return podDelta{deleted: deleted, deletedReady: ready}, err
	}
	var pendingTerminating int32
	if onlyReplaceFailed(job) {
		pendingTerminating = st.terminating
	}
	diff := want - pendingTerminating - active
	if diff <= 0 {
		return podDelta{}, nil
	}
	now := c.clock.Now()
	if job.Spec.BackoffLimitPerIndex == nil {
		if wait := st.backoff.remaining(now, c.podBackoff, c.maxPodBackoff); wait > 0 {
			c.queue.AddAfter(key, wait)
			return podDelta{}, nil
		}
	}
	diff = min(diff, maxPodChangesPerSync)
	var indexes []int
	if isIndexed(job) {
		taken := st.succeededIdx.withIndexes(indexesOf(st.active))
		if onlyReplaceFailed(job) {
			var term []*corev1.Pod
			for _, p := range st.pods {
				if isTerminating(p) {
					term = append(term, p)
				}
			}
			taken = taken.withIndexes(indexesOf(term))
		}
		if st.failedIdx != nil {
			taken = taken.merge(*st.failedIdx)
		}
		indexes = firstPendingIndexes(int(diff), int(deref(job.Spec.Completions, 0)), taken)
		if job.Spec.BackoffLimitPerIndex != nil {
			var wait time.Duration
			if indexes, wait = c.indexesReady(job, indexes, st.delayed, now); len(indexes) == 0 {
				if wait > 0 {
					c.queue.AddAfter(key, wait)
				}
				return podDelta{}, nil
			}
		}
		diff = int32(len(indexes))
	}
	c.expect.expect(key, int(diff), 0)
	created, err := c.createPods(ctx, st, int(diff), indexes)
	if skipped := int(diff) - created; skipped > 0 {
		// Pods never created will never be observed.
		c.expect.observe(key, skipped, 0)
	}
	return podDelta{created: int32(created)}, err
}

// indexesReady keeps the indexes whose per-index back-off has passed; when
// none has, it returns the shortest wait.
func (c *Controller) indexesReady(job *batchv1.Job, indexes []int, delayed map[int]*corev1.Pod, now time.Time) ([]int, time.Duration) {
	var ready []int
	var shortest time.Duration
	for _, ix := range indexes {
		var wait time.Duration
		if p := delayed[ix]; p != nil {
			wait = backoffLeft(int(absoluteFailures(p))+1, finishedTime(p), now, c.podBackoff, c.maxPodBackoff)
		}
		if wait == 0 {
			ready = append(ready, ix)
		} else if shortest == 0 || wait < shortest {
			shortest = wait
		}
	}
	if len(ready) > 0 {
		return ready, 0
	}
	return nil, shortest
}

// trackStatus counts finished pods exactly once: their UIDs are first
// written to status.uncountedTerminatedPods, then their finalizers are
// removed, and only then do they move into the counters. The terminal
// condition follows once nothing is left uncounted or terminating.
func (c *Controller) trackStatus(ctx context.Context, key string, st *syncState, needsFlush bool) error {
	withFin := sets.New[types.UID]()
	for _, p := range st.pods {
		if hasFinalizer(p) && !st.removing.Has(p.UID) {
			withFin.Insert(p.UID)
		}
	}
	if settleUncounted(&st.job.Status, withFin) {
		needsFlush = true
	}
	release, changed, capped := st.account()
	needsFlush = needsFlush || changed

	now := c.clock.Now()
	if st.finished != nil && st.finished.Type == batchv1.JobFailureTarget {
		// Record the decision before any finalizer goes, so that a
		// restarted controller reaches the same outcome.
		st.job.Status.Conditions = append(st.job.Status.Conditions, *st.finished)
		needsFlush = true
		st.finished = newCondition(batchv1.JobFailed, st.finished.Reason, st.finished.Message, now)
	}
	if st.finished != nil && st.finished.Type == batchv1.JobSuccessCriteriaMet {
		if c := findCondition(st.job, batchv1.JobSuccessCriteriaMet); c == nil || c.Status != corev1.ConditionTrue {
			st.job.Status.Conditions = append(st.job.Status.Conditions, *st.finished)
			needsFlush = true
		}
		st.finished = newCondition(batchv1.JobComplete, st.finished.Reason, st.finished.Message, now)
	}

	if needsFlush {
		updated, err := c.updateStatus(ctx, st.job)
		if err != nil {
			return fmt.Errorf("adding uncounted pods to status: %w", err)
		}
		st.job = updated
		// The finished pods are now parked in the status: their
		// failures have entered the back-off.
		c.backoffs.set(key, st.backoff)
		needsFlush = false
	}

	removed, rmErr := c.removeFinalizers(ctx, key, release)
	for _, uid := range removed {
		withFin.Delete(uid)
	}
	if settleUncounted(&st.job.Status, withFin) {
		needsFlush = true
	}
	if rmErr == nil && !capped && c.enactFinished(st) {
		needsFlush = true
	} else {
		st.finished = nil
	}
	if needsFlush {
		updated, err := c.updateStatus(ctx, st.job)
		if err != nil {
			return fmt.Errorf("removing uncounted pods from status: %w", err)
		}
		if st.finished != nil {
			c.recordFinished(updated, st.finished)
		}
	}
	return rmErr
}

// enactFinished adds the Complete or Failed condition once every pod has
// been counted and none is still terminating.
func (c *Controller) enactFinished(st *syncState) bool {
	if st.finished == nil {
		return false
	}
	u := st.job.Status.UncountedTerminatedPods
	if len(u.Succeeded)+len(u.Failed) > 0 || deref(st.job.Status.Terminating, 0) > 0 {
		return false
	}
	cond := st.finished
	st.job.Status.Conditions, _ = setCondition(st.job.Status.Conditions, cond.Type, cond.Status, cond.Reason, cond.Message, c.clock.Now())
	if cond.Type == batchv1.JobComplete {
		t := findCondition(st.job, batchv1.JobComplete).LastTransitionTime
		st.job.Status.CompletionTime = &t
	}
	return true
}

func (c *Controller) recordFinished(job *batchv1.Job, cond *batchv1.JobCondition) {
	if cond.Type == batchv1.JobComplete {
		if job.Spec.Completions != nil && job.Status.Succeeded > *job.Spec.Completions {
			c.recorder.Event(job, corev1.EventTypeWarning, "TooManySucceededPods", "Too many succeeded pods running after completion count reached")
		}
		c.recorder.Event(job, corev1.EventTypeNormal, "Completed", "Job completed")
		return
	}
	c.recorder.Event(job, corev1.EventTypeWarning, cond.Reason, cond.Message)
}

func (c *Controller) updateStatus(ctx context.Context, job *batchv1.Job) (*batchv1.Job, error) {
	updated, err := c.client.BatchV1().Jobs(job.Namespace).UpdateStatus(ctx, job, metav1.UpdateOptions{})
	if err == nil {
		c.expect.wroteStatus(job.Namespace+"/"+job.Name, updated)
	}
	return updated, err
}
