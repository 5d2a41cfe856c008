package deployment

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func template(image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: image}}},
	}
}

func TestComputeHash(t *testing.T) {
	a, b := template("nginx:1"), template("nginx:2")
	ha := ComputeHash(&a, nil)
	if again := ComputeHash(ptr.To(template("nginx:1")), nil); again != ha {
		t.Errorf("hash of equal templates differs: %s vs %s", ha, again)
	}
	if hb := ComputeHash(&b, nil); hb == ha {
		t.Errorf("templates with different images share hash %s", ha)
	}
	if hc := ComputeHash(&a, ptr.To[int32](1)); hc == ha {
		t.Errorf("collisionCount did not change hash %s", ha)
	}
	if h0 := ComputeHash(&a, ptr.To[int32](0)); h0 == ha {
		// Upstream hashes the count whenever it is set, even at zero.
		t.Errorf("collisionCount 0 hashed like nil: %s", ha)
	}
	for _, r := range ha {
		if !strings.ContainsRune("bcdfghjklmnpqrstvwxz2456789", r) {
			t.Errorf("hash %q has %q, outside rand.SafeEncodeString's alphabet", ha, r)
		}
	}
}

func TestEqualIgnoreHash(t *testing.T) {
	a, b := template("nginx:1"), template("nginx:1")
	b.Labels[PodTemplateHashLabel] = "abc"
	if !equalIgnoreHash(&a, &b) {
		t.Error("templates differing only in pod-template-hash compare unequal")
	}
	if _, ok := a.Labels[PodTemplateHashLabel]; ok {
		t.Error("equalIgnoreHash changed its argument")
	}
	c := template("nginx:2")
	if equalIgnoreHash(&a, &c) {
		t.Error("templates with different images compare equal")
	}
}

func rollingDeployment(n int32, surge, unavailable intstr.IntOrString) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Generation: 1},
		Spec: appsv1.DeploymentSpec{
			Replicas: &n,
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable},
			},
			ProgressDeadlineSeconds: ptr.To[int32](600),
			Template:                template("nginx:1"),
		},
	}
}

func TestFenceposts(t *testing.T) {
	tests := []struct {
		name                   string
		surge, unavailable     intstr.IntOrString
		replicas               int32
		wantSurge, wantUnavail int32
	}{
		{"defaults of 10", intstr.FromString("25%"), intstr.FromString("25%"), 10, 3, 2},
		{"defaults of 1", intstr.FromString("25%"), intstr.FromString("25%"), 1, 1, 0},
		{"defaults of 3", intstr.FromString("25%"), intstr.FromString("25%"), 3, 1, 0},
		{"ints", intstr.FromInt32(2), intstr.FromInt32(1), 5, 2, 1},
		{"both zero becomes one unavailable", intstr.FromInt32(0), intstr.FromInt32(0), 5, 0, 1},
		{"percent rounding to zero on both", intstr.FromString("0%"), intstr.FromString("10%"), 5, 0, 1},
		{"unavailable capped at replicas", intstr.FromInt32(0), intstr.FromInt32(7), 3, 0, 3},
		{"50% of 5", intstr.FromString("50%"), intstr.FromString("50%"), 5, 3, 2},
		{"100% surge", intstr.FromString("100%"), intstr.FromInt32(0), 4, 4, 0},
	}
	for _, tc := range tests {
		d := rollingDeployment(tc.replicas, tc.surge, tc.unavailable)
		if got := maxSurge(d); got != tc.wantSurge {
			t.Errorf("%s: maxSurge = %d, want %d", tc.name, got, tc.wantSurge)
		}
		if got := maxUnavailable(d); got != tc.wantUnavail {
			t.Errorf("%s: maxUnavailable = %d, want %d", tc.name, got, tc.wantUnavail)
		}
	}
	d := rollingDeployment(3, intstr.FromInt32(1), intstr.FromInt32(1))
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	if maxSurge(d) != 0 || maxUnavailable(d) != 0 {
		t.Errorf("Recreate: surge %d unavailable %d, want 0 and 0", maxSurge(d), maxUnavailable(d))
	}
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// rs builds a ReplicaSet created age minutes after epoch.
func rs(name string, age int, spec, available int32, annotations map[string]string) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, UID: types.UID(name), Annotations: annotations,
			CreationTimestamp: metav1.NewTime(epoch.Add(time.Duration(age) * time.Minute)),
		},
		Spec:   appsv1.ReplicaSetSpec{Replicas: ptr.To(spec)},
		Status: appsv1.ReplicaSetStatus{Replicas: spec, ReadyReplicas: available, AvailableReplicas: available},
	}
}

