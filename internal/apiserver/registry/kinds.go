package registry

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func gvk(group, version, kind string) schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: group, Version: version, Kind: kind}
}

// Default returns the registry of every kind lotse serves.
func Default() *Registry {
	all := []string{"all"}
	return New([]*Kind{
		// core/v1
		{GVK: gvk("", "v1", "Namespace"), Resource: "namespaces", ShortNames: []string{"ns"}, Subresources: []string{"status", "finalize"},
			FieldLabels: func(o runtime.Object) map[string]string {
				return map[string]string{"status.phase": string(o.(*corev1.Namespace).Status.Phase)}
			}},
		{GVK: gvk("", "v1", "Pod"), Resource: "pods", ShortNames: []string{"po"}, Categories: all, Namespaced: true,
			Subresources: []string{"status", "binding", "eviction", "ephemeralcontainers", "log", "exec", "attach", "portforward"}, FieldLabels: podFields},
		{GVK: gvk("", "v1", "Service"), Resource: "services", ShortNames: []string{"svc"}, Categories: all, Namespaced: true,
			Subresources: []string{"status"},
			FieldLabels: func(o runtime.Object) map[string]string {
				s := o.(*corev1.Service)
				return map[string]string{"spec.clusterIP": s.Spec.ClusterIP, "spec.type": string(s.Spec.Type)}
			}},
		{GVK: gvk("", "v1", "Endpoints"), Resource: "endpoints", Singular: "endpoints", ShortNames: []string{"ep"}, Namespaced: true},
		{GVK: gvk("", "v1", "ConfigMap"), Resource: "configmaps", ShortNames: []string{"cm"}, Namespaced: true},
		{GVK: gvk("", "v1", "Secret"), Resource: "secrets", Namespaced: true,
			FieldLabels: func(o runtime.Object) map[string]string {
				return map[string]string{"type": string(o.(*corev1.Secret).Type)}
			}},
		{GVK: gvk("", "v1", "Node"), Resource: "nodes", ShortNames: []string{"no"}, Subresources: []string{"status"},
			FieldLabels: func(o runtime.Object) map[string]string {
				return map[string]string{"spec.unschedulable": strconv.FormatBool(o.(*corev1.Node).Spec.Unschedulable)}
			}},
		{GVK: gvk("", "v1", "Event"), Resource: "events", ShortNames: []string{"ev"}, Namespaced: true, FieldLabels: eventFields},
		{GVK: gvk("", "v1", "ServiceAccount"), Resource: "serviceaccounts", ShortNames: []string{"sa"}, Namespaced: true, Subresources: []string{"token"}},
		{GVK: gvk("", "v1", "LimitRange"), Resource: "limitranges", ShortNames: []string{"limits"}, Namespaced: true},
		{GVK: gvk("", "v1", "ResourceQuota"), Resource: "resourcequotas", ShortNames: []string{"quota"}, Namespaced: true, Subresources: []string{"status"}},
		{GVK: gvk("", "v1", "PersistentVolume"), Resource: "persistentvolumes", ShortNames: []string{"pv"}, Subresources: []string{"status"}},
		{GVK: gvk("", "v1", "PersistentVolumeClaim"), Resource: "persistentvolumeclaims", ShortNames: []string{"pvc"}, Namespaced: true, Subresources: []string{"status"}},
		{GVK: gvk("", "v1", "PodTemplate"), Resource: "podtemplates", Namespaced: true},

		// apps/v1
		{GVK: gvk("apps", "v1", "Deployment"), Resource: "deployments", ShortNames: []string{"deploy"}, Categories: all, Namespaced: true, Subresources: []string{"status", "scale"}},
		{GVK: gvk("apps", "v1", "ReplicaSet"), Resource: "replicasets", ShortNames: []string{"rs"}, Categories: all, Namespaced: true, Subresources: []string{"status", "scale"},
			FieldLabels: func(o runtime.Object) map[string]string {
				return map[string]string{"status.replicas": strconv.Itoa(int(o.(*appsv1.ReplicaSet).Status.Replicas))}
			}},
		{GVK: gvk("apps", "v1", "DaemonSet"), Resource: "daemonsets", ShortNames: []string{"ds"}, Categories: all, Namespaced: true, Subresources: []string{"status"}},
		{GVK: gvk("apps", "v1", "StatefulSet"), Resource: "statefulsets", ShortNames: []string{"sts"}, Categories: all, Namespaced: true, Subresources: []string{"status", "scale"}},
		{GVK: gvk("apps", "v1", "ControllerRevision"), Resource: "controllerrevisions", Namespaced: true},

		// batch/v1
		{GVK: gvk("batch", "v1", "Job"), Resource: "jobs", Categories: all, Namespaced: true, Subresources: []string{"status"},
			FieldLabels: func(o runtime.Object) map[string]string {
				return map[string]string{"status.successful": strconv.Itoa(int(o.(*batchv1.Job).Status.Succeeded))}
			}},
		{GVK: gvk("batch", "v1", "CronJob"), Resource: "cronjobs", ShortNames: []string{"cj"}, Categories: all, Namespaced: true, Subresources: []string{"status"}},

		// autoscaling: v2 is stored and preferred, v1 is converted.
		{GVK: gvk("autoscaling", "v2", "HorizontalPodAutoscaler"), Resource: "horizontalpodautoscalers", ShortNames: []string{"hpa"}, Categories: all, Namespaced: true,
			Subresources: []string{"status"}, Preferred: true},
		{GVK: gvk("autoscaling", "v1", "HorizontalPodAutoscaler"), Resource: "horizontalpodautoscalers", ShortNames: []string{"hpa"}, Categories: all, Namespaced: true,
			Subresources: []string{"status"}, StorageGVK: gvk("autoscaling", "v2", "HorizontalPodAutoscaler")},

		// networking.k8s.io/v1
		{GVK: gvk("networking.k8s.io", "v1", "Ingress"), Resource: "ingresses", ShortNames: []string{"ing"}, Namespaced: true, Subresources: []string{"status"}},
		{GVK: gvk("networking.k8s.io", "v1", "IngressClass"), Resource: "ingressclasses"},
		{GVK: gvk("networking.k8s.io", "v1", "NetworkPolicy"), Resource: "networkpolicies", ShortNames: []string{"netpol"}, Namespaced: true},
		// IPAddress objects reserve Service cluster IPs, as upstream 1.33 does.
		{GVK: gvk("networking.k8s.io", "v1", "IPAddress"), Resource: "ipaddresses"},

		{GVK: gvk("discovery.k8s.io", "v1", "EndpointSlice"), Resource: "endpointslices", Namespaced: true},
		{GVK: gvk("coordination.k8s.io", "v1", "Lease"), Resource: "leases", Namespaced: true},
		{GVK: gvk("policy", "v1", "PodDisruptionBudget"), Resource: "poddisruptionbudgets", ShortNames: []string{"pdb"}, Namespaced: true, Subresources: []string{"status"}},

		// rbac.authorization.k8s.io/v1: stored now, enforced later.
		{GVK: gvk("rbac.authorization.k8s.io", "v1", "Role"), Resource: "roles", Namespaced: true},
		{GVK: gvk("rbac.authorization.k8s.io", "v1", "RoleBinding"), Resource: "rolebindings", Namespaced: true},
		{GVK: gvk("rbac.authorization.k8s.io", "v1", "ClusterRole"), Resource: "clusterroles"},
		{GVK: gvk("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"), Resource: "clusterrolebindings"},

		// events.k8s.io/v1 shares storage with core/v1 events.
		{GVK: gvk("events.k8s.io", "v1", "Event"), Resource: "events", ShortNames: []string{"ev"}, Namespaced: true,
			StorageGVK: gvk("", "v1", "Event"), StorageResource: schema.GroupResource{Resource: "events"}},

		{GVK: gvk("scheduling.k8s.io", "v1", "PriorityClass"), Resource: "priorityclasses", ShortNames: []string{"pc"}},
		{GVK: gvk("storage.k8s.io", "v1", "StorageClass"), Resource: "storageclasses", ShortNames: []string{"sc"}},
	})
}

