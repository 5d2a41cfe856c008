package endpointslice

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// podOpt changes a test pod.
type podOpt func(*corev1.Pod)

func notReady(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionFalse }
func deleting(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: time.Unix(100, 0)} }
func webPort(n int32) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "web", ContainerPort: n, Protocol: corev1.ProtocolTCP}}
	}
}
func hostname(h, sub string) podOpt {
	return func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = h, sub }
}
func phase(ph corev1.PodPhase) podOpt { return func(p *corev1.Pod) { p.Status.Phase = ph } }

// testPod is a running, ready pod with address 10.0.0.<i> on node n1.
func testPod(i int, opts ...podOpt) *corev1.Pod {
	ip := fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i), Namespace: "ns", UID: types.UID(fmt.Sprintf("uid-%d", i))},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c",
			Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func testService(opts ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "svc", Namespace: "ns", UID: "svc-uid", Labels: map[string]string{"team": "a"}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"}, ClusterIP: "10.96.0.10", IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("web")}},
		},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func publishNotReady(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true }
func headless(s *corev1.Service)        { s.Spec.ClusterIP = corev1.ClusterIPNone }

func zones(name string) (string, bool) {
	if name == "gone" {
		return "", false
	}
	return "zone-a", true
}

func TestEndpointConditions(t *testing.T) {
	type cond struct{ ready, serving, terminating bool }
	cases := []struct {
		name string
		svc  *corev1.Service
		pod  *corev1.Pod
		want cond
	}{
		{"ready", testService(), testPod(1), cond{true, true, false}},
		{"not ready", testService(), testPod(1, notReady), cond{false, false, false}},
		{"terminating but serving", testService(), testPod(1, deleting), cond{false, true, true}},
		{"terminating, not serving", testService(), testPod(1, deleting, notReady), cond{false, false, true}},
		{"publishNotReadyAddresses", testService(publishNotReady), testPod(1, notReady), cond{true, false, false}},
		{"publishNotReadyAddresses, terminating", testService(publishNotReady), testPod(1, deleting), cond{true, true, true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			groups, _ := desiredEndpoints(tc.svc, []*corev1.Pod{tc.pod}, discoveryv1.AddressTypeIPv4, zones)
			if len(groups) != 1 {
				t.Fatalf("got %d port groups, want 1", len(groups))
			}
			for _, g := range groups {
				for _, ep := range g.endpoints {
					got := cond{*ep.Conditions.Ready, *ep.Conditions.Serving, *ep.Conditions.Terminating}
					if got != tc.want {
						t.Errorf("conditions = %+v, want %+v", got, tc.want)
					}
					if *ep.NodeName != "n1" || *ep.Zone != "zone-a" || ep.TargetRef.Name != "p1" || ep.TargetRef.Kind != "Pod" {
						t.Errorf("endpoint = %+v", ep)
					}
				}
			}
		})
	}
}

