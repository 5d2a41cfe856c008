package agent

import (
	"context"
	"slices"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Labels the agent puts on sandboxes and containers, the same keys the
// kubelet uses, so that what the runtime has can be matched to pods after
// a restart.
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
)

// podRuntime is what the runtime holds for one pod.
type podRuntime struct {
	// sandboxes, newest first.
	sandboxes []*runtimeapi.PodSandbox
	// containers with their full status, by container name, newest
	// attempt first.
	containers map[string][]*runtimeapi.ContainerStatus
}

// readySandbox is the newest sandbox if it is ready.
func (r podRuntime) readySandbox() *runtimeapi.PodSandbox {
	if len(r.sandboxes) > 0 && r.sandboxes[0].State == runtimeapi.PodSandboxState_SANDBOX_READY {
		return r.sandboxes[0]
	}
	return nil
}

// running reports whether a sandbox is ready or a container runs.
func (r podRuntime) running() bool {
	if r.readySandbox() != nil {
		return true
	}
	for _, instances := range r.containers {
		for _, c := range instances {
			if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING || c.State == runtimeapi.ContainerState_CONTAINER_CREATED {
				return true
			}
		}
	}
	return false
}

// latest is the newest instance of a container, nil if none.
func (r podRuntime) latest(name string) *runtimeapi.ContainerStatus {
	if c := r.containers[name]; len(c) > 0 {
		return c[0]
	}
	return nil
}

// previous is the instance before the newest, for lastState.
func (r podRuntime) previous(name string) *runtimeapi.ContainerStatus {
	if c := r.containers[name]; len(c) > 1 {
		return c[1]
	}
	return nil
}

func (a *Agent) runtimeState(ctx context.Context, uid types.UID) (podRuntime, error) {
	sel := map[string]string{labelPodUID: string(uid)}
	sbs, err := a.runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: sel}})
	if err != nil {
		return podRuntime{}, err
	}
	rt := podRuntime{sandboxes: sbs.Items, containers: map[string][]*runtimeapi.ContainerStatus{}}
	slices.SortFunc(rt.sandboxes, func(x, y *runtimeapi.PodSandbox) int { return cmpInt64(y.CreatedAt, x.CreatedAt) })
	cs, err := a.runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{LabelSelector: sel}})
	if err != nil {
		return podRuntime{}, err
	}
	for _, c := range cs.Containers {
		st, err := a.runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.Id})
		if err != nil || st.Status == nil {
			continue // removed meanwhile
		}
		name := c.Labels[labelContainerName]
		rt.containers[name] = append(rt.containers[name], st.Status)
	}
	for _, list := range rt.containers {
		slices.SortFunc(list, func(x, y *runtimeapi.ContainerStatus) int {
			if x.Metadata.Attempt != y.Metadata.Attempt {
				return int(y.Metadata.Attempt) - int(x.Metadata.Attempt)
			}
			return cmpInt64(y.CreatedAt, x.CreatedAt)
		})
	}
	return rt, nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
