package scheduler

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fw "github.com/lotse/lotse/internal/scheduler/framework"
)

// TestUpdateSnapshotPatchesOnlyChangedNodes checks the incremental path:
// a pod assumed on one node shows in the next snapshot there, the other
// node's entry is left as it was, and a node added later rebuilds it.
func TestUpdateSnapshotPatchesOnlyChangedNodes(t *testing.T) {
	c := NewCache()
	c.AddNode(node("a", "4", "8Gi", nil))
	c.AddNode(node("b", "4", "8Gi", nil))
	var gen int64
	snap := c.UpdateSnapshot(nil, &gen)
	before, _ := snap.Get("a")

	pod := fw.NewPodInfo(&v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "p"}})
	c.AssumePod(pod, "b")
	snap = c.UpdateSnapshot(snap, &gen)
	if b, _ := snap.Get("b"); len(b.Pods) != 1 {
		t.Fatalf("node b has %d pods in the patched snapshot, want 1", len(b.Pods))
	}
	if a, _ := snap.Get("a"); a != before {
		t.Error("an unchanged node was copied again")
	}

	c.RemovePod("p")
	c.AddNode(node("c", "4", "8Gi", nil))
	snap = c.UpdateSnapshot(snap, &gen)
	if b, _ := snap.Get("b"); len(b.Pods) != 0 {
		t.Errorf("node b still has %d pods after the pod went", len(b.Pods))
	}
	if _, ok := snap.Get("c"); !ok || len(snap.List()) != 3 {
		t.Errorf("the added node is missing: %d nodes", len(snap.List()))
	}
}
