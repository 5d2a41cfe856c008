package validation

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func validPod() *corev1.Pod {
	return defaulted(&corev1.Pod{ObjectMeta: meta("web"), Spec: podSpec()})
}

func TestPodCreate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(p *corev1.Pod)
		want   []want
	}{
		{"valid", func(p *corev1.Pod) {}, nil},
		{"no name", func(p *corev1.Pod) { p.Name = "" }, []want{required("metadata.name")}},
		{"bad name", func(p *corev1.Pod) { p.Name = "Web_1" }, []want{invalid("metadata.name")}},
		{"no namespace", func(p *corev1.Pod) { p.Namespace = "" }, []want{required("metadata.namespace")}},
		{"bad label", func(p *corev1.Pod) { p.Labels = map[string]string{"a": "b c"} }, []want{invalid("metadata.labels")}},
		{"bad annotation key", func(p *corev1.Pod) { p.Annotations = map[string]string{"a b": ""} }, []want{invalid("metadata.annotations")}},
		{"annotations too big", func(p *corev1.Pod) {
			p.Annotations = map[string]string{"big": strings.Repeat("x", 256*1024)}
		}, []want{{field.ErrorTypeTooLong, "metadata.annotations"}}},
		{"no containers", func(p *corev1.Pod) { p.Spec.Containers = nil }, []want{required("spec.containers")}},
		{"no image", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" }, []want{required("spec.containers[0].image")}},
		{"image with spaces", func(p *corev1.Pod) { p.Spec.Containers[0].Image = " nginx" }, []want{invalid("spec.containers[0].image")}},
		{"bad container name", func(p *corev1.Pod) { p.Spec.Containers[0].Name = "App" }, []want{invalid("spec.containers[0].name")}},
		{"no container name", func(p *corev1.Pod) { p.Spec.Containers[0].Name = "" }, []want{required("spec.containers[0].name")}},
		{"duplicate container name", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{p.Spec.Containers[0]}
		}, []want{duplicate("spec.containers[0].name")}},
		{"container port out of range", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 70000, Protocol: corev1.ProtocolTCP}}
		}, []want{invalid("spec.containers[0].ports[0].containerPort")}},
		{"bad protocol", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, Protocol: "HTTP"}}
		}, []want{notSupported("spec.containers[0].ports[0].protocol")}},
		{"duplicate port names", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 80, Protocol: "TCP"}, {Name: "http", ContainerPort: 81, Protocol: "TCP"}}
		}, []want{duplicate("spec.containers[0].ports[1].name")}},
		{"port name too long", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "a-very-long-port-name", ContainerPort: 80, Protocol: "TCP"}}
		}, []want{invalid("spec.containers[0].ports[0].name")}},
		{"request above limit", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Limits: corev1.ResourceList{"cpu": q("1")}, Requests: corev1.ResourceList{"cpu": q("2")}}
		}, []want{invalid("spec.containers[0].resources.requests")}},
		{"negative request", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{"memory": q("-1")}
		}, []want{invalid("spec.containers[0].resources.requests[memory]")}},
		{"unknown resource", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{"gpu": q("1")}
		}, []want{invalid("spec.containers[0].resources.requests[gpu]")}},
		{"extended resource request without limit", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{"example.com/gpu": q("1")}
		}, []want{required("spec.containers[0].resources.limits")}},
		{"bad restart policy", func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes" }, []want{notSupported("spec.restartPolicy")}},
		{"bad dns policy", func(p *corev1.Pod) { p.Spec.DNSPolicy = "Google" }, []want{notSupported("spec.dnsPolicy")}},
		{"dns none without config", func(p *corev1.Pod) { p.Spec.DNSPolicy = corev1.DNSNone }, []want{required("spec.dnsConfig")}},
		{"bad pull policy", func(p *corev1.Pod) { p.Spec.Containers[0].ImagePullPolicy = "Sometimes" }, []want{notSupported("spec.containers[0].imagePullPolicy")}},
		{"env without name", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Value: "x"}}
		}, []want{required("spec.containers[0].env[0].name")}},
		{"env value and valueFrom", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", Value: "x", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}}}
		}, []want{invalid("spec.containers[0].env[0].valueFrom")}},
		{"mount of unknown volume", func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		}, []want{notFound("spec.containers[0].volumeMounts[0].name")}},
		{"volume without source", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data"}}
		}, []want{required("spec.volumes[0]")}},
		{"volume with two sources", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				EmptyDir: &corev1.EmptyDirVolumeSource{}, HostPath: &corev1.HostPathVolumeSource{Path: "/x"}}}}
		}, []want{forbidden("spec.volumes[0].emptyDir")}},
		{"duplicate volumes", func(p *corev1.Pod) {
			v := corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
			p.Spec.Volumes = []corev1.Volume{v, v}
		}, []want{duplicate("spec.volumes[1].name")}},
		{"configmap volume bad mode", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{
				ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}, DefaultMode: ptr(int32(01000))}}}}
		}, []want{invalid("spec.volumes[0].configMap.defaultMode")}},
		{"secret volume without name", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{}}}}
		}, []want{required("spec.volumes[0].secret.secretName")}},
		{"probe without handler", func(p *corev1.Pod) {
			p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{PeriodSeconds: 10, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3}
		}, []want{required("spec.containers[0].readinessProbe")}},
		{"liveness success threshold", func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}},
				PeriodSeconds: 10, TimeoutSeconds: 1, SuccessThreshold: 2, FailureThreshold: 3}
		}, []want{invalid("spec.containers[0].livenessProbe.successThreshold")}},
		{"toleration exists with value", func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists, Value: "v"}}
		}, []want{invalid("spec.tolerations[0].operator")}},
		{"activeDeadlineSeconds zero", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr(int64(0)) }, []want{invalid("spec.activeDeadlineSeconds")}},
		{"hostNetwork port mismatch", func(p *corev1.Pod) {
			p.Spec.HostNetwork = true
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8080, Protocol: "TCP"}}
		}, []want{invalid("spec.containers[0].ports[0].containerPort")}},
		{"runAsUser negative", func(p *corev1.Pod) { p.Spec.SecurityContext.RunAsUser = ptr(int64(-1)) }, []want{invalid("spec.securityContext.runAsUser")}},
		{"restartPolicy on regular container", func(p *corev1.Pod) {
			p.Spec.Containers[0].RestartPolicy = ptr(corev1.ContainerRestartPolicyAlways)
		}, []want{forbidden("spec.containers[0].restartPolicy")}},
		{"sidecar init container", func(p *corev1.Pod) {
			c := p.Spec.Containers[0]
			c.Name, c.RestartPolicy = "sidecar", ptr(corev1.ContainerRestartPolicyAlways)
			p.Spec.InitContainers = []corev1.Container{c}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validPod()
			tt.mutate(p)
			checkErrors(t, ValidateCreate(p), tt.want...)
		})
	}
}

