package agent

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

const (
	// leaseDuration is how long the node's Lease is good for; the node
	// lifecycle controller marks a node NotReady once it has lapsed.
	leaseDuration = 40
	// statusRefresh is how often the node status is written even when
	// nothing changed, as upstream's nodeStatusReportFrequency.
	statusRefresh = 5 * time.Minute
	maxPods       = 110
)

// registerNode creates the Node, or takes over the existing one of the
// same name (a restart), and writes its first status.
func (a *Agent) registerNode(ctx context.Context) error {
	nodes := a.client.CoreV1().Nodes()
	for {
		node, err := nodes.Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			node = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName}}
			a.nodeSpec(node)
			node.Status, err = a.nodeStatus(ctx, nil)
			if err != nil {
				return err
			}
			_, err = nodes.Create(ctx, node, metav1.CreateOptions{})
			if err == nil {
				a.log.Info("node registered", "node", a.cfg.NodeName)
				return nil
			}
		case err == nil:
			want := node.DeepCopy()
			a.nodeSpec(want)
			if !apiequality.Semantic.DeepEqual(want.ObjectMeta, node.ObjectMeta) || !apiequality.Semantic.DeepEqual(want.Spec, node.Spec) {
				node, err = nodes.Update(ctx, want, metav1.UpdateOptions{})
				if err != nil {
					break
				}
			}
			_, err = a.updateNodeStatus(ctx, node, true)
			if err == nil {
				return nil
			}
		}
		a.log.Warn("node registration failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// nodeSpec sets what the agent owns in the Node's metadata and spec.
func (a *Agent) nodeSpec(node *corev1.Node) {
	if node.Labels == nil {
		node.Labels = map[string]string{}
	}
	node.Labels[corev1.LabelHostname] = a.cfg.NodeName
	node.Labels[corev1.LabelOSStable] = runtime.GOOS
	node.Labels[corev1.LabelArchStable] = runtime.GOARCH
	for k, v := range a.cfg.Labels {
		node.Labels[k] = v
	}
	if node.Annotations == nil {
		node.Annotations = map[string]string{}
	}
	node.Annotations[localPathDirAnnotation] = a.localPathDir()
	if node.Spec.PodCIDR == "" {
		node.Spec.PodCIDR = a.cfg.PodCIDR
		node.Spec.PodCIDRs = []string{a.cfg.PodCIDR}
	}
}

// nodeStatusLoop renews the Lease and writes the node status when it
// changed (or every statusRefresh), every StatusInterval.
func (a *Agent) nodeStatusLoop(ctx context.Context) {
	ticker := time.NewTicker(a.cfg.StatusInterval)
	defer ticker.Stop()
	lastWrite := time.Now()
	for {
		if err := a.renewLease(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("lease renewal failed", "err", err)
		}
		node, err := a.client.CoreV1().Nodes().Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
		if err == nil {
			var wrote bool
			wrote, err = a.updateNodeStatus(ctx, node, time.Since(lastWrite) > statusRefresh)
			if wrote {
				lastWrite = time.Now()
			}
		} else if apierrors.IsNotFound(err) {
			// Someone deleted the Node: register again, as the kubelet does.
			err = a.registerNode(ctx)
		}
		if err != nil && ctx.Err() == nil {
			a.log.Warn("node status update failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// updateNodeStatus writes a fresh status when it differs from node's
// (heartbeat times aside) or when force is set.
func (a *Agent) updateNodeStatus(ctx context.Context, node *corev1.Node, force bool) (bool, error) {
	status, err := a.nodeStatus(ctx, &node.Status)
	if err != nil {
		return false, err
	}
	if !force && sameNodeStatus(status, node.Status) {
		return false, nil
	}
	node = node.DeepCopy()
	node.Status = status
	_, err = a.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
	return err == nil, err
}

// sameNodeStatus compares two statuses without heartbeat times.
func sameNodeStatus(a, b corev1.NodeStatus) bool {
	strip := func(s corev1.NodeStatus) corev1.NodeStatus {
		s = *s.DeepCopy()
		for i := range s.Conditions {
			s.Conditions[i].LastHeartbeatTime = metav1.Time{}
		}
		return s
	}
	return apiequality.Semantic.DeepEqual(strip(a), strip(b))
}

// nodeStatus reads the machine and the runtime. Condition transition
// times carry over from old when a condition keeps its status.
func (a *Agent) nodeStatus(ctx context.Context, old *corev1.NodeStatus) (corev1.NodeStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	version, err := a.runtime.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		return corev1.NodeStatus{}, fmt.Errorf("agent: runtime version: %w", err)
	}
	runtimeReady, runtimeMessage := true, ""
	if st, err := a.runtime.Status(ctx, &runtimeapi.StatusRequest{}); err != nil {
		runtimeReady, runtimeMessage = false, err.Error()
	} else {
		for _, c := range st.GetStatus().GetConditions() {
			if !c.Status {
				runtimeReady = false
				runtimeMessage = fmt.Sprintf("container runtime %s is false: %s: %s", c.Type, c.Reason, c.Message)
			}
		}
	}
	mem := readMeminfo()
	var fs syscall.Statfs_t
	_ = syscall.Statfs(a.cfg.Dir, &fs)
	diskTotal := int64(fs.Blocks) * fs.Bsize
	diskFree := int64(fs.Bavail) * fs.Bsize
	capacity, allocatable := a.capacity()

	now := metav1.Now()
	cond := func(t corev1.NodeConditionType, ok bool, okReason, okMsg, badReason, badMsg string) corev1.NodeCondition {
		c := corev1.NodeCondition{Type: t, LastHeartbeatTime: now, LastTransitionTime: now}
		// For Ready, "ok" is True; for the pressure conditions it is False.
		good, bad := corev1.ConditionFalse, corev1.ConditionTrue
		if t == corev1.NodeReady {
			good, bad = corev1.ConditionTrue, corev1.ConditionFalse
		}
		if ok {
			c.Status, c.Reason, c.Message = good, okReason, okMsg
		} else {
			c.Status, c.Reason, c.Message = bad, badReason, badMsg
		}
		if old != nil {
			for _, o := range old.Conditions {
				if o.Type == t && o.Status == c.Status {
					c.LastTransitionTime = o.LastTransitionTime
				}
			}
		}
		return c
	}
	status := corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: allocatable,
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeMemoryPressure, mem["MemAvailable"] > 100<<20,
				"KubeletHasSufficientMemory", "kubelet has sufficient memory available",
				"KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
			cond(corev1.NodeDiskPressure, diskFree > diskTotal/10,
				"KubeletHasNoDiskPressure", "kubelet has no disk pressure",
				"KubeletHasDiskPressure", "kubelet has disk pressure"),
			cond(corev1.NodePIDPressure, true,
				"KubeletHasSufficientPID", "kubelet has sufficient PID available", "", ""),
			cond(corev1.NodeReady, runtimeReady,
				"KubeletReady", "kubelet is posting ready status",
				"KubeletNotReady", runtimeMessage),
		},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: a.cfg.NodeIP.String()},
			{Type: corev1.NodeHostName, Address: a.cfg.NodeName},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(a.Port())}},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID:               readTrimmed("/etc/machine-id"),
			SystemUUID:              readTrimmed("/sys/class/dmi/id/product_uuid"),
			BootID:                  readTrimmed("/proc/sys/kernel/random/boot_id"),
			KernelVersion:           kernelRelease(),
			OSImage:                 osImage(),
			ContainerRuntimeVersion: version.RuntimeName + "://" + version.RuntimeVersion,
			KubeletVersion:          a.cfg.Version,
			KubeProxyVersion:        "",
			OperatingSystem:         runtime.GOOS,
			Architecture:            runtime.GOARCH,
		},
		Images: a.nodeImages(ctx),
	}
	return status, nil
}