func maxAnn(n string) map[string]string {
	return map[string]string{MaxReplicasAnnotation: n}
}

func TestNewRSReplicas(t *testing.T) {
	tests := []struct {
		name     string
		replicas int32
		surge    intstr.IntOrString
		old, new int32
		want     int32
	}{
		{"surge of 3 above 10", 10, intstr.FromString("25%"), 10, 0, 3},
		{"at the surge limit", 10, intstr.FromString("25%"), 10, 3, 3},
		{"never above desired", 10, intstr.FromString("25%"), 2, 8, 10},
		{"no surge", 4, intstr.FromInt32(0), 4, 0, 0},
		{"room after old scaled down", 4, intstr.FromInt32(1), 1, 3, 4},
	}
	for _, tc := range tests {
		d := rollingDeployment(tc.replicas, tc.surge, intstr.FromInt32(1))
		newRS := rs("new", 2, tc.new, 0, nil)
		all := []*appsv1.ReplicaSet{rs("old", 1, tc.old, tc.old, nil), newRS}
		if got := newRSReplicas(d, all, newRS); got != tc.want {
			t.Errorf("%s: newRSReplicas = %d, want %d", tc.name, got, tc.want)
		}
	}
	d := rollingDeployment(5, intstr.FromInt32(1), intstr.FromInt32(1))
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	if got := newRSReplicas(d, nil, rs("new", 0, 0, 0, nil)); got != 5 {
		t.Errorf("Recreate: newRSReplicas = %d, want 5", got)
	}
}

func TestProportionalSizes(t *testing.T) {
	tests := []struct {
		name        string
		replicas    int32
		surge       intstr.IntOrString
		statusRepls int32
		rss         []*appsv1.ReplicaSet
		want        map[string]int32
	}{
		{
			name: "10 to 12 mid-rollout", replicas: 12, surge: intstr.FromString("25%"),
			rss:  []*appsv1.ReplicaSet{rs("old", 1, 8, 8, maxAnn("13")), rs("new", 2, 5, 0, maxAnn("13"))},
			want: map[string]int32{"old": 9, "new": 6},
		},
		{
			name: "10 to 5 without surge", replicas: 5, surge: intstr.FromInt32(0),
			rss:  []*appsv1.ReplicaSet{rs("old", 1, 6, 6, maxAnn("10")), rs("new", 2, 4, 4, maxAnn("10"))},
			want: map[string]int32{"old": 3, "new": 2},
		},
		{
			name: "leftover up goes to the newest of the largest", replicas: 4, surge: intstr.FromInt32(0),
			rss: []*appsv1.ReplicaSet{
				rs("a", 1, 1, 1, maxAnn("3")), rs("b", 2, 1, 1, maxAnn("3")), rs("c", 3, 1, 1, maxAnn("3"))},
			want: map[string]int32{"a": 1, "b": 1, "c": 2},
		},
		{
			name: "leftover down comes from the oldest of the largest", replicas: 2, surge: intstr.FromInt32(0),
			rss: []*appsv1.ReplicaSet{
				rs("a", 1, 1, 1, maxAnn("3")), rs("b", 2, 1, 1, maxAnn("3")), rs("c", 3, 1, 1, maxAnn("3"))},
			want: map[string]int32{"a": 0, "b": 1, "c": 1},
		},
		{
			name: "to zero", replicas: 0, surge: intstr.FromInt32(1),
			rss:  []*appsv1.ReplicaSet{rs("old", 1, 3, 3, maxAnn("5")), rs("new", 2, 2, 0, maxAnn("5"))},
			want: map[string]int32{"old": 0, "new": 0},
		},
		{
			name: "no annotation falls back to status replicas", replicas: 20, surge: intstr.FromInt32(0), statusRepls: 10,
			rss:  []*appsv1.ReplicaSet{rs("old", 1, 5, 5, nil), rs("new", 2, 5, 0, nil)},
			want: map[string]int32{"old": 10, "new": 10},
		},
		{
			name: "inactive ReplicaSets are left out", replicas: 6, surge: intstr.FromInt32(0),
			rss:  []*appsv1.ReplicaSet{rs("gone", 0, 0, 0, maxAnn("3")), rs("old", 1, 2, 2, maxAnn("3")), rs("new", 2, 1, 0, maxAnn("3"))},
			want: map[string]int32{"old": 4, "new": 2},
		},
	}
	for _, tc := range tests {
		d := rollingDeployment(tc.replicas, tc.surge, intstr.FromInt32(1))
		d.Status.Replicas = tc.statusRepls
		got := proportionalSizes(d, tc.rss)
		if len(got) != len(tc.want) {
			t.Errorf("%s: sizes %v, want %v", tc.name, got, tc.want)
			continue
		}
		for name, n := range tc.want {
			if got[name] != n {
				t.Errorf("%s: sizes %v, want %v", tc.name, got, tc.want)
				break
			}
		}
	}
}

