package framework

import (
	"sort"

	v1 "k8s.io/api/core/v1"
)

// NodeLister is the read-only view of the cluster the plugins get.
type NodeLister interface {
	// List returns every node, in a stable order.
	List() []*NodeInfo
	// Get returns the named node.
	Get(name string) (*NodeInfo, bool)
	// HavePodsWithAffinity returns the nodes that have pods with affinity
	// or anti-affinity terms, in no particular order; most clusters have
	// few, so plugins that look for such pods walk these, not List.
	HavePodsWithAffinity() []*NodeInfo
	// HavePodsWithRequiredAntiAffinity returns the nodes that have pods
	// with required anti-affinity terms, in no particular order.
	HavePodsWithRequiredAntiAffinity() []*NodeInfo
	// NodesWithImage counts the nodes that hold the image, by its
	// normalised name (NormalizeImageName).
	NodesWithImage(name string) int
}

// Snapshot is an immutable set of NodeInfos taken at the start of a
// scheduling cycle. It implements NodeLister.
type Snapshot struct {
	list   []*NodeInfo
	byName map[string]*NodeInfo
	// The nodes with pods that have (anti-)affinity terms, kept as nodes
	// are set so that asking costs nothing per node of the cluster.
	withAffinity, withRequiredAnti map[string]*NodeInfo
	// imageNodes counts the nodes holding each image.
	imageNodes map[string]int
}

var _ NodeLister = (*Snapshot)(nil)

// NewSnapshot builds a snapshot from node infos; nodes are listed by name.
func NewSnapshot(infos ...*NodeInfo) *Snapshot {
	s := &Snapshot{byName: make(map[string]*NodeInfo, len(infos)),
		withAffinity: map[string]*NodeInfo{}, withRequiredAnti: map[string]*NodeInfo{}, imageNodes: map[string]int{}}
	for _, ni := range infos {
		s.index(s.byName[ni.Name()], ni)
		s.byName[ni.Name()] = ni
	}
	s.rebuildList()
	return s
}

// SnapshotOf builds a snapshot from API objects: pods with a nodeName
// count on that node, others are ignored. Tests use it.
func SnapshotOf(nodes []*v1.Node, pods []*v1.Pod) *Snapshot {
	infos := map[string]*NodeInfo{}
	var list []*NodeInfo
	for _, n := range nodes {
		ni := NewNodeInfo(n)
		infos[n.Name] = ni
		list = append(list, ni)
	}
	for _, p := range pods {
		if ni, ok := infos[p.Spec.NodeName]; ok {
			ni.AddPod(NewPodInfo(p))
		}
	}
	return NewSnapshot(list...)
}

// List implements NodeLister.
func (s *Snapshot) List() []*NodeInfo { return s.list }

// Get implements NodeLister.
func (s *Snapshot) Get(name string) (*NodeInfo, bool) {
	ni, ok := s.byName[name]
	return ni, ok
}

// HavePodsWithAffinity implements NodeLister.
func (s *Snapshot) HavePodsWithAffinity() []*NodeInfo { return values(s.withAffinity) }

// HavePodsWithRequiredAntiAffinity implements NodeLister.
func (s *Snapshot) HavePodsWithRequiredAntiAffinity() []*NodeInfo {
	return values(s.withRequiredAnti)
}

func values(m map[string]*NodeInfo) []*NodeInfo {
	out := make([]*NodeInfo, 0, len(m))
	for _, ni := range m {
		out = append(out, ni)
	}
	return out
}

// NodesWithImage implements NodeLister.
func (s *Snapshot) NodesWithImage(name string) int { return s.imageNodes[name] }

// index moves what the snapshot keeps about one node from old to cur;
// either may be nil (no such node).
func (s *Snapshot) index(old, cur *NodeInfo) {
	if old != nil {
		delete(s.withAffinity, old.Name())
		delete(s.withRequiredAnti, old.Name())
		for name := range old.Images {
			if s.imageNodes[name]--; s.imageNodes[name] <= 0 {
				delete(s.imageNodes, name)
			}
		}
	}
	if cur == nil {
		return
	}
	if len(cur.PodsWithAffinity) > 0 {
		s.withAffinity[cur.Name()] = cur
	}
	if len(cur.PodsWithRequiredAntiAffinity) > 0 {
		s.withRequiredAnti[cur.Name()] = cur
	}
	for name := range cur.Images {
		s.imageNodes[name]++
	}
}

// Set replaces or adds one NodeInfo, which must not be changed afterwards;
// the scheduler's cache uses it to bring a snapshot up to date, and tests
// to assume pods.
func (s *Snapshot) Set(ni *NodeInfo) {
	old, existed := s.byName[ni.Name()]
	s.byName[ni.Name()] = ni
	s.index(old, ni)
	if !existed {
		s.rebuildList()
		return
	}
	i := sort.Search(len(s.list), func(i int) bool { return s.list[i].Name() >= ni.Name() })
	if i < len(s.list) && s.list[i] == old {
		s.list[i] = ni
	}
}

// Delete removes the named node.
func (s *Snapshot) Delete(name string) {
	old, ok := s.byName[name]
	if !ok {
		return
	}
	delete(s.byName, name)
	s.index(old, nil)
	s.rebuildList()
}

func (s *Snapshot) rebuildList() {
	s.list = s.list[:0]
	for _, ni := range s.byName {
		s.list = append(s.list, ni)
	}
	sort.Slice(s.list, func(i, j int) bool { return s.list[i].Name() < s.list[j].Name() })
}
