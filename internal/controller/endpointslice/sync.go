package endpointslice

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// errStale makes a sync wait for the slice informer to catch up with the
// controller's own writes.
var errStale = errors.New("endpointslice: slice informer is behind this controller's writes")

// wantsEndpoints reports whether the controllers publish endpoints for
// svc: Services without a selector are managed by their users, and
// ExternalName Services are a DNS alias with no endpoints.
func wantsEndpoints(svc *corev1.Service) bool {
	return svc.Spec.Type != corev1.ServiceTypeExternalName && len(svc.Spec.Selector) > 0
}

// syncSlices makes the EndpointSlices of one Service match its pods.
func (c *Controller) syncSlices(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	all, err := c.slices.EndpointSlices(ns).List(labels.SelectorFromSet(labels.Set{
		discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: ControllerName,
	}))
	if err != nil {
		return err
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		// The garbage collector would remove them through their owner
		// reference too; deleting them now keeps the answer prompt.
		c.sliceTriggers.forget(key)
		err := c.deleteSlices(ctx, key, all)
		c.sliceTracker.Forget(key)
		return err
	}
	if err != nil {
		return err
	}
	// Slices written a moment ago may not be listed yet: wait for them
	// even when all are to go.
	if c.sliceTracker.Stale(key, all) {
		return errStale
	}
	if !wantsEndpoints(svc) {
		return c.deleteSlices(ctx, key, all)
	}
	pods, err := c.pods.Pods(ns).List(labels.SelectorFromValidatedSet(svc.Spec.Selector))
	if err != nil {
		return err
	}
	trigger := c.sliceTriggers.observe(key, svc, pods)

	var plan slicePlan
	byType := map[discoveryv1.AddressType][]*discoveryv1.EndpointSlice{}
	wanted := map[discoveryv1.AddressType]bool{}
	for _, f := range families(svc) {
		wanted[discoveryv1.AddressType(f)] = true
	}
	for _, s := range all {
		if wanted[s.AddressType] && ownedBy(s, svc) {
			byType[s.AddressType] = append(byType[s.AddressType], s)
		} else {
			// A family the Service dropped, or left over from an
			// earlier Service of the same name.
			plan.remove = append(plan.remove, s)
		}
	}
	var missing []string
	for _, f := range families(svc) {
		t := discoveryv1.AddressType(f)
		groups, miss := desiredEndpoints(svc, pods, t, c.nodeZone)
		missing = append(missing, miss...)
		p := planSlices(svc, t, byType[t], groups, c.maxPerSlice)
		plan.create = append(plan.create, p.create...)
		plan.update = append(plan.update, p.update...)
		plan.remove = append(plan.remove, p.remove...)
	}
	if err := c.applySlices(ctx, key, svc, plan, trigger); err != nil {
		if apierrors.IsConflict(err) {
			return err // a stale informer; the retry sees the newer slice
		}
		c.sliceRecorder.Eventf(svc, corev1.EventTypeWarning, "FailedToUpdateEndpointSlices",
			"Error updating Endpoint Slices for Service %s: %v", key, err)
		return err
	}
	if len(missing) > 0 {
		// Retry once the node is known; the slices are right meanwhile.
		return fmt.Errorf("pods of service %s on unknown nodes %v", key, missing)
	}
	return nil
}

// nodeZone looks a node up in the informer.
func (c *Controller) nodeZone(name string) (string, bool) {
	n, err := c.nodes.Get(name)
	if err != nil {
		return "", false
	}
	return n.Labels[corev1.LabelTopologyZone], true
}