func TestPodMessages(t *testing.T) {
	p := validPod()
	p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Limits: corev1.ResourceList{"cpu": q("1")}, Requests: corev1.ResourceList{"cpu": q("2")}}
	containsText(t, ValidateCreate(p), `spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1`)
}

func TestPodUpdate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(p *corev1.Pod)
		want   []want
	}{
		{"unchanged", func(p *corev1.Pod) {}, nil},
		{"image", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:1.28" }, nil},
		{"labels", func(p *corev1.Pod) { p.Labels = map[string]string{"a": "b"} }, nil},
		{"add toleration", func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "k", Operator: "Exists"})
		}, nil},
		{"remove toleration", func(p *corev1.Pod) { p.Spec.Tolerations = nil }, []want{forbidden("spec.tolerations")}},
		{"set activeDeadlineSeconds", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr(int64(30)) }, nil},
		{"raise activeDeadlineSeconds", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr(int64(100)) }, []want{invalid("spec.activeDeadlineSeconds")}},
		{"change env", func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", Value: "b"}} }, []want{forbidden("spec")}},
		{"add container", func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "b", Image: "x", ImagePullPolicy: "Always", TerminationMessagePolicy: "File"})
		}, []want{forbidden("spec.containers")}},
		{"clear image", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" }, []want{required("spec.containers[0].image")}},
		{"no resourceVersion", func(p *corev1.Pod) { p.ResourceVersion = "" }, []want{invalid("metadata.resourceVersion")}},
		{"rename", func(p *corev1.Pod) { p.Name = "other" }, []want{invalid("metadata.name")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := validPod()
			old.Spec.Tolerations = []corev1.Toleration{{Key: "a", Operator: "Exists"}}
			old.Spec.ActiveDeadlineSeconds = ptr(int64(60))
			if tt.name == "set activeDeadlineSeconds" {
				old.Spec.ActiveDeadlineSeconds = nil
			}
			p := old.DeepCopy()
			tt.mutate(p)
			checkErrors(t, ValidateUpdate(p, old), tt.want...)
		})
	}
	old := validPod()
	p := old.DeepCopy()
	p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", Value: "b"}}
	containsText(t, ValidateUpdate(p, old), "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)")
}

