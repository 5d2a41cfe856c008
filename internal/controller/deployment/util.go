package deployment

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/dump"
)

// Annotations and labels upstream's controller writes; kubectl reads them.
const (
	RevisionAnnotation        = "deployment.kubernetes.io/revision"
	RevisionHistoryAnnotation = "deployment.kubernetes.io/revision-history"
	DesiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas"
	MaxReplicasAnnotation     = "deployment.kubernetes.io/max-replicas"
	ChangeCauseAnnotation     = "kubernetes.io/change-cause"
	lastAppliedAnnotation     = "kubectl.kubernetes.io/last-applied-configuration"
	rollbackToAnnotation      = "deprecated.deployment.rollback.to"

	// PodTemplateHashLabel tells a ReplicaSet's pods apart from those of
	// the deployment's other ReplicaSets.
	PodTemplateHashLabel = appsv1.DefaultDeploymentUniqueLabelKey

	// maxRevisionHistoryChars bounds the revision-history annotation.
	maxRevisionHistoryChars = 2000
)

// Condition reasons, as kubectl rollout status and describe expect them.
const (
	reasonNewRSCreated       = "NewReplicaSetCreated"
	reasonFoundNewRS         = "FoundNewReplicaSet"
	reasonRSUpdated          = "ReplicaSetUpdated"
	reasonNewRSAvailable     = "NewReplicaSetAvailable"
	reasonTimedOut           = "ProgressDeadlineExceeded"
	reasonFailedRSCreate     = "ReplicaSetCreateError"
	reasonPaused             = "DeploymentPaused"
	reasonResumed            = "DeploymentResumed"
	reasonMinimumAvailable   = "MinimumReplicasAvailable"
	reasonMinimumUnavailable = "MinimumReplicasUnavailable"
)

// ComputeHash returns the pod-template-hash of a template. It hashes the
// same deep dump of the template as upstream, so a template gets the same
// hash (and its ReplicaSet the same name) here as on any other cluster;
// collisionCount, when set, moves the hash off a name already taken.
func ComputeHash(template *corev1.PodTemplateSpec, collisionCount *int32) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%v", dump.ForHash(*template))
	if collisionCount != nil {
		var buf [4]byte
		binary.LittleEndian.PutUint32(buf[:], uint32(*collisionCount))
		h.Write(buf[:])
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// equalIgnoreHash compares two pod templates, ignoring the
// pod-template-hash label, which only the ReplicaSet's copy carries.
func equalIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, PodTemplateHashLabel)
	delete(b.Labels, PodTemplateHashLabel)
	return equality.Semantic.DeepEqual(a, b)
}

func isRollingUpdate(d *appsv1.Deployment) bool {
	return d.Spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType
}

