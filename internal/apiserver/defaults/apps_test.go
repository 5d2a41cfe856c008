package defaults

import (
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestDeploymentDefaults(t *testing.T) {
	d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Image: "nginx"}}}}}}
	Apply(d)
	s := d.Spec
	want := appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
		MaxUnavailable: ptrTo(intstr.FromString("25%")), MaxSurge: ptrTo(intstr.FromString("25%"))}}
	if *s.Replicas != 1 || *s.RevisionHistoryLimit != 10 || *s.ProgressDeadlineSeconds != 600 || !reflect.DeepEqual(s.Strategy, want) {
		t.Errorf("got %+v", s)
	}
	if s.Template.Spec.RestartPolicy != corev1.RestartPolicyAlways || s.Template.Spec.Containers[0].ImagePullPolicy != corev1.PullAlways {
		t.Errorf("template not defaulted: %+v", s.Template.Spec)
	}

	recreate := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: ptrTo(int32(0)),
		Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}}}
	Apply(recreate)
	if recreate.Spec.Strategy.RollingUpdate != nil || *recreate.Spec.Replicas != 0 {
		t.Errorf("got %+v", recreate.Spec)
	}
}

func TestReplicaSetAndDaemonSetDefaults(t *testing.T) {
	rs := &appsv1.ReplicaSet{}
	Apply(rs)
	if *rs.Spec.Replicas != 1 {
		t.Errorf("replicas %d", *rs.Spec.Replicas)
	}
	ds := &appsv1.DaemonSet{}
	Apply(ds)
	want := appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType, RollingUpdate: &appsv1.RollingUpdateDaemonSet{
		MaxUnavailable: ptrTo(intstr.FromInt32(1)), MaxSurge: ptrTo(intstr.FromInt32(0))}}
	if !reflect.DeepEqual(ds.Spec.UpdateStrategy, want) || *ds.Spec.RevisionHistoryLimit != 10 {
		t.Errorf("got %+v", ds.Spec)
	}
}

func TestStatefulSetDefaults(t *testing.T) {
	ss := &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{}}}}
	Apply(ss)
	s := ss.Spec
	if s.PodManagementPolicy != appsv1.OrderedReadyPodManagement || *s.Replicas != 1 || *s.RevisionHistoryLimit != 10 {
		t.Errorf("got %+v", s)
	}
	if s.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType || *s.UpdateStrategy.RollingUpdate.Partition != 0 {
		t.Errorf("update strategy %+v", s.UpdateStrategy)
	}
	wantPolicy := appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenDeleted: "Retain", WhenScaled: "Retain"}
	if *s.PersistentVolumeClaimRetentionPolicy != wantPolicy {
		t.Errorf("retention %+v", s.PersistentVolumeClaimRetentionPolicy)
	}
	pvc := s.VolumeClaimTemplates[0]
	if *pvc.Spec.VolumeMode != corev1.PersistentVolumeFilesystem || pvc.Status.Phase != corev1.ClaimPending {
		t.Errorf("claim template %+v", pvc)
	}

	onDelete := &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}}}
	Apply(onDelete)
	if onDelete.Spec.UpdateStrategy.RollingUpdate != nil {
		t.Errorf("OnDelete got a rollingUpdate block")
	}
}
