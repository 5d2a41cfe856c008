package job

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/lotse/lotse/internal/controller"
)

// Pod labels the API server puts on a Job's template when it generates the
// selector; the controller adds any that are missing in that case.
const (
	labelControllerUID       = "batch.kubernetes.io/controller-uid"
	labelJobName             = "batch.kubernetes.io/job-name"
	labelLegacyControllerUID = "controller-uid"
	labelLegacyJobName       = "job-name"
	completionIndexEnv       = "JOB_COMPLETION_INDEX"
	// maxGeneratedNameLength leaves room for the five random characters
	// the API server appends to a generateName.
	maxGeneratedNameLength = 63 - 5
)

// claimPods returns the pods this Job controls. Matching orphans are
// adopted (with the tracking finalizer); owned pods whose labels stopped
// matching are released (without it).
func (c *Controller) claimPods(ctx context.Context, job *batchv1.Job) ([]*corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("job selector: %w", err)
	}
	// Only our own pods and orphans: the switch below ignores every pod
	// another controller owns.
	all, err := controller.ControlledOrOrphaned[*corev1.Pod](c.podIndex, job)
	if err != nil {
		return nil, err
	}
	canAdopt := job.DeletionTimestamp == nil && finishedCondition(job) == nil && !sel.Empty()
	var owned []*corev1.Pod
	for _, pod := range all {
		ref := metav1.GetControllerOf(pod)
		matches := sel.Matches(labels.Set(pod.Labels))
		switch {
		case ref != nil && ref.UID == job.UID:
			if matches {
				owned = append(owned, pod)
				continue
			}
			var refs []metav1.OwnerReference
			for _, r := range pod.OwnerReferences {
				if r.UID != job.UID {
					refs = append(refs, r)
				}
			}
			if err := c.patchMeta(ctx, pod, refs, without(pod.Finalizers, batchv1.JobTrackingFinalizer)); err != nil && !apierrors.IsNotFound(err) {
				return nil, err
			}
		case ref == nil && matches && canAdopt && pod.DeletionTimestamp == nil:
			refs := append(append([]metav1.OwnerReference(nil), pod.OwnerReferences...), *metav1.NewControllerRef(job, kind))
			fins := pod.Finalizers
			if !hasFinalizer(pod) {
				fins = append(append([]string(nil), fins...), batchv1.JobTrackingFinalizer)
			}
			if err := c.patchMeta(ctx, pod, refs, fins); err != nil {
				if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
					continue // gone or changed; the next sync looks again
				}
				return nil, err
			}
			adopted := pod.DeepCopy()
			adopted.OwnerReferences, adopted.Finalizers = refs, fins
			owned = append(owned, adopted)
		}
	}
	return owned, nil
}

// patchMeta sets a pod's owner references and finalizers, guarded by its
// resourceVersion so that a concurrent change is never overwritten.
func (c *Controller) patchMeta(ctx context.Context, pod *corev1.Pod, refs []metav1.OwnerReference, finalizers []string) error {
	if refs == nil {
		refs = []metav1.OwnerReference{}
	}
	if finalizers == nil {
		finalizers = []string{}
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": refs, "finalizers": finalizers, "uid": pod.UID, "resourceVersion": pod.ResourceVersion,
	}})
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

func without(list []string, s string) []string {
	var out []string
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}

func withFinalizer(pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if hasFinalizer(p) {
			out = append(out, p)
		}
	}
	return out
}

// removeFinalizerPatch drops only the tracking finalizer, whatever else
// the list holds by then.
var removeFinalizerPatch = []byte(`{"metadata":{"$deleteFromPrimitiveList/finalizers":["` + batchv1.JobTrackingFinalizer + `"]}}`)