func replicas(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

func rsReplicas(rs *appsv1.ReplicaSet) int32 {
	if rs == nil || rs.Spec.Replicas == nil {
		return 0
	}
	return *rs.Spec.Replicas
}

// resolveFenceposts turns maxSurge and maxUnavailable into pod counts for
// desired replicas: surge rounds percentages up, unavailable rounds them
// down, and if both end up zero unavailable becomes one so the rollout
// can move at all.
func resolveFenceposts(maxSurge, maxUnavailable *intstr.IntOrString, desired int32) (int32, int32, error) {
	zero := intstr.FromInt32(0)
	if maxSurge == nil {
		maxSurge = &zero
	}
	if maxUnavailable == nil {
		maxUnavailable = &zero
	}
	surge, err := intstr.GetScaledValueFromIntOrPercent(maxSurge, int(desired), true)
	if err != nil {
		return 0, 0, err
	}
	unavailable, err := intstr.GetScaledValueFromIntOrPercent(maxUnavailable, int(desired), false)
	if err != nil {
		return 0, 0, err
	}
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return int32(surge), int32(unavailable), nil
}

// maxSurge is how many pods a rolling update may run above the desired
// count; zero for Recreate.
func maxSurge(d *appsv1.Deployment) int32 {
	if !isRollingUpdate(d) || d.Spec.Strategy.RollingUpdate == nil {
		return 0
	}
	ru := d.Spec.Strategy.RollingUpdate
	surge, _, _ := resolveFenceposts(ru.MaxSurge, ru.MaxUnavailable, replicas(d))
	return surge
}

// maxUnavailable is how many of the desired pods a rolling update may
// leave unavailable, never more than the desired count.
func maxUnavailable(d *appsv1.Deployment) int32 {
	if !isRollingUpdate(d) || d.Spec.Strategy.RollingUpdate == nil || replicas(d) == 0 {
		return 0
	}
	ru := d.Spec.Strategy.RollingUpdate
	_, unavailable, _ := resolveFenceposts(ru.MaxSurge, ru.MaxUnavailable, replicas(d))
	return min(unavailable, replicas(d))
}

// newRSReplicas is the size the new ReplicaSet may grow to now: up to the
// surge limit for a rolling update, the full count for Recreate.
func newRSReplicas(d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) int32 {
	if !isRollingUpdate(d) {
		return replicas(d)
	}
	maxTotal := replicas(d) + maxSurge(d)
	current := specReplicas(all)
	if current >= maxTotal {
		return rsReplicas(newRS)
	}
	up := min(maxTotal-current, replicas(d)-rsReplicas(newRS))
	return rsReplicas(newRS) + up
}

func specReplicas(rss []*appsv1.ReplicaSet) int32 {
	var n int32
	for _, rs := range rss {
		n += rsReplicas(rs)
	}
	return n
}

func statusReplicas(rss []*appsv1.ReplicaSet) (total, ready, available int32) {
	for _, rs := range rss {
		if rs != nil {
			total += rs.Status.Replicas
			ready += rs.Status.ReadyReplicas
			available += rs.Status.AvailableReplicas
		}
	}
	return total, ready, available
}

// active returns the ReplicaSets that want pods.
func active(rss []*appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	var out []*appsv1.ReplicaSet
	for _, rs := range rss {
		if rsReplicas(rs) > 0 {
			out = append(out, rs)
		}
	}
	return out
}

// activeOrLatest is the one ReplicaSet to give all replicas to when no
// rollout is under way: the only active one, or the newest if none is
// active. It is nil when several are active.
func activeOrLatest(newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) *appsv1.ReplicaSet {
	if newRS == nil && len(old) == 0 {
		return nil
	}
	old = append([]*appsv1.ReplicaSet(nil), old...)
	sort.SliceStable(old, func(i, j int) bool { return olderThan(old[j], old[i]) })
	all := active(append(old, newRS))
	switch len(all) {
	case 0:
		if newRS != nil {
			return newRS
		}
		return old[0]
	case 1:
		return all[0]
	}
	return nil
}

// olderThan orders ReplicaSets by creation time, then name.
func olderThan(a, b *appsv1.ReplicaSet) bool {
	if a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.Name < b.Name
	}
	return a.CreationTimestamp.Before(&b.CreationTimestamp)
}

func sortByAge(rss []*appsv1.ReplicaSet) {
	sort.SliceStable(rss, func(i, j int) bool { return olderThan(rss[i], rss[j]) })
}

// sortByRevision orders ReplicaSets oldest revision first.
func sortByRevision(rss []*appsv1.ReplicaSet) {
	sort.SliceStable(rss, func(i, j int) bool {
		ri, rj := revision(rss[i]), revision(rss[j])
		if ri == rj {
			return olderThan(rss[i], rss[j])
		}
		return ri < rj
	})
}

func revision(obj metav1.Object) int64 {
	v, err := strconv.ParseInt(obj.GetAnnotations()[RevisionAnnotation], 10, 64)
	if err != nil {
		return 0
	}
	return v
}

func maxRevision(rss []*appsv1.ReplicaSet) int64 {
	var m int64
	for _, rs := range rss {
		m = max(m, revision(rs))
	}
	return m
}

