package agent

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Container log rotation, as the kubelet's: every logRotateInterval, a
// running container's log larger than Config.ContainerLogMaxSize is renamed
// to <log>.<UTC time> and the runtime reopens the log (ReopenContainerLog);
// of the rotated files, the oldest go so that each container keeps at most
// Config.ContainerLogMaxFiles files, the current one included. `kubectl
// logs` reads the current file, as upstream's does; a follower moves on to
// the new file. Where lotse differs: rotated files are not gzipped
// (upstream compresses all but the newest).
const (
	logRotateInterval          = 10 * time.Second
	defaultContainerLogMaxSize = 10 << 20 // 10Mi, upstream's default
	defaultContainerLogMaxFile = 5
	rotatedTimeFormat          = "20060102-150405.000000"
)

func (a *Agent) logRotateLoop(ctx context.Context) {
	ticker := time.NewTicker(logRotateInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if err := a.rotateLogs(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("container log rotation failed", "err", err)
		}
	}
}

// rotateLogs rotates the logs of every running container of this agent's
// pods that outgrew the limit.
func (a *Agent) rotateLogs(ctx context.Context) error {
	cs, err := a.runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{
		Filter: &runtimeapi.ContainerFilter{State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}},
	})
	if err != nil {
		return err
	}
	for _, c := range cs.Containers {
		if c.Labels[labelPodUID] == "" {
			continue // not ours
		}
		st, err := a.runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.Id})
		if err != nil || !filepath.IsAbs(st.Status.LogPath) {
			continue // gone meanwhile, or logging nowhere we know
		}
		if err := a.rotateLog(ctx, c.Id, st.Status.LogPath); err != nil {
			a.log.Warn("cannot rotate a container log", "container", c.Id, "log", st.Status.LogPath, "err", err)
		}
	}
	return nil
}

// rotateLog rotates one container's log if it is over the limit, and
// trims its rotated files to the limit either way.
func (a *Agent) rotateLog(ctx context.Context, id, path string) error {
	defer a.trimRotated(path)
	fi, err := os.Stat(path)
	if err != nil || fi.Size() < a.cfg.ContainerLogMaxSize {
		return nil
	}
	rotated := path + "." + time.Now().UTC().Format(rotatedTimeFormat)
	if err := os.Rename(path, rotated); err != nil {
		return err
	}
	if _, err := a.runtime.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: id}); err != nil {
		// The runtime still writes to the renamed file: give it its
		// name back, so that logs keep landing where readers look.
		_ = os.Rename(rotated, path)
		return err
	}
	return nil
}

// trimRotated removes the oldest rotated files of path beyond the limit.
func (a *Agent) trimRotated(path string) {
	old, _ := filepath.Glob(path + ".*")
	old = slices.DeleteFunc(old, func(p string) bool {
		_, err := time.Parse(rotatedTimeFormat, strings.TrimPrefix(p, path+"."))
		return err != nil
	})
	slices.Sort(old) // the time format sorts as it reads
	for len(old) > a.cfg.ContainerLogMaxFiles-1 {
		_ = os.Remove(old[0])
		old = old[1:]
	}
}
