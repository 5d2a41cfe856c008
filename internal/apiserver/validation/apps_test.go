package validation

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var webLabels = map[string]string{"app": "web"}

func validDeployment() *appsv1.Deployment {
	return defaulted(&appsv1.Deployment{ObjectMeta: meta("web"), Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: webLabels},
		Template: podTemplate(webLabels),
	}})
}

func TestDeployment(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(d *appsv1.Deployment)
		want   []want
	}{
		{"valid", func(d *appsv1.Deployment) {}, nil},
		{"negative replicas", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr(int32(-1)) }, []want{invalid("spec.replicas")}},
		{"no selector", func(d *appsv1.Deployment) { d.Spec.Selector = nil },
			[]want{required("spec.selector"), invalid("spec.template.metadata.labels")}},
		{"empty selector", func(d *appsv1.Deployment) { d.Spec.Selector = &metav1.LabelSelector{} }, []want{invalid("spec.selector")}},
		{"selector mismatch", func(d *appsv1.Deployment) { d.Spec.Template.Labels = map[string]string{"app": "x"} },
			[]want{invalid("spec.template.metadata.labels")}},
		{"bad selector operator", func(d *appsv1.Deployment) {
			d.Spec.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Like"}}
		}, []want{invalid("spec.selector.matchExpressions[0].operator")}},
		{"restart policy Never", func(d *appsv1.Deployment) { d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever },
			[]want{notSupported("spec.template.spec.restartPolicy")}},
		{"activeDeadlineSeconds", func(d *appsv1.Deployment) { d.Spec.Template.Spec.ActiveDeadlineSeconds = ptr(int64(10)) },
			[]want{forbidden("spec.template.spec.activeDeadlineSeconds")}},
		{"container without image", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "" },
			[]want{required("spec.template.spec.containers[0].image")}},
		{"recreate with rollingUpdate", func(d *appsv1.Deployment) { d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType },
			[]want{forbidden("spec.strategy.rollingUpdate")}},
		{"bad strategy", func(d *appsv1.Deployment) { d.Spec.Strategy.Type = "BlueGreen" }, []want{notSupported("spec.strategy.type")}},
		{"both zero", func(d *appsv1.Deployment) {
			zero := intstr.FromInt32(0)
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: &zero, MaxUnavailable: &zero}
		}, []want{invalid("spec.strategy.rollingUpdate.maxUnavailable")}},
		{"maxUnavailable over 100%", func(d *appsv1.Deployment) {
			v := intstr.FromString("150%")
			d.Spec.Strategy.RollingUpdate.MaxUnavailable = &v
		}, []want{invalid("spec.strategy.rollingUpdate.maxUnavailable")}},
		{"maxSurge not a percent", func(d *appsv1.Deployment) {
			v := intstr.FromString("lots")
			d.Spec.Strategy.RollingUpdate.MaxSurge = &v
		}, []want{invalid("spec.strategy.rollingUpdate.maxSurge")}},
		{"progress deadline below minReady", func(d *appsv1.Deployment) { d.Spec.MinReadySeconds = 600 },
			[]want{invalid("spec.progressDeadlineSeconds")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := validDeployment()
			tt.mutate(d)
			checkErrors(t, ValidateCreate(d), tt.want...)
		})
	}

	d := validDeployment()
	d.Spec.Template.Labels = map[string]string{"app": "x"}
	// apimachinery v0.37 renders map values as JSON; the text after it is upstream's.
	containsText(t, ValidateCreate(d), "spec.template.metadata.labels: Invalid value: {\"app\":\"x\"}: `selector` does not match template `labels`")
	d = validDeployment()
	d.Spec.Replicas = ptr(int32(-1))
	containsText(t, ValidateCreate(d), "spec.replicas: Invalid value: -1: must be greater than or equal to 0")
}

