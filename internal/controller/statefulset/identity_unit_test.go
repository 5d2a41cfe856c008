package statefulset

import (
	"encoding/json"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

func TestNames(t *testing.T) {
	set := testSet(3, "nginx")
	tmpl := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data"}}
	if got := ClaimName(set, tmpl, 2); got != "data-web-2" {
		t.Errorf("ClaimName = %s, want data-web-2", got)
	}
	if got := PodName(set, 7); got != "web-7" {
		t.Errorf("PodName = %s", got)
	}
	tests := []struct {
		pod    string
		parent string
		ord    int
	}{
		{"web-0", "web", 0},
		{"my-web-12", "my-web", 12},
		{"web", "", -1},
		{"web-x", "", -1},
		{"web-99999999999", "", -1}, // overflows int32
	}
	for _, tt := range tests {
		parent, ord := parentAndOrdinal(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: tt.pod}})
		if parent != tt.parent || ord != tt.ord {
			t.Errorf("parentAndOrdinal(%s) = %q, %d; want %q, %d", tt.pod, parent, ord, tt.parent, tt.ord)
		}
	}
}

func TestNewPodIdentityAndStorage(t *testing.T) {
	set := testSet(3, "nginx")
	set.Spec.VolumeClaimTemplates = append(set.Spec.VolumeClaimTemplates,
		corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "logs", Labels: map[string]string{"tier": "x"}}})
	// A template volume named like a claim template is replaced by the claim.
	set.Spec.Template.Spec.Volumes = []corev1.Volume{
		{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "cfg", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	pod := newPod(set, 1)
	if pod.Name != "web-1" || pod.GenerateName != "web-" || pod.Namespace != "ns" {
		t.Errorf("name %s generateName %s namespace %s", pod.Name, pod.GenerateName, pod.Namespace)
	}
	if pod.Spec.Hostname != "web-1" || pod.Spec.Subdomain != "web-svc" {
		t.Errorf("hostname %s subdomain %s", pod.Spec.Hostname, pod.Spec.Subdomain)
	}
	if pod.Labels[PodNameLabel] != "web-1" || pod.Labels[PodIndexLabel] != "1" || pod.Labels["app"] != "web" {
		t.Errorf("labels %v", pod.Labels)
	}
	if ref := metav1.GetControllerOf(pod); ref == nil || ref.Kind != "StatefulSet" || ref.UID != "set-uid" || !*ref.BlockOwnerDeletion {
		t.Errorf("controller ref %+v", ref)
	}
	var vols []string
	for _, v := range pod.Spec.Volumes {
		name := v.Name
		if v.PersistentVolumeClaim != nil {
			name += "=" + v.PersistentVolumeClaim.ClaimName
		}
		vols = append(vols, name)
	}
	if got := strings.Join(vols, ","); got != "data=data-web-1,logs=logs-web-1,cfg" {
		t.Errorf("volumes %s", got)
	}
	if set.Spec.Template.Labels[PodNameLabel] != "" {
		t.Error("newPod wrote into the set's template")
	}
	if !identityMatches(set, pod) || !storageMatches(set, pod) {
		t.Error("a new pod does not match its own identity and storage")
	}
	broken := pod.DeepCopy()
	delete(broken.Labels, PodIndexLabel)
	if identityMatches(set, broken) {
		t.Error("identity matches without the pod-index label")
	}
	broken = pod.DeepCopy()
	broken.Spec.Volumes = broken.Spec.Volumes[1:]
	if storageMatches(set, broken) {
		t.Error("storage matches with a claim volume missing")
	}

	cl := claims(set, 1)
	if len(cl) != 2 || cl[0].Name != "data-web-1" || cl[1].Name != "logs-web-1" || cl[1].Namespace != "ns" {
		t.Fatalf("claims %+v", cl)
	}
	if cl[0].Labels["app"] != "web" || cl[1].Labels["app"] != "web" || cl[1].Labels["tier"] != "x" {
		t.Errorf("claim labels %v %v", cl[0].Labels, cl[1].Labels)
	}
	if set.Spec.VolumeClaimTemplates[1].Labels["app"] != "" {
		t.Error("claims wrote into the set's templates")
	}
}

func TestRetentionPolicyOwners(t *testing.T) {
	tests := []struct {
		scaled, deleted       appsv1.PersistentVolumeClaimRetentionPolicyType
		ordinal               int // the set has 2 replicas: ordinal 2 is scaled down
		wantSet, wantPodOwner bool
	}{
		{retain, retain, 0, false, false},
		{retain, retain, 2, false, false},
		{retain, del, 0, true, false},
		{retain, del, 2, true, false},
		{del, retain, 0, false, false},
		{del, retain, 2, false, true},
		{del, del, 0, true, false},
		{del, del, 2, false, true},
	}
	for _, tt := range tests {
		set := testSet(2, "nginx")
		set.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenScaled: tt.scaled, WhenDeleted: tt.deleted}
		pod := newPod(set, tt.ordinal)
		pod.UID = "pod-uid"
		claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data-web-x",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "other", UID: "other"}}}}
		want := tt.wantSet || tt.wantPodOwner
		if claimOwnerUpToDate(claim, set, pod) == want {
			t.Errorf("%s/%s ord %d: bare claim up to date = %v", tt.scaled, tt.deleted, tt.ordinal, !want)
		}
		setClaimOwners(claim, set, pod)
		if hasOwnerRef(claim, set) != tt.wantSet || hasOwnerRef(claim, pod) != tt.wantPodOwner {
			t.Errorf("%s/%s ord %d: owners %+v", tt.scaled, tt.deleted, tt.ordinal, claim.OwnerReferences)
		}
		if !hasOwnerRef(claim, &metav1.ObjectMeta{UID: "other"}) {
			t.Errorf("%s/%s: an unrelated owner was dropped", tt.scaled, tt.deleted)
		}
		if !claimOwnerUpToDate(claim, set, pod) {
			t.Errorf("%s/%s ord %d: not up to date after setClaimOwners", tt.scaled, tt.deleted, tt.ordinal)
		}
	}
}

