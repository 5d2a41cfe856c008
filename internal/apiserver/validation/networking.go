package validation

import (
	"fmt"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Paths an ingress controller would normalise differently from the router,
// letting a request escape the rule that matched it.
var (
	invalidPathSequences = []string{"//", "/./", "/../", "%2f", "%2F"}
	invalidPathSuffixes  = []string{"/..", "/."}
)

func validateIngress(ing *networkingv1.Ingress) field.ErrorList {
	spec := &ing.Spec
	var errs field.ErrorList
	if len(spec.Rules) == 0 && spec.DefaultBackend == nil {
		errs = append(errs, field.Invalid(specPath, spec.Rules, "either `defaultBackend` or `rules` must be specified"))
	}
	if spec.DefaultBackend != nil {
		errs = append(errs, validateIngressBackend(spec.DefaultBackend, specPath.Child("defaultBackend"))...)
	}
	for i, r := range spec.Rules {
		idx := specPath.Child("rules").Index(i)
		if r.Host != "" {
			errs = append(errs, ingressHost(r.Host, idx.Child("host"))...)
		}
		if r.HTTP == nil {
			continue
		}
		httpPath := idx.Child("http")
		if len(r.HTTP.Paths) == 0 {
			errs = append(errs, field.Required(httpPath.Child("paths"), ""))
		}
		for j := range r.HTTP.Paths {
			errs = append(errs, validateIngressPath(&r.HTTP.Paths[j], httpPath.Child("paths").Index(j))...)
		}
	}
	for i, t := range spec.TLS {
		idx := specPath.Child("tls").Index(i)
		for j, h := range t.Hosts {
			errs = append(errs, ingressHost(h, idx.Child("hosts").Index(j))...)
		}
		if t.SecretName != "" {
			errs = append(errs, dns1123Subdomain(t.SecretName, idx.Child("secretName"))...)
		}
	}
	if spec.IngressClassName != nil {
		errs = append(errs, dns1123Subdomain(*spec.IngressClassName, specPath.Child("ingressClassName"))...)
	}
	return errs
}

func ingressHost(host string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if net.ParseIP(host) != nil {
		errs = append(errs, field.Invalid(fldPath, host, "must be a DNS name, not an IP address"))
	}
	if strings.Contains(host, "*") {
		return append(errs, invalidEach(fldPath, host, validation.IsWildcardDNS1123Subdomain(host))...)
	}
	return append(errs, invalidEach(fldPath, host, validation.IsDNS1123Subdomain(host))...)
}

func validateIngressPath(p *networkingv1.HTTPIngressPath, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	pathPath := fldPath.Child("path")
	if p.PathType == nil {
		errs = append(errs, field.Required(fldPath.Child("pathType"), "pathType must be specified"))
	} else {
		switch *p.PathType {
		case networkingv1.PathTypeExact, networkingv1.PathTypePrefix:
			if !strings.HasPrefix(p.Path, "/") {
				errs = append(errs, field.Invalid(pathPath, p.Path, "must be an absolute path"))
			}
			for _, seq := range invalidPathSequences {
				if strings.Contains(p.Path, seq) {
					errs = append(errs, field.Invalid(pathPath, p.Path, fmt.Sprintf("must not contain '%s'", seq)))
				}
			}
			for _, suffix := range invalidPathSuffixes {
				if strings.HasSuffix(p.Path, suffix) {
					errs = append(errs, field.Invalid(pathPath, p.Path, fmt.Sprintf("cannot end with '%s'", suffix)))
				}
			}
		case networkingv1.PathTypeImplementationSpecific:
			if p.Path != "" && !strings.HasPrefix(p.Path, "/") {
				errs = append(errs, field.Invalid(pathPath, p.Path, "must be an absolute path"))
			}
		default:
			errs = append(errs, field.NotSupported(fldPath.Child("pathType"), *p.PathType, []networkingv1.PathType{
				networkingv1.PathTypeExact, networkingv1.PathTypePrefix, networkingv1.PathTypeImplementationSpecific}))
		}
	}
	return append(errs, validateIngressBackend(&p.Backend, fldPath.Child("backend"))...)
}

func validateIngressBackend(b *networkingv1.IngressBackend, fldPath *field.Path) field.ErrorList {
	switch {
	case b.Resource != nil && b.Service != nil:
		return field.ErrorList{field.Invalid(fldPath, "", "cannot set both resource and service backends")}
	case b.Resource != nil:
		var errs field.ErrorList
		if b.Resource.Kind == "" {
			errs = append(errs, field.Required(fldPath.Child("resource", "kind"), ""))
		}
		if b.Resource.Name == "" {
			errs = append(errs, field.Required(fldPath.Child("resource", "name"), ""))
		}
		return errs
	case b.Service != nil:
		var errs field.ErrorList
		s := b.Service
		if s.Name == "" {
			errs = append(errs, field.Required(fldPath.Child("service", "name"), ""))
		} else {
			errs = append(errs, invalidEach(fldPath.Child("service", "name"), s.Name, apivalidation.NameIsDNS1035Label(s.Name, false))...)
		}
		hasName, hasNumber := s.Port.Name != "", s.Port.Number != 0
		switch {
		case hasName && hasNumber:
			errs = append(errs, field.Invalid(fldPath, "", "cannot set both port name & port number"))
		case hasName:
			errs = append(errs, portName(s.Port.Name, fldPath.Child("service", "port", "name"))...)
		case hasNumber:
			errs = append(errs, invalidEach(fldPath.Child("service", "port", "number"), s.Port.Number, validation.IsValidPortNum(int(s.Port.Number)))...)
		default:
			errs = append(errs, field.Required(fldPath, "port name or number is required"))
		}
		return errs
	default:
		return field.ErrorList{field.Invalid(fldPath, "", "resource or service backend is required")}
	}
}

func validateIngressClass(ic *networkingv1.IngressClass) field.ErrorList {
	p := specPath.Child("controller")
	if ic.Spec.Controller == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	errs := validation.IsDomainPrefixedPath(p, ic.Spec.Controller)
	if len(ic.Spec.Controller) > 250 {
		errs = append(errs, field.TooLong(p, "", 250))
	}
	return errs
}

func validateIngressClassUpdate(ic, old *networkingv1.IngressClass) field.ErrorList {
	return immutable(ic.Spec.Controller, old.Spec.Controller, specPath.Child("controller"))
}

func validateNetworkPolicy(np *networkingv1.NetworkPolicy) field.ErrorList {
	spec := &np.Spec
	errs := labelSelector(&spec.PodSelector, specPath.Child("podSelector"))
	for i, r := range spec.Ingress {
		idx := specPath.Child("ingress").Index(i)
		errs = append(errs, networkPolicyPorts(r.Ports, idx.Child("ports"))...)
		for j := range r.From {
			errs = append(errs, networkPolicyPeer(&r.From[j], idx.Child("from").Index(j))...)
		}
	}
	for i, r := range spec.Egress {
		idx := specPath.Child("egress").Index(i)
		errs = append(errs, networkPolicyPorts(r.Ports, idx.Child("ports"))...)
		for j := range r.To {
			errs = append(errs, networkPolicyPeer(&r.To[j], idx.Child("to").Index(j))...)
		}
	}
	for i, t := range spec.PolicyTypes {
		errs = append(errs, oneOf(t, specPath.Child("policyTypes").Index(i), networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress)...)
	}
	if len(spec.PolicyTypes) > 2 {
		errs = append(errs, field.Invalid(specPath.Child("policyTypes"), spec.PolicyTypes, "may not specify more than two policyTypes"))
	}
	return errs
}

func networkPolicyPorts(ports []networkingv1.NetworkPolicyPort, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, p := range ports {
		idx := fldPath.Index(i)
		if p.Protocol != nil {
			errs = append(errs, oneOf(*p.Protocol, idx.Child("protocol"), corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP)...)
		}
		if p.Port != nil {
			errs = append(errs, portNumOrName(*p.Port, idx.Child("port"))...)
		}
		if p.EndPort != nil {
			switch {
			case p.Port == nil:
				errs = append(errs, field.Required(idx.Child("port"), "must be specified when endPort is specified"))
			case p.Port.Type != 0:
				errs = append(errs, field.Forbidden(idx.Child("endPort"), "may not be specified when `port` is non-numeric"))
			case *p.EndPort < p.Port.IntVal:
				errs = append(errs, field.Invalid(idx.Child("endPort"), *p.EndPort, "must be greater than or equal to `port`"))
			}
			errs = append(errs, invalidEach(idx.Child("endPort"), *p.EndPort, validation.IsValidPortNum(int(*p.EndPort)))...)
		}
	}
	return errs
}

func networkPolicyPeer(p *networkingv1.NetworkPolicyPeer, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	selectors := p.PodSelector != nil || p.NamespaceSelector != nil
	switch {
	case p.IPBlock != nil && selectors:
		return field.ErrorList{field.Forbidden(fldPath, "may not specify both ipBlock and another peer")}
	case p.IPBlock == nil && !selectors:
		return field.ErrorList{field.Required(fldPath, "must specify a peer")}
	}
	errs = append(errs, labelSelector(p.PodSelector, fldPath.Child("podSelector"))...)
	errs = append(errs, labelSelector(p.NamespaceSelector, fldPath.Child("namespaceSelector"))...)
	if b := p.IPBlock; b != nil {
		bp := fldPath.Child("ipBlock")
		if b.CIDR == "" {
			return append(errs, field.Required(bp.Child("cidr"), ""))
		}
		cidrErrs := validation.IsValidCIDR(bp.Child("cidr"), b.CIDR)
		errs = append(errs, cidrErrs...)
		_, outer, err := net.ParseCIDR(b.CIDR)
		for i, ex := range b.Except {
			ep := bp.Child("except").Index(i)
			exErrs := validation.IsValidCIDR(ep, ex)
			errs = append(errs, exErrs...)
			if len(cidrErrs) > 0 || len(exErrs) > 0 || err != nil {
				continue
			}
			_, inner, _ := net.ParseCIDR(ex)
			outerOnes, _ := outer.Mask.Size()
			innerOnes, _ := inner.Mask.Size()
			if !outer.Contains(inner.IP) || innerOnes <= outerOnes {
				errs = append(errs, field.Invalid(ep, ex, "must be a strict subset of `cidr`"))
			}
		}
	}
	return errs
}
