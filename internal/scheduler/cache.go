package scheduler

import (
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
)

// Cache is the scheduler's own view of nodes and the pods placed on them.
// Informers feed it; the scheduling loop adds assumed pods the moment it
// decides, so a burst of pods cannot overcommit a node before the bind
// comes back through the watch. Each cycle copies what changed into a
// framework.Snapshot.
type Cache struct {
	mu    sync.Mutex
	nodes map[string]*fw.NodeInfo
	pods  map[types.UID]*podState
	// generation counts changes; each NodeInfo records the one of its
	// last change.
	generation int64
	// structural is set when nodes came or went, so the next snapshot
	// is rebuilt rather than patched.
	structural bool
	// changed names the nodes touched since the last UpdateSnapshot, so
	// that patching a snapshot costs what changed, not a walk over every
	// node of a large cluster. A cache feeds one snapshot (the
	// scheduler's).
	changed map[string]struct{}
	// nominated holds pods that preempted others, by UID, until they
	// are bound or deleted.
	nominated map[types.UID]nomination
}

type nomination struct {
	info *fw.PodInfo
	node string
}

type podState struct {
	info    *fw.PodInfo
	node    string
	assumed bool
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{nodes: map[string]*fw.NodeInfo{}, pods: map[types.UID]*podState{}, nominated: map[types.UID]nomination{},
		changed: map[string]struct{}{}}
}

func (c *Cache) touch(ni *fw.NodeInfo) {
	c.generation++
	ni.Generation = c.generation
	if ni.Node != nil {
		c.changed[ni.Name()] = struct{}{}
	}
}

// nodeInfo returns the entry for name, creating a node-less one for pods
// seen before their node.
func (c *Cache) nodeInfo(name string) *fw.NodeInfo {
	ni, ok := c.nodes[name]
	if !ok {
		ni = &fw.NodeInfo{}
		c.nodes[name] = ni
	}
	return ni
}

// AddNode adds or replaces a node.
func (c *Cache) AddNode(node *v1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ni := c.nodeInfo(node.Name)
	if ni.Node == nil {
		c.structural = true
	}
	ni.SetNode(node)
	c.touch(ni)
}

// RemoveNode forgets a node; pods still bound to it keep a node-less entry
// until they are deleted too.
func (c *Cache) RemoveNode(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ni, ok := c.nodes[name]
	if !ok {
		return
	}
	c.structural = true
	if len(ni.Pods) == 0 {
		delete(c.nodes, name)
		return
	}
	ni.SetNode(nil)
	c.touch(ni)
}

// isTerminal reports whether a pod no longer holds resources on its node.
func isTerminal(pod *v1.Pod) bool {
	return pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed
}

// AddPod records a bound pod seen by the informer; it confirms an assumed
// pod of the same UID. Terminal pods are removed instead.
func (c *Cache) AddPod(pod *v1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeLocked(pod.UID)
	if pod.Spec.NodeName == "" || isTerminal(pod) {
		return
	}
	info := fw.NewPodInfo(pod)
	ni := c.nodeInfo(pod.Spec.NodeName)
	ni.AddPod(info)
	c.touch(ni)
	c.pods[pod.UID] = &podState{info: info, node: pod.Spec.NodeName}
}

// RemovePod forgets a pod, assumed or bound.
func (c *Cache) RemovePod(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeLocked(uid)
}

func (c *Cache) removeLocked(uid types.UID) {
	delete(c.nominated, uid)
	ps, ok := c.pods[uid]
	if !ok {
		return
	}
	delete(c.pods, uid)
	ni, ok := c.nodes[ps.node]
	if !ok {
		return
	}
	ni.RemovePod(string(uid))
	c.touch(ni)
	if ni.Node == nil && len(ni.Pods) == 0 {
		delete(c.nodes, ps.node)
	}
}

// AssumePod places a pod on node before the API confirms it. The pod is
// copied with spec.nodeName set, so filters of later pods see it there.
func (c *Cache) AssumePod(info *fw.PodInfo, node string) {
	// A shallow copy: only spec.nodeName differs, and what the copy
	// shares with the informer's pod is read-only to both.
	copied := *info.Pod
	pod := &copied
	pod.Spec.NodeName = node
	assumed := &fw.PodInfo{Pod: pod, Requests: info.Requests, NonZeroRequests: info.NonZeroRequests, Priority: info.Priority}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeLocked(pod.UID)
	ni := c.nodeInfo(node)
	ni.AddPod(assumed)
	c.touch(ni)
	c.pods[pod.UID] = &podState{info: assumed, node: node, assumed: true}
}

// ForgetPod undoes AssumePod after a failed bind. A pod the informer has
// meanwhile confirmed is kept.
func (c *Cache) ForgetPod(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ps, ok := c.pods[uid]; ok && ps.assumed {
		c.removeLocked(uid)
	}
}

// IsAssumed reports whether the pod is assumed and not yet confirmed.
func (c *Cache) IsAssumed(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.pods[uid]
	return ok && ps.assumed
}

// UpdateSnapshot brings snap up to date with the cache, cloning only the
// NodeInfos that changed since snap was last updated; it returns the
// snapshot to use (a new one after nodes came or went).
func (c *Cache) UpdateSnapshot(snap *fw.Snapshot, snapGeneration *int64) *fw.Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	if snap == nil || c.structural {
		infos := make([]*fw.NodeInfo, 0, len(c.nodes))
		for _, ni := range c.nodes {
			if ni.Node != nil {
				infos = append(infos, ni.Clone())
			}
		}
		c.structural = false
		clear(c.changed)
		*snapGeneration = c.generation
		return fw.NewSnapshot(infos...)
	}
	for name := range c.changed {
		if ni, ok := c.nodes[name]; ok && ni.Generation > *snapGeneration && ni.Node != nil {
			snap.Set(ni.Clone())
		}
	}
	clear(c.changed)
	*snapGeneration = c.generation
	return snap
}

// NodeCount returns the number of known nodes.
func (c *Cache) NodeCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, ni := range c.nodes {
		if ni.Node != nil {
			n++
		}
	}
	return n
}

// Nominate records that info preempted pods on node and waits for the room.
func (c *Cache) Nominate(info *fw.PodInfo, node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nominated[info.Pod.UID] = nomination{info: info, node: node}
}

// ForgetNomination drops a pod's nomination (it was deleted).
func (c *Cache) ForgetNomination(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.nominated, uid)
}

// Nominated returns the nominated pods per node.
func (c *Cache) Nominated() map[string][]*fw.PodInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.nominated) == 0 {
		return nil
	}
	out := map[string][]*fw.PodInfo{}
	for _, n := range c.nominated {
		out[n.node] = append(out[n.node], n.info)
	}
	return out
}

// NominatedNode returns the node a pod preempted on, if any.
func (c *Cache) NominatedNode(uid types.UID) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nominated[uid].node
}
