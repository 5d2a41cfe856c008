package openapi

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lotse/lotse/internal/apiserver/registry"
)

// rendered returns one definition as the v2 or v3 document writes it.
func rendered(t *testing.T, s *site, name string, v3 bool) map[string]any {
	t.Helper()
	def, ok := s.model.defs[name]
	if !ok {
		t.Fatalf("no definition %s", name)
	}
	raw, err := json.Marshal(def.render(v3))
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// lookup follows a dotted path of keys through decoded JSON.
func lookup(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		switch c := v.(type) {
		case map[string]any:
			v = c[k]
		case []any:
			i := 0
			for _, ch := range k {
				i = i*10 + int(ch-'0')
			}
			if i >= len(c) {
				return nil
			}
			v = c[i]
		default:
			return nil
		}
	}
	return v
}

func TestDefinitions(t *testing.T) {
	s := collect(registry.Default())
	const (
		meta   = "io.k8s.apimachinery.pkg.apis.meta.v1."
		intstr = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
		qty    = "io.k8s.apimachinery.pkg.api.resource.Quantity"
	)
	tests := []struct {
		def  string
		v3   bool
		path string
		want any // nil: must be absent
	}{
		// Scalar wrappers.
		{meta + "Time", false, "type", "string"},
		{meta + "Time", false, "format", "date-time"},
		{meta + "MicroTime", true, "format", "date-time"},
		{intstr, false, "type", "string"},
		{intstr, false, "format", "int-or-string"},
		{intstr, true, "type", nil},
		{intstr, true, "format", "int-or-string"},
		{intstr, true, "oneOf.0.type", "integer"},
		{intstr, true, "oneOf.1.type", "string"},
		{qty, false, "type", "string"},
		{qty, true, "oneOf.1.type", "number"},
		{"io.k8s.apimachinery.pkg.runtime.RawExtension", false, "type", "object"},
		{"io.k8s.apimachinery.pkg.runtime.RawExtension", false, "properties", nil},
		{meta + "FieldsV1", false, "type", "object"},
		{meta + "Patch", true, "type", "object"},

		// Inlined TypeMeta, references, descriptions and defaults.
		{"io.k8s.api.apps.v1.Deployment", false, "properties.kind.type", "string"},
		{"io.k8s.api.apps.v1.Deployment", false, "description", typeDoc(reflect.TypeFor[appsv1.Deployment]())[""]},
		{"io.k8s.api.apps.v1.Deployment", false, "properties.apiVersion.description", typeDoc(reflect.TypeFor[metav1.TypeMeta]())["apiVersion"]},
		{"io.k8s.api.apps.v1.Deployment", false, "properties.metadata.$ref", "#/definitions/" + meta + "ObjectMeta"},
		{"io.k8s.api.apps.v1.Deployment", true, "properties.metadata.allOf.0.$ref", "#/components/schemas/" + meta + "ObjectMeta"},
		{"io.k8s.api.apps.v1.Deployment", true, "properties.metadata.default", map[string]any{}},
		{"io.k8s.api.apps.v1.Deployment", false, "x-kubernetes-group-version-kind.0.kind", "Deployment"},
		{"io.k8s.api.apps.v1.Deployment", false, "required", nil},
		{"io.k8s.api.apps.v1.DeploymentList", true, "x-kubernetes-group-version-kind.0.kind", "DeploymentList"},
		{"io.k8s.api.apps.v1.DeploymentList", true, "required.0", "items"},
		{"io.k8s.api.apps.v1.DeploymentList", true, "properties.items.items.allOf.0.$ref", "#/components/schemas/io.k8s.api.apps.v1.Deployment"},
		{"io.k8s.api.apps.v1.DeploymentSpec", false, "required", []any{"selector", "template"}},
		{"io.k8s.api.apps.v1.DeploymentSpec", false, "properties.replicas.format", "int32"},
		{"io.k8s.api.apps.v1.DeploymentStatus", false, "properties.observedGeneration.format", "int64"},
		{"io.k8s.api.apps.v1.DeploymentCondition", false, "properties.type.default", ""},
		{"io.k8s.api.core.v1.Pod", false, "x-kubernetes-group-version-kind.0", map[string]any{"group": "", "kind": "Pod", "version": "v1"}},
		{"io.k8s.api.autoscaling.v1.Scale", false, "x-kubernetes-group-version-kind.0.group", "autoscaling"},

		// Collections and maps.
		{"io.k8s.api.core.v1.ConfigMap", false, "properties.data.type", "object"},
		{"io.k8s.api.core.v1.ConfigMap", false, "properties.data.additionalProperties.type", "string"},
		{"io.k8s.api.core.v1.ConfigMap", false, "properties.binaryData.additionalProperties.format", "byte"},
		{"io.k8s.api.core.v1.ResourceRequirements", false, "properties.limits.additionalProperties.$ref", "#/definitions/" + qty},
		{"io.k8s.api.core.v1.PodSpec", false, "properties.containers.type", "array"},
		{"io.k8s.api.core.v1.PodSpec", false, "properties.containers.x-kubernetes-patch-strategy", "merge"},
		{"io.k8s.api.core.v1.PodSpec", false, "properties.containers.x-kubernetes-patch-merge-key", "name"},
		{"io.k8s.api.core.v1.PodSpec", false, "properties.volumes.x-kubernetes-patch-strategy", "merge,retainKeys"},
		{"io.k8s.api.core.v1.PodSpec", true, "properties.nodeSelector.additionalProperties.default", ""},
		{"io.k8s.api.core.v1.Container", false, "properties.ports.items.$ref", "#/definitions/io.k8s.api.core.v1.ContainerPort"},
		{"io.k8s.api.core.v1.Container", false, "required", []any{"name"}},
		{"io.k8s.api.core.v1.ServicePort", false, "properties.targetPort.$ref", "#/definitions/" + intstr},

		// Meta types carry every served group version.
		{meta + "Status", false, "x-kubernetes-group-version-kind.0.kind", "Status"},
		{meta + "DeleteOptions", false, "x-kubernetes-group-version-kind.0.group", ""},
	}
	for _, tc := range tests {
		got := lookup(rendered(t, s, tc.def, tc.v3), tc.path)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s (v3=%v) %s = %#v, want %#v", tc.def, tc.v3, tc.path, got, tc.want)
		}
	}
	var appsDelete bool
	for _, g := range s.model.defs[meta+"DeleteOptions"].GVK {
		appsDelete = appsDelete || g.Group == "apps"
	}
	if !appsDelete {
		t.Error("DeleteOptions lacks the apps/v1 group-version-kind")
	}
}

