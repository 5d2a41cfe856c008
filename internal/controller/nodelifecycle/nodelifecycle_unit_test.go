package nodelifecycle

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestEvictionTime(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	added := metav1.NewTime(now.Add(-100 * time.Second))
	unreachable := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &added}
	noSchedule := corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}
	tol := func(key string, secs *int64) corev1.Toleration {
		return corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs}
	}
	tests := []struct {
		name        string
		tolerations []corev1.Toleration
		taints      []corev1.Taint
		wantEvict   bool
		wantAt      time.Time
	}{
		{"no taints", nil, nil, false, time.Time{}},
		{"NoSchedule taints never evict", nil, []corev1.Taint{noSchedule}, false, time.Time{}},
		{"untolerated NoExecute: now", nil, []corev1.Taint{unreachable}, true, now},
		{"tolerated for 300s from timeAdded", []corev1.Toleration{tol(corev1.TaintNodeUnreachable, ptr.To[int64](300))}, []corev1.Taint{unreachable}, true, now.Add(200 * time.Second)},
		{"tolerated forever", []corev1.Toleration{tol(corev1.TaintNodeUnreachable, nil)}, []corev1.Taint{unreachable}, false, time.Time{}},
		{"the shortest matching toleration wins", []corev1.Toleration{tol(corev1.TaintNodeUnreachable, ptr.To[int64](300)), tol("", ptr.To[int64](150))}, []corev1.Taint{unreachable}, true, now.Add(50 * time.Second)},
		{"negative seconds: at once", []corev1.Toleration{tol(corev1.TaintNodeUnreachable, ptr.To[int64](-5))}, []corev1.Taint{unreachable}, true, added.Time},
		{"one untolerated taint of two", []corev1.Toleration{tol(corev1.TaintNodeUnreachable, nil)}, []corev1.Taint{unreachable, {Key: "x", Effect: corev1.TaintEffectNoExecute}}, true, now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{Tolerations: tt.tolerations}}
			at, evict := evictionTime(pod, tt.taints, now)
			if evict != tt.wantEvict || (evict && !at.Equal(tt.wantAt)) {
				t.Errorf("evictionTime = %v, %v; want %v, %v", at, evict, tt.wantAt, tt.wantEvict)
			}
		})
	}
}

func TestWantedTaints(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	node := func(status corev1.ConditionStatus, taints ...corev1.Taint) *corev1.Node {
		n := &corev1.Node{Spec: corev1.NodeSpec{Taints: taints}}
		if status != "" {
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status}}
		}
		return n
	}
	user := corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}
	keys := func(ts []corev1.Taint) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.Key+":"+string(t.Effect))
		}
		return out
	}
	tests := []struct {
		name string
		node *corev1.Node
		want []string
	}{
		{"ready: none", node(corev1.ConditionTrue), nil},
		{"ready keeps the user's taints", node(corev1.ConditionTrue, user), []string{"dedicated:NoSchedule"}},
		{"not ready", node(corev1.ConditionFalse, user), []string{"dedicated:NoSchedule", "node.kubernetes.io/not-ready:NoSchedule", "node.kubernetes.io/not-ready:NoExecute"}},
		{"unknown", node(corev1.ConditionUnknown), []string{"node.kubernetes.io/unreachable:NoSchedule", "node.kubernetes.io/unreachable:NoExecute"}},
		{"unknown replaces not-ready", node(corev1.ConditionUnknown, corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute}),
			[]string{"node.kubernetes.io/unreachable:NoSchedule", "node.kubernetes.io/unreachable:NoExecute"}},
		{"ready again removes them", node(corev1.ConditionTrue, corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := keys(wantedTaints(tt.node, now))
			if len(got) != len(tt.want) {
				t.Fatalf("taints %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("taints %v, want %v", got, tt.want)
				}
			}
		})
	}
	// A taint that stays keeps the time it was added.
	old := metav1.NewTime(now.Add(-time.Hour))
	kept := wantedTaints(node(corev1.ConditionUnknown, corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &old}), now)
	for _, tn := range kept {
		if tn.Effect == corev1.TaintEffectNoExecute && !tn.TimeAdded.Equal(&old) {
			t.Errorf("timeAdded %v, want the original %v", tn.TimeAdded, old)
		}
	}
}
