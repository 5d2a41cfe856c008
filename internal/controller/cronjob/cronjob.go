package cronjob

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/controller"
)

var kind = batchv1.SchemeGroupVersion.WithKind("CronJob")

// workers is upstream's default --concurrent-cron-job-syncs.
const workers = 5

// Controller is the CronJob controller.
type Controller struct {
	client   kubernetes.Interface
	cronJobs batchlisters.CronJobLister
	jobs     batchlisters.JobLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	events   record.EventBroadcaster
	clock    clock.Clock
	// local is the zone of schedules without spec.timeZone: the
	// controller's own, as kube-controller-manager's.
	local *time.Location
	log   *slog.Logger
}

// New builds the controller on the shared informers.
func New(ctx *controller.Context) (controller.Controller, error) {
	cjInf := ctx.Informers.Batch().V1().CronJobs()
	jobInf := ctx.Informers.Batch().V1().Jobs()
	broadcaster := record.NewBroadcaster()
	c := &Controller{
		client:   ctx.Client,
		cronJobs: cjInf.Lister(),
		jobs:     jobInf.Lister(),
		synced:   []cache.InformerSynced{cjInf.Informer().HasSynced, jobInf.Informer().HasSynced},
		// The queue's delays run on the injected clock, so a fake clock
		// drives the schedule in tests.
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "cronjob", Clock: ctx.Clock}),
		events:   broadcaster,
		recorder: broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "cronjob-controller"}),
		clock:    ctx.Clock,
		local:    time.Local,
		log:      ctx.Logger.With("controller", "cronjob"),
	}
	if _, err := cjInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: c.updateCronJob,
		DeleteFunc: c.enqueue,
	}); err != nil {
		return nil, err
	}
	_, err := jobInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.enqueueOwner(obj.(*batchv1.Job)) },
		UpdateFunc: func(old, cur any) {
			oldJob, curJob := old.(*batchv1.Job), cur.(*batchv1.Job)
			if oldJob.ResourceVersion == curJob.ResourceVersion {
				return // a resync, nothing changed
			}
			// An owner that let go of the job must hear of it too.
			c.enqueueOwner(oldJob)
			c.enqueueOwner(curJob)
		},
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if job, ok := obj.(*batchv1.Job); ok {
				c.enqueueOwner(job)
			}
		},
	})
	return c, err
}

func (c *Controller) enqueue(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		c.queue.Add(key)
	}
}

// updateCronJob requeues a CronJob now, or, when its schedule or zone
// changed, at the new schedule's next activation: a change may bring the
// next run closer than the wake-up already queued (the queue keeps the
// earlier of two), and a later one makes the queued wake-up a no-op.
func (c *Controller) updateCronJob(old, cur any) {
	oldCJ, ok1 := old.(*batchv1.CronJob)
	cj, ok2 := cur.(*batchv1.CronJob)
	if !ok1 || !ok2 {
		return
	}
	if oldCJ.Spec.Schedule == cj.Spec.Schedule && ptr.Equal(oldCJ.Spec.TimeZone, cj.Spec.TimeZone) {
		c.enqueue(cj)
		return
	}
	loc := c.local
	if tz := cj.Spec.TimeZone; tz != nil {
		l, err := time.LoadLocation(*tz)
		if err != nil {
			c.enqueue(cj) // sync reports the unknown zone
			return
		}
		loc = l
	}
	sched, err := cronJobSchedule(cj, loc)
	if err != nil {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "UnParseableCronJobSchedule", "unparseable schedule for cronjob: %s", cj.Spec.Schedule)
		return
	}
	now := c.clock.Now()
	last := cj.CreationTimestamp.Time
	if cj.Status.LastScheduleTime != nil {
		last = cj.Status.LastScheduleTime.Time
	}
	if d := requeueAfter(sched, last, now); d != nil {
		c.queue.AddAfter(cj.Namespace+"/"+cj.Name, *d)
	}
}

