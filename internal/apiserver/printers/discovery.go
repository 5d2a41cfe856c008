package printers

import (
	"strconv"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	discoveryv1beta1 "k8s.io/api/discovery/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var endpointSlicePrinter = typed([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "AddressType", Type: "string", Description: discoveryv1beta1.EndpointSlice{}.SwaggerDoc()["addressType"]},
	{Name: "Ports", Type: "string", Description: discoveryv1beta1.EndpointSlice{}.SwaggerDoc()["ports"]},
	{Name: "Endpoints", Type: "string", Description: discoveryv1beta1.EndpointSlice{}.SwaggerDoc()["endpoints"]},
	ageColumn,
}, func(es *discoveryv1.EndpointSlice, now time.Time) []interface{} {
	var ports []string
	for _, p := range es.Ports {
		switch {
		case p.Port != nil:
			ports = append(ports, strconv.Itoa(int(*p.Port)))
		case p.Name != nil:
			ports = append(ports, *p.Name)
		default:
			ports = append(ports, "*")
		}
	}
	var addrs []string
	for _, ep := range es.Endpoints {
		addrs = append(addrs, ep.Addresses...)
	}
	return []interface{}{es.Name, string(es.AddressType), firstThree(ports), firstThree(addrs), since(es.CreationTimestamp, now)}
})

// firstThree shows at most three items and how many more there are, or
// "<unset>" for none.
func firstThree(items []string) string {
	if len(items) == 0 {
		return "<unset>"
	}
	const max = 3
	return joinWithMore(items[:min(len(items), max)], len(items), max)
}