// capacity reads the machine's cpu, memory, pod and disk capacity.
// Allocatable keeps back upstream's default hard eviction thresholds
// (memory.available 100Mi, nodefs.available 10%).
func (a *Agent) capacity() (capacity, allocatable corev1.ResourceList) {
	memTotal := readMeminfo()["MemTotal"]
	var fs syscall.Statfs_t
	_ = syscall.Statfs(a.cfg.Dir, &fs)
	diskTotal := int64(fs.Blocks) * fs.Bsize
	capacity = corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(memTotal, resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(maxPods, resource.DecimalSI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(diskTotal, resource.BinarySI),
	}
	allocatable = capacity.DeepCopy()
	allocatable[corev1.ResourceMemory] = *resource.NewQuantity(memTotal-100<<20, resource.BinarySI)
	allocatable[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(diskTotal-diskTotal/10, resource.BinarySI)
	return capacity, allocatable
}

// allocatable is what pods may use of the node.
func (a *Agent) allocatable() corev1.ResourceList {
	_, alloc := a.capacity()
	return alloc
}

// nodeImages lists the images the runtime holds, largest first and at
// most 50, as the kubelet reports them (the scheduler's image locality
// score reads them).
func (a *Agent) nodeImages(ctx context.Context) []corev1.ContainerImage {
	resp, err := a.images.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		return nil
	}
	var out []corev1.ContainerImage
	for _, img := range resp.Images {
		names := append(append([]string{}, img.RepoTags...), img.RepoDigests...)
		if len(names) == 0 {
			continue
		}
		out = append(out, corev1.ContainerImage{Names: names, SizeBytes: int64(img.Size)})
	}
	sortImages(out)
	if len(out) > 50 {
		out = out[:50]
	}
	return out
}

// renewLease keeps kube-node-lease/<node> fresh; the node lifecycle
// controller reads it as the node's heartbeat.
func (a *Agent) renewLease(ctx context.Context) error {
	leases := a.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		lease = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName, Namespace: corev1.NamespaceNodeLease},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity: ptr.To(a.cfg.NodeName), LeaseDurationSeconds: ptr.To(int32(leaseDuration)), RenewTime: &now,
			},
		}
		if node, err := a.client.CoreV1().Nodes().Get(ctx, a.cfg.NodeName, metav1.GetOptions{}); err == nil {
			lease.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}
		}
		_, err = leases.Create(ctx, lease, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	lease.Spec.HolderIdentity = ptr.To(a.cfg.NodeName)
	lease.Spec.LeaseDurationSeconds = ptr.To(int32(leaseDuration))
	lease.Spec.RenewTime = &now
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	return err
}

// readMeminfo returns /proc/meminfo's values in bytes.
func readMeminfo() map[string]int64 {
	out := map[string]int64{}
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return out
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, _ := strconv.ParseInt(f[0], 10, 64)
		if len(f) > 1 && f[1] == "kB" {
			v *= 1024
		}
		out[name] = v
	}
	return out
}

func readTrimmed(path string) string {
	data, _ := os.ReadFile(path)
	return strings.TrimSpace(string(data))
}

func kernelRelease() string {
	return readTrimmed("/proc/sys/kernel/osrelease")
}

// osImage is os-release's PRETTY_NAME, as upstream reports it.
func osImage() string {
	data, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}