// owner returns the CronJob controlling job, if it still exists.
func (c *Controller) owner(job *batchv1.Job) *batchv1.CronJob {
	ref := metav1.GetControllerOf(job)
	if ref == nil || ref.Kind != kind.Kind {
		return nil
	}
	cj, err := c.cronJobs.CronJobs(job.Namespace).Get(ref.Name)
	if err != nil || cj.UID != ref.UID {
		return nil // a different CronJob of the same name
	}
	return cj
}

func (c *Controller) enqueueOwner(job *batchv1.Job) {
	if cj := c.owner(job); cj != nil {
		c.enqueue(cj)
	}
}

// Run syncs CronJobs with several workers until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	c.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer c.events.Shutdown()
	return controller.RunWorkers(ctx, "cronjob", c.synced, workers, c.worker)
}

func (c *Controller) worker(ctx context.Context) {
	for {
		key, quit := c.queue.Get()
		if quit {
			return
		}
		requeue, err := c.sync(ctx, key)
		switch {
		case err != nil:
			c.log.Warn("syncing cron job", "key", key, "err", err)
			// Retry with backoff: the API refused a create, delete or
			// status write, or our cache was stale.
			c.queue.AddRateLimited(key)
		case requeue != nil:
			// Synced; forget past failures and wake up at the next run.
			c.queue.Forget(key)
			c.queue.AddAfter(key, *requeue)
		default:
			// Suspended, deleted or unschedulable: only a change wakes it.
			c.queue.Forget(key)
		}
		c.queue.Done(key)
	}
}

// sync brings one CronJob up to date and returns when to look again.
func (c *Controller) sync(ctx context.Context, key string) (*time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil, nil
	}
	cached, err := c.cronJobs.CronJobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil, nil // deleted; the garbage collector takes its jobs
	}
	if err != nil {
		return nil, err
	}
	jobs, err := c.ownedJobs(cached)
	if err != nil {
		return nil, err
	}
	cj, err := c.freshIfStale(ctx, cached, jobs)
	if cj == nil || err != nil {
		return nil, err
	}
	missing, err := c.missingJobs(ctx, cj, jobs)
	if err != nil {
		return nil, err
	}

	p := makePlan(cj, jobs, missing, c.clock.Now(), c.local)
	for _, e := range p.events {
		c.recorder.Event(cj, e.Type, e.Reason, e.Message)
	}
	status := p.status.DeepCopy()
	for _, j := range p.cleanup {
		c.deleteJob(ctx, cj, status, j.Name, j.UID) // a failure is reported and retried at the next sync
	}
	var runErr error
	if p.create != nil {
		runErr = c.run(ctx, cj, status, *p.create, p.replace)
	}
	if !equality.Semantic.DeepEqual(status, &cj.Status) {
		next := cj.DeepCopy()
		next.Status = *status
		if _, err := c.client.BatchV1().CronJobs(ns).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, nil
			}
			// A job created above is found again by name on the retry.
			return nil, err
		}
	}
	if runErr != nil {
		return nil, runErr
	}
	return p.requeue, nil
}

