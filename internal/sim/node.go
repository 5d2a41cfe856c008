package sim

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// readyMessage is the Ready condition's message; it is one of the places a
// node says it is simulated.
const readyMessage = "lotse sim is posting ready status: simulated node, no containers run here"

// newNode is the Node a simulated node registers.
func (s *Sim) newNode(n *node) *corev1.Node {
	podCIDR := fmt.Sprintf("%d.%d.%d.0/24", n.podBase[0], n.podBase[1], n.podBase[2])
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: n.name,
			Labels: map[string]string{
				corev1.LabelHostname:   n.name,
				corev1.LabelOSStable:   "linux",
				corev1.LabelArchStable: "amd64",
				LabelType:              LabelTypeValue,
				LabelSimulated:         "true",
			},
			Annotations: map[string]string{LabelSimulated: "true"},
		},
		Spec: corev1.NodeSpec{
			PodCIDR: podCIDR, PodCIDRs: []string{podCIDR},
			ProviderID: "lotse-sim://" + n.name,
		},
		Status: s.nodeStatus(n, nil),
	}
}

// nodeStatus is the status a simulated node reports; heartbeat and
// transition times come from old when the condition did not change.
func (s *Sim) nodeStatus(n *node, old *corev1.NodeStatus) corev1.NodeStatus {
	now := metav1.NewTime(s.clock.Now())
	res := corev1.ResourceList{
		corev1.ResourceCPU:              s.cfg.NodeCPU,
		corev1.ResourceMemory:           s.cfg.NodeMemory,
		corev1.ResourceEphemeralStorage: s.cfg.NodeEphemeralStorage,
		corev1.ResourcePods:             *resource.NewQuantity(int64(s.cfg.MaxPods), resource.DecimalSI),
	}
	conds := []corev1.NodeCondition{
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "simulated node has sufficient memory available"},
		{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "simulated node has no disk pressure"},
		{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "simulated node has sufficient PID available"},
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: readyMessage},
	}
	for i := range conds {
		c := &conds[i]
		c.LastHeartbeatTime, c.LastTransitionTime = now, now
		if old == nil {
			continue
		}
		for _, o := range old.Conditions {
			if o.Type == c.Type && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
	}
	id := nodeID(n.name)
	return corev1.NodeStatus{
		Capacity: res, Allocatable: res.DeepCopy(),
		Phase:      corev1.NodeRunning,
		Conditions: conds,
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: n.hostIP},
			{Type: corev1.NodeHostName, Address: n.name},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID: id, SystemUUID: id, BootID: id,
			KernelVersion:           "simulated",
			OSImage:                 "lotse simulated node",
			ContainerRuntimeVersion: RuntimeVersion,
			KubeletVersion:          s.cfg.KubeletVersion,
			OperatingSystem:         "linux",
			Architecture:            "amd64",
		},
	}
}

// nodeID is a stable fake machine ID, so that a restarted sim reports the
// same one.
func nodeID(name string) string {
	h := fnv.New128a()
	h.Write([]byte(name))
	return fmt.Sprintf("%x", h.Sum(nil))
}

// statusChanged says whether cur differs from want in anything but
// heartbeat and transition times: only then is a write due before the next
// heartbeat.
func statusChanged(cur, want *corev1.NodeStatus) bool {
	if len(cur.Conditions) != len(want.Conditions) || len(cur.Addresses) != len(want.Addresses) {
		return true
	}
	for i, c := range want.Conditions {
		o := cur.Conditions[i]
		if o.Type != c.Type || o.Status != c.Status || o.Reason != c.Reason || o.Message != c.Message {
			return true
		}
	}
	for i, a := range want.Addresses {
		if cur.Addresses[i] != a {
			return true
		}
	}
	if cur.NodeInfo != want.NodeInfo || cur.DaemonEndpoints != want.DaemonEndpoints {
		return true
	}
	return !sameResources(cur.Capacity, want.Capacity) || !sameResources(cur.Allocatable, want.Allocatable)
}

func sameResources(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || v.Cmp(w) != 0 {
			return false
		}
	}
	return true
}

// lastHeartbeat is when the Ready condition was last posted.
func lastHeartbeat(st *corev1.NodeStatus) time.Time {
	for _, c := range st.Conditions {
		if c.Type == corev1.NodeReady {
			return c.LastHeartbeatTime.Time
		}
	}
	return time.Time{}
}