func TestStaleAndForeignClaims(t *testing.T) {
	set := testSet(2, "nginx")
	set.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenScaled: del, WhenDeleted: del}
	pod := newPod(set, 3) // not created yet: no uid
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: "web-3", UID: "old-pod", Controller: ptr.To(true)}}}}
	if !hasStaleOwnerRef(claim, pod, podKind) {
		t.Error("a reference to an earlier web-3 is not stale")
	}
	if !claimOwnerUpToDate(claim, set, pod) {
		t.Error("a claim with a stale owner must be left alone")
	}
	foreign := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{
		OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "example.com/v1", Kind: "Backup", Name: "b", UID: "b", Controller: ptr.To(true)},
			*metav1.NewControllerRef(set, kind),
		}}}
	pod.UID = "pod-uid"
	if !hasUnexpectedController(foreign, set, pod) || claimOwnerUpToDate(foreign, set, pod) {
		t.Error("our reference beside another controller must be removed")
	}
	setClaimOwners(foreign, set, pod)
	if len(foreign.OwnerReferences) != 1 || foreign.OwnerReferences[0].Kind != "Backup" {
		t.Errorf("owners after fix %+v", foreign.OwnerReferences)
	}
}

func TestRevisions(t *testing.T) {
	a := testSet(3, "nginx:1")
	a.Annotations = map[string]string{"kubernetes.io/change-cause": "first"}
	revA := mustRevision(t, a, 1)
	if !strings.HasPrefix(revA.Name, "web-") || revA.Labels[RevisionHashLabel] == "" || revA.Labels["app"] != "web" ||
		revA.Annotations["kubernetes.io/change-cause"] != "first" || revA.Revision != 1 {
		t.Errorf("revision meta %+v", revA.ObjectMeta)
	}
	if ref := metav1.GetControllerOf(revA); ref == nil || ref.UID != a.UID {
		t.Errorf("revision owner %+v", ref)
	}
	var patch map[string]map[string]map[string]any
	if err := json.Unmarshal(revA.Data.Raw, &patch); err != nil {
		t.Fatal(err)
	}
	if patch["spec"]["template"]["$patch"] != "replace" || len(patch["spec"]) != 1 {
		t.Errorf("patch %s", revA.Data.Raw)
	}
	// Same template, other fields changed: same revision.
	same := a.DeepCopy()
	same.Spec.Replicas = ptr.To[int32](9)
	same.Spec.UpdateStrategy.RollingUpdate.Partition = ptr.To[int32](1)
	if r := mustRevision(t, same, 2); r.Name != revA.Name || !equalRevision(r, revA) {
		t.Errorf("scaling changed the revision: %s vs %s", r.Name, revA.Name)
	}
	b := testSet(3, "nginx:2")
	revB := mustRevision(t, b, 2)
	if revB.Name == revA.Name || equalRevision(revA, revB) {
		t.Error("a different image gave the same revision")
	}
	if h := HashRevision(revA.Data.Raw, ptr.To[int32](1)); RevisionName("web", h) == revA.Name {
		t.Error("the collision count did not move the name")
	}
	if got := RevisionName(strings.Repeat("s", 300), "h"); len(got) != 225 {
		t.Errorf("long revision name has %d chars", len(got))
	}

	// Applying revision A to set B brings back A's template and keeps B's
	// other fields: the controller builds old pods from it.
	b.Spec.Replicas = ptr.To[int32](5)
	back, err := applyRevision(b, revA)
	if err != nil {
		t.Fatal(err)
	}
	if back.Spec.Template.Spec.Containers[0].Image != "nginx:1" || *back.Spec.Replicas != 5 || back.UID != b.UID {
		t.Errorf("applyRevision: image %s replicas %d", back.Spec.Template.Spec.Containers[0].Image, *back.Spec.Replicas)
	}
}

func TestHistoryToDelete(t *testing.T) {
	var revs []*appsv1.ControllerRevision
	for i, name := range []string{"r1", "r2", "r3", "r4", "r5"} {
		revs = append(revs, &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(name)}, Revision: int64(i + 1)})
	}
	// Shuffle, then sort: the order is by revision number.
	revs[0], revs[4] = revs[4], revs[0]
	sortRevisions(revs)
	tests := []struct {
		live  []string
		limit int
		want  string
	}{
		{[]string{"r5"}, 10, ""},
		{[]string{"r5"}, 2, "r1,r2"},
		{[]string{"r5", "r1"}, 1, "r2,r3"},
		{[]string{"r4", "r5"}, 0, "r1,r2,r3"},
	}
	for _, tt := range tests {
		live := map[string]bool{}
		for _, l := range tt.live {
			live[l] = true
		}
		var got []string
		for _, r := range historyToDelete(revs, live, tt.limit) {
			got = append(got, r.Name)
		}
		if strings.Join(got, ",") != tt.want {
			t.Errorf("live %v limit %d: delete %v, want %s", tt.live, tt.limit, got, tt.want)
		}
	}
}