// applySlices writes a plan: creates, then updates, then deletes, so a
// Service is never without endpoints in between.
func (c *Controller) applySlices(ctx context.Context, key string, svc *corev1.Service, plan slicePlan, trigger time.Time) error {
	api := c.client.DiscoveryV1().EndpointSlices(svc.Namespace)
	// A Service being deleted gets no new slices: they would race the
	// garbage collector.
	if svc.DeletionTimestamp == nil {
		for _, s := range plan.create {
			setTriggerTime(&s.ObjectMeta, trigger)
			got, err := api.Create(ctx, s, metav1.CreateOptions{})
			if err != nil {
				if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
					return nil // creates keep failing until the namespace is gone
				}
				return err
			}
			c.sliceTracker.Wrote(key, got)
		}
	}
	for _, s := range plan.update {
		setTriggerTime(&s.ObjectMeta, trigger)
		got, err := api.Update(ctx, s, metav1.UpdateOptions{})
		if err != nil {
			return err
		}
		c.sliceTracker.Wrote(key, got)
	}
	return c.deleteSlices(ctx, key, plan.remove)
}

func (c *Controller) deleteSlices(ctx context.Context, key string, slices []*discoveryv1.EndpointSlice) error {
	for _, s := range slices {
		err := c.client.DiscoveryV1().EndpointSlices(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: ptr.To(s.UID)},
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		c.sliceTracker.Deleted(key, s)
	}
	return nil
}

// setTriggerTime sets (or, with no new trigger, clears) the
// last-change-trigger-time annotation.
func setTriggerTime(meta *metav1.ObjectMeta, at time.Time) {
	if meta.Annotations == nil {
		meta.Annotations = map[string]string{}
	}
	if at.IsZero() {
		delete(meta.Annotations, corev1.EndpointsLastChangeTriggerTime)
		return
	}
	meta.Annotations[corev1.EndpointsLastChangeTriggerTime] = at.UTC().Format(time.RFC3339Nano)
}

// syncEndpoints makes the legacy Endpoints of one Service match its pods.
func (c *Controller) syncEndpoints(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.endpointsTriggers.forget(key)
		err := c.client.CoreV1().Endpoints(ns).Delete(ctx, name, metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	if err != nil {
		return err
	}
	if !wantsEndpoints(svc) {
		return nil // the user's Endpoints, or none at all
	}
	pods, err := c.pods.Pods(ns).List(labels.SelectorFromValidatedSet(svc.Spec.Selector))
	if err != nil {
		return err
	}
	trigger := c.endpointsTriggers.observe(key, svc, pods)
	subsets, truncated := truncateSubsets(desiredSubsets(svc, pods), MaxEndpointsAddresses)
	want := endpointsLabels(svc)

	cur, err := c.endpoints.Endpoints(ns).Get(name)
	create := apierrors.IsNotFound(err)
	if err != nil && !create {
		return err
	}
	if !create {
		_, overCap := cur.Annotations[corev1.EndpointsOverCapacity]
		if equality.Semantic.DeepEqual(cur.Subsets, subsets) && equality.Semantic.DeepEqual(cur.Labels, want) && overCap == truncated {
			return nil
		}
		cur = cur.DeepCopy()
	} else {
		cur = &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	}
	cur.Labels, cur.Subsets = want, subsets
	setTriggerTime(&cur.ObjectMeta, trigger)
	if truncated {
		cur.Annotations[corev1.EndpointsOverCapacity] = "truncated"
	} else {
		delete(cur.Annotations, corev1.EndpointsOverCapacity)
	}
	if create {
		_, err = c.client.CoreV1().Endpoints(ns).Create(ctx, cur, metav1.CreateOptions{})
	} else {
		_, err = c.client.CoreV1().Endpoints(ns).Update(ctx, cur, metav1.UpdateOptions{})
	}
	switch {
	case err == nil:
		return nil
	case create && apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		return nil // creates keep failing until the namespace is gone
	case create:
		c.endpointRecorder.Eventf(cur, corev1.EventTypeWarning, "FailedToCreateEndpoint",
			"Failed to create endpoint for service %s: %v", key, err)
	case !apierrors.IsConflict(err):
		c.endpointRecorder.Eventf(cur, corev1.EventTypeWarning, "FailedToUpdateEndpoint",
			"Failed to update endpoint %s: %v", key, err)
	}
	return err
}