func TestOperations(t *testing.T) {
	s := collect(registry.Default())
	type want struct{ path, method, id, action, kind string }
	ops := map[want]bool{}
	for gv, items := range s.paths {
		for _, p := range items {
			for _, o := range p.ops {
				if o.gvk.GroupVersion() != gv && o.gvk.Kind != "Scale" && o.gvk.Kind != "Binding" && o.gvk.Kind != "Eviction" && o.gvk.Kind != "TokenRequest" {
					t.Errorf("%s %s: operation of %v in %v", o.method, p.path, o.gvk, gv)
				}
				ops[want{p.path, o.method, o.id, o.action, o.gvk.Kind}] = true
			}
		}
	}
	for _, w := range []want{
		{"/apis/apps/v1/namespaces/{namespace}/deployments", "get", "listAppsV1NamespacedDeployment", "list", "Deployment"},
		{"/apis/apps/v1/namespaces/{namespace}/deployments", "post", "createAppsV1NamespacedDeployment", "post", "Deployment"},
		{"/apis/apps/v1/namespaces/{namespace}/deployments", "delete", "deleteAppsV1CollectionNamespacedDeployment", "deletecollection", "Deployment"},
		{"/apis/apps/v1/namespaces/{namespace}/deployments/{name}", "get", "readAppsV1NamespacedDeployment", "get", "Deployment"},
		{"/apis/apps/v1/namespaces/{namespace}/deployments/{name}", "put", "replaceAppsV1NamespacedDeployment", "put", "Deployment"},
		{"/apis/apps/v1/namespaces/{namespace}/deployments/{name}", "patch", "patchAppsV1NamespacedDeployment", "patch", "Deployment"},
		{"/apis/apps/v1/namespaces/{namespace}/deployments/{name}", "delete", "deleteAppsV1NamespacedDeployment", "delete", "Deployment"},
		{"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status", "patch", "patchAppsV1NamespacedDeploymentStatus", "patch", "Deployment"},
		{"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale", "put", "replaceAppsV1NamespacedDeploymentScale", "put", "Scale"},
		{"/apis/apps/v1/deployments", "get", "listAppsV1DeploymentForAllNamespaces", "list", "Deployment"},
		{"/apis/apps/v1/watch/deployments", "get", "watchAppsV1DeploymentListForAllNamespaces", "watchlist", "Deployment"},
		{"/apis/apps/v1/watch/namespaces/{namespace}/deployments", "get", "watchAppsV1NamespacedDeploymentList", "watchlist", "Deployment"},
		{"/apis/apps/v1/watch/namespaces/{namespace}/deployments/{name}", "get", "watchAppsV1NamespacedDeployment", "watch", "Deployment"},
		{"/api/v1/nodes", "get", "listCoreV1Node", "list", "Node"},
		{"/api/v1/nodes/{name}/status", "get", "readCoreV1NodeStatus", "get", "Node"},
		{"/api/v1/watch/nodes/{name}", "get", "watchCoreV1Node", "watch", "Node"},
		{"/api/v1/namespaces/{name}/finalize", "put", "replaceCoreV1NamespaceFinalize", "put", "Namespace"},
		{"/api/v1/namespaces/{namespace}/pods/{name}/binding", "post", "createCoreV1NamespacedPodBinding", "post", "Binding"},
		{"/api/v1/namespaces/{namespace}/pods/{name}/ephemeralcontainers", "get", "readCoreV1NamespacedPodEphemeralcontainers", "get", "Pod"},
		{"/api/v1/namespaces/{namespace}/pods/{name}/ephemeralcontainers", "put", "replaceCoreV1NamespacedPodEphemeralcontainers", "put", "Pod"},
		{"/api/v1/namespaces/{namespace}/pods/{name}/ephemeralcontainers", "patch", "patchCoreV1NamespacedPodEphemeralcontainers", "patch", "Pod"},
		{"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", "post", "createCoreV1NamespacedServiceAccountToken", "post", "TokenRequest"},
		{"/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}", "patch", "patchRbacAuthorizationV1ClusterRole", "patch", "ClusterRole"},
		{"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/{name}/status", "put", "replaceNetworkingV1NamespacedIngressStatus", "put", "Ingress"},
		{"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers", "get", "listAutoscalingV2NamespacedHorizontalPodAutoscaler", "list", "HorizontalPodAutoscaler"},
	} {
		if !ops[w] {
			t.Errorf("missing operation %+v", w)
		}
	}

	// Every served subresource but the streaming ones has its path.
	paths := map[string]bool{}
	for w := range ops {
		paths[w.path] = true
	}
	for _, k := range registry.Default().Kinds() {
		for _, sub := range k.Subresources {
			if sub == "exec" || sub == "attach" || sub == "portforward" {
				continue // connections, not objects: left out on purpose
			}
			p := gvPrefix(k.GVK.GroupVersion()) + "/" + k.Resource + "/{name}/" + sub
			if k.Namespaced {
				p = gvPrefix(k.GVK.GroupVersion()) + "/namespaces/{namespace}/" + k.Resource + "/{name}/" + sub
			}
			if !paths[p] {
				t.Errorf("no path %s", p)
			}
		}
	}
}

func TestOperationParameters(t *testing.T) {
	s := collect(registry.Default())
	names := func(ps []param) string {
		var out []string
		for _, p := range ps {
			out = append(out, p.name)
		}
		return strings.Join(out, ",")
	}
	for _, p := range s.paths[appsV1] {
		for _, o := range p.ops {
			got := names(o.params)
			var want string
			switch o.action {
			case "post", "put":
				want = "dryRun,fieldManager,fieldValidation"
			case "patch":
				want = "dryRun,fieldManager,fieldValidation,force"
			case "list", "watch", "watchlist":
				want = "allowWatchBookmarks,continue,fieldSelector,labelSelector,limit,resourceVersion,resourceVersionMatch,sendInitialEvents,timeoutSeconds,watch"
			case "delete":
				want = "dryRun,gracePeriodSeconds,ignoreStoreReadErrorWithClusterBreakingPotential,orphanDependents,propagationPolicy"
			default:
				continue
			}
			if got != want {
				t.Errorf("%s %s (%s): parameters %s, want %s", o.method, p.path, o.action, got, want)
			}
		}
		if !strings.Contains(names(p.params), "pretty") {
			t.Errorf("%s lacks pretty", p.path)
		}
	}
}
