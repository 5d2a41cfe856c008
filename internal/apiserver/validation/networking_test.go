package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func validIngress() *networkingv1.Ingress {
	prefix := networkingv1.PathTypePrefix
	return defaulted(&networkingv1.Ingress{ObjectMeta: meta("web"), Spec: networkingv1.IngressSpec{
		Rules: []networkingv1.IngressRule{{Host: "example.com", IngressRuleValue: networkingv1.IngressRuleValue{
			HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/", PathType: &prefix,
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
					Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}},
			}}},
		}}},
	}})
}

func TestIngress(t *testing.T) {
	path := "spec.rules[0].http.paths[0]"
	tests := []struct {
		name   string
		mutate func(i *networkingv1.Ingress)
		want   []want
	}{
		{"valid", func(i *networkingv1.Ingress) {}, nil},
		{"no rules or backend", func(i *networkingv1.Ingress) { i.Spec.Rules = nil }, []want{invalid("spec")}},
		{"no pathType", func(i *networkingv1.Ingress) { i.Spec.Rules[0].HTTP.Paths[0].PathType = nil }, []want{required(path + ".pathType")}},
		{"bad pathType", func(i *networkingv1.Ingress) {
			pt := networkingv1.PathType("Regex")
			i.Spec.Rules[0].HTTP.Paths[0].PathType = &pt
		}, []want{notSupported(path + ".pathType")}},
		{"relative path", func(i *networkingv1.Ingress) { i.Spec.Rules[0].HTTP.Paths[0].Path = "api" }, []want{invalid(path + ".path")}},
		{"path with //", func(i *networkingv1.Ingress) { i.Spec.Rules[0].HTTP.Paths[0].Path = "/a//b" }, []want{invalid(path + ".path")}},
		{"IP host", func(i *networkingv1.Ingress) { i.Spec.Rules[0].Host = "10.0.0.1" }, []want{invalid("spec.rules[0].host")}},
		{"wildcard host", func(i *networkingv1.Ingress) { i.Spec.Rules[0].Host = "*.example.com" }, nil},
		{"no port", func(i *networkingv1.Ingress) {
			i.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Port = networkingv1.ServiceBackendPort{}
		}, []want{required(path + ".backend")}},
		{"no backend", func(i *networkingv1.Ingress) {
			i.Spec.Rules[0].HTTP.Paths[0].Backend = networkingv1.IngressBackend{}
		}, []want{invalid(path + ".backend")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := validIngress()
			tt.mutate(i)
			checkErrors(t, ValidateCreate(i), tt.want...)
		})
	}
}

func TestIngressClass(t *testing.T) {
	ic := &networkingv1.IngressClass{ObjectMeta: clusterMeta("nginx"), Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}}
	checkErrors(t, ValidateCreate(ic))
	bad := ic.DeepCopy()
	bad.Spec.Controller = "nginx"
	checkErrors(t, ValidateCreate(bad), invalid("spec.controller"))
	changed := ic.DeepCopy()
	changed.Spec.Controller = "example.com/other"
	checkErrors(t, ValidateUpdate(changed, ic), invalid("spec.controller"))
}

func TestNetworkPolicy(t *testing.T) {
	port := intstr.FromInt32(8080)
	np := defaulted(&networkingv1.NetworkPolicy{ObjectMeta: meta("deny"), Spec: networkingv1.NetworkPolicySpec{
		Ingress: []networkingv1.NetworkPolicyIngressRule{{
			Ports: []networkingv1.NetworkPolicyPort{{Port: &port, EndPort: ptr(int32(9000))}},
			From:  []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16"}}}},
		}},
	}})
	checkErrors(t, ValidateCreate(np))

	bad := np.DeepCopy()
	bad.Spec.Ingress[0].Ports[0].EndPort = ptr(int32(80))
	bad.Spec.Ingress[0].Ports[0].Protocol = ptr(corev1.Protocol("ICMP"))
	bad.Spec.Ingress[0].From = append(bad.Spec.Ingress[0].From,
		networkingv1.NetworkPolicyPeer{},
		networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{}, IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8"}},
		networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"192.168.0.0/16"}}},
	)
	bad.Spec.PolicyTypes = []networkingv1.PolicyType{"Sideways"}
	checkErrors(t, ValidateCreate(bad),
		invalid("spec.ingress[0].ports[0].endPort"),
		notSupported("spec.ingress[0].ports[0].protocol"),
		required("spec.ingress[0].from[1]"),
		forbidden("spec.ingress[0].from[2]"),
		invalid("spec.ingress[0].from[3].ipBlock.except[0]"),
		notSupported("spec.policyTypes[0]"),
	)
}
