package defaults

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

func TestNetworkPolicyDefaults(t *testing.T) {
	tests := []struct {
		name string
		spec networkingv1.NetworkPolicySpec
		want []networkingv1.PolicyType
	}{
		{"ingress only", networkingv1.NetworkPolicySpec{}, []networkingv1.PolicyType{"Ingress"}},
		{"with egress rules", networkingv1.NetworkPolicySpec{Egress: []networkingv1.NetworkPolicyEgressRule{{}}}, []networkingv1.PolicyType{"Ingress", "Egress"}},
		{"explicit", networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Egress"}}, []networkingv1.PolicyType{"Egress"}},
	}
	for _, tt := range tests {
		np := &networkingv1.NetworkPolicy{Spec: tt.spec}
		Apply(np)
		if !reflect.DeepEqual(np.Spec.PolicyTypes, tt.want) {
			t.Errorf("%s: policyTypes %v, want %v", tt.name, np.Spec.PolicyTypes, tt.want)
		}
	}
	np := &networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{}}}}}}
	Apply(np)
	if *np.Spec.Ingress[0].Ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("port protocol not defaulted")
	}
}

func TestIngressIsNotDefaulted(t *testing.T) {
	// pathType is required, not defaulted: validation must see it missing.
	ing := &networkingv1.Ingress{Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{IngressRuleValue: networkingv1.IngressRuleValue{
		HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{Path: "/"}}}}}}}}
	Apply(ing)
	if ing.Spec.Rules[0].HTTP.Paths[0].PathType != nil {
		t.Errorf("pathType defaulted")
	}
}
