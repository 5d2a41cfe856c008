package endpointslicemirroring_test

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/controller"
	"github.com/lotse/lotse/internal/controller/endpointslicemirroring"
	"github.com/lotse/lotse/internal/testserver"
)

// sliceView renders the mirrored slices of one Service, sorted, as
// "name IPv4 http:8080 10.0.0.1=R(h1@n1) 10.0.0.3=N".
func sliceView(ctx context.Context, cs kubernetes.Interface, name string) ([]string, []discoveryv1.EndpointSlice, error) {
	list, err := cs.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
	if err != nil {
		return nil, nil, err
	}
	var out []string
	for _, s := range list.Items {
		var parts []string
		for _, p := range s.Ports {
			parts = append(parts, fmt.Sprintf("%s:%d", ptr.Deref(p.Name, ""), ptr.Deref(p.Port, 0)))
		}
		line := string(s.AddressType) + " " + strings.Join(parts, ",")
		for _, e := range s.Endpoints {
			state := "N"
			if ptr.Deref(e.Conditions.Ready, false) {
				state = "R"
			}
			line += " " + e.Addresses[0] + "=" + state
			if e.Hostname != nil || e.NodeName != nil {
				line += fmt.Sprintf("(%s@%s)", ptr.Deref(e.Hostname, ""), ptr.Deref(e.NodeName, ""))
			}
		}
		out = append(out, line)
	}
	sort.Strings(out)
	return out, list.Items, nil
}

