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
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func podTemplate(names ...string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: containers(names...)}}
}

// TestGroupCells covers the kinds outside core/v1, one row per case,
// written from what kubectl shows for the same object.
func TestGroupCells(t *testing.T) {
	created := ago(5 * time.Minute)
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: created}
	}
	selector := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	cases := []struct {
		name string
		p    Printer
		obj  runtime.Object
		want []interface{}
	}{
		{"deployment", deploymentPrinter,
			&appsv1.Deployment{ObjectMeta: meta("web"), Spec: appsv1.DeploymentSpec{Replicas: ptr[int32](3), Selector: selector, Template: podTemplate("web", "log")},
				Status: appsv1.DeploymentStatus{ReadyReplicas: 2, UpdatedReplicas: 3, AvailableReplicas: 2}},
			[]interface{}{"web", "2/3", int64(3), int64(2), "5m", "web,log", "web:1,log:1", "app=web"}},
		{"deployment without selector", deploymentPrinter,
			&appsv1.Deployment{ObjectMeta: meta("d")},
			[]interface{}{"d", "0/0", int64(0), int64(0), "5m", "", "", ""}},
		{"deployment with invalid selector", deploymentPrinter,
			&appsv1.Deployment{ObjectMeta: meta("d"), Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Bogus"}}}}},
			[]interface{}{"d", "0/0", int64(0), int64(0), "5m", "", "", "<invalid>"}},
		{"replica set", replicaSetPrinter,
			&appsv1.ReplicaSet{ObjectMeta: meta("web-5d4f"), Spec: appsv1.ReplicaSetSpec{Replicas: ptr[int32](2), Selector: selector, Template: podTemplate("web")},
				Status: appsv1.ReplicaSetStatus{Replicas: 2, ReadyReplicas: 1}},
			[]interface{}{"web-5d4f", int64(2), int64(2), int64(1), "5m", "web", "web:1", "app=web"}},
		{"replica set without selector", replicaSetPrinter,
			&appsv1.ReplicaSet{ObjectMeta: meta("rs")},
			[]interface{}{"rs", int64(0), int64(0), int64(0), "5m", "", "", "<none>"}},
		{"daemon set", daemonSetPrinter,
			&appsv1.DaemonSet{ObjectMeta: meta("proxy"), Spec: appsv1.DaemonSetSpec{Selector: selector, Template: corev1.PodTemplateSpec{
				Spec: corev1.PodSpec{Containers: containers("proxy"), NodeSelector: map[string]string{"kubernetes.io/os": "linux"}}}},
				Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 2, UpdatedNumberScheduled: 3, NumberAvailable: 2}},
			[]interface{}{"proxy", int64(3), int64(3), int64(2), int64(3), int64(2), "kubernetes.io/os=linux", "5m", "proxy", "proxy:1", "app=web"}},
		{"stateful set", statefulSetPrinter,
			&appsv1.StatefulSet{ObjectMeta: meta("db"), Spec: appsv1.StatefulSetSpec{Replicas: ptr[int32](3), Template: podTemplate("db")},
				Status: appsv1.StatefulSetStatus{ReadyReplicas: 3}},
			[]interface{}{"db", "3/3", "5m", "db", "db:1"}},
		{"controller revision", controllerRevisionPrinter,
			&appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: "db-7c9", CreationTimestamp: created, OwnerReferences: []metav1.OwnerReference{
				{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", Controller: ptr(true)}}}, Revision: 2},
			[]interface{}{"db-7c9", "statefulset.apps/db", int64(2), "5m"}},
		{"controller revision owned by a core kind", controllerRevisionPrinter,
			&appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: "x", CreationTimestamp: created, OwnerReferences: []metav1.OwnerReference{
				{APIVersion: "v1", Kind: "Pod", Name: "p", Controller: ptr(true)}}}, Revision: 1},
			[]interface{}{"x", "pod/p", int64(1), "5m"}},
		{"controller revision without controller", controllerRevisionPrinter,
			&appsv1.ControllerRevision{ObjectMeta: meta("y"), Revision: 1},
			[]interface{}{"y", "<none>", int64(1), "5m"}},
		{"job running", jobPrinter,
			&batchv1.Job{ObjectMeta: meta("pi"), Spec: batchv1.JobSpec{Completions: ptr[int32](5), Parallelism: ptr[int32](2), Selector: selector, Template: podTemplate("pi")},
				Status: batchv1.JobStatus{Succeeded: 2, StartTime: agoPtr(3 * time.Minute)}},
			[]interface{}{"pi", "Running", "2/5", "3m", "5m", "pi", "pi:1", "app=web"}},
		{"job complete", jobPrinter,
			&batchv1.Job{ObjectMeta: meta("pi"), Spec: batchv1.JobSpec{Completions: ptr[int32](1), Template: podTemplate("pi")},
				Status: batchv1.JobStatus{Succeeded: 1, StartTime: agoPtr(4 * time.Minute), CompletionTime: agoPtr(4*time.Minute - 12*time.Second),
					Conditions: []batchv1.JobCondition{{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue}, {Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}},
			[]interface{}{"pi", "Complete", "1/1", "12s", "5m", "pi", "pi:1", "<none>"}},
		{"job work queue failed", jobPrinter,
			&batchv1.Job{ObjectMeta: meta("q"), Spec: batchv1.JobSpec{Parallelism: ptr[int32](3)},
				Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue}, {Type: batchv1.JobFailed, Status: corev1.ConditionTrue}}}},
			[]interface{}{"q", "Failed", "0/1 of 3", "", "5m", "", "", "<none>"}},
		{"job suspended", jobPrinter,
			&batchv1.Job{ObjectMeta: meta("s"), Spec: batchv1.JobSpec{Parallelism: ptr[int32](1)},
				Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobSuspended, Status: corev1.ConditionTrue}}}},
			[]interface{}{"s", "Suspended", "0/1", "", "5m", "", "", "<none>"}},
		{"job resumed (suspended false)", jobPrinter,
			&batchv1.Job{ObjectMeta: meta("s"), Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobSuspended, Status: corev1.ConditionFalse}}}},
			[]interface{}{"s", "Running", "0/1", "", "5m", "", "", "<none>"}},
		{"job terminating", jobPrinter,
			&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "t", CreationTimestamp: created, DeletionTimestamp: agoPtr(time.Second)},
				Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobSuspended, Status: corev1.ConditionTrue}}}},
			[]interface{}{"t", "Terminating", "0/1", "", "5m", "", "", "<none>"}},
		{"job failure target", jobPrinter,
			&batchv1.Job{ObjectMeta: meta("f"), Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue}}}},
			[]interface{}{"f", "FailureTarget", "0/1", "", "5m", "", "", "<none>"}},
		{"job success criteria met", jobPrinter,
			&batchv1.Job{ObjectMeta: meta("c"), Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue}}}},
			[]interface{}{"c", "SuccessCriteriaMet", "0/1", "", "5m", "", "", "<none>"}},
		{"cron job", cronJobPrinter,
			&batchv1.CronJob{ObjectMeta: meta("nightly"), Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *", TimeZone: ptr("Europe/Berlin"), Suspend: ptr(false),
				JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: podTemplate("backup")}}},
				Status: batchv1.CronJobStatus{Active: []corev1.ObjectReference{{Name: "nightly-1"}}, LastScheduleTime: agoPtr(90 * time.Second)}},
			[]interface{}{"nightly", "0 3 * * *", "Europe/Berlin", "False", int64(1), "90s", "5m", "backup", "backup:1", "<none>"}},
		{"cron job never scheduled", cronJobPrinter,
			&batchv1.CronJob{ObjectMeta: meta("c"), Spec: batchv1.CronJobSpec{Schedule: "@hourly"}},
			[]interface{}{"c", "@hourly", "<none>", "<unset>", int64(0), "<none>", "5m", "", "", "<none>"}},
		{"hpa v2 utilization", hpaV2Printer,
			&autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: meta("web"),
				Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
					ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "web"},
					MinReplicas:    ptr[int32](1), MaxReplicas: 10,
					Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
						Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr[int32](50)}}}},
				},
				Status: autoscalingv2.HorizontalPodAutoscalerStatus{CurrentReplicas: 2, CurrentMetrics: []autoscalingv2.MetricStatus{{Type: autoscalingv2.ResourceMetricSourceType,
					Resource: &autoscalingv2.ResourceMetricStatus{Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptr[int32](20)}}}}},
			},
			[]interface{}{"web", "Deployment/web", "cpu: 20%/50%", "1", int64(10), int64(2), "5m"}},
		{"hpa v2 several metrics, no status yet", hpaV2Printer,
			&autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: meta("web"),
				Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
					ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "web"}, MaxReplicas: 5,
					Metrics: []autoscalingv2.MetricSpec{
						{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
							Name: corev1.ResourceMemory, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr(qty("200Mi"))}}},
						{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
							Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr(qty("1k"))}}},
						{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
							Target: autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: ptr(qty("30"))}}},
					},
				}},
			[]interface{}{"web", "Deployment/web", "memory: <unknown>/200Mi, <unknown>/1k + 1 more...", "<unset>", int64(5), int64(0), "5m"}},
		{"hpa v2 object, external avg and container resource", hpaV2Printer,
			&autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: meta("q"),
				Spec: autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "StatefulSet", Name: "q"}, MaxReplicas: 3,
					Metrics: []autoscalingv2.MetricSpec{
						{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{
							Target: autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: ptr(qty("10"))}}},
						{Type: autoscalingv2.ContainerResourceMetricSourceType, ContainerResource: &autoscalingv2.ContainerResourceMetricSource{
							Name: corev1.ResourceCPU, Container: "app", Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType}}},
					}},
				Status: autoscalingv2.HorizontalPodAutoscalerStatus{CurrentMetrics: []autoscalingv2.MetricStatus{
					{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricStatus{Current: autoscalingv2.MetricValueStatus{Value: ptr(qty("7"))}}},
					{Type: autoscalingv2.ContainerResourceMetricSourceType, ContainerResource: &autoscalingv2.ContainerResourceMetricStatus{
						Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptr[int32](33)}}},
				}}},
			[]interface{}{"q", "StatefulSet/q", "7/10, cpu: 33%/<auto>", "<unset>", int64(3), int64(0), "5m"}},
		{"hpa v2 metric type without its source", hpaV2Printer,
			&autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: meta("bad"), Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ExternalMetricSourceType}}}},
			[]interface{}{"bad", "/", "<unknown type>", "<unset>", int64(0), int64(0), "5m"}},
		{"hpa v1 without current utilisation", hpaV1Printer,
			&autoscalingv1.HorizontalPodAutoscaler{ObjectMeta: meta("web"), Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{Kind: "Deployment", Name: "web"},
				MinReplicas:    ptr[int32](2), MaxReplicas: 4, TargetCPUUtilizationPercentage: ptr[int32](50)}},
			[]interface{}{"web", "Deployment/web", "cpu: <unknown>/50%", "2", int64(4), int64(0), "5m"}},
		{"hpa v1 with current utilisation", hpaV1Printer,
			&autoscalingv1.HorizontalPodAutoscaler{ObjectMeta: meta("web"), Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{Kind: "Deployment", Name: "web"},
				MaxReplicas:    4, TargetCPUUtilizationPercentage: ptr[int32](80)},
				Status: autoscalingv1.HorizontalPodAutoscalerStatus{CurrentReplicas: 3, CurrentCPUUtilizationPercentage: ptr[int32](95)}},
			[]interface{}{"web", "Deployment/web", "cpu: 95%/80%", "<unset>", int64(4), int64(3), "5m"}},
		{"ingress", ingressPrinter,
			&networkingv1.Ingress{ObjectMeta: meta("web"), Spec: networkingv1.IngressSpec{IngressClassName: ptr("nginx"),
				Rules: []networkingv1.IngressRule{{Host: "a.example.com"}, {Host: "b.example.com"}}, TLS: []networkingv1.IngressTLS{{Hosts: []string{"a.example.com"}}}},
				Status: networkingv1.IngressStatus{LoadBalancer: networkingv1.IngressLoadBalancerStatus{Ingress: []networkingv1.IngressLoadBalancerIngress{
					{IP: "192.0.2.10"}, {Hostname: "lb.example.com"}}}}},
			[]interface{}{"web", "nginx", "a.example.com,b.example.com", "192.0.2.10,lb.example.com", "80, 443", "5m"}},
		{"ingress with many rules and no class", ingressPrinter,
			&networkingv1.Ingress{ObjectMeta: meta("many"), Spec: networkingv1.IngressSpec{
				Rules: []networkingv1.IngressRule{{Host: "a"}, {}, {Host: "c"}, {Host: "d"}, {Host: "e"}}}},
			[]interface{}{"many", "<none>", "a,c,d + 2 more...", "", "80", "5m"}},
		{"ingress with exactly three hosts", ingressPrinter,
			&networkingv1.Ingress{ObjectMeta: meta("three"), Spec: networkingv1.IngressSpec{
				Rules: []networkingv1.IngressRule{{Host: "a"}, {Host: "b"}, {Host: "c"}}}},
			[]interface{}{"three", "<none>", "a,b,c", "", "80", "5m"}},
		{"ingress with one host among empty rules", ingressPrinter,
			&networkingv1.Ingress{ObjectMeta: meta("one"), Spec: networkingv1.IngressSpec{
				Rules: []networkingv1.IngressRule{{Host: "a"}, {}, {}, {}, {}}}},
			[]interface{}{"one", "<none>", "a", "", "80", "5m"}},
		{"ingress without hosts", ingressPrinter,
			&networkingv1.Ingress{ObjectMeta: meta("all"), Spec: networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{}}},
			[]interface{}{"all", "<none>", "*", "", "80", "5m"}},
		{"ingress class", ingressClassPrinter,
			&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "nginx", CreationTimestamp: created}, Spec: networkingv1.IngressClassSpec{
				Controller: "k8s.io/ingress-nginx", Parameters: &networkingv1.IngressClassParametersReference{APIGroup: ptr("k8s.example.com"), Kind: "IngressParameters", Name: "p"}}},
			[]interface{}{"nginx", "k8s.io/ingress-nginx", "IngressParameters.k8s.example.com/p", "5m"}},
		{"ingress class without parameters", ingressClassPrinter,
			&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "c", CreationTimestamp: created}, Spec: networkingv1.IngressClassSpec{Controller: "x/y"}},
			[]interface{}{"c", "x/y", "<none>", "5m"}},
		{"network policy", networkPolicyPrinter,
			&networkingv1.NetworkPolicy{ObjectMeta: meta("deny"), Spec: networkingv1.NetworkPolicySpec{PodSelector: *selector}},
			[]interface{}{"deny", "app=web", "5m"}},
		{"network policy for all pods", networkPolicyPrinter,
			&networkingv1.NetworkPolicy{ObjectMeta: meta("deny-all")},
			[]interface{}{"deny-all", "<none>", "5m"}},
		{"endpoint slice", endpointSlicePrinter,
			&discoveryv1.EndpointSlice{ObjectMeta: meta("web-abc"), AddressType: discoveryv1.AddressTypeIPv4,
				Ports:     []discoveryv1.EndpointPort{{Port: ptr[int32](80)}, {Name: ptr("metrics")}, {}, {Port: ptr[int32](443)}},
				Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}}, {Addresses: []string{"10.0.0.2", "10.0.0.3"}}}},
			[]interface{}{"web-abc", "IPv4", "80,metrics,* + 1 more...", "10.0.0.1,10.0.0.2,10.0.0.3", "5m"}},
		{"endpoint slice empty", endpointSlicePrinter,
			&discoveryv1.EndpointSlice{ObjectMeta: meta("e"), AddressType: discoveryv1.AddressTypeIPv6},
			[]interface{}{"e", "IPv6", "<unset>", "<unset>", "5m"}},
		{"lease", leasePrinter,
			&coordinationv1.Lease{ObjectMeta: meta("lotse-scheduler"), Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("host-1_abc")}},
			[]interface{}{"lotse-scheduler", "host-1_abc", "5m"}},
		{"pod disruption budget", podDisruptionBudgetPrinter,
			&policyv1.PodDisruptionBudget{ObjectMeta: meta("web"), Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr(intstr.FromString("50%"))},
				Status: policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 1}},
			[]interface{}{"web", "50%", "N/A", int64(1), "5m"}},
		{"pod disruption budget max unavailable", podDisruptionBudgetPrinter,
			&policyv1.PodDisruptionBudget{ObjectMeta: meta("db"), Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr(intstr.FromInt32(1))}},
			[]interface{}{"db", "N/A", "1", int64(0), "5m"}},
		{"role binding", roleBindingPrinter,
			&rbacv1.RoleBinding{ObjectMeta: meta("read"), RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"}, Subjects: []rbacv1.Subject{
				{Kind: "User", Name: "alice"}, {Kind: "Group", Name: "devs"}, {Kind: "ServiceAccount", Namespace: "ci", Name: "runner"},
				{Kind: "User", Name: "bob"}, {Kind: "Robot", Name: "r2"}}},
			[]interface{}{"read", "ClusterRole/view", "5m", "alice, bob", "devs", "ci/runner"}},
		{"cluster role binding", clusterRoleBindingPrinter,
			&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "admins", CreationTimestamp: created},
				RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "cluster-admin"}, Subjects: []rbacv1.Subject{{Kind: "Group", Name: "system:masters"}}},
			[]interface{}{"admins", "ClusterRole/cluster-admin", "5m", "", "system:masters", ""}},
		{"priority class", priorityClassPrinter,
			&schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "system-node-critical", CreationTimestamp: created}, Value: 2000001000,
				PreemptionPolicy: ptr(corev1.PreemptLowerPriority)},
			[]interface{}{"system-node-critical", int64(2000001000), false, "5m", "PreemptLowerPriority"}},
		{"priority class default without policy", priorityClassPrinter,
			&schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "low", CreationTimestamp: created}, Value: -5, GlobalDefault: true},
			[]interface{}{"low", int64(-5), true, "5m", ""}},
		{"default storage class", storageClassPrinter,
			&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "local-path", CreationTimestamp: created,
				Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
				Provisioner: "lotse.io/local-path", VolumeBindingMode: ptr(storagev1.VolumeBindingWaitForFirstConsumer)},
			[]interface{}{"local-path (default)", "lotse.io/local-path", "Delete", "WaitForFirstConsumer", false, "5m"}},
		{"storage class with beta default annotation", storageClassPrinter,
			&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "old", CreationTimestamp: created,
				Annotations: map[string]string{"storageclass.beta.kubernetes.io/is-default-class": "true"}},
				Provisioner: "p", ReclaimPolicy: ptr(corev1.PersistentVolumeReclaimRetain), AllowVolumeExpansion: ptr(true)},
			[]interface{}{"old (default)", "p", "Retain", "Immediate", true, "5m"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.Cells(tc.obj, now); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("cells = %#v\nwant    %#v", got, tc.want)
			}
		})
	}
}

// TestForDispatch checks For picks the printer by group, version and kind,
// so the same Kind name in two groups gets the right columns.
func TestForDispatch(t *testing.T) {
	if got := For(gvk("events.k8s.io", "v1", "Event")).Columns[0].Name; got != "Last Seen" {
		t.Errorf("events.k8s.io Event first column = %q", got)
	}
	if got := len(For(gvk("apps", "v2", "Deployment")).Columns); got != 2 {
		t.Errorf("unserved version should get the default table, got %d columns", got)
	}
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "j"}}
	if got := For(gvk("batch", "v1", "Job")).Cells(job, now)[1]; got != "Running" {
		t.Errorf("job status = %v", got)
	}
}
