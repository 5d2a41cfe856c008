package statefulset

import (
	"fmt"
	"regexp"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels a StatefulSet's pods carry, as upstream sets them.
const (
	PodNameLabel  = appsv1.StatefulSetPodNameLabel        // statefulset.kubernetes.io/pod-name
	PodIndexLabel = appsv1.PodIndexLabel                  // apps.kubernetes.io/pod-index
	RevisionLabel = appsv1.ControllerRevisionHashLabelKey // controller-revision-hash
)

var (
	kind    = appsv1.SchemeGroupVersion.WithKind("StatefulSet")
	podKind = corev1.SchemeGroupVersion.WithKind("Pod")
)

// podNameRE splits "<set>-<ordinal>"; the set's name may contain dashes.
var podNameRE = regexp.MustCompile(`^(.*)-([0-9]+)$`)

// parentAndOrdinal parses a pod name; the ordinal is -1 when it has none.
func parentAndOrdinal(pod *corev1.Pod) (string, int) {
	m := podNameRE.FindStringSubmatch(pod.Name)
	if m == nil {
		return "", -1
	}
	ord, err := strconv.ParseInt(m[2], 10, 32)
	if err != nil {
		return "", -1
	}
	return m[1], int(ord)
}

func ordinal(pod *corev1.Pod) int {
	_, ord := parentAndOrdinal(pod)
	return ord
}

// PodName is the name of the set's pod with the given ordinal.
func PodName(set *appsv1.StatefulSet, ordinal int) string {
	return fmt.Sprintf("%s-%d", set.Name, ordinal)
}

// ClaimName is the name of the PVC made from template for the pod with the
// given ordinal: "<template>-<set>-<ordinal>".
func ClaimName(set *appsv1.StatefulSet, template *corev1.PersistentVolumeClaim, ordinal int) string {
	return fmt.Sprintf("%s-%s-%d", template.Name, set.Name, ordinal)
}

func replicas(set *appsv1.StatefulSet) int {
	if set.Spec.Replicas == nil {
		return 1
	}
	return int(*set.Spec.Replicas)
}

// startOrdinal is the first ordinal of the set (spec.ordinals.start).
func startOrdinal(set *appsv1.StatefulSet) int {
	if set.Spec.Ordinals != nil {
		return int(set.Spec.Ordinals.Start)
	}
	return 0
}

// endOrdinal is the last ordinal of the set, inclusive.
func endOrdinal(set *appsv1.StatefulSet) int {
	return startOrdinal(set) + replicas(set) - 1
}

func inOrdinalRange(pod *corev1.Pod, set *appsv1.StatefulSet) bool {
	ord := ordinal(pod)
	return ord >= startOrdinal(set) && ord <= endOrdinal(set)
}

// isMemberOf: only pods named after the set can belong to it.
func isMemberOf(set *appsv1.StatefulSet, pod *corev1.Pod) bool {
	parent, _ := parentAndOrdinal(pod)
	return parent == set.Name
}

func podRevision(pod *corev1.Pod) string {
	return pod.Labels[RevisionLabel]
}

// newPod builds the pod with the given ordinal from set's template.
func newPod(set *appsv1.StatefulSet, ord int) *corev1.Pod {
	t := &set.Spec.Template
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:            PodName(set, ord),
			GenerateName:    set.Name + "-",
			Namespace:       set.Namespace,
			Labels:          copyMap(t.Labels),
			Annotations:     copyMap(t.Annotations),
			Finalizers:      append([]string(nil), t.Finalizers...),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(set, kind)},
		},
		Spec: *t.Spec.DeepCopy(),
	}
	setIdentity(set, pod)
	pod.Spec.Hostname = pod.Name
	pod.Spec.Subdomain = set.Spec.ServiceName
	setStorage(set, pod)
	return pod
}