func TestAppsUpdates(t *testing.T) {
	otherSelector := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "tier": "x"}}
	otherLabels := map[string]string{"app": "web", "tier": "x"}
	tests := []struct {
		name string
		old  runtime.Object
		new  func(old runtime.Object) runtime.Object
		want []want
	}{
		{"deployment scale", validDeployment(), func(o runtime.Object) runtime.Object {
			d := o.DeepCopyObject().(*appsv1.Deployment)
			d.Spec.Replicas = ptr(int32(5))
			return d
		}, nil},
		{"deployment selector", validDeployment(), func(o runtime.Object) runtime.Object {
			d := o.DeepCopyObject().(*appsv1.Deployment)
			d.Spec.Selector, d.Spec.Template.Labels = otherSelector, otherLabels
			return d
		}, []want{invalid("spec.selector")}},
		{"replicaset selector", validReplicaSet(), func(o runtime.Object) runtime.Object {
			rs := o.DeepCopyObject().(*appsv1.ReplicaSet)
			rs.Spec.Selector, rs.Spec.Template.Labels = otherSelector, otherLabels
			return rs
		}, []want{invalid("spec.selector")}},
		{"daemonset selector", validDaemonSet(), func(o runtime.Object) runtime.Object {
			ds := o.DeepCopyObject().(*appsv1.DaemonSet)
			ds.Spec.Selector, ds.Spec.Template.Labels = otherSelector, otherLabels
			return ds
		}, []want{invalid("spec.selector")}},
		{"statefulset template and replicas", validStatefulSet(), func(o runtime.Object) runtime.Object {
			ss := o.DeepCopyObject().(*appsv1.StatefulSet)
			ss.Spec.Replicas = ptr(int32(3))
			ss.Spec.Template.Spec.Containers[0].Image = "nginx:2"
			return ss
		}, nil},
		{"statefulset serviceName", validStatefulSet(), func(o runtime.Object) runtime.Object {
			ss := o.DeepCopyObject().(*appsv1.StatefulSet)
			ss.Spec.ServiceName = "other"
			return ss
		}, []want{forbidden("spec")}},
		{"controllerrevision data", &appsv1.ControllerRevision{ObjectMeta: meta("r"), Revision: 1}, func(o runtime.Object) runtime.Object {
			r := o.DeepCopyObject().(*appsv1.ControllerRevision)
			r.Data.Raw = []byte(`{}`)
			return r
		}, []want{invalid("data")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErrors(t, ValidateUpdate(tt.new(tt.old), tt.old), tt.want...)
		})
	}
}

func validReplicaSet() *appsv1.ReplicaSet {
	return defaulted(&appsv1.ReplicaSet{ObjectMeta: meta("web-1"), Spec: appsv1.ReplicaSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: webLabels}, Template: podTemplate(webLabels)}})
}

func validDaemonSet() *appsv1.DaemonSet {
	return defaulted(&appsv1.DaemonSet{ObjectMeta: meta("agent"), Spec: appsv1.DaemonSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: webLabels}, Template: podTemplate(webLabels)}})
}

func validStatefulSet() *appsv1.StatefulSet {
	return defaulted(&appsv1.StatefulSet{ObjectMeta: meta("db"), Spec: appsv1.StatefulSetSpec{
		ServiceName: "db",
		Selector:    &metav1.LabelSelector{MatchLabels: webLabels}, Template: podTemplate(webLabels),
		VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}, Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{"storage": q("1Gi")}},
		}}},
	}})
}

func TestReplicaSetDaemonSetStatefulSet(t *testing.T) {
	rs := validReplicaSet()
	checkErrors(t, ValidateCreate(rs))
	rs.Spec.Selector = &metav1.LabelSelector{}
	checkErrors(t, ValidateCreate(rs), invalid("spec.selector"))

	ds := validDaemonSet()
	checkErrors(t, ValidateCreate(ds))
	surge := intstr.FromInt32(1)
	ds.Spec.UpdateStrategy.RollingUpdate.MaxSurge = &surge
	checkErrors(t, ValidateCreate(ds), invalid("spec.updateStrategy.rollingUpdate.maxSurge"))
	ds = validDaemonSet()
	zero := intstr.FromInt32(0)
	ds.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = &zero
	checkErrors(t, ValidateCreate(ds), required("spec.updateStrategy.rollingUpdate.maxUnavailable"))
	ds = validDaemonSet()
	ds.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	checkErrors(t, ValidateCreate(ds), notSupported("spec.template.spec.restartPolicy"))

	ss := validStatefulSet()
	checkErrors(t, ValidateCreate(ss))
	// Containers mount claim templates by name; other names stay unknown.
	ss.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	checkErrors(t, ValidateCreate(ss))
	ss.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "nope", MountPath: "/data"}}
	checkErrors(t, ValidateCreate(ss), notFound("spec.template.spec.containers[0].volumeMounts[0].name"))
	ss = validStatefulSet()
	ss.Spec.PodManagementPolicy = "Random"
	ss.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests = nil
	checkErrors(t, ValidateCreate(ss), notSupported("spec.podManagementPolicy"), required("spec.volumeClaimTemplates[0].spec.resources[storage]"))
	ss = validStatefulSet()
	ss.Spec.UpdateStrategy.RollingUpdate.Partition = ptr(int32(-1))
	checkErrors(t, ValidateCreate(ss), invalid("spec.updateStrategy.rollingUpdate.partition"))
}