func validService() *corev1.Service {
	return defaulted(&corev1.Service{ObjectMeta: meta("web"), Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": "web"},
		Ports:    []corev1.ServicePort{{Port: 80}},
	}})
}

func TestService(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(s *corev1.Service)
		want   []want
	}{
		{"valid", func(s *corev1.Service) {}, nil},
		{"name must start with a letter", func(s *corev1.Service) { s.Name = "1web" }, []want{invalid("metadata.name")}},
		{"no ports", func(s *corev1.Service) { s.Spec.Ports = nil }, []want{required("spec.ports")}},
		{"headless without ports", func(s *corev1.Service) { s.Spec.Ports, s.Spec.ClusterIP = nil, "None" }, nil},
		{"two ports without names", func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: 81, Protocol: "TCP", TargetPort: intstr.FromInt32(81)})
		}, []want{required("spec.ports[0].name"), required("spec.ports[1].name")}},
		{"duplicate port names", func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{
				{Name: "http", Port: 80, Protocol: "TCP", TargetPort: intstr.FromInt32(80)},
				{Name: "http", Port: 81, Protocol: "TCP", TargetPort: intstr.FromInt32(81)}}
		}, []want{duplicate("spec.ports[1].name")}},
		{"duplicate port numbers", func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{
				{Name: "a", Port: 80, Protocol: "TCP", TargetPort: intstr.FromInt32(80)},
				{Name: "b", Port: 80, Protocol: "TCP", TargetPort: intstr.FromInt32(81)}}
		}, []want{duplicate("spec.ports[1]")}},
		{"port zero", func(s *corev1.Service) { s.Spec.Ports[0].Port = 0 }, []want{invalid("spec.ports[0].port")}},
		{"nodePort on ClusterIP", func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30000 }, []want{forbidden("spec.ports[0].nodePort")}},
		{"bad type", func(s *corev1.Service) { s.Spec.Type = "Public" }, []want{notSupported("spec.type")}},
		{"externalName without name", func(s *corev1.Service) {
			s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, SessionAffinity: "None"}
		}, []want{required("spec.externalName")}},
		{"externalName", func(s *corev1.Service) {
			s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com.", SessionAffinity: "None"}
		}, nil},
		{"externalTrafficPolicy on ClusterIP", func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = "Local" }, []want{invalid("spec.externalTrafficPolicy")}},
		{"bad clusterIP", func(s *corev1.Service) { s.Spec.ClusterIP = "10.0.0" }, []want{invalid("spec.clusterIP")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validService()
			tt.mutate(s)
			checkErrors(t, ValidateCreate(s), tt.want...)
		})
	}

	old := validService()
	old.Spec.ClusterIP = "10.0.0.10"
	s := old.DeepCopy()
	s.Spec.ClusterIP = "10.0.0.11"
	checkErrors(t, ValidateUpdate(s, old), invalid("spec.clusterIP"))
	s.Spec.ClusterIP = ""
	checkErrors(t, ValidateUpdate(s, old))
}