func TestDesiredEndpointsSelection(t *testing.T) {
	cases := []struct {
		name      string
		svc       *corev1.Service
		pods      []*corev1.Pod
		wantPorts map[string]int // portsKey -> endpoints
		hostname  string
		missing   int
	}{
		{name: "named port resolved per pod splits groups", svc: testService(),
			pods:      []*corev1.Pod{testPod(1), testPod(2, webPort(9090)), testPod(3)},
			wantPorts: map[string]int{"http/TCP/8080/": 2, "http/TCP/9090/": 1}},
		{name: "pods without the port publish no ports", svc: testService(),
			pods:      []*corev1.Pod{testPod(1, func(p *corev1.Pod) { p.Spec.Containers[0].Ports = nil })},
			wantPorts: map[string]int{"": 1}},
		{name: "finished and unaddressed pods are left out", svc: testService(),
			pods: []*corev1.Pod{testPod(1, phase(corev1.PodSucceeded)), testPod(2, phase(corev1.PodFailed)),
				testPod(3, func(p *corev1.Pod) { p.Status.PodIP, p.Status.PodIPs = "", nil })},
			wantPorts: map[string]int{}},
		{name: "headless hostname when subdomain names the service", svc: testService(headless),
			pods: []*corev1.Pod{testPod(1, hostname("web-0", "svc"))}, wantPorts: map[string]int{"http/TCP/8080/": 1}, hostname: "web-0"},
		{name: "no hostname for another subdomain", svc: testService(headless),
			pods: []*corev1.Pod{testPod(1, hostname("web-0", "other"))}, wantPorts: map[string]int{"http/TCP/8080/": 1}},
		{name: "pod on an unknown node is skipped", svc: testService(),
			pods:      []*corev1.Pod{testPod(1, func(p *corev1.Pod) { p.Spec.NodeName = "gone" })},
			wantPorts: map[string]int{}, missing: 1},
		{name: "unless not-ready addresses are published", svc: testService(publishNotReady),
			pods:      []*corev1.Pod{testPod(1, func(p *corev1.Pod) { p.Spec.NodeName = "gone" })},
			wantPorts: map[string]int{"http/TCP/8080/": 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			groups, missing := desiredEndpoints(tc.svc, tc.pods, discoveryv1.AddressTypeIPv4, zones)
			got := map[string]int{}
			for k, g := range groups {
				got[k] = len(g.endpoints)
				for _, ep := range g.endpoints {
					if h := ptr.Deref(ep.Hostname, ""); h != tc.hostname {
						t.Errorf("hostname = %q, want %q", h, tc.hostname)
					}
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.wantPorts) {
				t.Errorf("groups = %v, want %v", got, tc.wantPorts)
			}
			if len(missing) != tc.missing {
				t.Errorf("missing nodes = %v, want %d", missing, tc.missing)
			}
		})
	}
}

// applyPlan plays a plan against a set of slices as the API server would,
// naming new slices.
func applyPlan(existing []*discoveryv1.EndpointSlice, plan slicePlan, next *int) []*discoveryv1.EndpointSlice {
	byName := map[string]*discoveryv1.EndpointSlice{}
	for _, s := range existing {
		byName[s.Name] = s
	}
	for _, s := range plan.update {
		byName[s.Name] = s
	}
	for _, s := range plan.remove {
		delete(byName, s.Name)
	}
	for _, s := range plan.create {
		s = s.DeepCopy()
		*next++
		s.Name = fmt.Sprintf("%s%03d", s.GenerateName, *next)
		byName[s.Name] = s
	}
	out := []*discoveryv1.EndpointSlice{}
	for _, s := range byName {
		out = append(out, s)
	}
	return sortedByName(out)
}

func TestPlanSlices(t *testing.T) {
	pods := func(n int, opts ...podOpt) []*corev1.Pod {
		var out []*corev1.Pod
		for i := 0; i < n; i++ {
			out = append(out, testPod(i, opts...))
		}
		return out
	}
	cases := []struct {
		name   string
		before []*corev1.Pod // pods the slices were built for ("" = none)
		after  []*corev1.Pod
		// writes in the second plan, and the sizes of the slices after it
		creates, updates, removes int
		sizes                     []int
	}{
		{name: "250 endpoints split into 100, 100, 50", after: pods(250),
			creates: 3, sizes: []int{100, 100, 50}},
		{name: "steady state writes nothing", before: pods(250), after: pods(250),
			sizes: []int{100, 100, 50}},
		{name: "one pod goes unready: one update", before: pods(250),
			after:   append(pods(249), testPod(249, notReady)),
			updates: 1, sizes: []int{100, 100, 50}},
		{name: "a new pod joins the slice with room", before: pods(250), after: pods(251),
			updates: 1, sizes: []int{100, 100, 51}},
		// Upstream does not rebalance either: slices shrink where they are.
		{name: "removed pods leave the others where they are", before: pods(250), after: pods(150),
			updates: 2, sizes: []int{60, 40, 50}},
		{name: "a port renumbered: the slice is rewritten, not replaced", before: pods(3), after: pods(3, webPort(9090)),
			updates: 1, sizes: []int{3}},
		{name: "one pod renumbered: a slice of its own", before: pods(3), after: append(pods(2), testPod(2, webPort(9090))),
			updates: 1, creates: 1, sizes: []int{2, 1}},
		{name: "no pods: an empty placeholder", after: nil,
			creates: 1, sizes: []int{0}},
		{name: "the placeholder stays", before: []*corev1.Pod{}, after: nil,
			sizes: []int{0}},
		{name: "the placeholder is reused for the first pod", before: []*corev1.Pod{}, after: pods(1),
			updates: 1, sizes: []int{1}},
		{name: "all pods gone: the slice becomes the placeholder", before: pods(3), after: nil,
			updates: 1, sizes: []int{0}},
	}
	svc := testService()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			next := 0
			var slices []*discoveryv1.EndpointSlice
			if tc.before != nil {
				g, _ := desiredEndpoints(svc, tc.before, discoveryv1.AddressTypeIPv4, zones)
				slices = applyPlan(nil, planSlices(svc, discoveryv1.AddressTypeIPv4, nil, g, MaxEndpointsPerSlice), &next)
			}
			g, _ := desiredEndpoints(svc, tc.after, discoveryv1.AddressTypeIPv4, zones)
			plan := planSlices(svc, discoveryv1.AddressTypeIPv4, slices, g, MaxEndpointsPerSlice)
			if len(plan.create) != tc.creates || len(plan.update) != tc.updates || len(plan.remove) != tc.removes {
				t.Errorf("plan = %d creates, %d updates, %d removes; want %d, %d, %d",
					len(plan.create), len(plan.update), len(plan.remove), tc.creates, tc.updates, tc.removes)
			}
			after := applyPlan(slices, plan, &next)
			var sizes []int
			seen := map[string]bool{}
			for _, s := range after {
				sizes = append(sizes, len(s.Endpoints))
				for _, ep := range s.Endpoints {
					k := endpointKey(&ep)
					if seen[k] {
						t.Errorf("endpoint %s is in two slices", k)
					}
					seen[k] = true
				}
				if s.Labels[discoveryv1.LabelServiceName] != "svc" || s.Labels[discoveryv1.LabelManagedBy] != ControllerName || s.Labels["team"] != "a" {
					t.Errorf("slice %s labels = %v", s.Name, s.Labels)
				}
				if !ownedBy(s, svc) || s.GenerateName != "svc-" {
					t.Errorf("slice %s is not svc's: %+v", s.Name, s.ObjectMeta)
				}
			}
			if fmt.Sprint(sizes) != fmt.Sprint(tc.sizes) {
				t.Errorf("slice sizes = %v, want %v", sizes, tc.sizes)
			}
			if len(seen) != len(tc.after) {
				t.Errorf("%d endpoints published, want %d", len(seen), len(tc.after))
			}
			// Whatever the plan did, planning again is a no-op.
			if again := planSlices(svc, discoveryv1.AddressTypeIPv4, after, g, MaxEndpointsPerSlice); !again.empty() {
				t.Errorf("second plan not empty: %d creates, %d updates, %d removes", len(again.create), len(again.update), len(again.remove))
			}
		})
	}
}

