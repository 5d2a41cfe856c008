package apiserver_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCreateGetUpdateDelete(t *testing.T) {
	e := start(t)
	ns := e.namespace("crud")
	cms := e.s.Client.CoreV1().ConfigMaps(ns)

	before := time.Now().Add(-time.Second)
	created, err := cms.Create(e.ctx, newConfigMap("a", map[string]string{"k": "v"}, map[string]string{"x": "1"}), metav1.CreateOptions{})
	must(t, err)
	if created.UID == "" {
		t.Error("create: uid is empty")
	}
	if created.CreationTimestamp.Time.Before(before.Truncate(time.Second)) || created.CreationTimestamp.Time.After(time.Now().Add(time.Second)) {
		t.Errorf("create: creationTimestamp %v is not now", created.CreationTimestamp)
	}
	if created.ResourceVersion == "" {
		t.Error("create: resourceVersion is empty")
	}
	if created.Namespace != ns {
		t.Errorf("create: namespace = %q, want %q from the URL", created.Namespace, ns)
	}

	got, err := cms.Get(e.ctx, "a", metav1.GetOptions{})
	must(t, err)
	if got.UID != created.UID || got.ResourceVersion != created.ResourceVersion || got.Data["x"] != "1" {
		t.Errorf("get = uid %s rv %s data %v, want what create returned", got.UID, got.ResourceVersion, got.Data)
	}

	got.Data["x"] = "2"
	updated, err := cms.Update(e.ctx, got, metav1.UpdateOptions{})
	must(t, err)
	if updated.ResourceVersion == created.ResourceVersion {
		t.Error("update: resourceVersion did not change")
	}
	if updated.UID != created.UID || !updated.CreationTimestamp.Equal(&created.CreationTimestamp) {
		t.Error("update changed uid or creationTimestamp")
	}

	t.Run("stale update conflicts", func(t *testing.T) {
		stale := created.DeepCopy()
		stale.Data["x"] = "3"
		_, err := cms.Update(e.ctx, stale, metav1.UpdateOptions{})
		wantAPIError(t, err, http.StatusConflict, metav1.StatusReasonConflict,
			`Operation cannot be fulfilled on configmaps "a": the object has been modified; please apply your changes to the latest version and try again`)
	})
	t.Run("update without resourceVersion is unconditional", func(t *testing.T) {
		cm := newConfigMap("a", nil, map[string]string{"x": "4"})
		out, err := cms.Update(e.ctx, cm, metav1.UpdateOptions{})
		must(t, err)
		if out.UID != created.UID {
			t.Errorf("uid changed to %s", out.UID)
		}
	})
	t.Run("update of a missing object is 404", func(t *testing.T) {
		_, err := cms.Update(e.ctx, newConfigMap("missing", nil, nil), metav1.UpdateOptions{})
		wantAPIError(t, err, http.StatusNotFound, metav1.StatusReasonNotFound, `configmaps "missing" not found`)
	})
	t.Run("create twice", func(t *testing.T) {
		_, err := cms.Create(e.ctx, newConfigMap("a", nil, nil), metav1.CreateOptions{})
		wantAPIError(t, err, http.StatusConflict, metav1.StatusReasonAlreadyExists, `configmaps "a" already exists`)
	})
	t.Run("create with resourceVersion set", func(t *testing.T) {
		cm := newConfigMap("rv", nil, nil)
		cm.ResourceVersion = "12"
		_, err := cms.Create(e.ctx, cm, metav1.CreateOptions{})
		wantAPIError(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest, "resourceVersion should not be set on objects to be created")
	})
	t.Run("generateName", func(t *testing.T) {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "gen-"}}
		out, err := cms.Create(e.ctx, cm, metav1.CreateOptions{})
		must(t, err)
		if !strings.HasPrefix(out.Name, "gen-") || len(out.Name) != len("gen-")+5 {
			t.Errorf("generated name %q, want gen- and 5 random characters", out.Name)
		}
		if out.GenerateName != "gen-" {
			t.Errorf("generateName = %q, want it kept", out.GenerateName)
		}
		other, err := cms.Create(e.ctx, cm, metav1.CreateOptions{})
		must(t, err)
		if other.Name == out.Name {
			t.Errorf("two creates generated the same name %q", out.Name)
		}
	})
	t.Run("create without a name is invalid", func(t *testing.T) {
		_, err := cms.Create(e.ctx, &corev1.ConfigMap{}, metav1.CreateOptions{})
		wantAPIError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, "")
		if st := err.(apierrors.APIStatus).Status(); !strings.Contains(st.Message, "metadata.name: Required value: name or generateName is required") {
			t.Errorf("message %q does not name metadata.name", st.Message)
		}
	})

	must(t, cms.Delete(e.ctx, "a", metav1.DeleteOptions{}))
	_, err = cms.Get(e.ctx, "a", metav1.GetOptions{})
	wantAPIError(t, err, http.StatusNotFound, metav1.StatusReasonNotFound, `configmaps "a" not found`)
	err = cms.Delete(e.ctx, "a", metav1.DeleteOptions{})
	wantAPIError(t, err, http.StatusNotFound, metav1.StatusReasonNotFound, `configmaps "a" not found`)
}

