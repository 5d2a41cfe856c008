package validation

import (
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Limits on one EndpointSlice, so that each stays small to watch.
const (
	maxEndpointsPerSlice = 1000
	maxPortsPerSlice     = 100
	maxAddresses         = 100
)

func validateEndpointSlice(es *discoveryv1.EndpointSlice) field.ErrorList {
	errs := oneOf(es.AddressType, field.NewPath("addressType"),
		discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN)
	epPath := field.NewPath("endpoints")
	if len(es.Endpoints) > maxEndpointsPerSlice {
		errs = append(errs, field.TooMany(epPath, len(es.Endpoints), maxEndpointsPerSlice))
	}
	for i, ep := range es.Endpoints {
		idx := epPath.Index(i)
		addrPath := idx.Child("addresses")
		switch {
		case len(ep.Addresses) == 0:
			errs = append(errs, field.Required(addrPath, "must contain at least 1 address"))
		case len(ep.Addresses) > maxAddresses:
			errs = append(errs, field.TooMany(addrPath, len(ep.Addresses), maxAddresses))
		}
		for j, a := range ep.Addresses {
			errs = append(errs, endpointAddress(es.AddressType, a, addrPath.Index(j))...)
		}
		if ep.Hostname != nil {
			errs = append(errs, dns1123Label(*ep.Hostname, idx.Child("hostname"))...)
		}
		if ep.NodeName != nil {
			errs = append(errs, dns1123Subdomain(*ep.NodeName, idx.Child("nodeName"))...)
		}
	}
	portsPath := field.NewPath("ports")
	if len(es.Ports) > maxPortsPerSlice {
		errs = append(errs, field.TooMany(portsPath, len(es.Ports), maxPortsPerSlice))
	}
	names := sets.New[string]()
	for i, p := range es.Ports {
		idx := portsPath.Index(i)
		if p.Name != nil && *p.Name != "" {
			errs = append(errs, dns1123Label(*p.Name, idx.Child("name"))...)
		}
		if p.Name != nil {
			if names.Has(*p.Name) {
				errs = append(errs, field.Duplicate(idx.Child("name"), *p.Name))
			}
			names.Insert(*p.Name)
		}
		if p.Protocol == nil {
			errs = append(errs, field.Required(idx.Child("protocol"), ""))
		} else {
			errs = append(errs, oneOf(*p.Protocol, idx.Child("protocol"), corev1.ProtocolSCTP, corev1.ProtocolTCP, corev1.ProtocolUDP)...)
		}
		if p.Port != nil {
			errs = append(errs, invalidEach(idx.Child("port"), *p.Port, validation.IsValidPortNum(int(*p.Port)))...)
		}
	}
	return errs
}

func endpointAddress(t discoveryv1.AddressType, a string, fldPath *field.Path) field.ErrorList {
	ip := net.ParseIP(a)
	switch t {
	case discoveryv1.AddressTypeIPv4:
		if ip == nil || ip.To4() == nil || strings.Contains(a, ":") {
			return field.ErrorList{field.Invalid(fldPath, a, "must be a valid IPv4 address")}
		}
	case discoveryv1.AddressTypeIPv6:
		if ip == nil || !strings.Contains(a, ":") {
			return field.ErrorList{field.Invalid(fldPath, a, "must be a valid IPv6 address")}
		}
	case discoveryv1.AddressTypeFQDN:
		return validation.IsFullyQualifiedDomainName(fldPath, a)
	}
	return nil
}

func validateEndpointSliceUpdate(es, old *discoveryv1.EndpointSlice) field.ErrorList {
	return immutable(es.AddressType, old.AddressType, field.NewPath("addressType"))
}
