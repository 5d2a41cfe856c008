package apiserver_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	appsv1apply "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1apply "k8s.io/client-go/applyconfigurations/core/v1"
	metav1apply "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/rest"
)

// managers lists "manager operation subresource" of each managedFields entry.
func managers(obj metav1.Object) []string {
	var out []string
	for _, m := range obj.GetManagedFields() {
		out = append(out, strings.TrimSpace(m.Manager+" "+string(m.Operation)+" "+m.Subresource))
	}
	slices.Sort(out)
	return out
}

// fieldsOf returns the FieldsV1 JSON of one manager's entry.
func fieldsOf(t *testing.T, obj metav1.Object, manager string) string {
	t.Helper()
	for _, m := range obj.GetManagedFields() {
		if m.Manager == manager && m.FieldsV1 != nil {
			return string(m.FieldsV1.Raw)
		}
	}
	t.Fatalf("no managedFields entry for %q in %v", manager, managers(obj))
	return ""
}

func webApply(ns string, replicas int32, env ...string) *appsv1apply.DeploymentApplyConfiguration {
	c := corev1apply.Container().WithName("web").WithImage("nginx:1.25").
		WithPorts(corev1apply.ContainerPort().WithContainerPort(53).WithProtocol(corev1.ProtocolUDP),
			corev1apply.ContainerPort().WithContainerPort(53))
	for _, e := range env {
		c.WithEnv(corev1apply.EnvVar().WithName(e).WithValue("1"))
	}
	return appsv1apply.Deployment("web", ns).
		WithSpec(appsv1apply.DeploymentSpec().WithReplicas(replicas).
			WithSelector(metav1apply.LabelSelector().WithMatchLabels(map[string]string{"app": "web"})).
			WithTemplate(corev1apply.PodTemplateSpec().
				WithLabels(map[string]string{"app": "web"}).
				WithSpec(corev1apply.PodSpec().WithContainers(c))))
}