func TestDeleteAnswersStatusSuccess(t *testing.T) {
	e := start(t)
	ns := e.namespace("delstatus")
	_, err := e.s.Client.CoreV1().ConfigMaps(ns).Create(e.ctx, newConfigMap("a", nil, nil), metav1.CreateOptions{})
	must(t, err)
	r := e.do("DELETE", "/api/v1/namespaces/"+ns+"/configmaps/a", nil)
	if r.code != http.StatusOK {
		t.Fatalf("delete = %d: %s", r.code, r.body)
	}
	st := r.status(t)
	if st.Status != metav1.StatusSuccess || st.Details == nil || st.Details.Name != "a" || st.Details.Kind != "configmaps" || st.Details.UID == "" {
		t.Errorf("delete answered %+v, want Status Success with details name a, kind configmaps and the uid", st)
	}
}

func TestMissingNamespace(t *testing.T) {
	e := start(t)
	_, err := e.s.Client.CoreV1().ConfigMaps("nope").Create(e.ctx, newConfigMap("a", nil, nil), metav1.CreateOptions{})
	wantAPIError(t, err, http.StatusNotFound, metav1.StatusReasonNotFound, `namespaces "nope" not found`)
	_, err = e.s.Client.CoreV1().Pods("nope").Get(e.ctx, "p", metav1.GetOptions{})
	wantAPIError(t, err, http.StatusNotFound, metav1.StatusReasonNotFound, `pods "p" not found`)
	list, err := e.s.Client.CoreV1().Pods("nope").List(e.ctx, metav1.ListOptions{})
	must(t, err)
	if len(list.Items) != 0 {
		t.Errorf("list in a missing namespace has %d items", len(list.Items))
	}
}

func TestTerminatingNamespace(t *testing.T) {
	e := start(t)
	nsClient := e.s.Client.CoreV1().Namespaces()
	// A metadata finalizer keeps the namespace Terminating whatever
	// becomes of spec.finalizers.
	ns, err := nsClient.Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "term", Finalizers: []string{"example.com/hold"}}}, metav1.CreateOptions{})
	must(t, err)
	nsName := ns.Name
	if len(ns.Spec.Finalizers) != 1 || ns.Spec.Finalizers[0] != corev1.FinalizerKubernetes {
		t.Errorf("new namespace spec.finalizers = %v, want [kubernetes]", ns.Spec.Finalizers)
	}
	if ns.Status.Phase != corev1.NamespaceActive {
		t.Errorf("new namespace phase = %q, want Active", ns.Status.Phase)
	}
	must(t, nsClient.Delete(e.ctx, nsName, metav1.DeleteOptions{}))
	ns, err = nsClient.Get(e.ctx, nsName, metav1.GetOptions{})
	must(t, err)
	if ns.DeletionTimestamp == nil || ns.Status.Phase != corev1.NamespaceTerminating {
		t.Fatalf("deleted namespace: deletionTimestamp %v phase %q, want set and Terminating", ns.DeletionTimestamp, ns.Status.Phase)
	}
	_, err = e.s.Client.CoreV1().Pods(nsName).Create(e.ctx, newPod("p", nil), metav1.CreateOptions{})
	wantAPIError(t, err, http.StatusForbidden, metav1.StatusReasonForbidden,
		`pods "p" is forbidden: unable to create new content in namespace `+nsName+` because it is being terminated`)
	st := err.(apierrors.APIStatus).Status()
	if st.Details == nil || len(st.Details.Causes) == 0 || st.Details.Causes[0].Type != corev1.NamespaceTerminatingCause {
		t.Errorf("details = %+v, want a NamespaceTerminating cause", st.Details)
	}

	t.Run("default namespace cannot be deleted", func(t *testing.T) {
		err := nsClient.Delete(e.ctx, "default", metav1.DeleteOptions{})
		wantAPIError(t, err, http.StatusForbidden, metav1.StatusReasonForbidden, `namespaces "default" is forbidden: this namespace may not be deleted`)
	})
}