func TestDesiredSubsets(t *testing.T) {
	type want struct {
		ports    string
		ready    []string
		notReady []string
	}
	cases := []struct {
		name string
		svc  *corev1.Service
		pods []*corev1.Pod
		want []want
	}{
		{name: "ready and not ready", svc: testService(),
			pods: []*corev1.Pod{testPod(2), testPod(1, notReady), testPod(10)},
			want: []want{{"http/TCP/8080/", []string{"p2", "p10"}, []string{"p1"}}}},
		{name: "terminating pods leave", svc: testService(),
			pods: []*corev1.Pod{testPod(1), testPod(2, deleting)},
			want: []want{{"http/TCP/8080/", []string{"p1"}, nil}}},
		{name: "publishNotReadyAddresses keeps all, ready", svc: testService(publishNotReady),
			pods: []*corev1.Pod{testPod(1, notReady), testPod(2, deleting)},
			want: []want{{"http/TCP/8080/", []string{"p1", "p2"}, nil}}},
		{name: "named port with different numbers", svc: testService(),
			pods: []*corev1.Pod{testPod(1), testPod(2, webPort(9090))},
			want: []want{{"http/TCP/8080/", []string{"p1"}, nil}, {"http/TCP/9090/", []string{"p2"}, nil}}},
		{name: "headless without ports", svc: testService(headless, func(s *corev1.Service) { s.Spec.Ports = nil }),
			pods: []*corev1.Pod{testPod(1)},
			want: []want{{"", []string{"p1"}, nil}}},
		{name: "no pods, no subsets", svc: testService(), want: []want{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			subsets := desiredSubsets(tc.svc, tc.pods)
			got := []want{}
			names := func(as []corev1.EndpointAddress) []string {
				var out []string
				for _, a := range as {
					out = append(out, a.TargetRef.Name)
				}
				return out
			}
			for _, s := range subsets {
				got = append(got, want{endpointsPortsKey(s.Ports), names(s.Addresses), names(s.NotReadyAddresses)})
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("subsets = %v, want %v", got, tc.want)
			}
		})
	}

	// Headless hostnames carry over to the legacy addresses too.
	subsets := desiredSubsets(testService(headless), []*corev1.Pod{testPod(1, hostname("web-0", "svc"))})
	if h := subsets[0].Addresses[0].Hostname; h != "web-0" {
		t.Errorf("hostname = %q", h)
	}
}

