package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

func TestEndpointSlice(t *testing.T) {
	es := defaulted(&discoveryv1.EndpointSlice{ObjectMeta: meta("web-abc"), AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}}},
		Ports:     []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(80))}},
	})
	checkErrors(t, ValidateCreate(es))

	bad := es.DeepCopy()
	bad.AddressType = "IPv5"
	bad.Endpoints = append(bad.Endpoints, discoveryv1.Endpoint{})
	bad.Ports = append(bad.Ports, discoveryv1.EndpointPort{Name: ptr("http"), Protocol: ptr(corev1.ProtocolTCP)})
	checkErrors(t, ValidateCreate(bad), notSupported("addressType"), required("endpoints[1].addresses"), duplicate("ports[1].name"))

	v6 := es.DeepCopy()
	v6.Endpoints[0].Addresses = []string{"fd00::1"}
	checkErrors(t, ValidateCreate(v6), invalid("endpoints[0].addresses[0]"))

	changed := es.DeepCopy()
	changed.AddressType = discoveryv1.AddressTypeIPv6
	changed.Endpoints[0].Addresses = []string{"fd00::1"}
	checkErrors(t, ValidateUpdate(changed, es), invalid("addressType"))
}
