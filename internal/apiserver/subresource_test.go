package apiserver_test

import (
	"encoding/json"
	"net/http"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestGeneration(t *testing.T) {
	e := start(t)
	ns := e.namespace("gen")
	deps := e.s.Client.AppsV1().Deployments(ns)
	d, err := deps.Create(e.ctx, newDeployment("d", 1), metav1.CreateOptions{})
	must(t, err)
	if d.Generation != 1 {
		t.Fatalf("generation after create = %d, want 1", d.Generation)
	}

	d.Labels = map[string]string{"changed": "meta"}
	d, err = deps.Update(e.ctx, d, metav1.UpdateOptions{})
	must(t, err)
	if d.Generation != 1 {
		t.Errorf("generation after a metadata-only update = %d, want 1", d.Generation)
	}

	d.Status.ObservedGeneration = 1
	d.Status.Replicas = 1
	d, err = deps.UpdateStatus(e.ctx, d, metav1.UpdateOptions{})
	must(t, err)
	if d.Generation != 1 || d.Status.Replicas != 1 {
		t.Errorf("after a status update: generation %d status.replicas %d, want 1 and 1", d.Generation, d.Status.Replicas)
	}

	d.Spec.Replicas = int32p(3)
	d, err = deps.Update(e.ctx, d, metav1.UpdateOptions{})
	must(t, err)
	if d.Generation != 2 {
		t.Errorf("generation after a spec update = %d, want 2", d.Generation)
	}

	d, err = deps.Patch(e.ctx, "d", types.MergePatchType, []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"main","image":"busybox:1.37"}]}}}}`), metav1.PatchOptions{})
	must(t, err)
	if d.Generation != 3 {
		t.Errorf("generation after a spec patch = %d, want 3", d.Generation)
	}

	// A client cannot set generation itself.
	d.Generation = 42
	d.Annotations = map[string]string{"a": "b"}
	d, err = deps.Update(e.ctx, d, metav1.UpdateOptions{})
	must(t, err)
	if d.Generation != 3 {
		t.Errorf("generation after a client tried to set it = %d, want 3", d.Generation)
	}

	// Kinds without a status subresource start at generation 1 too upstream
	// for some (e.g. ConfigMap has none: generation stays 0).
	cm, err := e.s.Client.CoreV1().ConfigMaps(ns).Create(e.ctx, newConfigMap("c", nil, nil), metav1.CreateOptions{})
	must(t, err)
	if cm.Generation != 0 {
		t.Errorf("configmap generation = %d, want 0", cm.Generation)
	}
}

func TestStatusSubresource(t *testing.T) {
	e := start(t)
	ns := e.namespace("status")
	deps := e.s.Client.AppsV1().Deployments(ns)
	_, err := deps.Create(e.ctx, newDeployment("d", 1), metav1.CreateOptions{})
	must(t, err)

	t.Run("create ignores status", func(t *testing.T) {
		d := newDeployment("withstatus", 1)
		d.Status.Replicas = 7
		out, err := deps.Create(e.ctx, d, metav1.CreateOptions{})
		must(t, err)
		if out.Status.Replicas != 0 {
			t.Errorf("status.replicas after create = %d, want 0", out.Status.Replicas)
		}
	})
	t.Run("main resource ignores status", func(t *testing.T) {
		d, err := deps.Get(e.ctx, "d", metav1.GetOptions{})
		must(t, err)
		d.Status.Replicas = 5
		d.Spec.Replicas = int32p(2)
		out, err := deps.Update(e.ctx, d, metav1.UpdateOptions{})
		must(t, err)
		if out.Status.Replicas != 0 || *out.Spec.Replicas != 2 {
			t.Errorf("PUT main: status.replicas %d spec.replicas %d, want 0 and 2", out.Status.Replicas, *out.Spec.Replicas)
		}
	})
	t.Run("status ignores spec", func(t *testing.T) {
		d, err := deps.Get(e.ctx, "d", metav1.GetOptions{})
		must(t, err)
		d.Status.Replicas = 4
		d.Spec.Replicas = int32p(9)
		d.Labels = map[string]string{"via": "status"}
		out, err := deps.UpdateStatus(e.ctx, d, metav1.UpdateOptions{})
		must(t, err)
		if out.Status.Replicas != 4 || *out.Spec.Replicas != 2 {
			t.Errorf("PUT status: status.replicas %d spec.replicas %d, want 4 and 2", out.Status.Replicas, *out.Spec.Replicas)
		}
		if out.Labels["via"] != "" {
			t.Errorf("PUT status changed labels to %v; upstream keeps the deployment's labels", out.Labels)
		}
	})
	t.Run("status patch", func(t *testing.T) {
		out, err := deps.Patch(e.ctx, "d", types.MergePatchType, []byte(`{"status":{"readyReplicas":3},"spec":{"replicas":8}}`), metav1.PatchOptions{}, "status")
		must(t, err)
		if out.Status.ReadyReplicas != 3 || *out.Spec.Replicas != 2 {
			t.Errorf("PATCH status: readyReplicas %d spec.replicas %d, want 3 and 2", out.Status.ReadyReplicas, *out.Spec.Replicas)
		}
		out, err = deps.Patch(e.ctx, "d", types.MergePatchType, []byte(`{"status":{"readyReplicas":1}}`), metav1.PatchOptions{})
		must(t, err)
		if out.Status.ReadyReplicas != 3 {
			t.Errorf("PATCH main changed status.readyReplicas to %d", out.Status.ReadyReplicas)
		}
	})
	t.Run("GET status", func(t *testing.T) {
		r := e.do("GET", "/apis/apps/v1/namespaces/"+ns+"/deployments/d/status", nil)
		if r.code != 200 {
			t.Fatalf("GET status = %d: %s", r.code, r.body)
		}
		var d appsv1.Deployment
		must(t, json.Unmarshal(r.body, &d))
		if d.Kind != "Deployment" || d.Name != "d" || d.Status.ReadyReplicas != 3 {
			t.Errorf("GET status answered %s %s readyReplicas %d", d.Kind, d.Name, d.Status.ReadyReplicas)
		}
	})
	t.Run("pod status", func(t *testing.T) {
		pods := e.s.Client.CoreV1().Pods(ns)
		p, err := pods.Create(e.ctx, newPod("p", nil), metav1.CreateOptions{})
		must(t, err)
		if p.Status.Phase != corev1.PodPending {
			t.Errorf("new pod phase = %q, want Pending", p.Status.Phase)
		}
		if p.Status.QOSClass != corev1.PodQOSBestEffort {
			t.Errorf("new pod qosClass = %q, want BestEffort", p.Status.QOSClass)
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.PodIP = "10.0.0.5"
		p.Status.PodIPs = []corev1.PodIP{{IP: "10.0.0.5"}}
		p, err = pods.UpdateStatus(e.ctx, p, metav1.UpdateOptions{})
		must(t, err)
		if p.Status.Phase != corev1.PodRunning || p.Status.PodIP != "10.0.0.5" {
			t.Errorf("pod status after update: %q %q", p.Status.Phase, p.Status.PodIP)
		}
	})
}

func TestScaleSubresource(t *testing.T) {
	e := start(t)
	ns := e.namespace("scale")
	labels := map[string]string{"app": "s", "tier": "web"}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec()}
	sel := &metav1.LabelSelector{MatchLabels: labels}
	_, err := e.s.Client.AppsV1().Deployments(ns).Create(e.ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "s"},
		Spec: appsv1.DeploymentSpec{Replicas: int32p(2), Selector: sel, Template: tmpl}}, metav1.CreateOptions{})
	must(t, err)
	_, err = e.s.Client.AppsV1().ReplicaSets(ns).Create(e.ctx, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "s"},
		Spec: appsv1.ReplicaSetSpec{Replicas: int32p(2), Selector: sel, Template: tmpl}}, metav1.CreateOptions{})
	must(t, err)
	_, err = e.s.Client.AppsV1().StatefulSets(ns).Create(e.ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "s"},
		Spec: appsv1.StatefulSetSpec{Replicas: int32p(2), Selector: sel, Template: tmpl, ServiceName: "s"}}, metav1.CreateOptions{})
	must(t, err)

	for _, resource := range []string{"deployments", "replicasets", "statefulsets"} {
		t.Run(resource, func(t *testing.T) {
			path := "/apis/apps/v1/namespaces/" + ns + "/" + resource + "/s/scale"
			rc := e.s.Client.AppsV1().RESTClient()
			var sc autoscalingv1.Scale
			must(t, rc.Get().AbsPath(path).Do(e.ctx).Into(&sc))
			r := e.do("GET", path, nil)
			var tm metav1.TypeMeta
			must(t, json.Unmarshal(r.body, &tm))
			if tm.APIVersion != "autoscaling/v1" || tm.Kind != "Scale" {
				t.Errorf("scale is %s %s, want autoscaling/v1 Scale", tm.APIVersion, tm.Kind)
			}
			if sc.Name != "s" || sc.Namespace != ns || sc.UID == "" || sc.ResourceVersion == "" {
				t.Errorf("scale metadata = %+v", sc.ObjectMeta)
			}
			if sc.Spec.Replicas != 2 {
				t.Errorf("scale spec.replicas = %d, want 2", sc.Spec.Replicas)
			}
			if sc.Status.Selector != "app=s,tier=web" {
				t.Errorf("scale status.selector = %q, want %q", sc.Status.Selector, "app=s,tier=web")
			}

			// PUT
			sc.Spec.Replicas = 4
			var out autoscalingv1.Scale
			must(t, rc.Put().AbsPath(path).Body(mustJSON(t, &sc)).SetHeader("Content-Type", "application/json").Do(e.ctx).Into(&out))
			if out.Spec.Replicas != 4 {
				t.Errorf("PUT scale answered replicas %d, want 4", out.Spec.Replicas)
			}
			if got := e.replicasOf(t, ns, resource); got != 4 {
				t.Errorf("%s spec.replicas after PUT scale = %d, want 4", resource, got)
			}

			// A stale resourceVersion conflicts.
			err := rc.Put().AbsPath(path).Body(mustJSON(t, &sc)).SetHeader("Content-Type", "application/json").Do(e.ctx).Error()
			wantAPIError(t, err, http.StatusConflict, metav1.StatusReasonConflict, "")

			// PATCH (merge)
			must(t, rc.Patch(types.MergePatchType).AbsPath(path).Body([]byte(`{"spec":{"replicas":5}}`)).Do(e.ctx).Into(&out))
			if out.Spec.Replicas != 5 || e.replicasOf(t, ns, resource) != 5 {
				t.Errorf("merge PATCH scale: answered %d, stored %d, want 5", out.Spec.Replicas, e.replicasOf(t, ns, resource))
			}
			// PATCH (JSON patch)
			must(t, rc.Patch(types.JSONPatchType).AbsPath(path).Body([]byte(`[{"op":"replace","path":"/spec/replicas","value":1}]`)).Do(e.ctx).Into(&out))
			if out.Spec.Replicas != 1 || e.replicasOf(t, ns, resource) != 1 {
				t.Errorf("JSON PATCH scale: answered %d, want 1", out.Spec.Replicas)
			}

			// Negative replicas are invalid.
			err = rc.Patch(types.MergePatchType).AbsPath(path).Body([]byte(`{"spec":{"replicas":-1}}`)).Do(e.ctx).Error()
			wantAPIError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid,
				`Scale.autoscaling "s" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0`)

			// Scale of a missing object.
			err = rc.Get().AbsPath("/apis/apps/v1/namespaces/" + ns + "/" + resource + "/missing/scale").Do(e.ctx).Error()
			wantAPIError(t, err, http.StatusNotFound, metav1.StatusReasonNotFound, resource+`.apps "missing" not found`)
		})
	}

	t.Run("typed client", func(t *testing.T) {
		sc, err := e.s.Client.AppsV1().Deployments(ns).GetScale(e.ctx, "s", metav1.GetOptions{})
		must(t, err)
		sc.Spec.Replicas = 6
		out, err := e.s.Client.AppsV1().Deployments(ns).UpdateScale(e.ctx, "s", sc, metav1.UpdateOptions{})
		must(t, err)
		if out.Spec.Replicas != 6 {
			t.Errorf("UpdateScale answered %d, want 6", out.Spec.Replicas)
		}
		d, err := e.s.Client.AppsV1().Deployments(ns).Get(e.ctx, "s", metav1.GetOptions{})
		must(t, err)
		if d.Generation < 2 {
			t.Errorf("a scale update did not bump the deployment's generation (%d)", d.Generation)
		}
	})
}

func (e *env) replicasOf(t *testing.T, ns, resource string) int32 {
	t.Helper()
	apps := e.s.Client.AppsV1()
	switch resource {
	case "deployments":
		d, err := apps.Deployments(ns).Get(e.ctx, "s", metav1.GetOptions{})
		must(t, err)
		return *d.Spec.Replicas
	case "replicasets":
		d, err := apps.ReplicaSets(ns).Get(e.ctx, "s", metav1.GetOptions{})
		must(t, err)
		return *d.Spec.Replicas
	default:
		d, err := apps.StatefulSets(ns).Get(e.ctx, "s", metav1.GetOptions{})
		must(t, err)
		return *d.Spec.Replicas
	}
}

func TestPodBinding(t *testing.T) {
	e := start(t)
	ns := e.namespace("bind")
	pods := e.s.Client.CoreV1().Pods(ns)
	_, err := pods.Create(e.ctx, newPod("p", nil), metav1.CreateOptions{})
	must(t, err)

	b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "p", Annotations: map[string]string{"scheduled-by": "test"}},
		Target: corev1.ObjectReference{Kind: "Node", Name: "node-1"}}
	must(t, pods.Bind(e.ctx, b, metav1.CreateOptions{}))
	p, err := pods.Get(e.ctx, "p", metav1.GetOptions{})
	must(t, err)
	if p.Spec.NodeName != "node-1" {
		t.Errorf("nodeName = %q, want node-1", p.Spec.NodeName)
	}
	if p.Annotations["scheduled-by"] != "test" {
		t.Errorf("binding annotations not copied: %v", p.Annotations)
	}
	found := false
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			found = c.Status == corev1.ConditionTrue
		}
	}
	if !found {
		t.Errorf("conditions = %+v, want PodScheduled=True", p.Status.Conditions)
	}

	r := e.do("POST", "/api/v1/namespaces/"+ns+"/pods/p/binding", mustJSON(t, &corev1.Binding{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Binding"},
		ObjectMeta: metav1.ObjectMeta{Name: "p"}, Target: corev1.ObjectReference{Kind: "Node", Name: "node-2"}}))
	wantStatus(t, r, http.StatusConflict, metav1.StatusReasonConflict,
		`Operation cannot be fulfilled on pods/binding "p": pod p is already assigned to node "node-1"`)

	err = pods.Bind(e.ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "missing"}, Target: corev1.ObjectReference{Name: "node-1"}}, metav1.CreateOptions{})
	wantAPIError(t, err, http.StatusNotFound, metav1.StatusReasonNotFound, `pods "missing" not found`)

	t.Run("success answers 201 Status", func(t *testing.T) {
		_, err := pods.Create(e.ctx, newPod("q", nil), metav1.CreateOptions{})
		must(t, err)
		r := e.do("POST", "/api/v1/namespaces/"+ns+"/pods/q/binding", mustJSON(t, &corev1.Binding{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Binding"},
			ObjectMeta: metav1.ObjectMeta{Name: "q"}, Target: corev1.ObjectReference{Kind: "Node", Name: "node-1"}}))
		if r.code != http.StatusCreated {
			t.Fatalf("binding = %d: %s", r.code, r.body)
		}
		if st := r.status(t); st.Status != metav1.StatusSuccess {
			t.Errorf("binding answered %+v, want Status Success", st)
		}
	})
}
