package job

import (
	"fmt"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// policyVerdict is what a pod failure policy says about one failed pod.
type policyVerdict struct {
	// action is the matching rule's action; nil when no rule matched.
	action *batchv1.PodFailurePolicyAction
	// count tells whether the failure counts against the back-off limits.
	count bool
	// failJob is the Job's failure message when a FailJob rule matched.
	failJob string
}

// matchPodFailurePolicy applies the first rule that matches a failed pod,
// in order. Without a policy, or without a matching rule, the failure
// counts, as upstream.
func matchPodFailurePolicy(policy *batchv1.PodFailurePolicy, pod *corev1.Pod) policyVerdict {
	if policy == nil {
		return policyVerdict{count: true}
	}
	for i, rule := range policy.Rules {
		var what string
		switch {
		case rule.OnExitCodes != nil:
			cs := matchExitCodes(&pod.Status, rule.OnExitCodes)
			if cs == nil {
				continue
			}
			what = fmt.Sprintf("Container %s for pod %s/%s failed with exit code %d", cs.Name, pod.Namespace, pod.Name, cs.State.Terminated.ExitCode)
		case rule.OnPodConditions != nil:
			cond := matchPodConditions(&pod.Status, rule.OnPodConditions)
			if cond == nil {
				continue
			}
			what = fmt.Sprintf("Pod %s/%s has condition %s", pod.Namespace, pod.Name, cond.Type)
		default:
			continue
		}
		action := rule.Action
		switch action {
		case batchv1.PodFailurePolicyActionIgnore:
			return policyVerdict{action: &action}
		case batchv1.PodFailurePolicyActionCount, batchv1.PodFailurePolicyActionFailIndex:
			return policyVerdict{action: &action, count: true}
		case batchv1.PodFailurePolicyActionFailJob:
			return policyVerdict{action: &action, count: true,
				failJob: fmt.Sprintf("%s matching %s rule at index %d", what, action, i)}
		}
		// An action this version does not know: try the next rule, as
		// upstream skips rules it cannot apply.
	}
	return policyVerdict{count: true}
}

// matchExitCodes finds a container (app containers first, then init
// containers) that terminated with a non-zero code the requirement
// matches. Exit code 0 never matches: the container succeeded.
func matchExitCodes(st *corev1.PodStatus, req *batchv1.PodFailurePolicyOnExitCodesRequirement) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{st.ContainerStatuses, st.InitContainerStatuses} {
		for i := range list {
			cs := &list[i]
			t := cs.State.Terminated
			if t == nil || t.ExitCode == 0 || (req.ContainerName != nil && *req.ContainerName != cs.Name) {
				continue
			}
			in := slices.Contains(req.Values, t.ExitCode)
			switch req.Operator {
			case batchv1.PodFailurePolicyOnExitCodesOpIn:
				if in {
					return cs
				}
			case batchv1.PodFailurePolicyOnExitCodesOpNotIn:
				if !in {
					return cs
				}
			}
		}
	}
	return nil
}

// matchPodConditions finds a pod condition with a pattern's type and status.
func matchPodConditions(st *corev1.PodStatus, patterns []batchv1.PodFailurePolicyOnPodConditionsPattern) *corev1.PodCondition {
	for i := range st.Conditions {
		c := &st.Conditions[i]
		for _, p := range patterns {
			status := p.Status
			if status == "" {
				status = corev1.ConditionTrue
			}
			if c.Type == p.Type && c.Status == status {
				return c
			}
		}
	}
	return nil
}