func TestTruncateSubsets(t *testing.T) {
	addrs := func(n int) []corev1.EndpointAddress {
		out := make([]corev1.EndpointAddress, n)
		for i := range out {
			out[i].IP = fmt.Sprintf("10.1.%d.%d", i/250, i%250)
		}
		return out
	}
	cases := []struct {
		name          string
		in            []corev1.EndpointSubset
		truncated     bool
		ready, notRdy []int // per subset after
	}{
		{"at capacity", []corev1.EndpointSubset{{Addresses: addrs(600), NotReadyAddresses: addrs(400)}}, false, []int{600}, []int{400}},
		{"not-ready cut first", []corev1.EndpointSubset{{Addresses: addrs(900), NotReadyAddresses: addrs(200)}}, true, []int{900}, []int{100}},
		{"ready shared in proportion", []corev1.EndpointSubset{{Addresses: addrs(900), NotReadyAddresses: addrs(5)}, {Addresses: addrs(300)}},
			true, []int{750, 250}, []int{0, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, truncated := truncateSubsets(tc.in, MaxEndpointsAddresses)
			if truncated != tc.truncated {
				t.Errorf("truncated = %v", truncated)
			}
			var ready, notReady []int
			for _, s := range out {
				ready = append(ready, len(s.Addresses))
				notReady = append(notReady, len(s.NotReadyAddresses))
			}
			if fmt.Sprint(ready, notReady) != fmt.Sprint(tc.ready, tc.notRdy) {
				t.Errorf("ready %v not ready %v, want %v %v", ready, notReady, tc.ready, tc.notRdy)
			}
		})
	}
}

func TestTriggerTime(t *testing.T) {
	tr := newTriggerTracker()
	svc := testService()
	svc.CreationTimestamp = metav1.NewTime(time.Unix(100, 0))
	at := func(sec int64) podOpt {
		return func(p *corev1.Pod) { p.Status.Conditions[0].LastTransitionTime = metav1.NewTime(time.Unix(sec, 0)) }
	}
	steps := []struct {
		pods []*corev1.Pod
		want int64 // unix seconds, 0 = none
	}{
		{[]*corev1.Pod{testPod(1, at(200))}, 100},                      // new service: its creation
		{[]*corev1.Pod{testPod(1, at(200))}, 0},                        // nothing new
		{[]*corev1.Pod{testPod(1, at(300)), testPod(2, at(250))}, 250}, // earliest change
	}
	for i, s := range steps {
		got := tr.observe("ns/svc", svc, s.pods)
		if (s.want == 0) != got.IsZero() || (s.want != 0 && got.Unix() != s.want) {
			t.Errorf("step %d: trigger = %v, want %d", i, got, s.want)
		}
	}
}
