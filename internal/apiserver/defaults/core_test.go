package defaults

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestPodDefaults(t *testing.T) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.PodSpec{
		Containers: []corev1.Container{{
			Name: "app", Image: "nginx",
			Ports: []corev1.ContainerPort{{ContainerPort: 80}},
			Resources: corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{"cpu": resource.MustParse("1"), "memory": resource.MustParse("1Gi")},
				Requests: corev1.ResourceList{"cpu": resource.MustParse("500m")},
			},
			Env:            []corev1.EnvVar{{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}},
			LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(80)}}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9000}}, PeriodSeconds: 5},
		}},
		InitContainers: []corev1.Container{{Name: "init", Image: "busybox:1.36"}},
		Volumes: []corev1.Volume{
			{Name: "empty"},
			{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}},
			{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{DefaultMode: ptrTo(int32(0o400))}}},
			{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/x"}}},
			{Name: "token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}}}},
		},
	}}
	Apply(p)
	s := p.Spec
	c := s.Containers[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"restartPolicy", s.RestartPolicy, corev1.RestartPolicyAlways},
		{"dnsPolicy", s.DNSPolicy, corev1.DNSClusterFirst},
		{"terminationGracePeriodSeconds", *s.TerminationGracePeriodSeconds, int64(30)},
		{"schedulerName", s.SchedulerName, "default-scheduler"},
		{"securityContext", *s.SecurityContext, corev1.PodSecurityContext{}},
		{"enableServiceLinks", *s.EnableServiceLinks, true},
		{"serviceAccountName", s.ServiceAccountName, "default"},
		{"serviceAccount", s.DeprecatedServiceAccount, "default"},
		{"imagePullPolicy untagged", c.ImagePullPolicy, corev1.PullAlways},
		{"imagePullPolicy tagged", s.InitContainers[0].ImagePullPolicy, corev1.PullIfNotPresent},
		{"terminationMessagePath", c.TerminationMessagePath, "/dev/termination-log"},
		{"terminationMessagePolicy", c.TerminationMessagePolicy, corev1.TerminationMessageReadFile},
		{"port protocol", c.Ports[0].Protocol, corev1.ProtocolTCP},
		{"request kept", c.Resources.Requests.Cpu().String(), "500m"},
		{"request from limit", c.Resources.Requests.Memory().String(), "1Gi"},
		{"fieldRef apiVersion", c.Env[0].ValueFrom.FieldRef.APIVersion, "v1"},
		{"liveness timeout", c.LivenessProbe.TimeoutSeconds, int32(1)},
		{"liveness period", c.LivenessProbe.PeriodSeconds, int32(10)},
		{"liveness success", c.LivenessProbe.SuccessThreshold, int32(1)},
		{"liveness failure", c.LivenessProbe.FailureThreshold, int32(3)},
		{"httpGet path", c.LivenessProbe.HTTPGet.Path, "/"},
		{"httpGet scheme", c.LivenessProbe.HTTPGet.Scheme, corev1.URISchemeHTTP},
		{"readiness period kept", c.ReadinessProbe.PeriodSeconds, int32(5)},
		{"grpc service", *c.ReadinessProbe.GRPC.Service, ""},
		{"volume without source", s.Volumes[0].EmptyDir != nil, true},
		{"configMap mode", *s.Volumes[1].ConfigMap.DefaultMode, int32(420)},
		{"secret mode kept", *s.Volumes[2].Secret.DefaultMode, int32(0o400)},
		{"hostPath type", *s.Volumes[3].HostPath.Type, corev1.HostPathUnset},
		{"projected mode", *s.Volumes[4].Projected.DefaultMode, int32(420)},
		{"token expiration", *s.Volumes[4].Projected.Sources[0].ServiceAccountToken.ExpirationSeconds, int64(3600)},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestPodKeepsUserValues(t *testing.T) {
	p := &corev1.Pod{Spec: corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever, DNSPolicy: corev1.DNSDefault,
		DeprecatedServiceAccount: "builder", EnableServiceLinks: ptrTo(false),
		TerminationGracePeriodSeconds: ptrTo(int64(5)),
	}}
	Apply(p)
	if p.Spec.RestartPolicy != corev1.RestartPolicyNever || p.Spec.DNSPolicy != corev1.DNSDefault ||
		*p.Spec.EnableServiceLinks || *p.Spec.TerminationGracePeriodSeconds != 5 {
		t.Errorf("user values overwritten: %+v", p.Spec)
	}
	if p.Spec.ServiceAccountName != "builder" {
		t.Errorf("serviceAccountName = %q, want the deprecated field's value", p.Spec.ServiceAccountName)
	}
}

