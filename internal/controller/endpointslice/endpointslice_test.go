package endpointslice_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/controller"
	"github.com/lotse/lotse/internal/controller/endpointslice"
	"github.com/lotse/lotse/internal/sim"
	"github.com/lotse/lotse/internal/testserver"
)

func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	last := ""
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 15*time.Second, true,
		func(context.Context) (bool, error) {
			ok, state := cond()
			last = state
			return ok, nil
		})
	if err != nil {
		t.Fatalf("timed out waiting for %s; last seen: %s", what, last)
	}
}

// view is what kubectl would show of one Service's endpoints, by pod name.
type view struct {
	ready, notReady []string // Endpoints addresses
	slices          []string // per endpoint: pod=ready/serving/terminating
	ports           string
	rvs             string // resourceVersions of everything, to spot writes
}

func (v view) String() string {
	return fmt.Sprintf("endpoints ready=%v notReady=%v ports=%s slices=%v", v.ready, v.notReady, v.ports, v.slices)
}

func look(t *testing.T, s *testserver.Server, name string) view {
	t.Helper()
	ctx := context.Background()
	var v view
	ep, err := s.Client.CoreV1().Endpoints("default").Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		v.rvs = ep.ResourceVersion
		for _, ss := range ep.Subsets {
			for _, a := range ss.Addresses {
				v.ready = append(v.ready, a.TargetRef.Name)
			}
			for _, a := range ss.NotReadyAddresses {
				v.notReady = append(v.notReady, a.TargetRef.Name)
			}
			for _, p := range ss.Ports {
				v.ports += fmt.Sprintf("%s:%d ", p.Name, p.Port)
			}
		}
	} else if !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	list, err := s.Client.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
	if err != nil {
		t.Fatal(err)
	}
	for _, sl := range list.Items {
		v.rvs += "," + sl.ResourceVersion
		for _, ep := range sl.Endpoints {
			v.slices = append(v.slices, fmt.Sprintf("%s=%v/%v/%v", ep.TargetRef.Name,
				*ep.Conditions.Ready, *ep.Conditions.Serving, *ep.Conditions.Terminating))
		}
	}
	sort.Strings(v.ready)
	sort.Strings(v.notReady)
	sort.Strings(v.slices)
	return v
}