func TestActiveOrLatest(t *testing.T) {
	older, newer := rs("older", 1, 0, 0, nil), rs("newer", 2, 0, 0, nil)
	tests := []struct {
		name  string
		newRS *appsv1.ReplicaSet
		old   []*appsv1.ReplicaSet
		want  string
	}{
		{"nothing", nil, nil, ""},
		{"no active: the new one", rs("new", 3, 0, 0, nil), []*appsv1.ReplicaSet{older, newer}, "new"},
		{"no active, no new: the newest old", nil, []*appsv1.ReplicaSet{older, newer}, "newer"},
		{"the one active", rs("new", 3, 0, 0, nil), []*appsv1.ReplicaSet{older, rs("live", 2, 3, 3, nil)}, "live"},
		{"two active: none", rs("new", 3, 1, 0, nil), []*appsv1.ReplicaSet{rs("live", 2, 3, 3, nil)}, ""},
	}
	for _, tc := range tests {
		got := activeOrLatest(tc.newRS, tc.old)
		name := ""
		if got != nil {
			name = got.Name
		}
		if name != tc.want {
			t.Errorf("%s: activeOrLatest = %q, want %q", tc.name, name, tc.want)
		}
	}
}

func TestSetNewRSAnnotations(t *testing.T) {
	d := rollingDeployment(3, intstr.FromInt32(1), intstr.FromInt32(0))
	d.Annotations = map[string]string{
		ChangeCauseAnnotation: "kubectl set image deployment/web web=nginx:2",
		lastAppliedAnnotation: "{}",
		RevisionAnnotation:    "2",
	}
	fresh := &appsv1.ReplicaSet{}
	if !setNewRSAnnotations(d, fresh, "3", false) {
		t.Fatal("new ReplicaSet reported unchanged")
	}
	want := map[string]string{
		ChangeCauseAnnotation: "kubectl set image deployment/web web=nginx:2", RevisionAnnotation: "3",
		DesiredReplicasAnnotation: "3", MaxReplicasAnnotation: "4",
	}
	if len(fresh.Annotations) != len(want) {
		t.Errorf("annotations %v, want %v", fresh.Annotations, want)
	}
	for k, v := range want {
		if fresh.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, fresh.Annotations[k], v)
		}
	}
	if setNewRSAnnotations(d, fresh, "3", true) {
		t.Error("second pass at the same revision reported a change")
	}

	// Rolling back to the ReplicaSet of revision 1 at revision 4, after it
	// was already rolled back to once at revision 2.
	back := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
		RevisionAnnotation: "2", RevisionHistoryAnnotation: "1",
	}}}
	setNewRSAnnotations(d, back, "4", true)
	if back.Annotations[RevisionAnnotation] != "4" || back.Annotations[RevisionHistoryAnnotation] != "1,2" {
		t.Errorf("rollback annotations %v, want revision 4 and history 1,2", back.Annotations)
	}
	if _, ok := back.Annotations[DesiredReplicasAnnotation]; ok {
		t.Error("an existing ReplicaSet got replica annotations, which only scaling sets")
	}
	// A revision never moves backwards.
	setNewRSAnnotations(d, back, "3", true)
	if back.Annotations[RevisionAnnotation] != "4" {
		t.Errorf("revision moved back to %s", back.Annotations[RevisionAnnotation])
	}
}

