package printers

import (
	"reflect"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// now is the fixed "current time" every test measures ages against.
var now = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }

func agoPtr(d time.Duration) *metav1.Time { t := ago(d); return &t }

func ptr[T any](v T) *T { return &v }

// served is every kind the API server serves with an empty object of its Go
// type; kinds with a dedicated printer must all appear here.
var served = map[schema.GroupVersionKind]func() runtime.Object{
	gvk("", "v1", "Namespace"):                                   func() runtime.Object { return &corev1.Namespace{} },
	gvk("", "v1", "Pod"):                                         func() runtime.Object { return &corev1.Pod{} },
	gvk("", "v1", "Service"):                                     func() runtime.Object { return &corev1.Service{} },
	gvk("", "v1", "Endpoints"):                                   func() runtime.Object { return &corev1.Endpoints{} },
	gvk("", "v1", "ConfigMap"):                                   func() runtime.Object { return &corev1.ConfigMap{} },
	gvk("", "v1", "Secret"):                                      func() runtime.Object { return &corev1.Secret{} },
	gvk("", "v1", "Node"):                                        func() runtime.Object { return &corev1.Node{} },
	gvk("", "v1", "Event"):                                       func() runtime.Object { return &corev1.Event{} },
	gvk("", "v1", "ServiceAccount"):                              func() runtime.Object { return &corev1.ServiceAccount{} },
	gvk("", "v1", "LimitRange"):                                  func() runtime.Object { return &corev1.LimitRange{} },
	gvk("", "v1", "ResourceQuota"):                               func() runtime.Object { return &corev1.ResourceQuota{} },
	gvk("", "v1", "PersistentVolume"):                            func() runtime.Object { return &corev1.PersistentVolume{} },
	gvk("", "v1", "PersistentVolumeClaim"):                       func() runtime.Object { return &corev1.PersistentVolumeClaim{} },
	gvk("", "v1", "PodTemplate"):                                 func() runtime.Object { return &corev1.PodTemplate{} },
	gvk("apps", "v1", "Deployment"):                              func() runtime.Object { return &appsv1.Deployment{} },
	gvk("apps", "v1", "ReplicaSet"):                              func() runtime.Object { return &appsv1.ReplicaSet{} },
	gvk("apps", "v1", "DaemonSet"):                               func() runtime.Object { return &appsv1.DaemonSet{} },
	gvk("apps", "v1", "StatefulSet"):                             func() runtime.Object { return &appsv1.StatefulSet{} },
	gvk("apps", "v1", "ControllerRevision"):                      func() runtime.Object { return &appsv1.ControllerRevision{} },
	gvk("batch", "v1", "Job"):                                    func() runtime.Object { return &batchv1.Job{} },
	gvk("batch", "v1", "CronJob"):                                func() runtime.Object { return &batchv1.CronJob{} },
	gvk("autoscaling", "v2", "HorizontalPodAutoscaler"):          func() runtime.Object { return &autoscalingv2.HorizontalPodAutoscaler{} },
	gvk("autoscaling", "v1", "HorizontalPodAutoscaler"):          func() runtime.Object { return &autoscalingv1.HorizontalPodAutoscaler{} },
	gvk("networking.k8s.io", "v1", "Ingress"):                    func() runtime.Object { return &networkingv1.Ingress{} },
	gvk("networking.k8s.io", "v1", "IngressClass"):               func() runtime.Object { return &networkingv1.IngressClass{} },
	gvk("networking.k8s.io", "v1", "NetworkPolicy"):              func() runtime.Object { return &networkingv1.NetworkPolicy{} },
	gvk("discovery.k8s.io", "v1", "EndpointSlice"):               func() runtime.Object { return &discoveryv1.EndpointSlice{} },
	gvk("coordination.k8s.io", "v1", "Lease"):                    func() runtime.Object { return &coordinationv1.Lease{} },
	gvk("policy", "v1", "PodDisruptionBudget"):                   func() runtime.Object { return &policyv1.PodDisruptionBudget{} },
	gvk("rbac.authorization.k8s.io", "v1", "Role"):               func() runtime.Object { return &rbacv1.Role{} },
	gvk("rbac.authorization.k8s.io", "v1", "RoleBinding"):        func() runtime.Object { return &rbacv1.RoleBinding{} },
	gvk("rbac.authorization.k8s.io", "v1", "ClusterRole"):        func() runtime.Object { return &rbacv1.ClusterRole{} },
	gvk("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"): func() runtime.Object { return &rbacv1.ClusterRoleBinding{} },
	gvk("events.k8s.io", "v1", "Event"):                          func() runtime.Object { return &eventsv1.Event{} },
	gvk("scheduling.k8s.io", "v1", "PriorityClass"):              func() runtime.Object { return &schedulingv1.PriorityClass{} },
	gvk("storage.k8s.io", "v1", "StorageClass"):                  func() runtime.Object { return &storagev1.StorageClass{} },
}