func TestHostNetworkPorts(t *testing.T) {
	p := &corev1.Pod{Spec: corev1.PodSpec{HostNetwork: true, Containers: []corev1.Container{{
		Ports: []corev1.ContainerPort{{ContainerPort: 8080}, {ContainerPort: 9090, HostPort: 9091}}}}}}
	Apply(p)
	if got := p.Spec.Containers[0].Ports; got[0].HostPort != 8080 || got[1].HostPort != 9091 {
		t.Errorf("host ports = %+v", got)
	}
}

func TestImageTag(t *testing.T) {
	tests := []struct{ image, tag string }{
		{"nginx", "latest"},
		{"nginx:latest", "latest"},
		{"nginx:1.27", "1.27"},
		{"registry.local:5000/team/app", "latest"},
		{"registry.local:5000/team/app:v2", "v2"},
		{"nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", ""},
		{"nginx:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "latest"},
		{"Nginx", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := imageTag(tt.image); got != tt.tag {
			t.Errorf("imageTag(%q) = %q, want %q", tt.image, got, tt.tag)
		}
	}
}

func TestPodTemplateGetsNoPodOnlyDefaults(t *testing.T) {
	pt := &corev1.PodTemplate{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Image: "nginx:1", Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"cpu": resource.MustParse("1")}}}}}}}
	Apply(pt)
	s := pt.Template.Spec
	if s.EnableServiceLinks != nil || s.ServiceAccountName != "" || s.Containers[0].Resources.Requests != nil {
		t.Errorf("template got pod-only defaults: %+v", s)
	}
	if s.RestartPolicy != corev1.RestartPolicyAlways || s.Containers[0].ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("template missing pod spec defaults: %+v", s)
	}
}

func TestServiceDefaults(t *testing.T) {
	tests := []struct {
		name  string
		in    corev1.ServiceSpec
		check func(t *testing.T, s corev1.ServiceSpec)
	}{
		{"cluster IP", corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}, {Port: 443, TargetPort: intstr.FromString("https")}}},
			func(t *testing.T, s corev1.ServiceSpec) {
				if s.Type != corev1.ServiceTypeClusterIP || s.SessionAffinity != corev1.ServiceAffinityNone {
					t.Errorf("type/affinity: %v %v", s.Type, s.SessionAffinity)
				}
				if s.Ports[0].Protocol != corev1.ProtocolTCP || s.Ports[0].TargetPort != intstr.FromInt32(80) || s.Ports[1].TargetPort != intstr.FromString("https") {
					t.Errorf("ports: %+v", s.Ports)
				}
				if *s.InternalTrafficPolicy != corev1.ServiceInternalTrafficPolicyCluster || s.ExternalTrafficPolicy != "" {
					t.Errorf("traffic policies: %v %q", *s.InternalTrafficPolicy, s.ExternalTrafficPolicy)
				}
				if *s.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack {
					t.Errorf("ipFamilyPolicy: %v", *s.IPFamilyPolicy)
				}
			}},
		{"load balancer", corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
			func(t *testing.T, s corev1.ServiceSpec) {
				if s.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyCluster || !*s.AllocateLoadBalancerNodePorts {
					t.Errorf("got %+v", s)
				}
			}},
		{"client IP affinity", corev1.ServiceSpec{SessionAffinity: corev1.ServiceAffinityClientIP},
			func(t *testing.T, s corev1.ServiceSpec) {
				if *s.SessionAffinityConfig.ClientIP.TimeoutSeconds != 10800 {
					t.Errorf("got %+v", s.SessionAffinityConfig)
				}
			}},
		{"external name", corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"},
			func(t *testing.T, s corev1.ServiceSpec) {
				if s.InternalTrafficPolicy != nil || s.IPFamilyPolicy != nil {
					t.Errorf("got %+v", s)
				}
			}},
		{"headless without selector", corev1.ServiceSpec{ClusterIP: "None"},
			func(t *testing.T, s corev1.ServiceSpec) {
				if *s.IPFamilyPolicy != corev1.IPFamilyPolicyRequireDualStack {
					t.Errorf("ipFamilyPolicy: %v", *s.IPFamilyPolicy)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &corev1.Service{Spec: tt.in}
			Apply(s)
			tt.check(t, s.Spec)
		})
	}
}