// removeFinalizers takes the tracking finalizer off pods and returns the
// UIDs for which that is done (a pod already gone counts as done).
func (c *Controller) removeFinalizers(ctx context.Context, key string, pods []*corev1.Pod) ([]types.UID, error) {
	pods = withFinalizer(pods)
	if len(pods) == 0 {
		return nil, nil
	}
	uids := make([]types.UID, len(pods))
	for i, p := range pods {
		uids[i] = p.UID
	}
	c.expect.expectRemoval(key, uids)
	done := make([]bool, len(pods))
	errs := make(chan error, len(pods))
	var wg sync.WaitGroup
	for i, pod := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, removeFinalizerPatch, metav1.PatchOptions{})
			if err != nil {
				// No update will announce this removal.
				c.expect.removalObserved(key, pod.UID)
				if !apierrors.IsNotFound(err) {
					errs <- fmt.Errorf("removing tracking finalizer from %s: %w", pod.Name, err)
					return
				}
			}
			done[i] = true
		}()
	}
	wg.Wait()
	close(errs)
	var removed []types.UID
	for i, ok := range done {
		if ok {
			removed = append(removed, uids[i])
		}
	}
	return removed, <-errs
}

// deletePods deletes pods and returns how many of them were ready and how
// many were deleted. When manage deletes (suspend, too many pods) it
// first releases the pods, which are then never counted, and it has set
// expectations; when the Job's outcome is decided the finalizers stay so
// that the pods count as failed.
func (c *Controller) deletePods(ctx context.Context, job *batchv1.Job, pods []*corev1.Pod, managed bool) (ready, deleted int32, err error) {
	key := job.Namespace + "/" + job.Name
	errs := make(chan error, len(pods))
	var nReady, nDeleted atomic.Int32
	var wg sync.WaitGroup
	for _, pod := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fail := func(err error) {
				if managed {
					// A failed delete is never observed.
					c.expect.observe(key, 0, 1)
				}
				if !apierrors.IsNotFound(err) {
					c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
					errs <- err
				}
			}
			client := c.client.CoreV1().Pods(pod.Namespace)
			if managed && hasFinalizer(pod) {
				if _, err := client.Patch(ctx, pod.Name, types.StrategicMergePatchType, removeFinalizerPatch, metav1.PatchOptions{}); err != nil {
					fail(err)
					return
				}
			}
			if err := client.Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
				fail(err)
				if !apierrors.IsNotFound(err) {
					return
				}
			} else {
				c.recorder.Eventf(job, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", pod.Name)
			}
			nDeleted.Add(1)
			if podReady(pod) {
				nReady.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return nReady.Load(), nDeleted.Load(), <-errs
}

// createPods creates n pods (one per index for Indexed jobs) in batches of
// 1, 2, 4, ..., stopping at the first failing batch, so that a Job that
// cannot create pods (quota, admission) does not flood the API server.
func (c *Controller) createPods(ctx context.Context, st *syncState, n int, indexes []int) (int, error) {
	job := st.job
	tmpl := job.Spec.Template.DeepCopy()
	if isIndexed(job) {
		addIndexEnv(tmpl)
	}
	done := 0
	for batch := 1; done < n; batch *= 2 {
		size := min(batch, n-done)
		var wg sync.WaitGroup
		errs := make(chan error, size)
		for i := 0; i < size; i++ {
			ix := noIndex
			if indexes != nil {
				ix = indexes[done+i]
			}
			var failures, ignored int32
			if job.Spec.BackoffLimitPerIndex != nil && ix != noIndex {
				failures, ignored = nextFailureCounts(job, st.delayed[ix])
			}
			pod := newPod(job, tmpl, ix, failures, ignored)
			wg.Add(1)
			go func() {
				defer wg.Done()
				created, err := c.client.CoreV1().Pods(job.Namespace).Create(ctx, pod, metav1.CreateOptions{})
				if err != nil {
					if !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
						c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
					}
					errs <- err
					return
				}
				c.recorder.Eventf(job, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", created.Name)
			}()
		}
		wg.Wait()
		close(errs)
		failed := len(errs)
		done += size - failed
		if failed > 0 {
			err := <-errs
			if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
				return done, nil // the namespace goes, and the Job with it
			}
			return done, err
		}
	}
	return done, nil
}

