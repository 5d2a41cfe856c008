package disruption

import (
	"errors"
	"reflect"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

var now = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// ownersOf builds the owner caches from objects, as the informers would.
func ownersOf(t *testing.T, objs ...runtime.Object) owners {
	t.Helper()
	idx := func() cache.Indexer {
		return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	}
	rs, d, ss, rc := idx(), idx(), idx(), idx()
	for _, o := range objs {
		var err error
		switch o.(type) {
		case *appsv1.ReplicaSet:
			err = rs.Add(o)
		case *appsv1.Deployment:
			err = d.Add(o)
		case *appsv1.StatefulSet:
			err = ss.Add(o)
		case *corev1.ReplicationController:
			err = rc.Add(o)
		default:
			t.Fatalf("no cache for %T", o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return owners{
		replicaSets:  appslisters.NewReplicaSetLister(rs),
		deployments:  appslisters.NewDeploymentLister(d),
		statefulSets: appslisters.NewStatefulSetLister(ss),
		rcs:          corelisters.NewReplicationControllerLister(rc),
	}
}

func meta(name, uid string, owner *metav1.OwnerReference) metav1.ObjectMeta {
	m := metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(uid)}
	if owner != nil {
		m.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	return m
}

func ref(apiVersion, kind, name, uid string) *metav1.OwnerReference {
	return &metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: types.UID(uid), Controller: ptr.To(true)}
}

func rs(name, uid string, replicas int32, owner *metav1.OwnerReference) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{ObjectMeta: meta(name, uid, owner), Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(replicas)}}
}

func deploy(name, uid string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: meta(name, uid, nil), Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas)}}
}

// pod is a pod named name; ready sets PodReady; owner may be nil.
func pod(name string, ready bool, owner *metav1.OwnerReference) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: meta(name, name+"-uid", owner)}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}
	return p
}

func deleting(p *corev1.Pod) *corev1.Pod {
	p.DeletionTimestamp = &metav1.Time{Time: now}
	return p
}

var (
	rsRef  = ref("apps/v1", "ReplicaSet", "web", "rs-uid")
	rsWeb3 = rs("web", "rs-uid", 3, nil)
)

func budget(minAvailable, maxUnavailable *intstr.IntOrString) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "pdb", Namespace: "ns", Generation: 4},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: minAvailable, MaxUnavailable: maxUnavailable, Selector: &metav1.LabelSelector{}},
	}
}

func num(n int) *intstr.IntOrString    { v := intstr.FromInt32(int32(n)); return &v }
func pct(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }

func withDisrupted(pdb *policyv1.PodDisruptionBudget, entries map[string]time.Time) *policyv1.PodDisruptionBudget {
	pdb.Status.DisruptedPods = map[string]metav1.Time{}
	for name, at := range entries {
		pdb.Status.DisruptedPods[name] = metav1.NewTime(at)
	}
	return pdb
}

