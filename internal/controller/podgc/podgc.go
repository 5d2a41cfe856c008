package podgc

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/controller"
)

// Config holds the timings and the threshold; zero means upstream's.
type Config struct {
	// Period is how often pods are collected [20s].
	Period time.Duration
	// Quarantine is how long a node must have been missing before its
	// pods are collected [40s], so that a node registering late is not
	// robbed of its pods.
	Quarantine time.Duration
	// TerminatedThreshold is how many finished pods may exist [12500].
	TerminatedThreshold int
}

// Controller is the pod garbage collector.
type Controller struct {
	cfg    Config
	client kubernetes.Interface
	pods   corelisters.PodLister
	nodes  corelisters.NodeLister
	synced []cache.InformerSynced
	clock  clock.WithTicker
	log    *slog.Logger
	// missing is when each absent node was first noticed missing.
	missing map[string]time.Time
}

// New builds the collector with upstream's settings.
func New(ctx *controller.Context) (controller.Controller, error) {
	return NewWithConfig(ctx, Config{})
}

// NewWithConfig builds the collector with other settings (tests).
func NewWithConfig(ctx *controller.Context, cfg Config) (controller.Controller, error) {
	if cfg.Period <= 0 {
		cfg.Period = 20 * time.Second
	}
	if cfg.Quarantine <= 0 {
		cfg.Quarantine = 40 * time.Second
	}
	if cfg.TerminatedThreshold <= 0 {
		cfg.TerminatedThreshold = 12500
	}
	podInf, nodeInf := ctx.Informers.Core().V1().Pods(), ctx.Informers.Core().V1().Nodes()
	return &Controller{
		cfg: cfg, client: ctx.Client, pods: podInf.Lister(), nodes: nodeInf.Lister(),
		synced: []cache.InformerSynced{podInf.Informer().HasSynced, nodeInf.Informer().HasSynced},
		clock:  ctx.Clock, log: ctx.Logger.With("controller", "podgc"), missing: map[string]time.Time{},
	}, nil
}

// Run collects every Period until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	defer utilruntime.HandleCrash()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return errors.New("podgc: informers did not sync")
	}
	ticker := c.clock.NewTicker(c.cfg.Period)
	defer ticker.Stop()
	for {
		c.collect(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C():
		}
	}
}

func (c *Controller) collect(ctx context.Context) {
	pods, err := c.pods.List(labels.Everything())
	if err != nil {
		return
	}
	now := c.clock.Now()
	var finished []*corev1.Pod
	stillMissing := map[string]bool{}
	for _, pod := range pods {
		switch {
		case pod.Spec.NodeName == "" && pod.DeletionTimestamp != nil:
			// Nobody runs it, so nobody will confirm it stopped.
			c.forceDelete(ctx, pod, "")
		case pod.Spec.NodeName != "" && c.nodeGone(ctx, pod.Spec.NodeName, now):
			stillMissing[pod.Spec.NodeName] = true
			c.forceDelete(ctx, pod, "PodGC: node no longer exists")
		case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
			if pod.DeletionTimestamp == nil {
				finished = append(finished, pod)
			}
		}
	}
	for name := range c.missing {
		if !stillMissing[name] {
			if _, err := c.nodes.Get(name); err == nil {
				delete(c.missing, name)
			}
		}
	}
	if extra := len(finished) - c.cfg.TerminatedThreshold; extra > 0 {
		sort.Slice(finished, func(i, j int) bool {
			return finished[i].CreationTimestamp.Before(&finished[j].CreationTimestamp)
		})
		for _, pod := range finished[:extra] {
			c.forceDelete(ctx, pod, "")
		}
	}
}

// nodeGone reports whether a node has been missing for the quarantine,
// checked against the API itself, not only the informer.
func (c *Controller) nodeGone(ctx context.Context, name string, now time.Time) bool {
	if _, err := c.nodes.Get(name); err == nil {
		delete(c.missing, name)
		return false
	}
	first, ok := c.missing[name]
	if !ok {
		c.missing[name] = now
		return false
	}
	if now.Sub(first) < c.cfg.Quarantine {
		return false
	}
	_, err := c.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	return apierrors.IsNotFound(err)
}

// forceDelete deletes a pod without waiting for a node to confirm it,
// marking it DisruptionTarget first when it is collected for its node.
func (c *Controller) forceDelete(ctx context.Context, pod *corev1.Pod, disruption string) {
	if disruption != "" && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
		next := pod.DeepCopy()
		next.Status.Conditions = append(next.Status.Conditions, corev1.PodCondition{
			Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "DeletionByPodGC",
			Message: disruption, LastTransitionTime: metav1.NewTime(c.clock.Now()),
		})
		next.Status.Phase = corev1.PodFailed
		_, _ = c.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	}
	uid := pod.UID
	err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To(int64(0)), Preconditions: &metav1.Preconditions{UID: &uid},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		c.log.Warn("could not delete pod", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		return
	}
	c.log.Info("collected pod", "pod", pod.Namespace+"/"+pod.Name, "node", pod.Spec.NodeName)
}