// newPod builds one pod of a Job from its (prepared) template. Indexed
// pods get their index as annotation and label, the hostname <job>-<index>
// and a generateName that shows the index; with backoffLimitPerIndex they
// carry the index's failure counts.
func newPod(job *batchv1.Job, tmpl *corev1.PodTemplateSpec, index int, failures, ignored int32) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    generateName(job.Name, index),
			Namespace:       job.Namespace,
			Labels:          copyMap(tmpl.Labels),
			Annotations:     copyMap(tmpl.Annotations),
			Finalizers:      append([]string(nil), tmpl.Finalizers...),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job, kind)},
		},
		Spec: *tmpl.Spec.DeepCopy(),
	}
	if !hasFinalizer(pod) {
		pod.Finalizers = append(pod.Finalizers, batchv1.JobTrackingFinalizer)
	}
	if job.Spec.ManualSelector == nil || !*job.Spec.ManualSelector {
		for k, v := range map[string]string{
			labelControllerUID: string(job.UID), labelLegacyControllerUID: string(job.UID),
			labelJobName: job.Name, labelLegacyJobName: job.Name,
		} {
			if _, ok := pod.Labels[k]; !ok {
				pod.Labels[k] = v
			}
		}
	}
	if index != noIndex {
		ix := strconv.Itoa(index)
		pod.Annotations[batchv1.JobCompletionIndexAnnotation] = ix
		pod.Labels[batchv1.JobCompletionIndexAnnotation] = ix
		pod.Spec.Hostname = fmt.Sprintf("%s-%d", job.Name, index)
		if job.Spec.BackoffLimitPerIndex != nil {
			pod.Annotations[batchv1.JobIndexFailureCountAnnotation] = strconv.Itoa(int(failures))
			if ignored > 0 {
				pod.Annotations[batchv1.JobIndexIgnoredFailureCountAnnotation] = strconv.Itoa(int(ignored))
			}
		}
	}
	return pod
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+4)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// generateName is "<job>-" or "<job>-<index>-", with the job name cut
// short when the API server's random suffix would not fit.
func generateName(job string, index int) string {
	suffix := "-"
	if index != noIndex {
		suffix = "-" + strconv.Itoa(index) + "-"
	}
	if len(job)+len(suffix) > maxGeneratedNameLength {
		job = job[:maxGeneratedNameLength-len(suffix)]
	}
	return job + suffix
}

// addIndexEnv gives every container JOB_COMPLETION_INDEX from the pod's
// index label, unless the user set the variable.
func addIndexEnv(tmpl *corev1.PodTemplateSpec) {
	add := func(cs []corev1.Container) {
		for i := range cs {
			has := false
			for _, e := range cs[i].Env {
				has = has || e.Name == completionIndexEnv
			}
			if !has {
				cs[i].Env = append(cs[i].Env, corev1.EnvVar{Name: completionIndexEnv, ValueFrom: &corev1.EnvVarSource{
					FieldRef: &corev1.ObjectFieldSelector{FieldPath: fmt.Sprintf("metadata.labels['%s']", batchv1.JobCompletionIndexAnnotation)},
				}})
			}
		}
	}
	add(tmpl.Spec.InitContainers)
	add(tmpl.Spec.Containers)
}

// releaseOrphan removes the tracking finalizer from a pod whose Job is
// gone, finished, or was never a Job: no sync will ever count it.
func (c *Controller) releaseOrphan(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := c.pods.Pods(ns).Get(name)
	if err != nil || !hasFinalizer(pod) {
		return nil
	}
	if ref := metav1.GetControllerOf(pod); ref != nil && ownerKey(pod) != "" {
		if job, err := c.jobs.Jobs(ns).Get(ref.Name); err == nil && job.UID == ref.UID && finishedCondition(job) == nil {
			return nil // its Job counts it
		}
		// The cache may lag behind a Job just created: ask the API.
		job, err := c.client.BatchV1().Jobs(ns).Get(ctx, ref.Name, metav1.GetOptions{})
		if err == nil && job.UID == ref.UID && finishedCondition(job) == nil {
			return nil
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	} else if ref == nil {
		for _, job := range c.jobsSelecting(pod) {
			if finishedCondition(job) == nil && job.DeletionTimestamp == nil {
				return nil // about to be adopted
			}
		}
	}
	_, err = c.client.CoreV1().Pods(ns).Patch(ctx, name, types.StrategicMergePatchType, removeFinalizerPatch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