func TestCompute(t *testing.T) {
	type want struct {
		expected, desired, healthy, allowed int32
		disrupted                           []string // names kept in status.disruptedPods
		unmanaged, notDeleted               []string
		recheck                             time.Time
	}
	ready3 := []*corev1.Pod{pod("a", true, rsRef), pod("b", true, rsRef), pod("c", true, rsRef)}
	tests := []struct {
		name   string
		pdb    *policyv1.PodDisruptionBudget
		pods   []*corev1.Pod
		owners []runtime.Object
		want   want
	}{{
		name: "minAvailable 2 of 3 ready",
		pdb:  budget(num(2), nil), pods: ready3,
		want: want{expected: 3, desired: 2, healthy: 3, allowed: 1},
	}, {
		name: "minAvailable 2 with one pod unready",
		pdb:  budget(num(2), nil),
		pods: []*corev1.Pod{pod("a", true, nil), pod("b", false, nil), pod("c", true, nil)},
		want: want{expected: 3, desired: 2, healthy: 2, allowed: 0},
	}, {
		name: "integer minAvailable counts pods, not controllers",
		pdb:  budget(num(1), nil), pods: []*corev1.Pod{pod("a", true, nil), pod("b", true, nil)},
		want: want{expected: 2, desired: 1, healthy: 2, allowed: 1},
	}, {
		name: "minAvailable above the pods there are",
		pdb:  budget(num(5), nil), pods: ready3,
		want: want{expected: 3, desired: 5, healthy: 3, allowed: 0},
	}, {
		name: "no pods allow nothing even with minAvailable 0",
		pdb:  budget(num(0), nil),
		want: want{},
	}, {
		name: "minAvailable 50% of a ReplicaSet of 3 rounds up to 2",
		pdb:  budget(pct("50%"), nil), pods: ready3, owners: []runtime.Object{rsWeb3},
		want: want{expected: 3, desired: 2, healthy: 3, allowed: 1},
	}, {
		name: "minAvailable % uses the controller's scale, not the pods there are",
		pdb:  budget(pct("100%"), nil), pods: ready3[:2], owners: []runtime.Object{rsWeb3},
		want: want{expected: 3, desired: 3, healthy: 2, allowed: 0},
	}, {
		name: "maxUnavailable 1 of a ReplicaSet of 3",
		pdb:  budget(nil, num(1)), pods: ready3, owners: []runtime.Object{rsWeb3},
		want: want{expected: 3, desired: 2, healthy: 3, allowed: 1},
	}, {
		name: "maxUnavailable 34% of 3 rounds up to 2 unavailable",
		pdb:  budget(nil, pct("34%")), pods: ready3, owners: []runtime.Object{rsWeb3},
		want: want{expected: 3, desired: 1, healthy: 3, allowed: 2},
	}, {
		name: "maxUnavailable beyond the scale desires 0",
		pdb:  budget(nil, num(7)), pods: ready3, owners: []runtime.Object{rsWeb3},
		want: want{expected: 3, desired: 0, healthy: 3, allowed: 3},
	}, {
		name: "maxUnavailable with one pod unready",
		pdb:  budget(nil, num(1)), pods: []*corev1.Pod{pod("a", true, rsRef), pod("b", false, rsRef), pod("c", true, rsRef)},
		owners: []runtime.Object{rsWeb3},
		want:   want{expected: 3, desired: 2, healthy: 2, allowed: 0},
	}, {
		name: "ReplicaSets of one Deployment count the Deployment once",
		pdb:  budget(nil, num(1)),
		pods: []*corev1.Pod{
			pod("old", true, ref("apps/v1", "ReplicaSet", "web-1", "rs1")),
			pod("new1", true, ref("apps/v1", "ReplicaSet", "web-2", "rs2")),
			pod("new2", true, ref("apps/v1", "ReplicaSet", "web-2", "rs2")),
		},
		owners: []runtime.Object{
			rs("web-1", "rs1", 1, ref("apps/v1", "Deployment", "web", "d")),
			rs("web-2", "rs2", 2, ref("apps/v1", "Deployment", "web", "d")),
			deploy("web", "d", 4),
		},
		want: want{expected: 4, desired: 3, healthy: 3, allowed: 0},
	}, {
		name: "StatefulSet and ReplicationController scales add up",
		pdb:  budget(pct("50%"), nil),
		pods: []*corev1.Pod{
			pod("db-0", true, ref("apps/v1", "StatefulSet", "db", "ss")),
			pod("db-1", true, ref("apps/v1", "StatefulSet", "db", "ss")),
			pod("legacy", true, ref("v1", "ReplicationController", "legacy", "rc")),
		},
		owners: []runtime.Object{
			&appsv1.StatefulSet{ObjectMeta: meta("db", "ss", nil), Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](4)}},
			&corev1.ReplicationController{ObjectMeta: meta("legacy", "rc", nil), Spec: corev1.ReplicationControllerSpec{Replicas: ptr.To[int32](1)}},
		},
		want: want{expected: 5, desired: 3, healthy: 3, allowed: 0},
	}, {
		name: "pods without a controller are left out of the scale",
		pdb:  budget(nil, num(1)), pods: append([]*corev1.Pod{pod("lone", true, nil)}, ready3...),
		owners: []runtime.Object{rsWeb3},
		want:   want{expected: 3, desired: 2, healthy: 4, allowed: 2, unmanaged: []string{"lone"}},
	}, {
		name: "a pod being deleted is not healthy",
		pdb:  budget(num(2), nil), pods: []*corev1.Pod{pod("a", true, nil), deleting(pod("b", true, nil)), pod("c", true, nil)},
		want: want{expected: 3, desired: 2, healthy: 2, allowed: 0},
	}, {
		name: "disruptedPods: recent kept and not healthy, expired dropped, gone and deleting dropped",
		pdb: withDisrupted(budget(num(1), nil), map[string]time.Time{
			"recent":   now.Add(-30 * time.Second),
			"later":    now.Add(-10 * time.Second),
			"expired":  now.Add(-DeletionTimeout - time.Second),
			"gone":     now.Add(-time.Second),
			"deleting": now.Add(-time.Second),
		}),
		pods: []*corev1.Pod{pod("recent", true, nil), pod("later", true, nil), pod("expired", true, nil), deleting(pod("deleting", true, nil)), pod("other", true, nil)},
		want: want{expected: 5, desired: 1, healthy: 2, allowed: 1,
			disrupted: []string{"later", "recent"}, notDeleted: []string{"expired"},
			recheck: now.Add(-30*time.Second + DeletionTimeout)},
	}, {
		name: "a budget with neither field allows nothing",
		pdb:  budget(nil, nil), pods: ready3,
		want: want{healthy: 3},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ownersOf(t, tt.owners...)
			got, err := o.compute(tt.pdb, tt.pods, now)
			if err != nil {
				t.Fatal(err)
			}
			st := got.status
			if st.ExpectedPods != tt.want.expected || st.DesiredHealthy != tt.want.desired || st.CurrentHealthy != tt.want.healthy || st.DisruptionsAllowed != tt.want.allowed {
				t.Errorf("expected/desired/healthy/allowed = %d/%d/%d/%d, want %d/%d/%d/%d",
					st.ExpectedPods, st.DesiredHealthy, st.CurrentHealthy, st.DisruptionsAllowed,
					tt.want.expected, tt.want.desired, tt.want.healthy, tt.want.allowed)
			}
			if st.ObservedGeneration != 4 {
				t.Errorf("observedGeneration = %d, want 4", st.ObservedGeneration)
			}
			var kept []string
			for name := range st.DisruptedPods {
				kept = append(kept, name)
			}
			if !sameNames(kept, tt.want.disrupted) {
				t.Errorf("disruptedPods = %v, want %v", kept, tt.want.disrupted)
			}
			if !sameNames(got.unmanaged, tt.want.unmanaged) {
				t.Errorf("unmanaged = %v, want %v", got.unmanaged, tt.want.unmanaged)
			}
			var notDeleted []string
			for _, p := range got.notDeleted {
				notDeleted = append(notDeleted, p.Name)
			}
			if !sameNames(notDeleted, tt.want.notDeleted) {
				t.Errorf("notDeleted = %v, want %v", notDeleted, tt.want.notDeleted)
			}
			if !got.recheck.Equal(tt.want.recheck) {
				t.Errorf("recheck = %v, want %v", got.recheck, tt.want.recheck)
			}
			cond := apimeta.FindStatusCondition(st.Conditions, policyv1.DisruptionAllowedCondition)
			wantStatus, wantReason := metav1.ConditionFalse, policyv1.InsufficientPodsReason
			if tt.want.allowed > 0 {
				wantStatus, wantReason = metav1.ConditionTrue, policyv1.SufficientPodsReason
			}
			if cond == nil || cond.Status != wantStatus || cond.Reason != wantReason || cond.ObservedGeneration != 4 {
				t.Errorf("condition = %+v, want %s/%s", cond, wantStatus, wantReason)
			}
		})
	}
}

