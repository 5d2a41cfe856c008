package daemonset

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func mkNode(name string, lbls map[string]string, taints ...corev1.Taint) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}, Spec: corev1.NodeSpec{Taints: taints}}
}

func mkDS(mutate func(*corev1.PodSpec)) *appsv1.DaemonSet {
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "ds", Namespace: "default", UID: "ds-uid"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "ds"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "ds"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}},
			},
		},
	}
	if mutate != nil {
		mutate(&ds.Spec.Template.Spec)
	}
	return ds
}

func required(terms ...corev1.NodeSelectorTerm) func(*corev1.PodSpec) {
	return func(s *corev1.PodSpec) {
		s.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms},
		}}
	}
}

func expr(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

func TestNodeShouldRunDaemonPod(t *testing.T) {
	zoneA := map[string]string{"zone": "a"}
	noSchedule := corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}
	noExecute := corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoExecute}
	tolerateDedicated := func(s *corev1.PodSpec) {
		s.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "db"}}
	}
	tests := []struct {
		name           string
		ds             *appsv1.DaemonSet
		node           *corev1.Node
		run, keepGoing bool
	}{
		{"plain", mkDS(nil), mkNode("n", nil), true, true},
		{"nodeSelector matches", mkDS(func(s *corev1.PodSpec) { s.NodeSelector = zoneA }), mkNode("n", zoneA), true, true},
		{"nodeSelector misses", mkDS(func(s *corev1.PodSpec) { s.NodeSelector = zoneA }), mkNode("n", map[string]string{"zone": "b"}), false, false},
		{"affinity In", mkDS(required(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{expr("zone", corev1.NodeSelectorOpIn, "a", "c")}})), mkNode("n", zoneA), true, true},
		{"affinity NotIn", mkDS(required(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{expr("zone", corev1.NodeSelectorOpNotIn, "a")}})), mkNode("n", zoneA), false, false},
		{"affinity second term", mkDS(required(
			corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{expr("zone", corev1.NodeSelectorOpIn, "x")}},
			corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{expr("zone", corev1.NodeSelectorOpExists)}})), mkNode("n", zoneA), true, true},
		{"affinity empty term matches nothing", mkDS(required(corev1.NodeSelectorTerm{})), mkNode("n", zoneA), false, false},
		{"affinity bad operator", mkDS(required(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{expr("zone", "Near", "a")}})), mkNode("n", zoneA), false, false},
		{"matchFields name", mkDS(required(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{expr("metadata.name", corev1.NodeSelectorOpIn, "n")}})), mkNode("n", nil), true, true},
		{"matchFields other name", mkDS(required(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{expr("metadata.name", corev1.NodeSelectorOpIn, "m")}})), mkNode("n", nil), false, false},
		{"template nodeName elsewhere", mkDS(func(s *corev1.PodSpec) { s.NodeName = "m" }), mkNode("n", nil), false, false},
		{"NoSchedule untolerated keeps running pods", mkDS(nil), mkNode("n", nil, noSchedule), false, true},
		{"NoExecute untolerated evicts", mkDS(nil), mkNode("n", nil, noExecute), false, false},
		{"both untolerated", mkDS(nil), mkNode("n", nil, noSchedule, noExecute), false, false},
		{"tolerated", mkDS(tolerateDedicated), mkNode("n", nil, noSchedule, noExecute), true, true},
		{"toleration for another value", mkDS(func(s *corev1.PodSpec) {
			s.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "web"}}
		}), mkNode("n", nil, noSchedule), false, true},
		{"PreferNoSchedule ignored", mkDS(nil), mkNode("n", nil, corev1.Taint{Key: "x", Effect: corev1.TaintEffectPreferNoSchedule}), true, true},
		{"auto: not-ready NoExecute", mkDS(nil), mkNode("n", nil, corev1.Taint{Key: taintNotReady, Effect: corev1.TaintEffectNoExecute}), true, true},
		{"auto: unreachable NoExecute", mkDS(nil), mkNode("n", nil, corev1.Taint{Key: taintUnreachable, Effect: corev1.TaintEffectNoExecute}), true, true},
		{"auto: cordoned", mkDS(nil), mkNode("n", nil, corev1.Taint{Key: taintUnschedulable, Effect: corev1.TaintEffectNoSchedule}), true, true},
		{"auto: disk pressure", mkDS(nil), mkNode("n", nil, corev1.Taint{Key: taintDiskPressure, Effect: corev1.TaintEffectNoSchedule}), true, true},
		{"auto: memory pressure", mkDS(nil), mkNode("n", nil, corev1.Taint{Key: taintMemoryPressure, Effect: corev1.TaintEffectNoSchedule}), true, true},
		{"auto: pid pressure", mkDS(nil), mkNode("n", nil, corev1.Taint{Key: taintPIDPressure, Effect: corev1.TaintEffectNoSchedule}), true, true},
		{"no auto toleration for NoSchedule not-ready", mkDS(nil), mkNode("n", nil, corev1.Taint{Key: taintNotReady, Effect: corev1.TaintEffectNoSchedule}), false, true},
		{"network-unavailable, pod network", mkDS(nil), mkNode("n", nil, corev1.Taint{Key: taintNetworkUnavailable, Effect: corev1.TaintEffectNoSchedule}), false, true},
		{"network-unavailable, host network", mkDS(func(s *corev1.PodSpec) { s.HostNetwork = true }), mkNode("n", nil, corev1.Taint{Key: taintNetworkUnavailable, Effect: corev1.TaintEffectNoSchedule}), true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run, keep := NodeShouldRunDaemonPod(tt.node, tt.ds)
			if run != tt.run || keep != tt.keepGoing {
				t.Errorf("NodeShouldRunDaemonPod = (%v, %v), want (%v, %v)", run, keep, tt.run, tt.keepGoing)
			}
		})
	}
}