func TestConfigMapAndSecret(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: meta("cfg"), Data: map[string]string{"good.key": "v", "bad/key": "v"},
		BinaryData: map[string][]byte{"good.key": nil}}
	checkErrors(t, ValidateCreate(cm), invalid("data[bad/key]"), invalid("data[good.key]"), invalid("binaryData[good.key]"))

	big := &corev1.ConfigMap{ObjectMeta: meta("cfg"), Data: map[string]string{"a": strings.Repeat("x", 1<<20+1)}}
	checkErrors(t, ValidateCreate(big), want{field.ErrorTypeTooLong, "[]"})

	old := &corev1.ConfigMap{ObjectMeta: meta("cfg"), Data: map[string]string{"a": "1"}, Immutable: ptr(true)}
	cm = old.DeepCopy()
	cm.Data["a"] = "2"
	checkErrors(t, ValidateUpdate(cm, old), forbidden("data"))
	cm.Immutable = nil
	checkErrors(t, ValidateUpdate(cm, old), forbidden("data"), forbidden("immutable"))

	s := defaulted(&corev1.Secret{ObjectMeta: meta("s"), Data: map[string][]byte{"-ok": nil, "not ok": nil}})
	checkErrors(t, ValidateCreate(s), invalid("data[not ok]"))
	tls := &corev1.Secret{ObjectMeta: meta("s"), Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": nil}}
	checkErrors(t, ValidateCreate(tls), required("data[tls.key]"))
	dj := &corev1.Secret{ObjectMeta: meta("s"), Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{".dockerconfigjson": []byte("{")}}
	checkErrors(t, ValidateCreate(dj), invalid("data[.dockerconfigjson]"))

	oldSecret := defaulted(&corev1.Secret{ObjectMeta: meta("s")})
	s = oldSecret.DeepCopy()
	s.Type = corev1.SecretTypeBasicAuth
	s.Data = map[string][]byte{"username": []byte("u")}
	checkErrors(t, ValidateUpdate(s, oldSecret), invalid("type"))
}

func TestNamespace(t *testing.T) {
	ns := defaulted(&corev1.Namespace{ObjectMeta: clusterMeta("team-a")})
	checkErrors(t, ValidateCreate(ns))
	bad := defaulted(&corev1.Namespace{ObjectMeta: clusterMeta("team.a")})
	checkErrors(t, ValidateCreate(bad), invalid("metadata.name"))
	namespaced := defaulted(&corev1.Namespace{ObjectMeta: meta("x")})
	checkErrors(t, ValidateCreate(namespaced), forbidden("metadata.namespace"))
	fin := defaulted(&corev1.Namespace{ObjectMeta: clusterMeta("x"), Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"custom"}}})
	checkErrors(t, ValidateCreate(fin), invalid("spec.finalizers[0]"))
}

func TestNode(t *testing.T) {
	n := &corev1.Node{ObjectMeta: clusterMeta("node-1"), Spec: corev1.NodeSpec{
		PodCIDRs: []string{"10.244.0.0/24"},
		Taints: []corev1.Taint{
			{Key: "a", Effect: corev1.TaintEffectNoSchedule},
			{Key: "a", Effect: corev1.TaintEffectNoSchedule},
			{Key: "b", Effect: "Sometimes"},
		}}}
	checkErrors(t, ValidateCreate(n), invalid("spec.taints[1]"), notSupported("spec.taints[2].effect"))

	old := &corev1.Node{ObjectMeta: clusterMeta("node-1"), Spec: corev1.NodeSpec{PodCIDRs: []string{"10.244.0.0/24"}}}
	n = old.DeepCopy()
	n.Spec.PodCIDRs = []string{"10.244.1.0/24"}
	checkErrors(t, ValidateUpdate(n, old), forbidden("spec.podCIDRs"))
}