func TestCleanupOrder(t *testing.T) {
	rss := []*appsv1.ReplicaSet{
		rs("r3", 1, 0, 0, map[string]string{RevisionAnnotation: "3"}),
		rs("r1", 2, 0, 0, map[string]string{RevisionAnnotation: "1"}),
		rs("r10", 3, 0, 0, map[string]string{RevisionAnnotation: "10"}),
		rs("r2", 4, 0, 0, map[string]string{RevisionAnnotation: "2"}),
	}
	sortByRevision(rss)
	var got []string
	for _, r := range rss {
		got = append(got, r.Name)
	}
	if strings.Join(got, ",") != "r1,r2,r3,r10" {
		t.Errorf("revision order %v, want numeric r1,r2,r3,r10", got)
	}
	if maxRevision(rss) != 10 {
		t.Errorf("maxRevision = %d, want 10", maxRevision(rss))
	}
}

func TestRolloutStatus(t *testing.T) {
	now := epoch.Add(time.Hour)
	progressingSince := func(reason string, ago time.Duration) []appsv1.DeploymentCondition {
		at := metav1.NewTime(now.Add(-ago))
		return []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: reason, LastUpdateTime: at, LastTransitionTime: at}}
	}
	tests := []struct {
		name            string
		replicas        int32
		old, new        *appsv1.ReplicaSet
		prior           appsv1.DeploymentStatus
		wantProgressing string
		wantAvailable   string
		wantUpdated     int32
		wantUnavailable int32
	}{
		{
			name: "complete", replicas: 3, new: rs("new", 2, 3, 3, nil),
			prior:           appsv1.DeploymentStatus{Conditions: progressingSince(reasonRSUpdated, time.Minute)},
			wantProgressing: reasonNewRSAvailable, wantAvailable: reasonMinimumAvailable, wantUpdated: 3,
		},
		{
			name: "progress made", replicas: 3, old: rs("old", 1, 2, 2, nil), new: rs("new", 2, 2, 1, nil),
			prior:           appsv1.DeploymentStatus{Replicas: 4, UpdatedReplicas: 1, Conditions: progressingSince(reasonNewRSCreated, 20*time.Minute)},
			wantProgressing: reasonRSUpdated, wantAvailable: reasonMinimumAvailable, wantUpdated: 2, wantUnavailable: 1,
		},
		{
			name: "stuck past the deadline", replicas: 3, old: rs("old", 1, 2, 2, nil), new: rs("new", 2, 2, 0, nil),
			prior:           appsv1.DeploymentStatus{Replicas: 4, UpdatedReplicas: 2, AvailableReplicas: 2, ReadyReplicas: 2, Conditions: progressingSince(reasonRSUpdated, 11*time.Minute)},
			wantProgressing: reasonTimedOut, wantAvailable: reasonMinimumAvailable, wantUpdated: 2, wantUnavailable: 2,
		},
		{
			name: "stuck within the deadline", replicas: 3, old: rs("old", 1, 2, 2, nil), new: rs("new", 2, 2, 0, nil),
			prior:           appsv1.DeploymentStatus{Replicas: 4, UpdatedReplicas: 2, AvailableReplicas: 2, ReadyReplicas: 2, Conditions: progressingSince(reasonRSUpdated, 9*time.Minute)},
			wantProgressing: reasonRSUpdated, wantAvailable: reasonMinimumAvailable, wantUpdated: 2, wantUnavailable: 2,
		},
		{
			name: "below minimum availability", replicas: 4, new: rs("new", 2, 4, 1, nil),
			prior:           appsv1.DeploymentStatus{Replicas: 4, UpdatedReplicas: 4, AvailableReplicas: 1, ReadyReplicas: 1, Conditions: progressingSince(reasonRSUpdated, time.Minute)},
			wantProgressing: reasonRSUpdated, wantAvailable: reasonMinimumUnavailable, wantUpdated: 4, wantUnavailable: 3,
		},
		{
			name: "finished stays finished", replicas: 3, new: rs("new", 2, 3, 2, nil),
			prior:           appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3, Conditions: progressingSince(reasonNewRSAvailable, time.Hour)},
			wantProgressing: reasonNewRSAvailable, wantAvailable: reasonMinimumAvailable, wantUpdated: 3, wantUnavailable: 1,
		},
		{
			name: "more available than wanted is not negative unavailable", replicas: 2, old: rs("old", 1, 0, 2, nil), new: rs("new", 2, 2, 2, nil),
			wantProgressing: reasonRSUpdated, wantAvailable: reasonMinimumAvailable, wantUpdated: 2,
		},
	}
	for _, tc := range tests {
		d := rollingDeployment(tc.replicas, intstr.FromInt32(1), intstr.FromInt32(1))
		d.Status = tc.prior
		var all []*appsv1.ReplicaSet
		if tc.old != nil {
			all = append(all, tc.old)
		}
		all = append(all, tc.new)
		s := rolloutStatus(d, all, tc.new, now)
		if s.ObservedGeneration != d.Generation {
			t.Errorf("%s: observedGeneration %d, want %d", tc.name, s.ObservedGeneration, d.Generation)
		}
		if s.UpdatedReplicas != tc.wantUpdated || s.UnavailableReplicas != tc.wantUnavailable {
			t.Errorf("%s: updated %d unavailable %d, want %d and %d", tc.name, s.UpdatedReplicas, s.UnavailableReplicas, tc.wantUpdated, tc.wantUnavailable)
		}
		if c := getCondition(s, appsv1.DeploymentProgressing); c == nil || c.Reason != tc.wantProgressing {
			t.Errorf("%s: Progressing %+v, want reason %s", tc.name, c, tc.wantProgressing)
		} else if c.Reason == reasonRSUpdated && tc.prior.Conditions != nil && progressing(d, &s) && !c.LastUpdateTime.Time.Equal(now) {
			t.Errorf("%s: progress did not refresh lastUpdateTime: %v", tc.name, c.LastUpdateTime)
		}
		if c := getCondition(s, appsv1.DeploymentAvailable); c == nil || c.Reason != tc.wantAvailable {
			t.Errorf("%s: Available %+v, want reason %s", tc.name, c, tc.wantAvailable)
		}
	}
}

func TestUnhealthy(t *testing.T) {
	tests := []struct {
		name            string
		spec, available int32
		want            int32
	}{
		{"all available", 3, 3, 0},
		{"two missing", 3, 1, 2},
		{"scaled to zero", 0, 0, 0},
		// Just scaled down from 4: the status has not caught up. Counting
		// -1 here once scaled an old ReplicaSet back up past maxSurge.
		{"status ahead of a scale-down", 3, 4, 0},
	}
	for _, tc := range tests {
		if got := unhealthy(rs("x", 0, tc.spec, tc.available, nil)); got != tc.want {
			t.Errorf("%s: unhealthy = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestAvailableWithin(t *testing.T) {
	// The old ReplicaSet was just scaled from 3 to 2; its status still
	// counts 3. Only 2 of them stay, so 2 + 2 are available, not 5.
	rss := []*appsv1.ReplicaSet{rs("old", 1, 2, 3, nil), rs("new", 2, 3, 2, nil), nil}
	if got := availableWithin(rss); got != 4 {
		t.Errorf("availableWithin = %d, want 4", got)
	}
}