func annotationInt(rs *appsv1.ReplicaSet, key string) (int32, bool) {
	v, ok := rs.Annotations[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(n), true
}

// isSaturated reports whether rs alone runs the whole deployment: it
// wants, was sized for, and has available every desired replica.
func isSaturated(d *appsv1.Deployment, rs *appsv1.ReplicaSet) bool {
	if rs == nil {
		return false
	}
	desired, ok := annotationInt(rs, DesiredReplicasAnnotation)
	return ok && rsReplicas(rs) == replicas(d) && desired == replicas(d) && rs.Status.AvailableReplicas == replicas(d)
}

// proportionalSizes spreads a change of the deployment's size over its
// active ReplicaSets in proportion to their share of the size they were
// made for (the max-replicas annotation), as upstream does while a
// rollout is under way. It returns the new size of each by name.
func proportionalSizes(d *appsv1.Deployment, rss []*appsv1.ReplicaSet) map[string]int32 {
	all := active(rss)
	allowed := int32(0)
	if replicas(d) > 0 {
		allowed = replicas(d) + maxSurge(d)
	}
	toAdd := allowed - specReplicas(all)
	all = append([]*appsv1.ReplicaSet(nil), all...)
	// Larger ReplicaSets first, so leftovers land on the largest; ties
	// go to the newest when growing and to the oldest when shrinking.
	sort.SliceStable(all, func(i, j int) bool {
		ri, rj := rsReplicas(all[i]), rsReplicas(all[j])
		if ri != rj {
			return ri > rj
		}
		if toAdd > 0 {
			return olderThan(all[j], all[i])
		}
		return olderThan(all[i], all[j])
	})
	sizes := make(map[string]int32, len(all))
	added := int32(0)
	for _, rs := range all {
		p := proportion(d, rs, toAdd, added)
		sizes[rs.Name] = rsReplicas(rs) + p
		added += p
	}
	if len(all) > 0 && toAdd != 0 {
		sizes[all[0].Name] = max(0, sizes[all[0].Name]+toAdd-added)
	}
	return sizes
}

// proportion is how many replicas rs gains (or loses, if negative) of a
// deployment-wide change of toAdd, of which added are already handed out.
func proportion(d *appsv1.Deployment, rs *appsv1.ReplicaSet, toAdd, added int32) int32 {
	if rsReplicas(rs) == 0 || toAdd == 0 || toAdd == added {
		return 0
	}
	left := toAdd - added
	fraction := fractionOf(d, rs)
	if toAdd > 0 {
		return min(fraction, left)
	}
	return max(fraction, left)
}

func fractionOf(d *appsv1.Deployment, rs *appsv1.ReplicaSet) int32 {
	if replicas(d) == 0 {
		return -rsReplicas(rs)
	}
	target := replicas(d) + maxSurge(d)
	annotated, ok := annotationInt(rs, MaxReplicasAnnotation)
	if !ok || annotated == 0 {
		// Without the annotation the current size is the best guess;
		// the min/max in proportion keep the result within bounds.
		annotated = d.Status.Replicas
	}
	if annotated == 0 {
		return 0
	}
	size := float64(rsReplicas(rs)) * float64(target) / float64(annotated)
	return int32(math.Round(size)) - rsReplicas(rs)
}

// setReplicasAnnotations records the deployment size rs was made for.
func setReplicasAnnotations(rs *appsv1.ReplicaSet, desired, maxReplicas int32) bool {
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	d, m := strconv.Itoa(int(desired)), strconv.Itoa(int(maxReplicas))
	if rs.Annotations[DesiredReplicasAnnotation] == d && rs.Annotations[MaxReplicasAnnotation] == m {
		return false
	}
	rs.Annotations[DesiredReplicasAnnotation] = d
	rs.Annotations[MaxReplicasAnnotation] = m
	return true
}

// skipCopy lists deployment annotations that belong to the deployment
// alone and are not copied to its ReplicaSets.
func skipCopy(key string) bool {
	switch key {
	case lastAppliedAnnotation, RevisionAnnotation, RevisionHistoryAnnotation,
		DesiredReplicasAnnotation, MaxReplicasAnnotation, rollbackToAnnotation:
		return true
	}
	return false
}

// setNewRSAnnotations copies the deployment's annotations (change-cause
// among them) to its new ReplicaSet and moves the ReplicaSet to revision
// newRevision. A ReplicaSet that had an older revision is being rolled
// back to: its old revisions are kept in revision-history. It reports
// whether rs changed.
func setNewRSAnnotations(d *appsv1.Deployment, rs *appsv1.ReplicaSet, newRevision string, exists bool) bool {
	changed := false
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	for k, v := range d.Annotations {
		if skipCopy(k) {
			continue
		}
		if cur, ok := rs.Annotations[k]; ok && cur == v {
			continue
		}
		rs.Annotations[k] = v
		changed = true
	}
	oldRevision, had := rs.Annotations[RevisionAnnotation]
	oldN, err := strconv.ParseInt(oldRevision, 10, 64)
	if err != nil && oldRevision != "" {
		return changed
	}
	newN, err := strconv.ParseInt(newRevision, 10, 64)
	if err != nil {
		return changed
	}
	if oldN < newN {
		rs.Annotations[RevisionAnnotation] = newRevision
		changed = true
		if had && oldRevision != "" {
			rs.Annotations[RevisionHistoryAnnotation] = appendHistory(rs.Annotations[RevisionHistoryAnnotation], oldRevision)
		}
	}
	if !exists && setReplicasAnnotations(rs, replicas(d), replicas(d)+maxSurge(d)) {
		changed = true
	}
	return changed
}

// appendHistory adds rev to a comma-separated revision history, dropping
// the oldest entries to stay under maxRevisionHistoryChars.
func appendHistory(history, rev string) string {
	if history == "" {
		return rev
	}
	parts := append(strings.Split(history, ","), rev)
	for len(parts) > 1 && len(strings.Join(parts, ",")) > maxRevisionHistoryChars {
		parts = parts[1:]
	}
	return strings.Join(parts, ",")
}

// Conditions.

func getCondition(s appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == t {
			return &s.Conditions[i]
		}
	}
	return nil
}