func TestServerSideApply(t *testing.T) {
	e := start(t)
	ns := e.namespace("ssa")
	deploys := e.s.Client.AppsV1().Deployments(ns)

	t.Run("creates, then merges what the manager applies", func(t *testing.T) {
		d, err := deploys.Apply(e.ctx, webApply(ns, 2, "A", "B"), metav1.ApplyOptions{FieldManager: "alice"})
		must(t, err)
		if got := managers(d); !slices.Equal(got, []string{"alice Apply"}) {
			t.Errorf("managers after create = %v, want [alice Apply]", got)
		}
		// The same port number over UDP and TCP: two items, told apart by
		// protocol as upstream's list keys say.
		f := fieldsOf(t, d, "alice")
		for _, k := range []string{`k:{\"containerPort\":53,\"protocol\":\"UDP\"}`, `k:{\"containerPort\":53,\"protocol\":\"TCP\"}`, `k:{\"name\":\"A\"}`} {
			if !strings.Contains(f, k) {
				t.Errorf("alice's fields lack %s: %s", k, f)
			}
		}
		// Applying without B removes B: alice owned it alone.
		d, err = deploys.Apply(e.ctx, webApply(ns, 2, "A"), metav1.ApplyOptions{FieldManager: "alice"})
		must(t, err)
		env := d.Spec.Template.Spec.Containers[0].Env
		if len(env) != 1 || env[0].Name != "A" {
			t.Errorf("env after applying without B = %v, want only A", env)
		}
		if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
			t.Errorf("defaults were not applied: strategy %q", d.Spec.Strategy.Type)
		}
	})

	t.Run("conflicts with another manager unless forced", func(t *testing.T) {
		// bob changes the replicas with an ordinary update.
		d, err := deploys.Get(e.ctx, "web", metav1.GetOptions{})
		must(t, err)
		d.Spec.Replicas = new(int32(5))
		d, err = deploys.Update(e.ctx, d, metav1.UpdateOptions{FieldManager: "bob"})
		must(t, err)
		if got := managers(d); !slices.Equal(got, []string{"alice Apply", "bob Update"}) {
			t.Fatalf("managers after bob's update = %v", got)
		}
		_, err = deploys.Apply(e.ctx, webApply(ns, 3, "A"), metav1.ApplyOptions{FieldManager: "alice"})
		wantAPIError(t, err, http.StatusConflict, metav1.StatusReasonConflict,
			`Apply failed with 1 conflict: conflict with "bob" using apps/v1: .spec.replicas`)
		// Applying bob's value is no conflict: the field is then shared.
		_, err = deploys.Apply(e.ctx, webApply(ns, 5, "A"), metav1.ApplyOptions{FieldManager: "alice"})
		must(t, err)
		d, err = deploys.Apply(e.ctx, webApply(ns, 3, "A"), metav1.ApplyOptions{FieldManager: "carol", Force: true})
		must(t, err)
		if *d.Spec.Replicas != 3 {
			t.Errorf("replicas after forced apply = %d, want 3", *d.Spec.Replicas)
		}
		if strings.Contains(fieldsOf(t, d, "alice"), "f:replicas") {
			t.Errorf("alice still owns the replicas carol took by force")
		}
	})

	t.Run("status is applied through status only", func(t *testing.T) {
		st := appsv1apply.Deployment("web", ns).WithStatus(appsv1apply.DeploymentStatus().WithObservedGeneration(42))
		d, err := deploys.ApplyStatus(e.ctx, st, metav1.ApplyOptions{FieldManager: "status-writer", Force: true})
		must(t, err)
		if d.Status.ObservedGeneration != 42 || *d.Spec.Replicas != 3 {
			t.Errorf("after status apply: observedGeneration %d replicas %d, want 42 and 3", d.Status.ObservedGeneration, *d.Spec.Replicas)
		}
		if !slices.Contains(managers(d), "status-writer Apply status") {
			t.Errorf("managers = %v, want a status-writer Apply entry for status", managers(d))
		}
		// Status in an apply to the main resource is not stored.
		d, err = deploys.Apply(e.ctx, webApply(ns, 3, "A").WithStatus(appsv1apply.DeploymentStatus().WithObservedGeneration(7)),
			metav1.ApplyOptions{FieldManager: "carol", Force: true})
		must(t, err)
		if d.Status.ObservedGeneration != 42 {
			t.Errorf("observedGeneration = %d after a main-resource apply that set 7, want 42", d.Status.ObservedGeneration)
		}
	})

	t.Run("dry run stores nothing", func(t *testing.T) {
		_, err := deploys.Apply(e.ctx, webApply(ns, 9, "A"), metav1.ApplyOptions{FieldManager: "carol", DryRun: []string{metav1.DryRunAll}})
		must(t, err)
		d, err := deploys.Get(e.ctx, "web", metav1.GetOptions{})
		must(t, err)
		if *d.Spec.Replicas != 3 {
			t.Errorf("replicas = %d after a dry-run apply, want 3", *d.Spec.Replicas)
		}
		cm, err := e.s.Client.CoreV1().ConfigMaps(ns).Apply(e.ctx, corev1apply.ConfigMap("dry", ns).WithData(map[string]string{"a": "b"}),
			metav1.ApplyOptions{FieldManager: "carol", DryRun: []string{metav1.DryRunAll}})
		must(t, err)
		if cm.Data["a"] != "b" || len(cm.ManagedFields) != 1 {
			t.Errorf("dry-run create answered %+v", cm)
		}
		_, err = e.s.Client.CoreV1().ConfigMaps(ns).Get(e.ctx, "dry", metav1.GetOptions{})
		wantAPIError(t, err, http.StatusNotFound, metav1.StatusReasonNotFound, `configmaps "dry" not found`)
	})

	t.Run("bad requests", func(t *testing.T) {
		path := "/apis/apps/v1/namespaces/" + ns + "/deployments/web"
		apply := "Content-Type: application/apply-patch+yaml"
		body := []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n")
		wantStatus(t, e.do("PATCH", path, body, apply), http.StatusBadRequest, metav1.StatusReasonBadRequest, "fieldManager is required")
		wantStatus(t, e.do("PATCH", path+"?fieldManager=x&force=maybe", body, apply), http.StatusBadRequest, metav1.StatusReasonBadRequest, "force")
		wantStatus(t, e.do("PATCH", path+"?fieldManager=x", []byte("apiVersion: v1\nkind: Service\n"), apply),
			http.StatusBadRequest, metav1.StatusReasonBadRequest, "the apply patch is a Service of v1")
		wantStatus(t, e.do("PATCH", path+"?fieldManager=x", []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: other}\n"), apply),
			http.StatusBadRequest, metav1.StatusReasonBadRequest, "does not match the name on the URL")
		wantStatus(t, e.do("PATCH", path+"?fieldManager=x", []byte("apiVersion: apps/v1\nkind: Deployment\nspec: {bogus: 1}\n"), apply),
			http.StatusBadRequest, metav1.StatusReasonBadRequest, ".spec.bogus: field not declared in schema")
		wantStatus(t, e.do("PATCH", path+"?fieldManager=x", []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {managedFields: [{manager: x}]}\n"), apply),
			http.StatusBadRequest, metav1.StatusReasonBadRequest, "metadata.managedFields must be nil")
		wantStatus(t, e.do("PATCH", path+"?fieldManager=x", []byte("{not yaml: ["), apply),
			http.StatusBadRequest, metav1.StatusReasonBadRequest, "")
		wantStatus(t, e.do("PATCH", "/apis/apps/v1/namespaces/missing/deployments/web?fieldManager=x", body, apply),
			http.StatusNotFound, metav1.StatusReasonNotFound, `namespaces "missing" not found`)
		wantStatus(t, e.do("PATCH", path+"/scale?fieldManager=x", body, apply),
			http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType, "")
		// Nothing of the above changed the object.
		d, err := deploys.Get(e.ctx, "web", metav1.GetOptions{})
		must(t, err)
		if *d.Spec.Replicas != 3 || d.Spec.Template.Spec.Containers[0].Image != "nginx:1.25" {
			t.Errorf("object changed by refused applies: %+v", d.Spec)
		}
	})

	t.Run("ordinary writes record nothing until the object is applied", func(t *testing.T) {
		cms := e.s.Client.CoreV1().ConfigMaps(ns)
		cm, err := cms.Create(e.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "plain"}, Data: map[string]string{"a": "1", "b": "2"}},
			metav1.CreateOptions{FieldManager: "creator"})
		must(t, err)
		cm, err = cms.Patch(e.ctx, "plain", types.MergePatchType, []byte(`{"data":{"a":"3"}}`), metav1.PatchOptions{FieldManager: "patcher"})
		must(t, err)
		if len(cm.ManagedFields) != 0 {
			t.Fatalf("a never-applied object has managedFields %v", managers(cm))
		}
		// The first apply: what was there belongs to before-first-apply,
		// so changing it conflicts, as upstream with untracked objects.
		_, err = cms.Apply(e.ctx, corev1apply.ConfigMap("plain", ns).WithData(map[string]string{"a": "4"}), metav1.ApplyOptions{FieldManager: "applier"})
		wantAPIError(t, err, http.StatusConflict, metav1.StatusReasonConflict,
			`Apply failed with 1 conflict: conflict with "before-first-apply" using v1: .data.a`)
		cm, err = cms.Apply(e.ctx, corev1apply.ConfigMap("plain", ns).WithData(map[string]string{"c": "5"}), metav1.ApplyOptions{FieldManager: "applier"})
		must(t, err)
		if got := managers(cm); !slices.Equal(got, []string{"applier Apply", "before-first-apply Update"}) {
			t.Errorf("managers after the first apply = %v", got)
		}
		// From now on updates are recorded, under the user agent's name
		// when no fieldManager is given.
		cm.Data["d"] = "6"
		cm, err = cms.Update(e.ctx, cm, metav1.UpdateOptions{})
		must(t, err)
		ua := e.s.Config.UserAgent
		if ua == "" {
			ua = rest.DefaultKubernetesUserAgent()
		}
		ua, _, _ = strings.Cut(ua, "/")
		if !slices.Contains(managers(cm), ua+" Update") {
			t.Errorf("managers after an update without fieldManager = %v, want %q", managers(cm), ua+" Update")
		}
	})

	t.Run("client-side apply's create is recorded for kubectl's migration", func(t *testing.T) {
		last := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"csa"}}`
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "csa", Annotations: map[string]string{corev1.LastAppliedConfigAnnotation: last}},
			Spec: podSpec()}
		pod, err := e.s.Client.CoreV1().Pods(ns).Create(e.ctx, pod, metav1.CreateOptions{FieldManager: "kubectl-client-side-apply"})
		must(t, err)
		f := fieldsOf(t, pod, "kubectl-client-side-apply")
		if !strings.Contains(f, "last-applied-configuration") || !strings.Contains(f, `k:{\"name\":\"main\"}`) {
			t.Errorf("client-side apply's fields = %s, want the annotation and the container", f)
		}
		if strings.Contains(f, "tolerations") {
			t.Errorf("the creator owns what admission added: %s", f)
		}
	})
}
