package printers

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Helpers that build container states as the kubelet reports them.
func running() corev1.ContainerState {
	return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: ago(time.Hour)}}
}

func waiting(reason string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
}

func terminated(reason string, exit, signal int32) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: exit, Signal: signal}}
}

func lastTerminated(finished time.Duration) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, FinishedAt: ago(finished)}}
}

func containers(names ...string) []corev1.Container {
	var out []corev1.Container
	for _, n := range names {
		out = append(out, corev1.Container{Name: n, Image: n + ":1"})
	}
	return out
}

func sidecar(name string) corev1.Container {
	return corev1.Container{Name: name, RestartPolicy: ptr(corev1.ContainerRestartPolicyAlways)}
}

func cond(t corev1.PodConditionType, s corev1.ConditionStatus) corev1.PodCondition {
	return corev1.PodCondition{Type: t, Status: s}
}

// TestPodStatus checks READY, STATUS and RESTARTS against what kubectl
// prints for the same pod on an upstream cluster.
func TestPodStatus(t *testing.T) {
	cases := []struct {
		name                    string
		pod                     corev1.Pod
		ready, status, restarts string
	}{
		{
			name: "running and ready",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{Containers: containers("a", "b")},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{cond(corev1.PodReady, corev1.ConditionTrue)},
					ContainerStatuses: []corev1.ContainerStatus{{Name: "a", Ready: true, State: running()}, {Name: "b", Ready: true, State: running()}}},
			},
			ready: "2/2", status: "Running", restarts: "0",
		},
		{
			name: "running but one container not ready",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{Containers: containers("a", "b")},
				Status: corev1.PodStatus{Phase: corev1.PodRunning,
					ContainerStatuses: []corev1.ContainerStatus{{Name: "a", Ready: true, State: running()}, {Name: "b", State: running()}}},
			},
			ready: "1/2", status: "Running", restarts: "0",
		},
		{
			name:  "pending, not yet scheduled",
			pod:   corev1.Pod{Spec: corev1.PodSpec{Containers: containers("a")}, Status: corev1.PodStatus{Phase: corev1.PodPending}},
			ready: "0/1", status: "Pending", restarts: "0",
		},
		{
			name: "scheduling gated",
			pod: corev1.Pod{Spec: corev1.PodSpec{Containers: containers("a")}, Status: corev1.PodStatus{Phase: corev1.PodPending,
				Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "SchedulingGated"}}}},
			ready: "0/1", status: "SchedulingGated", restarts: "0",
		},
		{
			name: "container creating",
			pod: corev1.Pod{Spec: corev1.PodSpec{Containers: containers("a")}, Status: corev1.PodStatus{Phase: corev1.PodPending,
				ContainerStatuses: []corev1.ContainerStatus{{Name: "a", State: waiting("ContainerCreating")}}}},
			ready: "0/1", status: "ContainerCreating", restarts: "0",
		},
		{
			name: "image pull backoff",
			pod: corev1.Pod{Spec: corev1.PodSpec{Containers: containers("a")}, Status: corev1.PodStatus{Phase: corev1.PodPending,
				ContainerStatuses: []corev1.ContainerStatus{{Name: "a", State: waiting("ImagePullBackOff")}}}},
			ready: "0/1", status: "ImagePullBackOff", restarts: "0",
		},
		{
			name: "crash loop with last restart time",
			pod: corev1.Pod{Spec: corev1.PodSpec{Containers: containers("a")}, Status: corev1.PodStatus{Phase: corev1.PodRunning,
				ContainerStatuses: []corev1.ContainerStatus{{Name: "a", RestartCount: 3, State: waiting("CrashLoopBackOff"), LastTerminationState: lastTerminated(5 * time.Minute)}}}},
			ready: "0/1", status: "CrashLoopBackOff", restarts: "3 (5m ago)",
		},
		{
			name: "restarts without a known last termination",
			pod: corev1.Pod{Spec: corev1.PodSpec{Containers: containers("a")}, Status: corev1.PodStatus{Phase: corev1.PodRunning,
				ContainerStatuses: []corev1.ContainerStatus{{Name: "a", Ready: true, RestartCount: 2, State: running()}}}},
			ready: "1/1", status: "Running", restarts: "2",
		},
		{
			name: "restarts summed, latest termination shown",
			pod: corev1.Pod{Spec: corev1.PodSpec{Containers: containers("a", "b")}, Status: corev1.PodStatus{Phase: corev1.PodRunning,
				ContainerStatuses: []corev1.ContainerStatus{
					{Name: "a", Ready: true, RestartCount: 1, State: running(), LastTerminationState: lastTerminated(3 * time.Hour)},
					{Name: "b", Ready: true, RestartCount: 4, State: running(), LastTerminationState: lastTerminated(90 * time.Second)},
				}}},
			ready: "2/2", status: "Running", restarts: "5 (90s ago)",
		},
		{
			name: "first of two init containers running",
			pod: corev1.Pod{Spec: corev1.PodSpec{InitContainers: containers("i1", "i2"), Containers: containers("a")}, Status: corev1.PodStatus{Phase: corev1.PodPending,
				InitContainerStatuses: []corev1.ContainerStatus{{Name: "i1", State: running()}, {Name: "i2", State: waiting("PodInitializing")}},
				ContainerStatuses:     []corev1.ContainerStatus{{Name: "a", State: waiting("PodInitializing")}}}},
			ready: "0/1", status: "Init:0/2", restarts: "0",
		},
		{
			name: "second init container waiting to initialize",
			pod: corev1.Pod{Spec: corev1.PodSpec{InitContainers: containers("i1", "i2"), Containers: containers("a")}, Status: corev1.PodStatus{Phase: corev1.PodPending,
				InitContainerStatuses: []corev1.ContainerStatus{{Name: "i1", State: terminated("Completed", 0, 0)}, {Name: "i2", State: waiting("PodInitializing")}}}},
			ready: "0/1", status: "Init:1/2", restarts: "0",
		},
		{
			name: "init container crash looping counts its restarts",
			pod: corev1.Pod{Spec: corev1.PodSpec{InitContainers: containers("i1"), Containers: containers("a")}, Status: corev1.PodStatus{Phase: corev1.PodPending,
				InitContainerStatuses: []corev1.ContainerStatus{{Name: "i1", RestartCount: 4, State: waiting("CrashLoopBackOff"), LastTerminationState: lastTerminated(time.Minute)}},
				ContainerStatuses:     []corev1.ContainerStatus{{Name: "a", State: waiting("PodInitializing")}}}},
			ready: "0/1", status: "Init:CrashLoopBackOff", restarts: "4 (60s ago)",
		},
		{
			name: "init container failed with a reason",
			pod: corev1.Pod{Spec: corev1.PodSpec{InitContainers: containers("i1"), Containers: containers("a")}, Status: corev1.PodStatus{Phase: corev1.PodFailed,
				InitContainerStatuses: []corev1.ContainerStatus{{Name: "i1", State: terminated("Error", 1, 0)}}}},
			ready: "0/1", status: "Init:Error", restarts: "0",
		},
		{
			name: "init container exit code without reason",
			pod: corev1.Pod{Spec: corev1.PodSpec{InitContainers: containers("i1"), Containers: containers("a")}, Status: corev1.PodStatus{Phase: corev1.PodPending,
				InitContainerStatuses: []corev1.ContainerStatus{{Name: "i1", State: terminated("", 2, 0)}}}},
			ready: "0/1", status: "Init:ExitCode:2", restarts: "0",
		},
		{
			name: "init container killed by signal",
			pod: corev1.Pod{Spec: corev1.PodSpec{InitContainers: containers("i1"), Containers: containers("a")}, Status: corev1.PodStatus{Phase: corev1.PodPending,
				InitContainerStatuses: []corev1.ContainerStatus{{Name: "i1", State: terminated("", 137, 9)}}}},
			ready: "0/1", status: "Init:Signal:9", restarts: "0",
		},
		{
			name: "init done, app container starting",
			pod: corev1.Pod{Spec: corev1.PodSpec{InitContainers: containers("i1"), Containers: containers("a")}, Status: corev1.PodStatus{Phase: corev1.PodPending,
				InitContainerStatuses: []corev1.ContainerStatus{{Name: "i1", RestartCount: 2, State: terminated("Completed", 0, 0), LastTerminationState: lastTerminated(time.Minute)}},
				ContainerStatuses:     []corev1.ContainerStatus{{Name: "a", State: waiting("PodInitializing")}}}},
			// Restarts of finished init containers stop counting once they are done.
			ready: "0/1", status: "PodInitializing", restarts: "0",
		},
		{
			name: "sidecar started and ready alongside app container",
			pod: corev1.Pod{Spec: corev1.PodSpec{InitContainers: []corev1.Container{sidecar("proxy")}, Containers: containers("a")}, Status: corev1.PodStatus{Phase: corev1.PodRunning,
				Conditions:            []corev1.PodCondition{cond(corev1.PodInitialized, corev1.ConditionTrue), cond(corev1.PodReady, corev1.ConditionTrue)},
				InitContainerStatuses: []corev1.ContainerStatus{{Name: "proxy", Started: ptr(true), Ready: true, RestartCount: 2, State: running(), LastTerminationState: lastTerminated(10 * time.Minute)}},
				ContainerStatuses:     []corev1.ContainerStatus{{Name: "a", Ready: true, RestartCount: 1, State: running(), LastTerminationState: lastTerminated(3 * time.Minute)}}}},
			ready: "2/2", status: "Running", restarts: "3 (3m ago)",
		},
		{
			name: "sidecar started, next init container running",
			pod: corev1.Pod{Spec: corev1.PodSpec{InitContainers: []corev1.Container{sidecar("proxy"), {Name: "setup"}}, Containers: containers("a")}, Status: corev1.PodStatus{Phase: corev1.PodPending,
				InitContainerStatuses: []corev1.ContainerStatus{{Name: "proxy", Started: ptr(true), Ready: true, State: running()}, {Name: "setup", State: running()}}}},
			ready: "1/2", status: "Init:1/2", restarts: "0",
		},
		{
			name: "completed",
			pod: corev1.Pod{Spec: corev1.PodSpec{Containers: containers("a")}, Status: corev1.PodStatus{Phase: corev1.PodSucceeded,
				ContainerStatuses: []corev1.ContainerStatus{{Name: "a", State: terminated("Completed", 0, 0)}}}},
			ready: "0/1", status: "Completed", restarts: "0",
		},
		{
			name: "error",
			pod: corev1.Pod{Spec: corev1.PodSpec{Containers: containers("a")}, Status: corev1.PodStatus{Phase: corev1.PodFailed,
				ContainerStatuses: []corev1.ContainerStatus{{Name: "a", State: terminated("Error", 1, 0)}}}},
			ready: "0/1", status: "Error", restarts: "0",
		},
		{
			name: "OOM killed",
			pod: corev1.Pod{Spec: corev1.PodSpec{Containers: containers("a")}, Status: corev1.PodStatus{Phase: corev1.PodRunning,
				ContainerStatuses: []corev1.ContainerStatus{{Name: "a", RestartCount: 1, State: terminated("OOMKilled", 137, 0), LastTerminationState: lastTerminated(4 * time.Hour)}}}},
			ready: "0/1", status: "OOMKilled", restarts: "1 (4h ago)",
		},
		{
			name: "exit code without reason",
			pod: corev1.Pod{Spec: corev1.PodSpec{Containers: containers("a")}, Status: corev1.PodStatus{Phase: corev1.PodFailed,
				ContainerStatuses: []corev1.ContainerStatus{{Name: "a", State: terminated("", 3, 0)}}}},
			ready: "0/1", status: "ExitCode:3", restarts: "0",
		},
		{
			name: "signal without reason",
			pod: corev1.Pod{Spec: corev1.PodSpec{Containers: containers("a")}, Status: corev1.PodStatus{Phase: corev1.PodFailed,
				ContainerStatuses: []corev1.ContainerStatus{{Name: "a", State: terminated("", 0, 15)}}}},
			ready: "0/1", status: "Signal:15", restarts: "0",
		},
		{
			name: "one container completed, other running and pod ready",
			pod: corev1.Pod{Spec: corev1.PodSpec{Containers: containers("a", "b")}, Status: corev1.PodStatus{Phase: corev1.PodRunning,
				Conditions:        []corev1.PodCondition{cond(corev1.PodReady, corev1.ConditionTrue)},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "a", Ready: true, State: running()}, {Name: "b", State: terminated("Completed", 0, 0)}}}},
			ready: "1/2", status: "Running", restarts: "0",
		},
		{
			name: "one container completed, other running, pod not ready",
			pod: corev1.Pod{Spec: corev1.PodSpec{Containers: containers("a", "b")}, Status: corev1.PodStatus{Phase: corev1.PodRunning,
				Conditions:        []corev1.PodCondition{cond(corev1.PodReady, corev1.ConditionFalse)},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "a", Ready: true, State: running()}, {Name: "b", State: terminated("Completed", 0, 0)}}}},
			ready: "1/2", status: "NotReady", restarts: "0",
		},
		{
			name: "first container completed, second failed",
			pod: corev1.Pod{Spec: corev1.PodSpec{Containers: containers("a", "b")}, Status: corev1.PodStatus{Phase: corev1.PodFailed,
				ContainerStatuses: []corev1.ContainerStatus{{Name: "a", State: terminated("Completed", 0, 0)}, {Name: "b", State: terminated("Error", 2, 0)}}}},
			ready: "0/2", status: "Error", restarts: "0",
		},
		{
			name: "evicted",
			pod: corev1.Pod{Spec: corev1.PodSpec{Containers: containers("a")}, Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted",
				ContainerStatuses: []corev1.ContainerStatus{{Name: "a", State: terminated("ContainerStatusUnknown", 137, 0)}}}},
			ready: "0/1", status: "ContainerStatusUnknown", restarts: "0",
		},
		{
			name:  "evicted before any container status",
			pod:   corev1.Pod{Spec: corev1.PodSpec{Containers: containers("a")}, Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted"}},
			ready: "0/1", status: "Evicted", restarts: "0",
		},
		{
			name: "terminating",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: agoPtr(time.Second)}, Spec: corev1.PodSpec{Containers: containers("a")},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "a", Ready: true, State: running()}}}},
			ready: "1/1", status: "Terminating", restarts: "0",
		},
		{
			name: "deleted after it completed stays Completed",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: agoPtr(time.Second)}, Spec: corev1.PodSpec{Containers: containers("a")},
				Status: corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{Name: "a", State: terminated("Completed", 0, 0)}}}},
			ready: "0/1", status: "Completed", restarts: "0",
		},
		{
			name: "node lost while deleting",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: agoPtr(time.Second)}, Spec: corev1.PodSpec{Containers: containers("a")},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, Reason: "NodeLost", ContainerStatuses: []corev1.ContainerStatus{{Name: "a", Ready: true, State: running()}}}},
			ready: "1/1", status: "Unknown", restarts: "0",
		},
		{
			name:  "unknown phase",
			pod:   corev1.Pod{Spec: corev1.PodSpec{Containers: containers("a")}, Status: corev1.PodStatus{Phase: corev1.PodUnknown}},
			ready: "0/1", status: "Unknown", restarts: "0",
		},
		{
			name:  "empty pod",
			pod:   corev1.Pod{},
			ready: "0/0", status: "", restarts: "0",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cells := podPrinter.Cells(&tc.pod, now)
			got := []interface{}{cells[1], cells[2], cells[3]}
			want := []interface{}{tc.ready, tc.status, tc.restarts}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("READY STATUS RESTARTS = %q, want %q", got, want)
			}
		})
	}
}