func TestVolumesAndClaims(t *testing.T) {
	pv := defaulted(&corev1.PersistentVolume{ObjectMeta: clusterMeta("pv1"), Spec: corev1.PersistentVolumeSpec{
		Capacity:               corev1.ResourceList{"storage": q("1Gi")},
		AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data"}},
	}})
	checkErrors(t, ValidateCreate(pv))
	noSource := pv.DeepCopy()
	noSource.Spec.PersistentVolumeSource = corev1.PersistentVolumeSource{}
	noSource.Spec.AccessModes = nil
	checkErrors(t, ValidateCreate(noSource), required("spec"), required("spec.accessModes"))
	changed := pv.DeepCopy()
	changed.Spec.HostPath.Path = "/other"
	checkErrors(t, ValidateUpdate(changed, pv), forbidden("spec.persistentvolumesource"))

	pvc := defaulted(&corev1.PersistentVolumeClaim{ObjectMeta: meta("data"), Spec: corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{"storage": q("1Gi")}},
	}})
	checkErrors(t, ValidateCreate(pvc))
	noSize := pvc.DeepCopy()
	noSize.Spec.Resources.Requests = nil
	checkErrors(t, ValidateCreate(noSize), required("spec.resources[storage]"))
	resized := pvc.DeepCopy()
	resized.Spec.Resources.Requests["storage"] = q("2Gi")
	checkErrors(t, ValidateUpdate(resized, pvc))
	remoded := pvc.DeepCopy()
	remoded.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
	checkErrors(t, ValidateUpdate(remoded, pvc), forbidden("spec"))
	// A claim without a class may get one while unbound (retroactive
	// default StorageClass), never change it afterwards.
	classed := pvc.DeepCopy()
	classed.Spec.StorageClassName = ptr("local-path")
	checkErrors(t, ValidateUpdate(classed, pvc))
	reclassed := classed.DeepCopy()
	reclassed.Spec.StorageClassName = ptr("other")
	checkErrors(t, ValidateUpdate(reclassed, classed), forbidden("spec"))
	bound := pvc.DeepCopy()
	bound.Spec.VolumeName = "pv-1"
	boundClassed := bound.DeepCopy()
	boundClassed.Spec.StorageClassName = ptr("local-path")
	checkErrors(t, ValidateUpdate(boundClassed, bound), forbidden("spec"))
}

func TestOtherCoreKinds(t *testing.T) {
	ep := &corev1.Endpoints{ObjectMeta: meta("web"), Subsets: []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "10.0.0.1"}, {IP: "nope"}},
		Ports:     []corev1.EndpointPort{{Port: 80, Protocol: "TCP"}},
	}}}
	checkErrors(t, ValidateCreate(ep), invalid("subsets[0].addresses[1].ip"))

	lr := defaulted(&corev1.LimitRange{ObjectMeta: meta("lr"), Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
		Type: corev1.LimitTypeContainer, Min: corev1.ResourceList{"cpu": q("2")}, Max: corev1.ResourceList{"cpu": q("1")},
	}}}})
	checkErrors(t, ValidateCreate(lr), invalid("spec.limits[0].min[cpu]"), invalid("spec.limits[0].default[cpu]"))

	rq := &corev1.ResourceQuota{ObjectMeta: meta("q"), Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"pods": q("-1")}}}
	checkErrors(t, ValidateCreate(rq), invalid("spec.hard[pods]"))

	pt := defaulted(&corev1.PodTemplate{ObjectMeta: meta("t"), Template: podTemplate(nil)})
	pt.Template.Spec.Containers[0].Image = ""
	checkErrors(t, ValidateCreate(pt), required("template.spec.containers[0].image"))

	sa := &corev1.ServiceAccount{ObjectMeta: meta("builder")}
	checkErrors(t, ValidateCreate(sa))

	ev := &corev1.Event{ObjectMeta: meta("web.1"), InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "other"}}
	checkErrors(t, ValidateCreate(ev), invalid("involvedObject.namespace"))
	newStyle := &corev1.Event{ObjectMeta: meta("web.2"), InvolvedObject: corev1.ObjectReference{Namespace: "default"},
		EventTime: metav1.NowMicro()}
	checkErrors(t, ValidateCreate(newStyle), required("reportingComponent"), required("reportingInstance"), required("action"), required("reason"))
}
