package garbagecollector

import (
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestDecide(t *testing.T) {
	o1 := metav1.OwnerReference{UID: "1"}
	o2 := metav1.OwnerReference{UID: "2"}
	cases := []struct {
		name          string
		owners        []metav1.OwnerReference
		states        map[types.UID]ownerState
		hasDependents bool
		finalizers    []string
		want          action
	}{
		{"no owners", nil, nil, false, nil, action{kind: keep}},
		{"solid owner", []metav1.OwnerReference{o1}, map[types.UID]ownerState{"1": ownerSolid}, false, nil, action{kind: keep}},
		{"owner gone", []metav1.OwnerReference{o1}, map[types.UID]ownerState{"1": ownerDangling}, false, nil,
			action{kind: deleteObject, policy: metav1.DeletePropagationBackground}},
		{"all owners gone", []metav1.OwnerReference{o1, o2}, map[types.UID]ownerState{"1": ownerDangling, "2": ownerDangling}, true, nil,
			action{kind: deleteObject, policy: metav1.DeletePropagationBackground}},
		{"one of two owners gone", []metav1.OwnerReference{o1, o2}, map[types.UID]ownerState{"1": ownerDangling, "2": ownerSolid}, false, nil,
			action{kind: removeRefs, uids: []types.UID{"1"}}},
		{"one owner waiting, another solid", []metav1.OwnerReference{o1, o2}, map[types.UID]ownerState{"1": ownerSolid, "2": ownerWaiting}, false, nil,
			action{kind: removeRefs, uids: []types.UID{"2"}}},
		{"owner waiting, no dependents of its own", []metav1.OwnerReference{o1}, map[types.UID]ownerState{"1": ownerWaiting}, false, nil,
			action{kind: deleteObject, policy: metav1.DeletePropagationBackground}},
		{"owner waiting, dependents of its own: transitive wait", []metav1.OwnerReference{o1}, map[types.UID]ownerState{"1": ownerWaiting}, true, nil,
			action{kind: deleteObject, policy: metav1.DeletePropagationForeground}},
		{"owner gone, dependent asked to orphan", []metav1.OwnerReference{o1}, map[types.UID]ownerState{"1": ownerDangling}, true, []string{metav1.FinalizerOrphanDependents},
			action{kind: deleteObject, policy: metav1.DeletePropagationOrphan}},
		{"owner gone, dependent in foreground deletion", []metav1.OwnerReference{o1}, map[types.UID]ownerState{"1": ownerDangling}, true, []string{metav1.FinalizerDeleteDependents},
			action{kind: deleteObject, policy: metav1.DeletePropagationForeground}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := decide(tc.owners, tc.states, tc.hasDependents, tc.finalizers); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("decide = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestWithoutOwners(t *testing.T) {
	owners := []metav1.OwnerReference{{UID: "1"}, {UID: "2"}, {UID: "3"}}
	got := withoutOwners(owners, []types.UID{"1", "3"})
	if len(got) != 1 || got[0].UID != "2" {
		t.Fatalf("withoutOwners = %v", got)
	}
	if got := withoutOwners(owners, []types.UID{"1", "2", "3"}); got != nil {
		t.Fatalf("removing all = %v, want nil", got)
	}
}
