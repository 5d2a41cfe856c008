package scheduler

import (
	"context"
	"encoding/json"
	"fmt"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"

	"github.com/lotse/lotse/internal/scheduler/plugins"
)

// Binder is how the scheduler acts on a decision. It is the only way the
// scheduling loop writes to the cluster, so tests can record decisions
// instead.
type Binder interface {
	// Bind assigns pod to node.
	Bind(ctx context.Context, pod *v1.Pod, node string) error
	// Preempt makes room for pod on node: it records node as the pod's
	// status.nominatedNodeName and deletes the victims.
	Preempt(ctx context.Context, pod *v1.Pod, node string, victims []*v1.Pod) error
}

// Reporter tells users why a pod waits.
type Reporter interface {
	// Unschedulable records that no node fits pod, with the
	// FailedScheduling message.
	Unschedulable(ctx context.Context, pod *v1.Pod, message string) error
	// Scheduled records a successful bind.
	Scheduled(pod *v1.Pod, node string)
}

// apiBinder binds through the pods/binding subresource.
type apiBinder struct {
	client   kubernetes.Interface
	recorder record.EventRecorder // nil: no events (the benchmark's baseline)
	// volumes finds the pod's claims that wait for their first consumer.
	volumes plugins.Listers
}

func (b apiBinder) Bind(ctx context.Context, pod *v1.Pod, node string) error {
	if err := b.selectNode(ctx, pod, node); err != nil {
		return err
	}
	binding := &v1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		Target:     v1.ObjectReference{Kind: "Node", Name: node},
	}
	return b.client.CoreV1().Pods(pod.Namespace).Bind(ctx, binding, metav1.CreateOptions{})
}

// SelectedNodeAnnotation on a WaitForFirstConsumer claim tells the PV
// controller which node the claim's first pod goes to, so that it binds a
// PV that node can reach or provisions one there.
const SelectedNodeAnnotation = "volume.kubernetes.io/selected-node"

// selectNode annotates the pod's unbound WaitForFirstConsumer claims with
// the chosen node before the pod is bound, as upstream's VolumeBinding
// does in PreBind. Unlike upstream, the pod is bound without waiting for
// the claims: the node agent retries until they are bound.
func (b apiBinder) selectNode(ctx context.Context, pod *v1.Pod, node string) error {
	for _, vol := range pod.Spec.Volumes {
		if vol.PersistentVolumeClaim == nil {
			continue
		}
		// The filters have just read the claim through the same lister.
		claim, err := b.volumes.Claims.PersistentVolumeClaims(pod.Namespace).Get(vol.PersistentVolumeClaim.ClaimName)
		if err != nil {
			return fmt.Errorf("scheduler: claim %s/%s: %w", pod.Namespace, vol.PersistentVolumeClaim.ClaimName, err)
		}
		if claim.Spec.VolumeName != "" || claim.Annotations[SelectedNodeAnnotation] == node || !b.volumes.WaitsForFirstConsumer(claim) {
			continue
		}
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{SelectedNodeAnnotation: node}}})
		if _, err := b.client.CoreV1().PersistentVolumeClaims(pod.Namespace).Patch(ctx, claim.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("scheduler: selecting node %s for claim %s/%s: %w", node, claim.Namespace, claim.Name, err)
		}
	}
	return nil
}

func (b apiBinder) Preempt(ctx context.Context, pod *v1.Pod, node string, victims []*v1.Pod) error {
	for _, v := range victims {
		if b.recorder != nil {
			b.recorder.Eventf(v, v1.EventTypeNormal, "Preempted", "Preempted by pod %s on node %s", pod.UID, node)
		}
		err := b.client.CoreV1().Pods(v.Namespace).Delete(ctx, v.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &v.UID}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("scheduler: preempt %s/%s: %w", v.Namespace, v.Name, err)
		}
	}
	pods := b.client.CoreV1().Pods(pod.Namespace)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil || cur.UID != pod.UID || cur.Status.NominatedNodeName == node {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		}
		cur.Status.NominatedNodeName = node
		_, err = pods.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}

// apiReporter records events and the PodScheduled condition, as upstream.
type apiReporter struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
}

func (r apiReporter) Scheduled(pod *v1.Pod, node string) {
	r.recorder.Eventf(pod, v1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, node)
}

func (r apiReporter) Unschedulable(ctx context.Context, pod *v1.Pod, message string) error {
	r.recorder.Event(pod, v1.EventTypeWarning, "FailedScheduling", message)
	cond := v1.PodCondition{Type: v1.PodScheduled, Status: v1.ConditionFalse, Reason: v1.PodReasonUnschedulable, Message: message}
	if hasCondition(pod, cond) {
		return nil // nothing new; writing would only wake watchers
	}
	pods := r.client.CoreV1().Pods(pod.Namespace)
	cur := pod
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if cur == nil {
			var err error
			if cur, err = pods.Get(ctx, pod.Name, metav1.GetOptions{}); err != nil {
				return err
			}
		}
		if cur.UID != pod.UID || cur.Spec.NodeName != "" || hasCondition(cur, cond) {
			return nil // replaced, bound meanwhile, or already said
		}
		upd := cur.DeepCopy()
		setCondition(upd, cond)
		_, err := pods.UpdateStatus(ctx, upd, metav1.UpdateOptions{})
		cur = nil // on conflict, read again
		return err
	})
	if err != nil {
		return fmt.Errorf("scheduler: set PodScheduled on %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

func hasCondition(pod *v1.Pod, want v1.PodCondition) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == want.Type {
			return c.Status == want.Status && c.Reason == want.Reason && c.Message == want.Message
		}
	}
	return false
}

func setCondition(pod *v1.Pod, cond v1.PodCondition) {
	now := metav1.Now()
	for i, c := range pod.Status.Conditions {
		if c.Type == cond.Type {
			cond.LastTransitionTime = c.LastTransitionTime
			if c.Status != cond.Status {
				cond.LastTransitionTime = now
			}
			pod.Status.Conditions[i] = cond
			return
		}
	}
	cond.LastTransitionTime = now
	pod.Status.Conditions = append(pod.Status.Conditions, cond)
}