func TestPodWideColumns(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", CreationTimestamp: ago(48 * time.Hour)},
		Spec: corev1.PodSpec{
			Containers:     containers("a"),
			NodeName:       "node-1",
			ReadinessGates: []corev1.PodReadinessGate{{ConditionType: "example.com/lb"}, {ConditionType: "example.com/dns"}},
		},
		Status: corev1.PodStatus{
			Phase:             corev1.PodRunning,
			PodIP:             "10.1.0.9",
			PodIPs:            []corev1.PodIP{{IP: "10.1.0.9"}, {IP: "fd00::9"}},
			NominatedNodeName: "",
			Conditions:        []corev1.PodCondition{cond("example.com/lb", corev1.ConditionTrue), cond("example.com/dns", corev1.ConditionFalse)},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "a", Ready: true, State: running()}},
		},
	}
	want := []interface{}{"web-1", "1/1", "Running", "0", "2d", "10.1.0.9", "node-1", "<none>", "1/2"}
	if got := podPrinter.Cells(pod, now); !reflect.DeepEqual(got, want) {
		t.Errorf("cells = %#v\nwant %#v", got, want)
	}

	// Only the singular podIP set (an object that skipped defaulting).
	bare := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Status: corev1.PodStatus{PodIP: "10.0.0.3"}}
	want = []interface{}{"p", "0/0", "", "0", "<unknown>", "10.0.0.3", "<none>", "<none>", "<none>"}
	if got := podPrinter.Cells(bare, now); !reflect.DeepEqual(got, want) {
		t.Errorf("cells = %#v\nwant %#v", got, want)
	}
}

