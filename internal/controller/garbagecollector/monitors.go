package garbagecollector

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

// ignored resources are never owners or dependents worth tracking and
// change too often to watch, as upstream decides.
var ignored = map[schema.GroupResource]bool{
	{Group: "", Resource: "events"}:              true,
	{Group: "events.k8s.io", Resource: "events"}: true,
}

// monitor is one metadata informer feeding the graph.
type monitor struct {
	cancel context.CancelFunc
	synced cache.InformerSynced
}

// deletableResources lists the preferred version of every resource the
// collector can watch and delete, with its kind.
func (c *Controller) deletableResources() (map[schema.GroupVersionResource]schema.GroupVersionKind, error) {
	lists, err := c.discovery.ServerPreferredResources()
	if err != nil && len(lists) == 0 {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	if err != nil {
		// Some groups failed; watch what we can and try again next round.
		c.log.Warn("partial discovery", "err", err)
	}
	out := map[schema.GroupVersionResource]schema.GroupVersionKind{}
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range list.APIResources {
			if strings.Contains(r.Name, "/") || ignored[gv.WithResource(r.Name).GroupResource()] {
				continue
			}
			if !hasString(r.Verbs, "list") || !hasString(r.Verbs, "watch") || !hasString(r.Verbs, "delete") {
				continue
			}
			out[gv.WithResource(r.Name)] = gv.WithKind(r.Kind)
		}
	}
	return out, nil
}

// syncMonitors starts informers for new resources and stops those for
// resources no longer served. It returns the new monitors' sync checks.
func (c *Controller) syncMonitors(ctx context.Context, want map[schema.GroupVersionResource]schema.GroupVersionKind) ([]cache.InformerSynced, error) {
	var started []cache.InformerSynced
	for gvr, m := range c.monitors {
		if _, ok := want[gvr]; !ok {
			m.cancel()
			delete(c.monitors, gvr)
			c.log.Info("stopped watching", "resource", gvr.String())
		}
	}
	for gvr, gvk := range want {
		if _, ok := c.monitors[gvr]; ok {
			continue
		}
		inf := metadatainformer.NewFilteredMetadataInformer(c.metadata, gvr, metav1.NamespaceAll, 0, cache.Indexers{}, nil).Informer()
		reg, err := inf.AddEventHandler(c.handler(gvk))
		if err != nil {
			return nil, err
		}
		mctx, cancel := context.WithCancel(ctx)
		go inf.RunWithContext(mctx)
		c.monitors[gvr] = &monitor{cancel: cancel, synced: reg.HasSynced}
		started = append(started, reg.HasSynced)
	}
	return started, nil
}

// handler turns informer events of one kind into graph observations.
func (c *Controller) handler(gvk schema.GroupVersionKind) cache.ResourceEventHandler {
	apiVersion, kind := gvk.GroupVersion().String(), gvk.Kind
	observe := func(obj any, gone bool) {
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		acc, err := meta.Accessor(obj)
		if err != nil {
			return
		}
		ob := observation{
			ref:        objectRef{APIVersion: apiVersion, Kind: kind, Name: acc.GetName(), Namespace: acc.GetNamespace(), UID: acc.GetUID()},
			owners:     acc.GetOwnerReferences(),
			deleting:   acc.GetDeletionTimestamp() != nil,
			finalizers: acc.GetFinalizers(),
			gone:       gone,
		}
		c.enqueue(c.graph.observe(ob))
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { observe(obj, false) },
		UpdateFunc: func(_, obj any) { observe(obj, false) },
		DeleteFunc: func(obj any) { observe(obj, true) },
	}
}

// resync re-discovers resources and starts monitors for new ones. Workers
// pause until the new informers have synced, so that no decision (orphaning
// above all) is taken on a graph missing a whole kind of dependents.
func (c *Controller) resync(ctx context.Context) error {
	want, err := c.deletableResources()
	if err != nil {
		return err
	}
	c.mapper.Reset()
	c.workerLock.Lock()
	defer c.workerLock.Unlock()
	started, err := c.syncMonitors(ctx, want)
	if err != nil || len(started) == 0 {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, c.period)
	defer cancel()
	if !cache.WaitForCacheSync(wctx.Done(), started...) {
		return fmt.Errorf("new informers did not sync within %s", c.period)
	}
	return nil
}

// resyncLoop re-discovers every period until ctx is done.
func (c *Controller) resyncLoop(ctx context.Context) {
	t := c.clock.NewTicker(c.period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			start := c.clock.Now()
			if err := c.resync(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("resyncing resources", "err", err, "took", c.clock.Since(start))
			}
		}
	}
}