// syncNode registers n if it is missing and posts its status when it
// changed or a heartbeat is due, then schedules the next heartbeat.
func (s *Sim) syncNode(ctx context.Context, n *node) error {
	n.mu.Lock()
	foreign, uid := n.foreign, n.uid
	n.mu.Unlock()
	if foreign {
		return nil
	}
	var cur *corev1.Node
	if obj, ok, _ := s.nodeLister.GetByKey(n.name); ok {
		cur = obj.(*corev1.Node)
	}
	if cur == nil {
		// Not registered yet, or deleted by someone: register, as a
		// kubelet does.
		created, err := s.register(ctx, n)
		if err != nil || created == nil {
			return err
		}
		cur = created
	} else if cur.UID != uid {
		// A simulated node of this name that this sim did not create (left
		// by an earlier sim of the same prefix): adopt it.
		s.own(n, cur.UID)
	}
	want := s.nodeStatus(n, &cur.Status)
	next := s.cfg.StatusReportInterval - s.clock.Since(lastHeartbeat(&cur.Status))
	if statusChanged(&cur.Status, &want) || next <= 0 {
		upd := cur.DeepCopy()
		upd.Status = want
		if _, err := s.client.CoreV1().Nodes().UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update node status %s: %w", n.name, err)
		}
		next = s.cfg.StatusReportInterval
	}
	s.queue.AddAfter(key{node: n.index}, next)
	return nil
}

// register creates n's Node, or adopts one of its name that is marked
// simulated. It returns nil and no error when the name is taken by a node
// that is not simulated: that node is left alone for good.
func (s *Sim) register(ctx context.Context, n *node) (*corev1.Node, error) {
	created, err := s.client.CoreV1().Nodes().Create(ctx, s.newNode(n), metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = s.client.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
		if err == nil && created.Labels[LabelSimulated] != "true" {
			n.mu.Lock()
			n.foreign = true
			n.mu.Unlock()
			s.log.Error("sim: a node of this name exists and is not simulated; leaving it alone", "node", n.name)
			return nil, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("register node %s: %w", n.name, err)
	}
	s.own(n, created.UID)
	return created, nil
}

// own records the Node's UID and starts its lease renewals the first time.
func (s *Sim) own(n *node, uid types.UID) {
	n.mu.Lock()
	first := n.uid == ""
	n.uid = uid
	n.mu.Unlock()
	if first {
		s.leases.Add(n.index)
	}
}

// renewLease writes n's Lease with a fresh renewTime and schedules the next
// renewal. Renewals of all nodes are spread evenly over the interval: node
// i renews at phase i/N of it, whenever it was registered.
func (s *Sim) renewLease(ctx context.Context, n *node) error {
	n.mu.Lock()
	uid, rv := n.uid, n.leaseRV
	n.mu.Unlock()
	if uid == "" {
		return nil
	}
	lc := s.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	lease := s.newLease(n, uid)
	var got *coordinationv1.Lease
	var err error
	if rv == "" {
		got, err = lc.Create(ctx, lease, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			// Left by an earlier sim or created before a lost reply:
			// take it over if it is this node's.
			var old *coordinationv1.Lease
			if old, err = lc.Get(ctx, n.name, metav1.GetOptions{}); err == nil {
				if h := old.Spec.HolderIdentity; h == nil || *h != n.name {
					return fmt.Errorf("lease %s is held by someone else", n.name)
				}
				lease.ResourceVersion = old.ResourceVersion
				got, err = lc.Update(ctx, lease, metav1.UpdateOptions{})
			}
		}
	} else {
		lease.ResourceVersion = rv
		got, err = lc.Update(ctx, lease, metav1.UpdateOptions{})
	}
	if err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			// Someone else wrote or removed it: start over from a create.
			n.mu.Lock()
			n.leaseRV = ""
			n.mu.Unlock()
		}
		return fmt.Errorf("renew lease %s: %w", n.name, err)
	}
	n.mu.Lock()
	first := n.leaseUID == ""
	n.leaseRV, n.leaseUID = got.ResourceVersion, got.UID
	n.mu.Unlock()
	if first {
		if c := s.registered.Add(1); c == int64(len(s.nodes)) {
			s.log.Info("sim: all nodes registered", "nodes", c, "after", s.clock.Since(s.start).Round(time.Millisecond))
		}
	}
	s.leases.AddAfter(n.index, s.nextRenewal(n.index))
	return nil
}

// nextRenewal is how long until node i's next renewal slot.
func (s *Sim) nextRenewal(i int) time.Duration {
	interval := s.cfg.LeaseRenewInterval
	phase := time.Duration(int64(interval) * int64(i) / int64(len(s.nodes)))
	elapsed := s.clock.Since(s.start) - phase
	wait := interval - elapsed%interval
	if elapsed < 0 {
		wait = -elapsed
	}
	// Never renew twice within a fraction of the interval.
	if wait < interval/4 {
		wait += interval
	}
	return wait
}

func (s *Sim) newLease(n *node, uid types.UID) *coordinationv1.Lease {
	now := metav1.NewMicroTime(s.clock.Now())
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Name: n.name, Namespace: corev1.NamespaceNodeLease,
			Labels: map[string]string{LabelSimulated: "true"},
			// As the kubelet does: the lease goes with its node.
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Node", Name: n.name, UID: uid,
			}},
		},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(n.name),
			LeaseDurationSeconds: ptr.To(int32(s.cfg.LeaseDuration / time.Second)),
			RenewTime:            &now,
		},
	}
}

func ignoreGone(err error) error {
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}
