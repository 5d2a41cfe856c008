package scheduler

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The volume filters through the whole scheduler: the listers it builds
// reach the plugins, and a PreFilter's verdict becomes upstream's
// FailedScheduling message.
func TestScheduleWithVolumes(t *testing.T) {
	withClaim := func(name string) func(*v1.Pod) {
		return func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{
				PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: name}}}}
		}
	}
	claim := func(name, volume string, class string) *v1.PersistentVolumeClaim {
		return &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: v1.PersistentVolumeClaimSpec{VolumeName: volume, StorageClassName: &class}}
	}
	onHost := func(name, host string) *v1.PersistentVolume {
		return &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1.PersistentVolumeSpec{NodeAffinity: &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
				MatchExpressions: []v1.NodeSelectorRequirement{{Key: v1.LabelHostname, Operator: v1.NodeSelectorOpIn, Values: []string{host}}}}}}}}}
	}
	wffc := storagev1.VolumeBindingWaitForFirstConsumer
	nodes := func() []*v1.Node {
		return []*v1.Node{
			node("a", "4", "8Gi", map[string]string{v1.LabelHostname: "a"}),
			node("b", "4", "8Gi", map[string]string{v1.LabelHostname: "b"}),
			node("c", "4", "8Gi", map[string]string{v1.LabelHostname: "c"}),
		}
	}
	tests := []struct {
		name string
		pod  *v1.Pod
		bind string // node; "" means unschedulable with msg
		msg  string
	}{
		{name: "goes where its volume is", pod: pod("p", "1", "", withClaim("on-b")), bind: "b"},
		{name: "missing claim", pod: pod("p", "1", "", withClaim("nope")),
			msg: `0/3 nodes are available: persistentvolumeclaim "nope" not found. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.`},
		{name: "unbound immediate claim", pod: pod("p", "1", "", withClaim("pending")),
			msg: "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."},
		{name: "volume on a node the pod may not use", pod: pod("p", "1", "", withClaim("on-b"), func(p *v1.Pod) {
			p.Spec.NodeSelector = map[string]string{v1.LabelHostname: "a"}
		}),
			msg: "0/3 nodes are available: 1 node(s) had volume node affinity conflict, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."},
		{name: "WaitForFirstConsumer claim schedules anywhere", pod: pod("p", "1", "", withClaim("later"), func(p *v1.Pod) {
			p.Spec.NodeSelector = map[string]string{v1.LabelHostname: "c"}
		}), bind: "c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nodes())
			h.add(onHost("pv-b", "b"), claim("on-b", "pv-b", ""), claim("pending", "", ""),
				&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "local"}, VolumeBindingMode: &wffc}, claim("later", "", "local"))
			h.schedule(tt.pod)
			if got := h.rec.binds[tt.pod.Name]; got != tt.bind {
				t.Fatalf("bound to %q, want %q (unschedulable: %q)", got, tt.bind, h.rec.unschedulable[tt.pod.Name])
			}
			if tt.bind == "" && h.rec.unschedulable[tt.pod.Name] != tt.msg {
				t.Fatalf("message:\n got %q\nwant %q", h.rec.unschedulable[tt.pod.Name], tt.msg)
			}
		})
	}
}

func TestVolumeSchedulingChanged(t *testing.T) {
	pvc := &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "c", ResourceVersion: "1"}}
	pv := &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "v", ResourceVersion: "1"}}
	claimWith := func(mut func(*v1.PersistentVolumeClaim)) *v1.PersistentVolumeClaim {
		c := pvc.DeepCopy()
		c.ResourceVersion = "2"
		mut(c)
		return c
	}
	volumeWith := func(mut func(*v1.PersistentVolume)) *v1.PersistentVolume {
		v := pv.DeepCopy()
		v.ResourceVersion = "2"
		mut(v)
		return v
	}
	tests := []struct {
		name     string
		old, obj any
		want     bool
	}{
		{"claim bound", pvc, claimWith(func(c *v1.PersistentVolumeClaim) { c.Spec.VolumeName = "v" }), true},
		{"claim phase", pvc, claimWith(func(c *v1.PersistentVolumeClaim) { c.Status.Phase = v1.ClaimBound }), true},
		{"claim class annotation", pvc, claimWith(func(c *v1.PersistentVolumeClaim) {
			c.Annotations = map[string]string{"volume.beta.kubernetes.io/storage-class": "x"}
		}), true},
		{"claim status capacity only", pvc, claimWith(func(c *v1.PersistentVolumeClaim) {
			c.Status.Capacity = v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}
		}), false},
		{"claim resourceVersion only", pvc, claimWith(func(*v1.PersistentVolumeClaim) {}), false},
		{"volume relabelled", pv, volumeWith(func(v *v1.PersistentVolume) { v.Labels = map[string]string{v1.LabelTopologyZone: "z"} }), true},
		{"volume affinity", pv, volumeWith(func(v *v1.PersistentVolume) { v.Spec.NodeAffinity = &v1.VolumeNodeAffinity{} }), true},
		{"volume status message only", pv, volumeWith(func(v *v1.PersistentVolume) { v.Status.Message = "x" }), false},
		{"storage class", &storagev1.StorageClass{}, &storagev1.StorageClass{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := volumeSchedulingChanged(tt.old, tt.obj); got != tt.want {
				t.Fatalf("volumeSchedulingChanged = %v, want %v", got, tt.want)
			}
		})
	}
}
