package garbagecollector

import (
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// objectRef identifies an object by the coordinates an ownerReference
// carries, plus the namespace the reference is resolved in.
type objectRef struct {
	APIVersion string
	Kind       string
	Name       string
	Namespace  string
	UID        types.UID
}

// refFromOwner is the identity an ownerReference names, resolved in the
// dependent's namespace.
func refFromOwner(o metav1.OwnerReference, namespace string) objectRef {
	return objectRef{APIVersion: o.APIVersion, Kind: o.Kind, Name: o.Name, Namespace: namespace, UID: o.UID}
}

// node is one object in the ownership graph.
type node struct {
	ref    objectRef
	owners []metav1.OwnerReference
	// dependents are the nodes whose ownerReferences name this node.
	dependents map[types.UID]*node
	// virtual nodes were only seen in ownerReferences, never from an
	// informer; the collector verifies them with a live GET.
	virtual bool
	// beingDeleted: the object has a deletionTimestamp.
	beingDeleted bool
	// deletingDependents: being deleted with the foregroundDeletion finalizer.
	deletingDependents bool
	// orphaning: being deleted with the orphan finalizer.
	orphaning bool
}

// blocks says whether n's reference to owner has blockOwnerDeletion=true.
func (n *node) blocks(owner types.UID) bool {
	for _, o := range n.owners {
		if o.UID == owner {
			return o.BlockOwnerDeletion != nil && *o.BlockOwnerDeletion
		}
	}
	return false
}

// ownerRef is n's ownerReference to owner, if any.
func (n *node) ownerRef(owner types.UID) (metav1.OwnerReference, bool) {
	for _, o := range n.owners {
		if o.UID == owner {
			return o, true
		}
	}
	return metav1.OwnerReference{}, false
}

// observation is one object as an informer reported it.
type observation struct {
	ref        objectRef
	owners     []metav1.OwnerReference
	deleting   bool // deletionTimestamp is set
	finalizers []string
	gone       bool // a delete event
}

// work is what a graph change asks the workers to look at.
type work struct {
	// del are objects for the attempt-to-delete queue: dependents that may
	// have lost their owners, owners waiting for dependents, virtual nodes
	// to verify.
	del []types.UID
	// orphan are owners whose dependents must be orphaned.
	orphan []types.UID
}

func (w *work) addDel(uids ...types.UID) { w.del = append(w.del, uids...) }

// graph is the ownership graph keyed by UID. It is safe for concurrent use.
type graph struct {
	mu    sync.Mutex
	nodes map[types.UID]*node
}

func newGraph() *graph { return &graph{nodes: map[types.UID]*node{}} }

// observe applies an informer event and says what to look at.
func (g *graph) observe(ob observation) work {
	g.mu.Lock()
	defer g.mu.Unlock()
	var w work
	uid := ob.ref.UID
	n, found := g.nodes[uid]
	if ob.gone {
		if found {
			g.remove(n, &w)
		}
		return w
	}
	switch {
	case !found:
		n = &node{ref: ob.ref, dependents: map[types.UID]*node{}}
		g.nodes[uid] = n
	case n.virtual:
		n.virtual = false
		if n.ref != ob.ref {
			// Some dependents may name this UID with other coordinates:
			// each checks its own references live.
			w.addDel(keys(n.dependents)...)
		}
		n.ref = ob.ref
	}
	g.updateOwners(n, ob.owners, &w)

	wasDeleting, wasOrphaning := n.deletingDependents, n.orphaning
	n.beingDeleted = ob.deleting
	n.deletingDependents = ob.deleting && hasString(ob.finalizers, metav1.FinalizerDeleteDependents)
	n.orphaning = ob.deleting && hasString(ob.finalizers, metav1.FinalizerOrphanDependents)
	if n.orphaning && !wasOrphaning {
		w.orphan = append(w.orphan, uid)
	}
	if n.deletingDependents && !wasDeleting {
		// Foreground deletion starts: delete the dependents, and look at
		// the owner itself in case there are none.
		w.addDel(uid)
		w.addDel(keys(n.dependents)...)
	}
	return w
}

// updateOwners attaches n to its new owners and detaches it from old ones.
func (g *graph) updateOwners(n *node, owners []metav1.OwnerReference, w *work) {
	old := n.owners
	n.owners = owners
	for _, o := range owners {
		prev, had := findOwner(old, o.UID)
		if !had {
			g.attach(n, o, w)
			continue
		}
		if isTrue(prev.BlockOwnerDeletion) && !isTrue(o.BlockOwnerDeletion) {
			g.wakeOwner(o.UID, w) // one blocking dependent fewer
		}
	}
	for _, o := range old {
		if _, still := findOwner(owners, o.UID); !still {
			if owner, ok := g.nodes[o.UID]; ok {
				delete(owner.dependents, n.ref.UID)
				g.dropUnneededVirtual(owner)
			}
			g.wakeOwner(o.UID, w)
		}
	}
}

// attach links n under the owner o names, creating a virtual owner node
// when the owner has not been observed.
func (g *graph) attach(n *node, o metav1.OwnerReference, w *work) {
	owner, ok := g.nodes[o.UID]
	if !ok {
		owner = &node{ref: refFromOwner(o, n.ref.Namespace), dependents: map[types.UID]*node{}, virtual: true}
		g.nodes[o.UID] = owner
		w.addDel(o.UID) // verify the virtual owner exists
	}
	owner.dependents[n.ref.UID] = n
	switch {
	case !owner.virtual && owner.ref.Namespace != "" && owner.ref.Namespace != n.ref.Namespace:
		// A reference across namespaces never resolves: the dependent
		// checks it live and finds its owner absent.
		w.addDel(n.ref.UID)
	case owner.deletingDependents || (!owner.virtual && owner.ref != refFromOwner(o, owner.ref.Namespace)):
		// The owner is deleting its dependents, or this reference names
		// it with other coordinates: look at the new dependent.
		w.addDel(n.ref.UID)
	}
}

// wakeOwner queues an owner in foreground deletion: it may have no
// blocking dependents left.
func (g *graph) wakeOwner(uid types.UID, w *work) {
	if owner, ok := g.nodes[uid]; ok && owner.deletingDependents {
		w.addDel(uid)
	}
}

// remove drops n from the graph: its dependents may have lost their last
// owner and its owners may be waiting for it.
func (g *graph) remove(n *node, w *work) {
	delete(g.nodes, n.ref.UID)
	w.addDel(keys(n.dependents)...)
	for _, o := range n.owners {
		owner, ok := g.nodes[o.UID]
		if !ok {
			continue
		}
		delete(owner.dependents, n.ref.UID)
		if owner.deletingDependents {
			w.addDel(o.UID)
		}
		g.dropUnneededVirtual(owner)
	}
}

// dropUnneededVirtual forgets a virtual node nobody refers to any more.
func (g *graph) dropUnneededVirtual(n *node) {
	if n.virtual && len(n.dependents) == 0 {
		delete(g.nodes, n.ref.UID)
	}
}

// absent records that a live lookup found no object with the identity
// ref (NotFound, or another UID under that name). It returns what to look
// at, and requeue when the node stays, under other coordinates, to be
// verified again.
func (g *graph) absent(ref objectRef) (w work, requeue bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, ok := g.nodes[ref.UID]
	if !ok {
		return w, false
	}
	var match, other []*node
	for _, d := range n.dependents {
		o, _ := d.ownerRef(ref.UID)
		if sameCoordinates(refFromOwner(o, d.ref.Namespace), ref) {
			match = append(match, d)
		} else {
			other = append(other, d)
		}
	}
	sameIdentity := sameCoordinates(n.ref, ref)
	if (n.virtual && len(other) > 0) || (!n.virtual && !sameIdentity) {
		// The UID may exist under coordinates other dependents use: only
		// the dependents that named the absent identity lose their owner.
		for _, d := range match {
			w.addDel(d.ref.UID)
		}
		if n.virtual && sameIdentity {
			n.ref = refFromOwner(mustOwnerRef(other[0], ref.UID), other[0].ref.Namespace)
			return w, true
		}
		return w, false
	}
	g.remove(n, &w)
	return w, false
}

// sameCoordinates compares an ownerReference's coordinates with a verified
// identity; a cluster-scoped identity (no namespace) matches any namespace.
func sameCoordinates(a, b objectRef) bool {
	if a.APIVersion != b.APIVersion || a.Kind != b.Kind || a.Name != b.Name || a.UID != b.UID {
		return false
	}
	return b.Namespace == "" || a.Namespace == b.Namespace
}

func mustOwnerRef(n *node, owner types.UID) metav1.OwnerReference {
	o, _ := n.ownerRef(owner)
	return o
}

// dependentView is what a worker needs to know of one dependent.
type dependentView struct {
	ref                objectRef
	blocking           bool // its reference to the owner blocks owner deletion
	deletingDependents bool
}

// nodeView is a copy of one node, taken under the lock for a worker.
type nodeView struct {
	ref                objectRef
	virtual            bool
	beingDeleted       bool
	deletingDependents bool
	orphaning          bool
	dependents         []dependentView
}

func (g *graph) view(uid types.UID) (nodeView, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, ok := g.nodes[uid]
	if !ok {
		return nodeView{}, false
	}
	v := nodeView{ref: n.ref, virtual: n.virtual, beingDeleted: n.beingDeleted,
		deletingDependents: n.deletingDependents, orphaning: n.orphaning}
	for _, d := range n.dependents {
		v.dependents = append(v.dependents, dependentView{ref: d.ref, blocking: d.blocks(uid), deletingDependents: d.deletingDependents})
	}
	return v, true
}

// forgetVirtual drops a virtual node that no dependent refers to; it
// reports whether the node is gone.
func (g *graph) forgetVirtual(uid types.UID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, ok := g.nodes[uid]
	if !ok {
		return true
	}
	g.dropUnneededVirtual(n)
	_, ok = g.nodes[uid]
	return !ok
}

// blocking are the dependents that hold up a foreground deletion.
func (v nodeView) blocking() []dependentView {
	var out []dependentView
	for _, d := range v.dependents {
		if d.blocking {
			out = append(out, d)
		}
	}
	return out
}

// dependentDeletingDependents reports whether a dependent is itself in
// foreground deletion, waiting for its own dependents.
func (v nodeView) dependentDeletingDependents() bool {
	for _, d := range v.dependents {
		if d.deletingDependents {
			return true
		}
	}
	return false
}

func findOwner(owners []metav1.OwnerReference, uid types.UID) (metav1.OwnerReference, bool) {
	for _, o := range owners {
		if o.UID == uid {
			return o, true
		}
	}
	return metav1.OwnerReference{}, false
}

func keys(m map[types.UID]*node) []types.UID {
	out := make([]types.UID, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func hasString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func isTrue(b *bool) bool { return b != nil && *b }