func newCondition(t appsv1.DeploymentConditionType, status corev1.ConditionStatus, reason, msg string, now metav1.Time) appsv1.DeploymentCondition {
	return appsv1.DeploymentCondition{Type: t, Status: status, Reason: reason, Message: msg, LastUpdateTime: now, LastTransitionTime: now}
}

// setCondition sets c unless a condition of its type with the same
// status and reason is there already; the transition time stays when
// only the reason changes.
func setCondition(s *appsv1.DeploymentStatus, c appsv1.DeploymentCondition) {
	cur := getCondition(*s, c.Type)
	if cur != nil && cur.Status == c.Status && cur.Reason == c.Reason {
		return
	}
	if cur != nil && cur.Status == c.Status {
		c.LastTransitionTime = cur.LastTransitionTime
	}
	removeCondition(s, c.Type)
	s.Conditions = append(s.Conditions, c)
}

func removeCondition(s *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) {
	var keep []appsv1.DeploymentCondition
	for _, c := range s.Conditions {
		if c.Type != t {
			keep = append(keep, c)
		}
	}
	s.Conditions = keep
}

func hasProgressDeadline(d *appsv1.Deployment) bool {
	return d.Spec.ProgressDeadlineSeconds != nil && *d.Spec.ProgressDeadlineSeconds != math.MaxInt32
}

// complete reports whether status shows the rollout of d's current
// generation finished: every replica updated and available.
func complete(d *appsv1.Deployment, s *appsv1.DeploymentStatus) bool {
	n := replicas(d)
	return s.UpdatedReplicas == n && s.Replicas == n && s.AvailableReplicas == n && s.ObservedGeneration >= d.Generation
}

// progressing reports whether status moved the rollout on since the
// deployment's last recorded status.
func progressing(d *appsv1.Deployment, s *appsv1.DeploymentStatus) bool {
	old := d.Status
	return s.UpdatedReplicas > old.UpdatedReplicas ||
		s.Replicas-s.UpdatedReplicas < old.Replicas-old.UpdatedReplicas ||
		s.ReadyReplicas > old.ReadyReplicas ||
		s.AvailableReplicas > old.AvailableReplicas
}
