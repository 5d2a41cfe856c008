package apiserver_test

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestDaemonSetTemplateGeneration: the annotation the DaemonSet
// controller labels pods with counts template changes only, and clients
// cannot set it; EndpointSlices count their changes in generation.
func TestDaemonSetTemplateGeneration(t *testing.T) {
	e := start(t)
	ns := e.namespace("dsgen")
	dss := e.s.Client.AppsV1().DaemonSets(ns)
	labels := map[string]string{"app": "agent"}
	ds, err := dss.Create(e.ctx, &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Annotations: map[string]string{"deprecated.daemonset.template.generation": "7"}},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec()}},
	}, metav1.CreateOptions{})
	must(t, err)
	gen := func() string { return ds.Annotations["deprecated.daemonset.template.generation"] }
	if gen() != "1" {
		t.Fatalf("template generation after create = %q, want 1 (a client's value is not kept)", gen())
	}
	ds.Spec.MinReadySeconds = 5
	ds, err = dss.Update(e.ctx, ds, metav1.UpdateOptions{})
	must(t, err)
	if gen() != "1" {
		t.Errorf("after a change outside the template: %q, want 1", gen())
	}
	ds.Spec.Template.Spec.Containers[0].Image = "busybox:1.37"
	ds, err = dss.Update(e.ctx, ds, metav1.UpdateOptions{})
	must(t, err)
	if gen() != "2" || ds.Generation != 3 {
		t.Errorf("after a template change: template generation %q, generation %d; want 2 and 3", gen(), ds.Generation)
	}

	slices := e.s.Client.DiscoveryV1().EndpointSlices(ns)
	es, err := slices.Create(e.ctx, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1"}, AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.42.0.5"}}},
	}, metav1.CreateOptions{})
	must(t, err)
	if es.Generation != 1 {
		t.Errorf("EndpointSlice generation after create = %d, want 1", es.Generation)
	}
	es.Endpoints[0].Conditions.Ready = ptr.To(true)
	es, err = slices.Update(e.ctx, es, metav1.UpdateOptions{})
	must(t, err)
	if es.Generation != 2 {
		t.Errorf("EndpointSlice generation after a change = %d, want 2", es.Generation)
	}
}