func TestEveryPrinterIsServed(t *testing.T) {
	for k := range byKind {
		if _, ok := served[k]; !ok {
			t.Errorf("printer for %v has no entry in the served list of this test", k)
		}
	}
}

// TestRowWidthMatchesColumns runs every printer on an empty object, on an
// object of the wrong type and on a nil pointer: none may panic, and every
// row must have one cell per column.
func TestRowWidthMatchesColumns(t *testing.T) {
	for k, newObj := range served {
		p := For(k)
		check := func(what string, obj runtime.Object) {
			t.Helper()
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%v %s: panic: %v", k, what, r)
				}
			}()
			if got := p.Cells(obj, now); len(got) != len(p.Columns) {
				t.Errorf("%v %s: %d cells for %d columns: %#v", k, what, len(got), len(p.Columns), got)
			}
		}
		check("empty object", newObj())
		check("wrong type", &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "x"}})
		check("nil object", nil)
		check("typed nil", reflect.Zero(reflect.TypeOf(newObj())).Interface().(runtime.Object))
	}
}

func TestColumnDefinitions(t *testing.T) {
	validTypes := map[string]bool{"string": true, "integer": true, "boolean": true, "date": true, "number": true}
	for k := range served {
		p := For(k)
		names := 0
		for _, c := range p.Columns {
			if !validTypes[c.Type] {
				t.Errorf("%v column %q: type %q is not an OpenAPI type", k, c.Name, c.Type)
			}
			if c.Description == "" {
				t.Errorf("%v column %q has no description", k, c.Name)
			}
			if c.Format == "name" {
				names++
			}
		}
		if names != 1 {
			t.Errorf("%v: %d columns with format name, want 1", k, names)
		}
		if k.Kind != "Event" && p.Columns[0].Name != "Name" {
			t.Errorf("%v: first column %q, want Name", k, p.Columns[0].Name)
		}
	}
}

// columnNames gives the headers as kubectl prints them: upper case, with
// and without -o wide.
func columnNames(p Printer, wide bool) []string {
	var out []string
	for _, c := range p.Columns {
		if c.Priority == 0 || wide {
			out = append(out, c.Name)
		}
	}
	return out
}