func qty(s string) resource.Quantity { return resource.MustParse(s) }

// TestCoreCells holds one row per case, written from what kubectl shows for
// the same object.
func TestCoreCells(t *testing.T) {
	created := ago(5 * time.Minute)
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: created}
	}
	cases := []struct {
		name string
		p    Printer
		obj  runtime.Object
		want []interface{}
	}{
		{"namespace", namespacePrinter,
			&corev1.Namespace{ObjectMeta: meta("kube-system"), Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
			[]interface{}{"kube-system", "Active", "5m"}},
		{"service cluster IP", servicePrinter,
			&corev1.Service{ObjectMeta: meta("web"), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"},
				Ports:    []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}, {Port: 53, Protocol: corev1.ProtocolUDP}},
				Selector: map[string]string{"app": "web"}}},
			[]interface{}{"web", "ClusterIP", "10.96.0.10", "<none>", "80/TCP,53/UDP", "5m", "app=web"}},
		{"service headless without ports", servicePrinter,
			&corev1.Service{ObjectMeta: meta("db"), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "None"}},
			[]interface{}{"db", "ClusterIP", "None", "<none>", "<none>", "5m", "<none>"}},
		{"service node port with external IP", servicePrinter,
			&corev1.Service{ObjectMeta: meta("np"), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIPs: []string{"10.96.1.1"}, ExternalIPs: []string{"1.1.1.1", "2.2.2.2"},
				Ports: []corev1.ServicePort{{Port: 80, NodePort: 30080, Protocol: corev1.ProtocolTCP}}}},
			[]interface{}{"np", "NodePort", "10.96.1.1", "1.1.1.1,2.2.2.2", "80:30080/TCP", "5m", "<none>"}},
		{"service load balancer pending", servicePrinter,
			&corev1.Service{ObjectMeta: meta("lb"), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.96.2.2"},
				Ports: []corev1.ServicePort{{Port: 443, NodePort: 31443, Protocol: corev1.ProtocolTCP}}}},
			[]interface{}{"lb", "LoadBalancer", "10.96.2.2", "<pending>", "443:31443/TCP", "5m", "<none>"}},
		{"service load balancer with addresses", servicePrinter,
			&corev1.Service{ObjectMeta: meta("lb"), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.96.2.2"}, ExternalIPs: []string{"9.9.9.9"}},
				Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{
					{IP: "5.6.7.8"}, {Hostname: "a-very-long-load-balancer.example.com"}, {IP: "5.6.7.8"}}}}},
			[]interface{}{"lb", "LoadBalancer", "10.96.2.2", "5.6.7.8,a-very-long-load-balancer.example.com,9.9.9.9", "<none>", "5m", "<none>"}},
		{"service external name", servicePrinter,
			&corev1.Service{ObjectMeta: meta("ext"), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}},
			[]interface{}{"ext", "ExternalName", "<none>", "db.example.com", "<none>", "5m", "<none>"}},
		{"endpoints none", endpointsPrinter,
			&corev1.Endpoints{ObjectMeta: meta("web")},
			[]interface{}{"web", "<none>", "5m"}},
		{"endpoints more than three", endpointsPrinter,
			&corev1.Endpoints{ObjectMeta: meta("web"), Subsets: []corev1.EndpointSubset{{
				Addresses: []corev1.EndpointAddress{{IP: "10.0.0.1"}, {IP: "10.0.0.2"}},
				Ports:     []corev1.EndpointPort{{Name: "http", Port: 80}, {Name: "https", Port: 443}},
			}}},
			[]interface{}{"web", "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...", "5m"}},
		{"endpoints exactly three, IPv6 and headless", endpointsPrinter,
			&corev1.Endpoints{ObjectMeta: meta("web"), Subsets: []corev1.EndpointSubset{
				{Addresses: []corev1.EndpointAddress{{IP: "fd00::1"}}, Ports: []corev1.EndpointPort{{Port: 8080}}},
				{Addresses: []corev1.EndpointAddress{{IP: "10.0.0.7"}, {IP: "10.0.0.8"}}},
			}},
			[]interface{}{"web", "[fd00::1]:8080,10.0.0.7,10.0.0.8", "5m"}},
		{"configmap", configMapPrinter,
			&corev1.ConfigMap{ObjectMeta: meta("cfg"), Data: map[string]string{"a": "1", "b": "2"}, BinaryData: map[string][]byte{"c": {1}}},
			[]interface{}{"cfg", int64(3), "5m"}},
		{"secret", secretPrinter,
			&corev1.Secret{ObjectMeta: meta("tls"), Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": nil, "tls.key": nil}},
			[]interface{}{"tls", "kubernetes.io/tls", int64(2), "5m"}},
		{"secret with stringData", secretPrinter,
			&corev1.Secret{ObjectMeta: meta("s"), Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"a": nil}, StringData: map[string]string{"a": "x", "b": "y"}},
			[]interface{}{"s", "Opaque", int64(2), "5m"}},
		{"node ready and cordoned", nodePrinter,
			&corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: "n1", CreationTimestamp: ago(3 * time.Hour), Labels: map[string]string{
					"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/worker": "true", "kubernetes.io/role": "edge", "node-role.kubernetes.io/": ""}},
				Spec: corev1.NodeSpec{Unschedulable: true},
				Status: corev1.NodeStatus{
					Conditions: []corev1.NodeCondition{{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse}, {Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
					Addresses:  []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "n1"}, {Type: corev1.NodeInternalIP, Address: "192.168.1.10"}},
					NodeInfo:   corev1.NodeSystemInfo{KubeletVersion: "v1.33.0", OSImage: "Debian GNU/Linux 13 (trixie)", KernelVersion: "6.12.0", ContainerRuntimeVersion: "containerd://2.0.0"},
				},
			},
			[]interface{}{"n1", "Ready,SchedulingDisabled", "control-plane,edge,worker", "3h", "v1.33.0", "192.168.1.10", "<none>", "Debian GNU/Linux 13 (trixie)", "6.12.0", "containerd://2.0.0"}},
		{"node not ready", nodePrinter,
			&corev1.Node{ObjectMeta: meta("n2"), Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown}},
				Addresses: []corev1.NodeAddress{{Type: corev1.NodeExternalIP, Address: "203.0.113.5"}}}},
			[]interface{}{"n2", "NotReady", "<none>", "5m", "", "<none>", "203.0.113.5", "<unknown>", "<unknown>", "<unknown>"}},
		{"node without conditions", nodePrinter,
			&corev1.Node{ObjectMeta: meta("n3")},
			[]interface{}{"n3", "Unknown", "<none>", "5m", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"}},
		{"service account", serviceAccountPrinter,
			&corev1.ServiceAccount{ObjectMeta: meta("default")},
			[]interface{}{"default", "5m"}},
		{"resource quota", resourceQuotaPrinter,
			&corev1.ResourceQuota{ObjectMeta: meta("compute"), Status: corev1.ResourceQuotaStatus{
				Hard: corev1.ResourceList{"requests.cpu": qty("1"), "requests.memory": qty("1Gi"), "pods": qty("10"), "limits.cpu": qty("2")},
				Used: corev1.ResourceList{"requests.cpu": qty("500m"), "pods": qty("3")},
			}},
			[]interface{}{"compute", "pods: 3/10, requests.cpu: 500m/1, requests.memory: 0/1Gi", "limits.cpu: 0/2", "5m"}},
		{"persistent volume bound", persistentVolumePrinter,
			&corev1.PersistentVolume{ObjectMeta: meta("pv1"), Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: qty("10Gi")},
				AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany, corev1.ReadWriteOnce, corev1.ReadWriteOnce},
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
				ClaimRef:                      &corev1.ObjectReference{Namespace: "default", Name: "data"},
				StorageClassName:              "standard",
				VolumeMode:                    ptr(corev1.PersistentVolumeFilesystem),
			}, Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound}},
			[]interface{}{"pv1", "10Gi", "RWO,RWX", "Retain", "Bound", "default/data", "standard", "<unset>", "", "5m", "Filesystem"}},
		{"persistent volume terminating, beta class annotation", persistentVolumePrinter,
			&corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv2", CreationTimestamp: created, DeletionTimestamp: agoPtr(time.Second),
				Annotations: map[string]string{"volume.beta.kubernetes.io/storage-class": "old"}},
				Spec:   corev1.PersistentVolumeSpec{StorageClassName: "new", VolumeAttributesClassName: ptr("gold")},
				Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeReleased, Reason: "Released"}},
			[]interface{}{"pv2", "0", "", "", "Terminating", "", "old", "gold", "Released", "5m", "<unset>"}},
		{"claim bound", persistentVolumeClaimPrinter,
			&corev1.PersistentVolumeClaim{ObjectMeta: meta("data"),
				Spec: corev1.PersistentVolumeClaimSpec{VolumeName: "pv1", StorageClassName: ptr("standard"),
					Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: qty("5Gi")}}},
				Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, Capacity: corev1.ResourceList{corev1.ResourceStorage: qty("10Gi")},
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod}}},
			[]interface{}{"data", "Bound", "pv1", "10Gi", "RWOP", "standard", "<unset>", "5m", "<unset>"}},
		{"claim pending", persistentVolumeClaimPrinter,
			&corev1.PersistentVolumeClaim{ObjectMeta: meta("data"),
				Spec:   corev1.PersistentVolumeClaimSpec{VolumeMode: ptr(corev1.PersistentVolumeBlock)},
				Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}},
			[]interface{}{"data", "Pending", "", "", "", "", "<unset>", "5m", "Block"}},
		{"pod template", podTemplatePrinter,
			&corev1.PodTemplate{ObjectMeta: meta("tpl"), Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "tier": "fe"}},
				Spec:       corev1.PodSpec{Containers: containers("web", "sidecar")}}},
			[]interface{}{"tpl", "web,sidecar", "web:1,sidecar:1", "app=web,tier=fe"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.Cells(tc.obj, now); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("cells = %#v\nwant    %#v", got, tc.want)
			}
		})
	}
}

