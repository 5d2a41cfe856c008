package job

import (
	"context"
	"errors"
	"log/slog"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	batchinformers "k8s.io/client-go/informers/batch/v1"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/lotse/lotse/internal/controller"
)

// ttlController is upstream's ttl-after-finished controller: it deletes a
// finished Job (and, through the garbage collector, its pods) once
// spec.ttlSecondsAfterFinished has passed since the Job's Complete or
// Failed condition.
type ttlController struct {
	client kubernetes.Interface
	jobs   batchlisters.JobLister
	synced cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]
	clock  clock.Clock
	log    *slog.Logger
}

func newTTLController(ctx *controller.Context, jobInf batchinformers.JobInformer) (*ttlController, error) {
	t := &ttlController{
		client: ctx.Client,
		jobs:   jobInf.Lister(),
		synced: jobInf.Informer().HasSynced,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "ttl_jobs_to_delete", Clock: ctx.Clock}),
		clock: ctx.Clock,
		log:   ctx.Logger.With("controller", "ttl-after-finished"),
	}
	enqueue := func(obj any) {
		job, ok := obj.(*batchv1.Job)
		if !ok || job.DeletionTimestamp != nil || !needsCleanup(job) {
			return
		}
		if key, err := cache.MetaNamespaceKeyFunc(job); err == nil {
			t.queue.Add(key)
		}
	}
	_, err := jobInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	})
	return t, err
}

// Run deletes expired Jobs with one worker until ctx is done.
func (t *ttlController) Run(ctx context.Context) error {
	defer t.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), t.synced) {
		return errors.New("ttl-after-finished: informers did not sync")
	}
	go wait.UntilWithContext(ctx, t.worker, time.Second)
	<-ctx.Done()
	return nil
}

func (t *ttlController) worker(ctx context.Context) {
	for {
		key, quit := t.queue.Get()
		if quit {
			return
		}
		if err := t.sync(ctx, key); err != nil {
			t.log.Warn("cleaning up job", "key", key, "err", err)
			// The delete failed; try again later.
			t.queue.AddRateLimited(key)
		} else {
			// Deleted, or not yet due (then queued with AddAfter).
			t.queue.Forget(key)
		}
		t.queue.Done(key)
	}
}

func (t *ttlController) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	job, err := t.jobs.Jobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if left, due := t.timeLeft(job); !due {
		if left > 0 {
			t.queue.AddAfter(key, left)
		}
		return nil
	}
	// The cache may be stale: the TTL may have been changed or the Job
	// replaced. Decide on the Job as stored.
	fresh, err := t.client.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if left, due := t.timeLeft(fresh); !due {
		if left > 0 {
			t.queue.AddAfter(key, left)
		}
		return nil
	}
	// Foreground, as upstream: the Job stays visible until its pods are gone.
	policy := metav1.DeletePropagationForeground
	t.log.Debug("deleting finished job", "key", key)
	err = t.client.BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{
		PropagationPolicy: &policy,
		Preconditions:     &metav1.Preconditions{UID: &fresh.UID},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone, or replaced by a new Job the informer will bring
	}
	return err
}

// timeLeft says how long a Job still has to live; due is true once it
// should be deleted. A Job that needs no cleanup is never due.
func (t *ttlController) timeLeft(job *batchv1.Job) (time.Duration, bool) {
	if job.DeletionTimestamp != nil || !needsCleanup(job) {
		return 0, false
	}
	finished := finishedCondition(job).LastTransitionTime.Time
	expire := finished.Add(time.Duration(*job.Spec.TTLSecondsAfterFinished) * time.Second)
	left := expire.Sub(t.clock.Now())
	if left <= 0 {
		return 0, true
	}
	return left, false
}

// needsCleanup: the Job asked for a TTL and has finished.
func needsCleanup(job *batchv1.Job) bool {
	return job.Spec.TTLSecondsAfterFinished != nil && finishedCondition(job) != nil
}