func podFields(o runtime.Object) map[string]string {
	p := o.(*corev1.Pod)
	return map[string]string{
		"spec.nodeName":            p.Spec.NodeName,
		"spec.restartPolicy":       string(p.Spec.RestartPolicy),
		"spec.schedulerName":       p.Spec.SchedulerName,
		"spec.serviceAccountName":  p.Spec.ServiceAccountName,
		"spec.hostNetwork":         strconv.FormatBool(p.Spec.HostNetwork),
		"status.phase":             string(p.Status.Phase),
		"status.podIP":             p.Status.PodIP,
		"status.nominatedNodeName": p.Status.NominatedNodeName,
	}
}

func eventFields(o runtime.Object) map[string]string {
	e := o.(*corev1.Event)
	return map[string]string{
		"involvedObject.kind":            e.InvolvedObject.Kind,
		"involvedObject.namespace":       e.InvolvedObject.Namespace,
		"involvedObject.name":            e.InvolvedObject.Name,
		"involvedObject.uid":             string(e.InvolvedObject.UID),
		"involvedObject.apiVersion":      e.InvolvedObject.APIVersion,
		"involvedObject.resourceVersion": e.InvolvedObject.ResourceVersion,
		"involvedObject.fieldPath":       e.InvolvedObject.FieldPath,
		"reason":                         e.Reason,
		"reportingComponent":             e.ReportingController,
		"source":                         e.Source.Component,
		"type":                           e.Type,
	}
}