func TestAddDaemonTolerations(t *testing.T) {
	spec := &corev1.PodSpec{Tolerations: []corev1.Toleration{
		{Key: taintNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To(int64(300))},
		{Key: "mine", Operator: corev1.TolerationOpExists},
	}}
	addDaemonTolerations(spec)
	addDaemonTolerations(spec) // idempotent
	if len(spec.Tolerations) != 7 {
		t.Fatalf("got %d tolerations, want 7 (6 automatic + mine): %+v", len(spec.Tolerations), spec.Tolerations)
	}
	if spec.Tolerations[0].TolerationSeconds != nil {
		t.Error("the not-ready toleration must lose its tolerationSeconds")
	}
	for _, tol := range spec.Tolerations {
		if tol.Key == taintNetworkUnavailable {
			t.Error("network-unavailable is only for hostNetwork pods")
		}
	}
	host := &corev1.PodSpec{HostNetwork: true}
	addDaemonTolerations(host)
	if len(host.Tolerations) != 7 || host.Tolerations[6].Key != taintNetworkUnavailable {
		t.Errorf("hostNetwork tolerations = %+v", host.Tolerations)
	}
}

func TestPinToNode(t *testing.T) {
	preferred := []corev1.PreferredSchedulingTerm{{Weight: 5, Preference: corev1.NodeSelectorTerm{
		MatchExpressions: []corev1.NodeSelectorRequirement{expr("ssd", corev1.NodeSelectorOpExists)}}}}
	tests := []struct {
		name string
		in   *corev1.Affinity
	}{
		{"nil", nil},
		{"no node affinity", &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{}}},
		{"existing terms replaced", &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
				{MatchFields: []corev1.NodeSelectorRequirement{expr("metadata.name", corev1.NodeSelectorOpIn, "old")}},
				{MatchExpressions: []corev1.NodeSelectorRequirement{expr("zone", corev1.NodeSelectorOpIn, "a")}},
			}},
			PreferredDuringSchedulingIgnoredDuringExecution: preferred,
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hadPreferred := tt.in != nil && tt.in.NodeAffinity != nil && len(tt.in.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution) > 0
			a := pinToNode(tt.in, "n1")
			terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
			if len(terms) != 1 || len(terms[0].MatchExpressions) != 0 || len(terms[0].MatchFields) != 1 {
				t.Fatalf("terms = %+v, want one matchFields term", terms)
			}
			f := terms[0].MatchFields[0]
			if f.Key != "metadata.name" || f.Operator != corev1.NodeSelectorOpIn || len(f.Values) != 1 || f.Values[0] != "n1" {
				t.Errorf("matchFields = %+v", f)
			}
			pod := &corev1.Pod{Spec: corev1.PodSpec{Affinity: a}}
			if node, ok := targetNode(pod); !ok || node != "n1" {
				t.Errorf("targetNode = %q, %v", node, ok)
			}
			if hadPreferred && len(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 {
				t.Error("preferred terms must be kept")
			}
			if tt.in != nil && tt.in.PodAntiAffinity != nil && a.PodAntiAffinity == nil {
				t.Error("pod anti-affinity must be kept")
			}
		})
	}
	bound := &corev1.Pod{Spec: corev1.PodSpec{NodeName: "n2", Affinity: pinToNode(nil, "n1")}}
	if node, _ := targetNode(bound); node != "n2" {
		t.Errorf("a bound pod belongs to its node, got %q", node)
	}
	if _, ok := targetNode(&corev1.Pod{}); ok {
		t.Error("an unpinned, unbound pod has no node")
	}
}