// TestContentRefusedRightAfterNamespaceDelete creates content the moment
// a namespace is deleted, before the watch cache can have seen the delete
// (it had not, in about one try of six, before the admission waited for
// it). The create must fail: 403 while the namespace is Terminating, or
// 404 should the namespace controller have finished with it already.
func TestContentRefusedRightAfterNamespaceDelete(t *testing.T) {
	e := start(t)
	nsClient := e.s.Client.CoreV1().Namespaces()
	for i := range 50 {
		name := fmt.Sprintf("gone-%d", i)
		_, err := nsClient.Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		must(t, err)
		must(t, nsClient.Delete(e.ctx, name, metav1.DeleteOptions{}))
		_, err = e.s.Client.CoreV1().ConfigMaps(name).Create(e.ctx, newConfigMap("a", nil, nil), metav1.CreateOptions{})
		if !apierrors.IsForbidden(err) && !apierrors.IsNotFound(err) {
			t.Fatalf("create in namespace %s right after its delete: %v, want 403 Forbidden (or 404 once it is gone)", name, err)
		}
	}
}

func TestScopeRouting(t *testing.T) {
	e := start(t)
	ns := e.namespace("scope")
	_, err := e.s.Client.CoreV1().Nodes().Create(e.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, metav1.CreateOptions{})
	must(t, err)
	_, err = e.s.Client.CoreV1().ConfigMaps(ns).Create(e.ctx, newConfigMap("c", nil, nil), metav1.CreateOptions{})
	must(t, err)

	tests := []struct {
		method, path string
		code         int
	}{
		{"GET", "/api/v1/nodes/n1", 200},
		{"GET", "/api/v1/nodes", 200},
		{"GET", "/api/v1/namespaces/" + ns + "/nodes/n1", 404}, // cluster-scoped under a namespace
		{"GET", "/api/v1/namespaces/" + ns + "/nodes", 404},
		{"GET", "/api/v1/configmaps", 200},   // all namespaces
		{"GET", "/api/v1/configmaps/c", 404}, // namespaced object without its namespace
		{"GET", "/api/v1/namespaces/" + ns + "/configmaps/c", 200},
		{"GET", "/api/v1/namespaces/" + ns, 200},
		{"GET", "/apis/apps/v1/namespaces/" + ns + "/deployments", 200},
		{"GET", "/apis/apps/v1/namespaces/" + ns + "/configmaps", 404}, // wrong group
		{"GET", "/api/v1/namespaces/" + ns + "/deployments", 404},
		{"GET", "/api/v2/namespaces", 404},
		{"GET", "/api/v1/widgets", 404},
		// The all-namespaces path of a namespaced kind serves only list
		// and watch; upstream's router answers other verbs with 405.
		{"POST", "/api/v1/configmaps", 405},
	}
	for _, tc := range tests {
		var body []byte
		if tc.method == "POST" {
			body = []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"` + ns + `"}}`)
		}
		r := e.do(tc.method, tc.path, body)
		if r.code != tc.code {
			t.Errorf("%s %s = %d, want %d: %s", tc.method, tc.path, r.code, tc.code, r.body)
			continue
		}
		switch tc.code {
		case 404:
			wantStatus(t, r, 404, metav1.StatusReasonNotFound, "")
		case 405:
			wantStatus(t, r, 405, metav1.StatusReasonMethodNotAllowed, "")
		}
	}
	n, err := e.s.Client.CoreV1().Nodes().Get(e.ctx, "n1", metav1.GetOptions{})
	must(t, err)
	if n.Namespace != "" {
		t.Errorf("node namespace = %q, want empty", n.Namespace)
	}
}