// TestMirroring runs the controller on the real API server. No garbage
// collector runs, so every slice that disappears was deleted by the
// controller itself.
func TestMirroring(t *testing.T) {
	s := testserver.Start(t, testserver.Options{DisableScheduler: true, Controllers: []string{"namespace", "serviceaccount"}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs := s.Client
	svcs, eps := cs.CoreV1().Services("default"), cs.CoreV1().Endpoints("default")

	cctx := &controller.Context{Client: cs, Informers: informers.NewSharedInformerFactory(cs, 0),
		Logger: slog.New(slog.DiscardHandler), Clock: clock.RealClock{}}
	c, err := endpointslicemirroring.New(cctx)
	if err != nil {
		t.Fatal(err)
	}
	cctx.Informers.Start(ctx.Done())
	go func() { _ = c.Run(ctx) }()

	mustService := func(name string, selector map[string]string) {
		t.Helper()
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ServiceSpec{Selector: selector, Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}}}
		if _, err := svcs.Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	newEndpoints := func(name string) *corev1.Endpoints {
		return &corev1.Endpoints{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"team": "a"},
				Annotations: map[string]string{"note": "x", corev1.EndpointsLastChangeTriggerTime: "2024-01-01T00:00:00Z"}},
			Subsets: []corev1.EndpointSubset{{
				Addresses: []corev1.EndpointAddress{
					{IP: "10.0.0.2"},
					{IP: "10.0.0.1", Hostname: "h1", NodeName: ptr.To("n1")},
					{IP: "fd00::1"},
				},
				NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.0.0.3"}},
				Ports:             []corev1.EndpointPort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}},
			}},
		}
	}
	mustEndpoints := func(ep *corev1.Endpoints) {
		t.Helper()
		if _, err := eps.Create(ctx, ep, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// update applies change to the current Endpoints or Service.
	updateEndpoints := func(name string, change func(*corev1.Endpoints)) {
		t.Helper()
		ep, err := eps.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		change(ep)
		if _, err := eps.Update(ctx, ep, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	updateService := func(name string, change func(*corev1.Service)) {
		t.Helper()
		svc, err := svcs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		change(svc)
		if _, err := svcs.Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitView := func(name string, want ...string) []discoveryv1.EndpointSlice {
		t.Helper()
		var got []string
		var items []discoveryv1.EndpointSlice
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 15*time.Second, true, func(ctx context.Context) (bool, error) {
			var err error
			got, items, err = sliceView(ctx, cs, name)
			return strings.Join(got, "\n") == strings.Join(want, "\n"), err
		})
		if err != nil {
			t.Fatalf("slices of %s (%v):\n%s\nwant:\n%s", name, err, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		return items
	}

	// Opted out, and published by the regular controller: never mirrored.
	mustService("skipped", nil)
	skipped := newEndpoints("skipped")
	skipped.Labels[discoveryv1.LabelSkipMirror] = "true"
	mustEndpoints(skipped)
	mustService("selected", map[string]string{"app": "web"})
	mustEndpoints(newEndpoints("selected"))

	// A selectorless Service and its Endpoints: one slice per family.
	mustService("ext", nil)
	mustEndpoints(newEndpoints("ext"))
	items := waitView("ext",
		"IPv4 http:8080 10.0.0.1=R(h1@n1) 10.0.0.2=R 10.0.0.3=N",
		"IPv6 http:8080 fd00::1=R")
	ep, err := eps.Get(ctx, "ext", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v4Name := ""
	for _, sl := range items {
		if sl.AddressType == discoveryv1.AddressTypeIPv4 {
			v4Name = sl.Name
		}
		ref := metav1.GetControllerOf(&sl)
		switch {
		case !strings.HasPrefix(sl.Name, "ext-"):
			t.Errorf("slice name %q does not start with ext-", sl.Name)
		case sl.Labels[discoveryv1.LabelManagedBy] != endpointslicemirroring.ControllerName || sl.Labels[discoveryv1.LabelServiceName] != "ext" || sl.Labels["team"] != "a":
			t.Errorf("slice labels %v", sl.Labels)
		case sl.Annotations["note"] != "x" || sl.Annotations[corev1.EndpointsLastChangeTriggerTime] != "":
			t.Errorf("slice annotations %v", sl.Annotations)
		case ref == nil || ref.Kind != "Endpoints" || ref.UID != ep.UID:
			t.Errorf("slice owner %+v, want the Endpoints %s", sl.OwnerReferences, ep.UID)
		}
	}

	// An address goes and the port changes: the IPv4 slice is rewritten
	// in place, not replaced.
	updateEndpoints("ext", func(ep *corev1.Endpoints) {
		ss := &ep.Subsets[0]
		ss.Addresses = ss.Addresses[1:]
		ss.Ports[0].Port = 9090
	})
	items = waitView("ext",
		"IPv4 http:9090 10.0.0.1=R(h1@n1) 10.0.0.3=N",
		"IPv6 http:9090 fd00::1=R")
	for _, sl := range items {
		if sl.AddressType == discoveryv1.AddressTypeIPv4 && sl.Name != v4Name {
			t.Errorf("IPv4 slice replaced: %s, was %s", sl.Name, v4Name)
		}
	}

	// Opting out removes the slices; opting back in restores them.
	updateEndpoints("ext", func(ep *corev1.Endpoints) { ep.Labels[discoveryv1.LabelSkipMirror] = "true" })
	waitView("ext")
	updateEndpoints("ext", func(ep *corev1.Endpoints) { delete(ep.Labels, discoveryv1.LabelSkipMirror) })
	restored := []string{"IPv4 http:9090 10.0.0.1=R(h1@n1) 10.0.0.3=N", "IPv6 http:9090 fd00::1=R"}
	waitView("ext", restored...)

	// A selector hands the Service to the regular controller.
	updateService("ext", func(svc *corev1.Service) { svc.Spec.Selector = map[string]string{"app": "ext"} })
	waitView("ext")
	updateService("ext", func(svc *corev1.Service) { svc.Spec.Selector = nil })
	waitView("ext", restored...)

	// Deleting the Endpoints removes the slices.
	if err := eps.Delete(ctx, "ext", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitView("ext")

	// So does deleting the Service.
	mustEndpoints(newEndpoints("ext"))
	waitView("ext", "IPv4 http:8080 10.0.0.1=R(h1@n1) 10.0.0.2=R 10.0.0.3=N", "IPv6 http:8080 fd00::1=R")
	if err := svcs.Delete(ctx, "ext", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitView("ext")

	// By now the controller has long seen the other two.
	for _, name := range []string{"skipped", "selected"} {
		if got, _, err := sliceView(ctx, cs, name); err != nil || len(got) != 0 {
			t.Errorf("%s mirrored: %v (err %v)", name, got, err)
		}
	}
}
