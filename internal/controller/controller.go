package controller

import (
	"context"
	"errors"
	"log/slog"
	"time"

	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// Context is what a controller is built from. Informers requested from
// Informers before the controllers run are started by the manager.
type Context struct {
	Client    kubernetes.Interface
	Metadata  metadata.Interface
	Informers informers.SharedInformerFactory
	Logger    *slog.Logger
	Clock     clock.WithTicker
}

// Controller is one control loop; Run blocks until ctx is done.
type Controller interface {
	Run(ctx context.Context) error
}

// Constructor builds a controller from the shared context.
type Constructor func(*Context) (Controller, error)

// ProcessQueue hands keys from queue to sync until the queue shuts down:
// a key whose sync failed comes back after the queue's rate-limited
// delay, a synced key's failure history is forgotten. Every controller's
// workers are this loop.
func ProcessQueue(ctx context.Context, queue workqueue.TypedRateLimitingInterface[string], log *slog.Logger, what string, sync func(context.Context, string) error) {
	for {
		key, quit := queue.Get()
		if quit {
			return
		}
		if err := sync(ctx, key); err != nil {
			log.Warn("sync failed; retrying", "what", what, "key", key, "err", err)
			queue.AddRateLimited(key)
		} else {
			queue.Forget(key)
		}
		queue.Done(key)
	}
}

// RunWorkers is the end of a queue-driven controller's Run: it waits until
// the informers have synced, then runs n copies of worker until ctx is
// done, each restarted a second after it returns early. It returns
// "<name>: informers did not sync" when ctx ends before the caches fill.
// The caller still shuts its queues down (a deferred ShutDown) so that
// the workers' Get returns once Run does.
func RunWorkers(ctx context.Context, name string, synced []cache.InformerSynced, n int, worker func(context.Context)) error {
	defer utilruntime.HandleCrash()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return errors.New(name + ": informers did not sync")
	}
	for i := 0; i < n; i++ {
		go wait.UntilWithContext(ctx, worker, time.Second)
	}
	<-ctx.Done()
	return nil
}