func startController(t *testing.T, s *testserver.Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	factory := informers.NewSharedInformerFactory(s.Client, 0)
	c, err := endpointslice.New(&controller.Context{
		Client: s.Client, Informers: factory, Clock: clock.RealClock{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	go func() {
		defer close(done)
		if err := c.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	simulator, err := sim.New(sim.Config{Client: s.Client, Nodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	simDone := make(chan struct{})
	t.Cleanup(func() { cancel(); <-simDone })
	go func() { defer close(simDone); _ = simulator.Run(ctx) }()
}

// TestEndpointsFollowPods runs both loops against the real API server with
// simulated nodes giving the pods addresses and readiness.
func TestEndpointsFollowPods(t *testing.T) {
	s := testserver.Start(t, testserver.Options{Controllers: []string{"*", "-endpointslice"}}) // the test runs its own
	startController(t, s)
	ctx := context.Background()
	pods := s.Client.CoreV1().Pods("default")
	services := s.Client.CoreV1().Services("default")

	svc, err := services.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"team": "a"}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "web"}
	_, err = s.Client.AppsV1().ReplicaSets("default").Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	var v view
	waitFor(t, "3 ready endpoints", func() (bool, string) {
		v = look(t, s, "web")
		return len(v.ready) == 3 && len(v.slices) == 3 && strings.Count(fmt.Sprint(v.slices), "=true/true/false") == 3, v.String()
	})
	if v.ports != "http:8080 " {
		t.Errorf("endpoints ports = %q", v.ports)
	}
	ep, err := s.Client.CoreV1().Endpoints("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// (The last-change-trigger-time annotation is only there when the
	// write that made the object knew its trigger; timing decides, so
	// the unit tests check the trigger bookkeeping, not this test.)
	if ep.Labels["team"] != "a" || ep.Labels[endpointslice.EndpointsManagedBy] != endpointslice.EndpointsControllerName || ep.Labels["endpointslice.kubernetes.io/skip-mirror"] != "true" {
		t.Errorf("endpoints metadata = %+v", ep.ObjectMeta)
	}
	slices, err := s.Client.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
	if err != nil || len(slices.Items) != 1 {
		t.Fatalf("slices = %v, %v", slices, err)
	}
	sl := slices.Items[0]
	if !strings.HasPrefix(sl.Name, "web-") || sl.AddressType != discoveryv1.AddressTypeIPv4 ||
		sl.Labels[discoveryv1.LabelManagedBy] != endpointslice.ControllerName || sl.Labels["team"] != "a" ||
		len(sl.OwnerReferences) != 1 || sl.OwnerReferences[0].UID != svc.UID || !*sl.OwnerReferences[0].Controller {
		t.Errorf("slice metadata = %+v", sl.ObjectMeta)
	}
	if len(sl.Ports) != 1 || *sl.Ports[0].Name != "http" || *sl.Ports[0].Port != 8080 || *sl.Ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("slice ports = %+v", sl.Ports)
	}
	for _, e := range sl.Endpoints {
		if e.NodeName == nil || !strings.HasPrefix(*e.NodeName, "sim-") || len(e.Addresses) != 1 {
			t.Errorf("endpoint = %+v", e)
		}
	}

	// Nothing changes, nothing is written.
	time.Sleep(500 * time.Millisecond)
	if again := look(t, s, "web"); again.rvs != v.rvs {
		t.Errorf("objects rewritten without a change: %s then %s", v.rvs, again.rvs)
	}

	// A pod going unready moves to notReadyAddresses and ready=false.
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	unready := list.Items[0].DeepCopy()
	for i, c := range unready.Status.Conditions {
		if c.Type == corev1.PodReady || c.Type == corev1.ContainersReady {
			unready.Status.Conditions[i].Status = corev1.ConditionFalse
			unready.Status.Conditions[i].LastTransitionTime = metav1.Now()
		}
	}
	if _, err := pods.UpdateStatus(ctx, unready, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the unready pod in notReadyAddresses", func() (bool, string) {
		v = look(t, s, "web")
		return len(v.ready) == 2 && fmt.Sprint(v.notReady) == "["+unready.Name+"]" &&
			strings.Contains(fmt.Sprint(v.slices), unready.Name+"=false/false/false"), v.String()
	})

	// A pod being deleted is terminating in its slice and gone from the
	// Endpoints; once deleted it is gone from both.
	leaving := list.Items[1].Name
	if err := pods.Delete(ctx, leaving, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](30)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the leaving pod terminating", func() (bool, string) {
		v = look(t, s, "web")
		return !strings.Contains(fmt.Sprint(v.ready, v.notReady), leaving) &&
			strings.Contains(fmt.Sprint(v.slices), leaving+"=false/true/true"), v.String()
	})
	if err := pods.Delete(ctx, leaving, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	waitFor(t, "the deleted pod gone and its replacement ready", func() (bool, string) {
		v = look(t, s, "web")
		return !strings.Contains(v.String(), leaving) && len(v.ready) == 2 && len(v.notReady) == 1 && len(v.slices) == 3, v.String()
	})

	// A selector nothing matches empties both; a pod labelled to match
	// comes back alone.
	patch := []byte(`{"spec":{"selector":{"app":"web","tier":"front"}}}`)
	if _, err := services.Patch(ctx, "web", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "no endpoints", func() (bool, string) {
		v = look(t, s, "web")
		return len(v.ready)+len(v.notReady)+len(v.slices) == 0, v.String()
	})
	chosen := list.Items[2].Name
	if _, err := pods.Patch(ctx, chosen, types.MergePatchType, []byte(`{"metadata":{"labels":{"tier":"front"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the relabelled pod alone", func() (bool, string) {
		v = look(t, s, "web")
		return fmt.Sprint(v.ready) == "["+chosen+"]" && len(v.notReady) == 0 && fmt.Sprint(v.slices) == "["+chosen+"=true/true/false]", v.String()
	})

	// The Service goes and so does everything published for it.
	if err := services.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "endpoints and slices deleted", func() (bool, string) {
		v = look(t, s, "web")
		return v.rvs == "", v.rvs
	})
}