func TestNamespaceDefaults(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}
	Apply(ns)
	if ns.Status.Phase != corev1.NamespaceActive || !reflect.DeepEqual(ns.Spec.Finalizers, []corev1.FinalizerName{"kubernetes"}) ||
		ns.Labels["kubernetes.io/metadata.name"] != "team-a" {
		t.Errorf("got %+v", ns)
	}
	// A stored namespace whose finalizer was removed keeps it removed.
	ns.Spec.Finalizers = nil
	ns.Status.Phase = corev1.NamespaceTerminating
	Apply(ns)
	if ns.Spec.Finalizers != nil || ns.Status.Phase != corev1.NamespaceTerminating {
		t.Errorf("got %+v", ns)
	}
}

func TestOtherCoreDefaults(t *testing.T) {
	s := &corev1.Secret{Data: map[string][]byte{"a": []byte("old"), "b": []byte("kept")}, StringData: map[string]string{"a": "new"}}
	Apply(s)
	if s.Type != corev1.SecretTypeOpaque {
		t.Errorf("secret type %q", s.Type)
	}
	if string(s.Data["a"]) != "new" || string(s.Data["b"]) != "kept" || s.StringData != nil {
		t.Errorf("stringData not folded into data: %+v", s)
	}

	pv := &corev1.PersistentVolume{}
	Apply(pv)
	if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain || *pv.Spec.VolumeMode != corev1.PersistentVolumeFilesystem || pv.Status.Phase != corev1.VolumePending {
		t.Errorf("pv %+v", pv)
	}
	pvc := &corev1.PersistentVolumeClaim{}
	Apply(pvc)
	if *pvc.Spec.VolumeMode != corev1.PersistentVolumeFilesystem || pvc.Status.Phase != corev1.ClaimPending {
		t.Errorf("pvc %+v", pvc)
	}

	ep := &corev1.Endpoints{Subsets: []corev1.EndpointSubset{{Ports: []corev1.EndpointPort{{Port: 80}}}}}
	Apply(ep)
	if ep.Subsets[0].Ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("endpoints %+v", ep)
	}

	n := &corev1.Node{Status: corev1.NodeStatus{Capacity: corev1.ResourceList{"cpu": resource.MustParse("4")}}}
	Apply(n)
	if n.Status.Allocatable.Cpu().String() != "4" {
		t.Errorf("allocatable %v", n.Status.Allocatable)
	}

	lr := &corev1.LimitRange{Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
		Type: corev1.LimitTypeContainer,
		Max:  corev1.ResourceList{"cpu": resource.MustParse("2")},
		Min:  corev1.ResourceList{"memory": resource.MustParse("64Mi")},
	}}}}
	Apply(lr)
	item := lr.Spec.Limits[0]
	if item.Default.Cpu().String() != "2" || item.DefaultRequest.Cpu().String() != "2" || item.DefaultRequest.Memory().String() != "64Mi" {
		t.Errorf("limit range %+v", item)
	}
}
