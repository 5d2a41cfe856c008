package agent

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// relistInterval is how often the runtime is listed to notice containers
// that started, exited or vanished (upstream's PLEG relists every second).
const relistInterval = time.Second

// relistLoop wakes the worker of every pod whose containers or sandboxes
// changed since the last listing, and starts workers for pods the
// runtime has but the agent has no worker for: those of a previous run,
// adopted, or cleaned up when their pod is gone.
func (a *Agent) relistLoop(ctx context.Context) {
	last := map[types.UID]string{}
	ticker := time.NewTicker(relistInterval)
	defer ticker.Stop()
	for {
		if a.podsSynced() {
			if next, err := a.relist(ctx, last); err == nil {
				last = next
			} else if ctx.Err() == nil {
				a.log.Warn("runtime relist failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func (a *Agent) relist(ctx context.Context, last map[types.UID]string) (map[types.UID]string, error) {
	sbs, err := a.runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return nil, err
	}
	cs, err := a.runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		return nil, err
	}
	type podRef struct{ namespace, name string }
	refs := map[types.UID]podRef{}
	state := map[types.UID]string{}
	for _, sb := range sbs.Items {
		uid := types.UID(sb.Labels[labelPodUID])
		if uid == "" {
			continue // not ours
		}
		refs[uid] = podRef{sb.Labels[labelPodNamespace], sb.Labels[labelPodName]}
		state[uid] += fmt.Sprintf("s%s=%d;", sb.Id, sb.State)
	}
	for _, c := range cs.Containers {
		uid := types.UID(c.Labels[labelPodUID])
		if uid == "" {
			continue
		}
		if _, ok := refs[uid]; !ok {
			refs[uid] = podRef{c.Labels[labelPodNamespace], c.Labels[labelPodName]}
		}
		state[uid] += fmt.Sprintf("c%s=%d;", c.Id, c.State)
	}
	for uid, s := range state {
		if last[uid] == s {
			continue
		}
		a.mu.Lock()
		_, known := a.workers[string(uid)]
		a.mu.Unlock()
		if known {
			a.wake(string(uid))
		} else {
			a.wakePod(uid, refs[uid].namespace, refs[uid].name)
		}
	}
	return state, nil
}