// ownedJobs lists the jobs cj controls, whatever their labels now say.
func (c *Controller) ownedJobs(cj *batchv1.CronJob) ([]*batchv1.Job, error) {
	all, err := c.jobs.Jobs(cj.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var out []*batchv1.Job
	for _, j := range all {
		if ref := metav1.GetControllerOf(j); ref != nil && ref.Kind == kind.Kind && ref.UID == cj.UID {
			out = append(out, j)
		}
	}
	return out, nil
}

// freshIfStale returns a copy of cj to work on. A running job missing
// from status.active usually means the informer has not yet delivered our
// own status update; the API server's copy is then used instead, so that
// the job is neither reported as unexpected nor created again.
func (c *Controller) freshIfStale(ctx context.Context, cj *batchv1.CronJob, jobs []*batchv1.Job) (*batchv1.CronJob, error) {
	stale := false
	for _, j := range jobs {
		if _, finished := finishedCondition(j); !finished && !inActive(&cj.Status, j.UID) {
			stale = true
		}
	}
	if !stale {
		return cj.DeepCopy(), nil
	}
	fresh, err := c.client.BatchV1().CronJobs(cj.Namespace).Get(ctx, cj.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if fresh.UID != cj.UID {
		return nil, nil // replaced by a new CronJob of the same name; its own event follows
	}
	return fresh, nil
}

// missingJobs confirms with the API server which active jobs the informer
// does not know, so that a slow watch does not drop a running job.
func (c *Controller) missingJobs(ctx context.Context, cj *batchv1.CronJob, jobs []*batchv1.Job) (map[types.UID]bool, error) {
	known := map[types.UID]bool{}
	for _, j := range jobs {
		known[j.UID] = true
	}
	missing := map[types.UID]bool{}
	for _, ref := range cj.Status.Active {
		if known[ref.UID] {
			continue
		}
		j, err := c.client.BatchV1().Jobs(cj.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			missing[ref.UID] = true
		case err != nil:
			return nil, err
		case j.UID != ref.UID:
			missing[ref.UID] = true // the name was reused by another job
		}
	}
	return missing, nil
}

// run starts the job for one scheduled time, first deleting the active
// jobs when it replaces them, and records it in status.
func (c *Controller) run(ctx context.Context, cj *batchv1.CronJob, status *batchv1.CronJobStatus, scheduled time.Time, replace bool) error {
	if replace {
		for _, ref := range append([]corev1.ObjectReference(nil), status.Active...) {
			j, err := c.client.BatchV1().Jobs(cj.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			if err != nil {
				c.recorder.Eventf(cj, corev1.EventTypeWarning, "FailedGet", "Get job: %v", err)
				return err
			}
			if !c.deleteJob(ctx, cj, status, j.Name, j.UID) {
				return fmt.Errorf("could not replace job %s/%s", j.Namespace, j.Name)
			}
		}
	}
	job, err := jobFor(cj, scheduled)
	if err != nil {
		return err
	}
	created, err := c.client.BatchV1().Jobs(cj.Namespace).Create(ctx, job, metav1.CreateOptions{})
	switch {
	case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		return err // every create fails until the namespace is gone
	case apierrors.IsAlreadyExists(err):
		// Either we created it and lost the status update, or someone
		// else made a job of that name.
		existing, err := c.client.BatchV1().Jobs(cj.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !metav1.IsControlledBy(existing, cj) || inActive(status, existing.UID) {
			return nil
		}
		c.log.Info("job already exists", "cronjob", cj.Namespace+"/"+cj.Name, "job", existing.Name)
		created = existing
	case err != nil:
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "FailedCreate", "Error creating job: %v", err)
		return err
	default:
		c.recorder.Eventf(cj, corev1.EventTypeNormal, "SuccessfulCreate", "Created job %v", created.Name)
	}
	status.Active = append(status.Active, jobRef(created))
	status.LastScheduleTime = &metav1.Time{Time: scheduled}
	return nil
}

// deleteJob deletes a job in the background (the garbage collector takes
// its pods) and drops it from the active list.
func (c *Controller) deleteJob(ctx context.Context, cj *batchv1.CronJob, status *batchv1.CronJobStatus, name string, uid types.UID) bool {
	err := c.client.BatchV1().Jobs(cj.Namespace).Delete(ctx, name, metav1.DeleteOptions{
		PropagationPolicy: ptr.To(metav1.DeletePropagationBackground),
		Preconditions:     &metav1.Preconditions{UID: &uid},
	})
	if err != nil && !apierrors.IsNotFound(err) {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "FailedDelete", "Deleted job: %v", err)
		c.log.Warn("deleting job", "cronjob", cj.Namespace+"/"+cj.Name, "job", name, "err", err)
		return false
	}
	removeActive(status, uid)
	if err == nil {
		c.recorder.Eventf(cj, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted job %v", name)
	}
	return true
}
