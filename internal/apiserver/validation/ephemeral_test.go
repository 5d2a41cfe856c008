package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// debugger is an ephemeral container as kubectl debug sends it.
func debugger(name string) corev1.EphemeralContainer {
	return corev1.EphemeralContainer{
		EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Name: name, Image: "busybox:1.36", Stdin: true, TTY: true,
			ImagePullPolicy: corev1.PullIfNotPresent, TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			TerminationMessagePath: corev1.TerminationMessagePathDefault,
		},
		TargetContainerName: "app",
	}
}

func TestEphemeralContainersUpdate(t *testing.T) {
	tests := []struct {
		name string
		// had is set on the stored pod first.
		had    []corev1.EphemeralContainer
		mutate func(p *corev1.Pod)
		want   []want
	}{
		{"add one", nil, func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, debugger("debugger"))
		}, nil},
		{"add a second", []corev1.EphemeralContainer{debugger("one")}, func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, debugger("two"))
		}, nil},
		{"reordered by a patch", []corev1.EphemeralContainer{debugger("one"), debugger("two")}, func(p *corev1.Pod) {
			ecs := p.Spec.EphemeralContainers
			ecs[0], ecs[1] = ecs[1], ecs[0]
		}, nil},
		{"no target", nil, func(p *corev1.Pod) {
			ec := debugger("debugger")
			ec.TargetContainerName = ""
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, ec)
		}, nil},
		{"remove", []corev1.EphemeralContainer{debugger("debugger")}, func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = nil
		}, []want{forbidden("spec.ephemeralContainers")}},
		{"change", []corev1.EphemeralContainer{debugger("debugger")}, func(p *corev1.Pod) {
			p.Spec.EphemeralContainers[0].Image = "busybox:1.37"
		}, []want{forbidden("spec.ephemeralContainers[debugger]")}},
		{"same name as an app container", nil, func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, debugger("app"))
		}, []want{duplicate("spec.ephemeralContainers[0].name")}},
		{"same name as another ephemeral container", []corev1.EphemeralContainer{debugger("debugger")}, func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, debugger("debugger"))
		}, []want{duplicate("spec.ephemeralContainers[1].name")}},
		{"no image", nil, func(p *corev1.Pod) {
			ec := debugger("debugger")
			ec.Image = ""
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, ec)
		}, []want{required("spec.ephemeralContainers[0].image")}},
		{"unknown target", nil, func(p *corev1.Pod) {
			ec := debugger("debugger")
			ec.TargetContainerName = "nope"
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, ec)
		}, []want{notFound("spec.ephemeralContainers[0].targetContainerName")}},
		{"another ephemeral container as target", []corev1.EphemeralContainer{debugger("one")}, func(p *corev1.Pod) {
			ec := debugger("two")
			ec.TargetContainerName = "one"
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, ec)
		}, []want{notFound("spec.ephemeralContainers[1].targetContainerName")}},
		{"workload fields", nil, func(p *corev1.Pod) {
			ec := debugger("debugger")
			ec.Ports = []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}}
			ec.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}},
				TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3}
			ec.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
			ec.Resources.Limits = corev1.ResourceList{"cpu": q("1")}
			always := corev1.ContainerRestartPolicyAlways
			ec.RestartPolicy = &always
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, ec)
		}, []want{
			forbidden("spec.ephemeralContainers[0].ports"), forbidden("spec.ephemeralContainers[0].readinessProbe"),
			forbidden("spec.ephemeralContainers[0].lifecycle"), forbidden("spec.ephemeralContainers[0].resources"),
			forbidden("spec.ephemeralContainers[0].restartPolicy"),
		}},
		{"sub-path mount", nil, func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
			ec := debugger("debugger")
			ec.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data", SubPath: "x"}}
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, ec)
		}, []want{forbidden("spec.ephemeralContainers[0].volumeMounts[0].subPath")}},
		{"static pod", nil, func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, debugger("debugger"))
		}, []want{forbidden("[]")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := validPod()
			old.Spec.EphemeralContainers = tt.had
			if tt.name == "static pod" {
				old.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"}
			}
			p := old.DeepCopy()
			tt.mutate(p)
			checkErrors(t, ValidateEphemeralContainersUpdate(p, old), tt.want...)
		})
	}
}

// TestEphemeralContainersMessages checks the wording kubectl shows.
func TestEphemeralContainersMessages(t *testing.T) {
	old := validPod()
	old.Spec.EphemeralContainers = []corev1.EphemeralContainer{debugger("debugger")}
	p := old.DeepCopy()
	p.Spec.EphemeralContainers = nil
	containsText(t, ValidateEphemeralContainersUpdate(p, old), `spec.ephemeralContainers: Forbidden: existing ephemeral containers "debugger" may not be removed`)
	p = old.DeepCopy()
	p.Spec.EphemeralContainers[0].Image = "other"
	containsText(t, ValidateEphemeralContainersUpdate(p, old), `spec.ephemeralContainers[debugger]: Forbidden: existing ephemeral containers "debugger" may not be changed`)
}

// TestEphemeralContainersElsewhere checks that ephemeral containers come
// only through the subresource: not in a new pod, not by updating a pod,
// never in a template.
func TestEphemeralContainersElsewhere(t *testing.T) {
	p := validPod()
	p.ResourceVersion = ""
	p.Spec.EphemeralContainers = []corev1.EphemeralContainer{debugger("debugger")}
	checkErrors(t, ValidateCreate(p), forbidden("spec.ephemeralContainers"))

	old := validPod()
	p = old.DeepCopy()
	p.Spec.EphemeralContainers = []corev1.EphemeralContainer{debugger("debugger")}
	checkErrors(t, ValidateUpdate(p, old), forbidden("spec"))

	// Nor may an update through the main resource remove one.
	checkErrors(t, ValidateUpdate(old, p), forbidden("spec"))

	tmpl := &corev1.PodTemplate{ObjectMeta: meta("t"), Template: podTemplate(nil)}
	tmpl.Template.Spec.EphemeralContainers = []corev1.EphemeralContainer{debugger("debugger")}
	tmpl = defaulted(tmpl)
	checkErrors(t, ValidateCreate(tmpl), forbidden("template.spec.ephemeralContainers"))
}