// newVersionedPod builds the pod with ordinal at the revision it should
// have: ordinals below the partition stay at the current revision.
func newVersionedPod(currentSet, updateSet *appsv1.StatefulSet, currentRev, updateRev string, ord int) *corev1.Pod {
	s := currentSet.Spec.UpdateStrategy
	if s.Type == appsv1.RollingUpdateStatefulSetStrategyType {
		below := false
		if s.RollingUpdate == nil || s.RollingUpdate.Partition == nil {
			below = ord < startOrdinal(currentSet)+int(currentSet.Status.CurrentReplicas)
		} else {
			below = ord < startOrdinal(currentSet)+int(*s.RollingUpdate.Partition)
		}
		if below {
			pod := newPod(currentSet, ord)
			pod.Labels[RevisionLabel] = currentRev
			return pod
		}
	}
	pod := newPod(updateSet, ord)
	pod.Labels[RevisionLabel] = updateRev
	return pod
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// setIdentity writes the name-derived labels (and name) of pod.
func setIdentity(set *appsv1.StatefulSet, pod *corev1.Pod) {
	ord := ordinal(pod)
	pod.Name = PodName(set, ord)
	pod.Namespace = set.Namespace
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[PodNameLabel] = pod.Name
	pod.Labels[PodIndexLabel] = strconv.Itoa(ord)
}

func identityMatches(set *appsv1.StatefulSet, pod *corev1.Pod) bool {
	parent, ord := parentAndOrdinal(pod)
	return ord >= 0 && parent == set.Name && pod.Name == PodName(set, ord) &&
		pod.Namespace == set.Namespace &&
		pod.Labels[PodNameLabel] == pod.Name &&
		pod.Labels[PodIndexLabel] == strconv.Itoa(ord)
}

// claims are the PVCs pod needs, in template order, labelled with the
// set's selector so that they can be found again.
func claims(set *appsv1.StatefulSet, ord int) []corev1.PersistentVolumeClaim {
	out := make([]corev1.PersistentVolumeClaim, 0, len(set.Spec.VolumeClaimTemplates))
	for i := range set.Spec.VolumeClaimTemplates {
		tmpl := &set.Spec.VolumeClaimTemplates[i]
		claim := tmpl.DeepCopy()
		claim.Name = ClaimName(set, tmpl, ord)
		claim.Namespace = set.Namespace
		if claim.Labels == nil {
			claim.Labels = map[string]string{}
		}
		if set.Spec.Selector != nil {
			for k, v := range set.Spec.Selector.MatchLabels {
				claim.Labels[k] = v
			}
		}
		out = append(out, *claim)
	}
	return out
}

// setStorage points the pod's volumes named after claim templates at the
// pod's own claims; a template replaces a template volume of the same name.
func setStorage(set *appsv1.StatefulSet, pod *corev1.Pod) {
	ord := ordinal(pod)
	templates := set.Spec.VolumeClaimTemplates
	fromTemplate := map[string]bool{}
	volumes := make([]corev1.Volume, 0, len(templates)+len(pod.Spec.Volumes))
	for i := range templates {
		fromTemplate[templates[i].Name] = true
		volumes = append(volumes, corev1.Volume{
			Name: templates[i].Name,
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
				ClaimName: ClaimName(set, &templates[i], ord),
			}},
		})
	}
	for _, v := range pod.Spec.Volumes {
		if !fromTemplate[v.Name] {
			volumes = append(volumes, v)
		}
	}
	pod.Spec.Volumes = volumes
}

func storageMatches(set *appsv1.StatefulSet, pod *corev1.Pod) bool {
	ord := ordinal(pod)
	if ord < 0 {
		return false
	}
	byName := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		byName[v.Name] = v
	}
	for i := range set.Spec.VolumeClaimTemplates {
		tmpl := &set.Spec.VolumeClaimTemplates[i]
		v, ok := byName[tmpl.Name]
		if !ok || v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != ClaimName(set, tmpl, ord) {
			return false
		}
	}
	return true
}
