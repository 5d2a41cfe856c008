package garbagecollector

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ownerState is what a live lookup found for one ownerReference.
type ownerState int

const (
	// ownerSolid exists and is not deleting its dependents.
	ownerSolid ownerState = iota
	// ownerDangling is gone: NotFound, or another UID under that name.
	ownerDangling
	// ownerWaiting is in foreground deletion, waiting for its dependents.
	ownerWaiting
)

// actionKind is what the collector does with one dependent.
type actionKind int

const (
	keep actionKind = iota
	// removeRefs patches away the references to absent or waiting owners
	// of a dependent that still has a solid owner.
	removeRefs
	deleteObject
)

type action struct {
	kind   actionKind
	uids   []types.UID                // removeRefs: the references to drop
	policy metav1.DeletionPropagation // deleteObject: how to propagate
}

// decide is upstream's rule for a dependent given the state of each of its
// owners: with a solid owner it stays (dropping references to the other
// ones); otherwise it is deleted, in the foreground when an owner waits for
// it and it has dependents of its own, so the wait is transitive.
func decide(owners []metav1.OwnerReference, states map[types.UID]ownerState, hasDependents bool, finalizers []string) action {
	var solid, waiting bool
	var drop []types.UID
	for _, o := range owners {
		switch states[o.UID] {
		case ownerSolid:
			solid = true
		case ownerDangling:
			drop = append(drop, o.UID)
		case ownerWaiting:
			waiting = true
			drop = append(drop, o.UID)
		}
	}
	switch {
	case len(owners) == 0:
		return action{kind: keep}
	case solid:
		if len(drop) == 0 {
			return action{kind: keep}
		}
		return action{kind: removeRefs, uids: drop}
	case waiting && hasDependents:
		return action{kind: deleteObject, policy: metav1.DeletePropagationForeground}
	case hasString(finalizers, metav1.FinalizerOrphanDependents):
		return action{kind: deleteObject, policy: metav1.DeletePropagationOrphan}
	case hasString(finalizers, metav1.FinalizerDeleteDependents):
		return action{kind: deleteObject, policy: metav1.DeletePropagationForeground}
	default:
		return action{kind: deleteObject, policy: metav1.DeletePropagationBackground}
	}
}

// withoutOwners is owners minus the references to uids.
func withoutOwners(owners []metav1.OwnerReference, uids []types.UID) []metav1.OwnerReference {
	var out []metav1.OwnerReference
	for _, o := range owners {
		drop := false
		for _, u := range uids {
			drop = drop || o.UID == u
		}
		if !drop {
			out = append(out, o)
		}
	}
	return out
}