func TestEventCells(t *testing.T) {
	core := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "web-1.17f", Namespace: "default"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web-1", FieldPath: "spec.containers{web}"},
		Reason:         "BackOff",
		Message:        "Back-off restarting failed container\n",
		Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
		FirstTimestamp: ago(10 * time.Minute),
		LastTimestamp:  ago(30 * time.Second),
		Count:          7,
		Type:           corev1.EventTypeWarning,
	}
	want := []interface{}{"30s", "Warning", "BackOff", "pod/web-1", "spec.containers{web}", "kubelet, node-1",
		"Back-off restarting failed container", "10m", int64(7), "web-1.17f"}
	if got := eventPrinter.Cells(core, now); !reflect.DeepEqual(got, want) {
		t.Errorf("core event cells = %#v\nwant %#v", got, want)
	}

	// Written through events.k8s.io: no deprecated timestamps, a series,
	// and a reporting controller in place of the source.
	series := &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: "ev2"},
		EventTime:           metav1.NewMicroTime(now.Add(-4 * time.Hour)),
		Series:              &eventsv1.EventSeries{Count: 4, LastObservedTime: metav1.NewMicroTime(now.Add(-time.Minute))},
		ReportingController: "lotse.io/scheduler",
		Regarding:           corev1.ObjectReference{Kind: "Node"},
		Reason:              "Scheduled",
		Note:                "ok",
		Type:                corev1.EventTypeNormal,
	}
	want = []interface{}{"60s", "Normal", "Scheduled", "node", "", "lotse.io/scheduler", "ok", "4h", int64(4), "ev2"}
	if got := eventsV1Printer.Cells(series, now); !reflect.DeepEqual(got, want) {
		t.Errorf("events/v1 cells = %#v\nwant %#v", got, want)
	}

	// A singleton events.k8s.io event has no count and is shown as 1.
	single := &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Name: "ev3"}, EventTime: metav1.NewMicroTime(now.Add(-3 * time.Minute)),
		ReportingController: "c", ReportingInstance: "i", Regarding: corev1.ObjectReference{Kind: "Deployment", Name: "d"}}
	want = []interface{}{"3m", "", "", "deployment/d", "", "c, i", "", "3m", int64(1), "ev3"}
	if got := eventsV1Printer.Cells(single, now); !reflect.DeepEqual(got, want) {
		t.Errorf("singleton cells = %#v\nwant %#v", got, want)
	}
}