func TestHeaders(t *testing.T) {
	cases := []struct {
		gvk        schema.GroupVersionKind
		plain, all []string
	}{
		{gvk("", "v1", "Pod"), []string{"Name", "Ready", "Status", "Restarts", "Age"},
			[]string{"Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"}},
		{gvk("apps", "v1", "Deployment"), []string{"Name", "Ready", "Up-to-date", "Available", "Age"},
			[]string{"Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"}},
		{gvk("", "v1", "Service"), []string{"Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"},
			[]string{"Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"}},
		{gvk("", "v1", "Node"), []string{"Name", "Status", "Roles", "Age", "Version"},
			[]string{"Name", "Status", "Roles", "Age", "Version", "Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime"}},
		{gvk("", "v1", "Event"), []string{"Last Seen", "Type", "Reason", "Object", "Message"},
			[]string{"Last Seen", "Type", "Reason", "Object", "Subobject", "Source", "Message", "First Seen", "Count", "Name"}},
		{gvk("batch", "v1", "Job"), []string{"Name", "Status", "Completions", "Duration", "Age"}, nil},
		{gvk("batch", "v1", "CronJob"), []string{"Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age"}, nil},
		{gvk("", "v1", "ConfigMap"), []string{"Name", "Data", "Age"}, nil},
		{gvk("", "v1", "Secret"), []string{"Name", "Type", "Data", "Age"}, nil},
		{gvk("", "v1", "Namespace"), []string{"Name", "Status", "Age"}, nil},
		{gvk("", "v1", "ResourceQuota"), []string{"Name", "Request", "Limit", "Age"}, nil},
		{gvk("", "v1", "PersistentVolumeClaim"), []string{"Name", "Status", "Volume", "Capacity", "Access Modes", "StorageClass", "VolumeAttributesClass", "Age"}, nil},
		{gvk("", "v1", "PersistentVolume"), []string{"Name", "Capacity", "Access Modes", "Reclaim Policy", "Status", "Claim", "StorageClass", "VolumeAttributesClass", "Reason", "Age"}, nil},
		{gvk("autoscaling", "v2", "HorizontalPodAutoscaler"), []string{"Name", "Reference", "Targets", "MinPods", "MaxPods", "Replicas", "Age"}, nil},
		{gvk("autoscaling", "v1", "HorizontalPodAutoscaler"), []string{"Name", "Reference", "Targets", "MinPods", "MaxPods", "Replicas", "Age"}, nil},
		{gvk("networking.k8s.io", "v1", "Ingress"), []string{"Name", "Class", "Hosts", "Address", "Ports", "Age"}, nil},
		{gvk("", "v1", "Endpoints"), []string{"Name", "Endpoints", "Age"}, nil},
		{gvk("discovery.k8s.io", "v1", "EndpointSlice"), []string{"Name", "AddressType", "Ports", "Endpoints", "Age"}, nil},
		{gvk("apps", "v1", "StatefulSet"), []string{"Name", "Ready", "Age"}, nil},
		{gvk("apps", "v1", "DaemonSet"), []string{"Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age"}, nil},
		{gvk("apps", "v1", "ReplicaSet"), []string{"Name", "Desired", "Current", "Ready", "Age"}, nil},
		{gvk("rbac.authorization.k8s.io", "v1", "RoleBinding"), []string{"Name", "Role", "Age"},
			[]string{"Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"}},
		{gvk("rbac.authorization.k8s.io", "v1", "Role"), []string{"Name", "Created At"}, nil},
		{gvk("rbac.authorization.k8s.io", "v1", "ClusterRole"), []string{"Name", "Created At"}, nil},
		{gvk("", "v1", "LimitRange"), []string{"Name", "Created At"}, nil},
		{gvk("example.com", "v1", "Widget"), []string{"Name", "Created At"}, nil},
		{gvk("scheduling.k8s.io", "v1", "PriorityClass"), []string{"Name", "Value", "Global-Default", "Age", "PreemptionPolicy"}, nil},
		{gvk("storage.k8s.io", "v1", "StorageClass"), []string{"Name", "Provisioner", "ReclaimPolicy", "VolumeBindingMode", "AllowVolumeExpansion", "Age"}, nil},
		{gvk("policy", "v1", "PodDisruptionBudget"), []string{"Name", "Min Available", "Max Unavailable", "Allowed Disruptions", "Age"}, nil},
		{gvk("", "v1", "PodTemplate"), []string{"Name", "Containers", "Images", "Pod Labels"}, nil},
		{gvk("", "v1", "ServiceAccount"), []string{"Name", "Age"}, nil},
	}
	for _, tc := range cases {
		p := For(tc.gvk)
		if got := columnNames(p, false); !reflect.DeepEqual(got, tc.plain) {
			t.Errorf("%v headers = %q, want %q", tc.gvk, got, tc.plain)
		}
		if tc.all == nil {
			continue
		}
		if got := columnNames(p, true); !reflect.DeepEqual(got, tc.all) {
			t.Errorf("%v wide headers = %q, want %q", tc.gvk, got, tc.all)
		}
	}
}

func TestDefaultPrinter(t *testing.T) {
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "reader", CreationTimestamp: metav1.NewTime(time.Date(2024, 5, 6, 7, 8, 9, 0, time.FixedZone("X", 3600)))}}
	got := For(gvk("rbac.authorization.k8s.io", "v1", "Role")).Cells(role, now)
	want := []interface{}{"reader", "2024-05-06T06:08:09Z"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cells = %#v, want %#v", got, want)
	}
	if c := For(gvk("", "v1", "LimitRange")).Columns[1]; c.Type != "date" {
		t.Errorf("Created At type = %q, want date", c.Type)
	}
}
