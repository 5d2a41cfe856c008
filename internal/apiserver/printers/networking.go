package printers

import (
	"fmt"
	"strings"
	"time"

	extensionsv1beta1 "k8s.io/api/extensions/v1beta1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
)

var ingressPrinter = typed([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Class", Type: "string", Description: "The name of the IngressClass resource that should be used for additional configuration"},
	{Name: "Hosts", Type: "string", Description: "Hosts that incoming requests are matched against before the ingress rule"},
	{Name: "Address", Type: "string", Description: "Address is a list containing ingress points for the load-balancer"},
	{Name: "Ports", Type: "string", Description: "Ports of TLS configurations that open"},
	ageColumn,
}, func(ing *networkingv1.Ingress, now time.Time) []interface{} {
	ports := "80"
	if len(ing.Spec.TLS) > 0 {
		ports = "80, 443"
	}
	return []interface{}{
		ing.Name,
		deref(ing.Spec.IngressClassName, "<none>"),
		ingressHosts(ing.Spec.Rules),
		ingressAddresses(ing.Status.LoadBalancer.Ingress),
		ports,
		since(ing.CreationTimestamp, now),
	}
})

// ingressHosts lists the first three hosts named by the rules, "*" when no
// rule names one. Once three are listed, any further rule (with or without a
// host) makes it print "+ N more...", N counting the rules past the third,
// exactly as upstream does.
func ingressHosts(rules []networkingv1.IngressRule) string {
	const max = 3
	var hosts []string
	more := false
	for _, r := range rules {
		if len(hosts) == max {
			more = true
			break
		}
		if r.Host != "" {
			hosts = append(hosts, r.Host)
		}
	}
	if len(hosts) == 0 {
		return "*"
	}
	s := strings.Join(hosts, ",")
	if more {
		return fmt.Sprintf("%s + %d more...", s, len(rules)-max)
	}
	return s
}

// ingressAddresses lists the distinct IPs (or hostnames) sorted; the server
// always renders the wide form, so nothing is shortened.
func ingressAddresses(ingress []networkingv1.IngressLoadBalancerIngress) string {
	set := sets.New[string]()
	for _, in := range ingress {
		if in.IP != "" {
			set.Insert(in.IP)
		} else if in.Hostname != "" {
			set.Insert(in.Hostname)
		}
	}
	return strings.Join(sets.List(set), ",")
}

var ingressClassPrinter = typed([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Controller", Type: "string", Description: "Controller that is responsible for handling this class"},
	{Name: "Parameters", Type: "string", Description: "A reference to a resource with additional parameters"},
	ageColumn,
}, func(ic *networkingv1.IngressClass, now time.Time) []interface{} {
	params := "<none>"
	if p := ic.Spec.Parameters; p != nil {
		params = p.Kind
		if p.APIGroup != nil {
			params += "." + *p.APIGroup
		}
		params += "/" + p.Name
	}
	return []interface{}{ic.Name, ic.Spec.Controller, params, since(ic.CreationTimestamp, now)}
})

var networkPolicyPrinter = typed([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Pod-Selector", Type: "string", Description: extensionsv1beta1.NetworkPolicySpec{}.SwaggerDoc()["podSelector"]},
	ageColumn,
}, func(np *networkingv1.NetworkPolicy, now time.Time) []interface{} {
	return []interface{}{np.Name, metav1.FormatLabelSelector(&np.Spec.PodSelector), since(np.CreationTimestamp, now)}
})