func sameNames(a, b []string) bool {
	set := func(s []string) map[string]bool {
		m := map[string]bool{}
		for _, x := range s {
			m[x] = true
		}
		return m
	}
	return len(a) == len(b) && reflect.DeepEqual(set(a), set(b))
}

// TestComputeFailures covers controllers that cannot be resolved: the
// budget must fail safe rather than guess a scale.
func TestComputeFailures(t *testing.T) {
	tests := []struct {
		name   string
		pdb    *policyv1.PodDisruptionBudget
		pods   []*corev1.Pod
		owners []runtime.Object
		want   string
	}{{
		name: "controller not found",
		pdb:  budget(nil, num(1)), pods: []*corev1.Pod{pod("a", true, rsRef)},
		want: `found no controllers for pod "a"`,
	}, {
		name: "controller replaced by one with another uid",
		pdb:  budget(pct("50%"), nil), pods: []*corev1.Pod{pod("a", true, rsRef)},
		owners: []runtime.Object{rs("web", "other-uid", 3, nil)},
		want:   `found no controllers for pod "a"`,
	}, {
		name: "ReplicaSet whose Deployment is missing",
		pdb:  budget(nil, num(1)), pods: []*corev1.Pod{pod("a", true, rsRef)},
		owners: []runtime.Object{rs("web", "rs-uid", 3, ref("apps/v1", "Deployment", "web", "d"))},
		want:   `found no controllers for pod "a"`,
	}, {
		name: "a kind without a known scale",
		pdb:  budget(nil, num(1)), pods: []*corev1.Pod{pod("a", true, ref("batch/v1", "Job", "j", "j"))},
		want: `found no controllers for pod "a"`,
	}, {
		name: "malformed apiVersion",
		pdb:  budget(nil, num(1)), pods: []*corev1.Pod{pod("a", true, ref("a/b/c", "ReplicaSet", "web", "rs-uid"))},
		want: "unexpected GroupVersion string: a/b/c",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ownersOf(t, tt.owners...)
			if _, err := o.compute(tt.pdb, tt.pods, now); err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	// An integer minAvailable never looks at controllers.
	o := ownersOf(t)
	if _, err := o.compute(budget(num(1), nil), []*corev1.Pod{pod("a", true, rsRef)}, now); err != nil {
		t.Fatalf("integer minAvailable with a missing controller: %v", err)
	}
}

func TestConditionTransitions(t *testing.T) {
	pdb := budget(num(1), nil)
	earlier := metav1.NewTime(now.Add(-time.Hour))
	pdb.Status.Conditions = []metav1.Condition{
		{Type: policyv1.DisruptionAllowedCondition, Status: metav1.ConditionTrue, Reason: policyv1.SufficientPodsReason, LastTransitionTime: earlier},
		{Type: "Other", Status: metav1.ConditionTrue, Reason: "Kept", LastTransitionTime: earlier},
	}
	o := ownersOf(t)
	got, err := o.compute(pdb, []*corev1.Pod{pod("a", true, nil), pod("b", true, nil)}, now)
	if err != nil {
		t.Fatal(err)
	}
	if c := apimeta.FindStatusCondition(got.status.Conditions, policyv1.DisruptionAllowedCondition); !c.LastTransitionTime.Equal(&earlier) {
		t.Errorf("unchanged condition moved its transition time to %v", c.LastTransitionTime)
	}
	if apimeta.FindStatusCondition(got.status.Conditions, "Other") == nil {
		t.Error("a foreign condition was dropped")
	}
	if pdb.Status.Conditions[0].ObservedGeneration != 0 {
		t.Error("compute modified the budget it was given")
	}
	got, err = o.compute(pdb, []*corev1.Pod{pod("a", true, nil)}, now)
	if err != nil {
		t.Fatal(err)
	}
	c := apimeta.FindStatusCondition(got.status.Conditions, policyv1.DisruptionAllowedCondition)
	if c.Status != metav1.ConditionFalse || !c.LastTransitionTime.Time.Equal(now) {
		t.Errorf("after losing a pod: %+v, want False at %v", c, now)
	}
}

func TestFailSafe(t *testing.T) {
	pdb := budget(nil, num(1))
	pdb.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: 3, DisruptionsAllowed: 2, CurrentHealthy: 3, DesiredHealthy: 1, ExpectedPods: 3}
	st := failSafe(pdb, errors.New(`found no controllers for pod "a"`), now)
	if st.DisruptionsAllowed != 0 || st.ObservedGeneration != 3 || st.CurrentHealthy != 3 {
		t.Errorf("status = %+v, want allowed 0 and the rest kept", st)
	}
	c := apimeta.FindStatusCondition(st.Conditions, policyv1.DisruptionAllowedCondition)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != policyv1.SyncFailedReason || c.Message != `found no controllers for pod "a"` || c.ObservedGeneration != 3 {
		t.Errorf("condition = %+v", c)
	}
	if pdb.Status.DisruptionsAllowed != 2 {
		t.Error("failSafe modified the budget it was given")
	}
}

func TestSelects(t *testing.T) {
	p := pod("a", true, nil)
	p.Labels = map[string]string{"app": "web"}
	tests := []struct {
		name string
		sel  *metav1.LabelSelector
		want bool
	}{
		{"nil selector matches nothing", nil, false},
		{"empty selector matches everything", &metav1.LabelSelector{}, true},
		{"matching labels", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, true},
		{"other labels", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}, false},
		{"invalid selector matches nothing", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Bogus"}}}, false},
	}
	for _, tt := range tests {
		pdb := budget(num(1), nil)
		pdb.Spec.Selector = tt.sel
		if got := selects(pdb, p); got != tt.want {
			t.Errorf("%s: selects = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestUsesScale(t *testing.T) {
	tests := []struct {
		pdb  *policyv1.PodDisruptionBudget
		want bool
	}{
		{budget(num(2), nil), false},
		{budget(pct("50%"), nil), true},
		{budget(nil, num(1)), true},
		{budget(nil, pct("10%")), true},
		{budget(nil, nil), false},
	}
	for i, tt := range tests {
		if got := usesScale(tt.pdb); got != tt.want {
			t.Errorf("%d: usesScale = %v, want %v", i, got, tt.want)
		}
	}
}

func TestStaleDisruption(t *testing.T) {
	withCond := func(status corev1.ConditionStatus, reason string, age time.Duration) *corev1.Pod {
		p := pod("a", true, nil)
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{
			Type: corev1.DisruptionTarget, Status: status, Reason: reason, LastTransitionTime: metav1.NewTime(now.Add(-age)),
		})
		return p
	}
	failed := withCond(corev1.ConditionTrue, "EvictionByEvictionAPI", time.Hour)
	failed.Status.Phase = corev1.PodFailed
	tests := []struct {
		name      string
		pod       *corev1.Pod
		wantStale bool
		wantAfter time.Duration
	}{
		{"no condition", pod("a", true, nil), false, 0},
		{"fresh eviction condition", withCond(corev1.ConditionTrue, "EvictionByEvictionAPI", 30*time.Second), true, StalePodDisruptionTimeout - 30*time.Second},
		{"old eviction condition", withCond(corev1.ConditionTrue, "EvictionByEvictionAPI", time.Hour), true, 0},
		{"condition already False", withCond(corev1.ConditionFalse, "EvictionByEvictionAPI", time.Hour), false, 0},
		{"set by the kubelet", withCond(corev1.ConditionTrue, corev1.PodReasonTerminationByKubelet, time.Hour), false, 0},
		{"terminating", deleting(withCond(corev1.ConditionTrue, "EvictionByEvictionAPI", time.Hour)), false, 0},
		{"finished", failed, false, 0},
	}
	for _, tt := range tests {
		stale, after := staleDisruption(tt.pod, now)
		if stale != tt.wantStale || after != tt.wantAfter {
			t.Errorf("%s: staleDisruption = %v, %v; want %v, %v", tt.name, stale, after, tt.wantStale, tt.wantAfter)
		}
	}
}
