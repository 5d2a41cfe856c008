package apiserver_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestInvalidObjects(t *testing.T) {
	e := start(t)
	ns := e.namespace("invalid")
	deps := e.s.Client.AppsV1().Deployments(ns)

	t.Run("selector does not match template", func(t *testing.T) {
		d := newDeployment("d", 1)
		d.Spec.Template.Labels = map[string]string{"app": "other"}
		_, err := deps.Create(e.ctx, d, metav1.CreateOptions{})
		wantAPIError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid,
			`Deployment.apps "d" is invalid: spec.template.metadata.labels: Invalid value: {"app":"other"}: `+"`selector` does not match template `labels`")
		st := err.(apierrors.APIStatus).Status()
		if st.Details == nil || st.Details.Name != "d" || st.Details.Group != "apps" || st.Details.Kind != "Deployment" {
			t.Errorf("details = %+v, want name d, group apps, kind Deployment", st.Details)
		} else if !hasCause(st, "spec.template.metadata.labels", metav1.CauseTypeFieldValueInvalid) {
			t.Errorf("causes = %+v, want FieldValueInvalid at spec.template.metadata.labels", st.Details.Causes)
		}
	})
	t.Run("negative replicas", func(t *testing.T) {
		_, err := deps.Create(e.ctx, newDeployment("neg", -1), metav1.CreateOptions{})
		wantAPIError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid,
			`Deployment.apps "neg" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0`)
	})
	t.Run("negative replicas on update", func(t *testing.T) {
		d, err := deps.Create(e.ctx, newDeployment("upd", 1), metav1.CreateOptions{})
		must(t, err)
		d.Spec.Replicas = int32p(-1)
		_, err = deps.Update(e.ctx, d, metav1.UpdateOptions{})
		wantAPIError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid,
			`Deployment.apps "upd" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0`)
	})
	t.Run("selector is immutable", func(t *testing.T) {
		d, err := deps.Get(e.ctx, "upd", metav1.GetOptions{})
		must(t, err)
		d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "upd", "x": "y"}}
		d.Spec.Template.Labels = map[string]string{"app": "upd", "x": "y"}
		_, err = deps.Update(e.ctx, d, metav1.UpdateOptions{})
		wantAPIError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, "")
		if st := err.(apierrors.APIStatus).Status(); !hasCause(st, "spec.selector", metav1.CauseTypeFieldValueInvalid) || !strings.Contains(st.Message, "field is immutable") {
			t.Errorf("status = %q %+v, want spec.selector: ... field is immutable", st.Message, st.Details)
		}
	})
	t.Run("invalid name", func(t *testing.T) {
		_, err := e.s.Client.CoreV1().ConfigMaps(ns).Create(e.ctx, newConfigMap("Bad_Name", nil, nil), metav1.CreateOptions{})
		wantAPIError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, "")
		if st := err.(apierrors.APIStatus).Status(); !hasCause(st, "metadata.name", metav1.CauseTypeFieldValueInvalid) {
			t.Errorf("causes = %+v, want metadata.name", st.Details)
		}
	})
}

func hasCause(st metav1.Status, fieldPath string, typ metav1.CauseType) bool {
	if st.Details == nil {
		return false
	}
	for _, c := range st.Details.Causes {
		if c.Field == fieldPath && c.Type == typ {
			return true
		}
	}
	return false
}

func TestBadRequests(t *testing.T) {
	e := start(t)
	ns := e.namespace("bad")
	base := "/api/v1/namespaces/" + ns + "/configmaps"
	_, err := e.s.Client.CoreV1().ConfigMaps(ns).Create(e.ctx, newConfigMap("a", nil, nil), metav1.CreateOptions{})
	must(t, err)

	tests := []struct {
		name    string
		method  string
		path    string
		body    string
		headers []string
		code    int
		reason  metav1.StatusReason
		msg     string
	}{
		{name: "malformed JSON", method: "POST", path: base, body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{`,
			code: 400, reason: metav1.StatusReasonBadRequest},
		{name: "not an object", method: "POST", path: base, body: `[1,2,3]`, code: 400, reason: metav1.StatusReasonBadRequest},
		{name: "wrong apiVersion", method: "POST", path: base,
			body: `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"x"}}`, code: 400, reason: metav1.StatusReasonBadRequest,
			msg: "the API version in the data (apps/v1) does not match the expected API version (v1)"},
		{name: "namespace mismatch", method: "POST", path: base,
			body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"other"}}`, code: 400, reason: metav1.StatusReasonBadRequest,
			msg: "the namespace of the provided object does not match the namespace sent on the request"},
		{name: "name mismatch on PUT", method: "PUT", path: base + "/a",
			body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}`, code: 400, reason: metav1.StatusReasonBadRequest,
			msg: "the name of the object (b) does not match the name on the URL (a)"},
		{name: "unknown content type", method: "POST", path: base, body: `{}`, headers: []string{"Content-Type: text/plain"},
			code: 415, reason: metav1.StatusReasonUnsupportedMediaType},
		{name: "unknown patch type", method: "PATCH", path: base + "/a", body: `{}`, headers: []string{"Content-Type: application/json"},
			code: 415, reason: metav1.StatusReasonUnsupportedMediaType},
		{name: "unacceptable Accept", method: "GET", path: base + "/a", headers: []string{"Accept: text/html"},
			code: 406, reason: metav1.StatusReasonNotAcceptable,
			msg: "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf"},
		{name: "invalid label selector", method: "GET", path: base + "?labelSelector=a%20in%20(", code: 400, reason: metav1.StatusReasonBadRequest},
		{name: "invalid dryRun", method: "POST", path: base + "?dryRun=Bogus",
			body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dry"}}`, code: 400, reason: metav1.StatusReasonBadRequest},
		{name: "invalid fieldValidation", method: "POST", path: base + "?fieldValidation=Bogus",
			body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"fv"}}`, code: 400, reason: metav1.StatusReasonBadRequest},
		{name: "empty body", method: "POST", path: base, body: "", code: 400, reason: metav1.StatusReasonBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			if tc.method != "GET" {
				body = []byte(tc.body)
			}
			r := e.do(tc.method, tc.path, body, tc.headers...)
			wantStatus(t, r, tc.code, tc.reason, tc.msg)
		})
	}
	if _, err := e.s.Client.CoreV1().ConfigMaps(ns).Get(e.ctx, "dry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a create with an invalid dryRun value was stored (err %v)", err)
	}
}

func TestRequestTooLarge(t *testing.T) {
	e := start(t)
	ns := e.namespace("big")
	// A syntactically valid object just over 3 MiB.
	var b bytes.Buffer
	b.WriteString(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"k":"`)
	b.WriteString(strings.Repeat("x", 3*1024*1024))
	b.WriteString(`"}}`)
	r := e.do("POST", "/api/v1/namespaces/"+ns+"/configmaps", b.Bytes())
	wantStatus(t, r, http.StatusRequestEntityTooLarge, metav1.StatusReasonRequestEntityTooLarge, "")
	if _, err := e.s.Client.CoreV1().ConfigMaps(ns).Get(e.ctx, "big", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the oversized object was stored (err %v)", err)
	}
}

func TestAuthentication(t *testing.T) {
	e := start(t)
	anon := e.anonymous()
	for _, p := range []string{"/healthz", "/livez", "/readyz", "/version"} {
		r := e.doWith(anon, "GET", p, nil)
		if r.code != http.StatusOK {
			t.Errorf("GET %s without a client certificate = %d, want 200: %s", p, r.code, r.body)
		}
	}
	if r := e.doWith(anon, "GET", "/healthz", nil); string(r.body) != "ok" {
		t.Errorf("/healthz body = %q, want ok", r.body)
	}
	for _, p := range []string{"/api/v1/namespaces", "/api", "/apis/apps/v1/deployments"} {
		r := e.doWith(anon, "GET", p, nil)
		wantStatus(t, r, http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "Unauthorized")
	}
	r := e.doWith(anon, "POST", "/api/v1/namespaces", []byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"anon"}}`))
	wantStatus(t, r, http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "")
	if _, err := e.s.Client.CoreV1().Namespaces().Get(e.ctx, "anon", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("an unauthenticated create was stored (err %v)", err)
	}
}

func TestUnsupportedSubresourceVerbs(t *testing.T) {
	e := start(t)
	ns := e.namespace("verbs")
	_, err := e.s.Client.CoreV1().Pods(ns).Create(e.ctx, newPod("p", nil), metav1.CreateOptions{})
	must(t, err)
	_, err = e.s.Client.AppsV1().Deployments(ns).Create(e.ctx, newDeployment("d", 1), metav1.CreateOptions{})
	must(t, err)
	pod := "/api/v1/namespaces/" + ns + "/pods/p"
	dep := "/apis/apps/v1/namespaces/" + ns + "/deployments/d"
	tests := []struct{ method, path string }{
		{"DELETE", pod + "/status"},
		{"POST", pod + "/status"},
		{"GET", pod + "/binding"},
		{"PUT", pod + "/binding"},
		{"DELETE", dep + "/scale"},
		{"POST", dep + "/scale"},
		{"DELETE", dep + "/status"},
	}
	for _, tc := range tests {
		var body []byte
		if tc.method != "GET" && tc.method != "DELETE" {
			body = []byte(`{}`)
		}
		r := e.do(tc.method, tc.path, body)
		if r.code != http.StatusMethodNotAllowed {
			t.Errorf("%s %s = %d, want 405: %s", tc.method, tc.path, r.code, r.body)
			continue
		}
		wantStatus(t, r, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, "")
	}
	if _, err := e.s.Client.CoreV1().Pods(ns).Get(e.ctx, "p", metav1.GetOptions{}); err != nil {
		t.Errorf("pod gone after DELETE on its status: %v", err)
	}
}

const unknownFieldDeployment = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"NAME"},
"spec":{"foo":1,"selector":{"matchLabels":{"app":"a"}},
"template":{"metadata":{"labels":{"app":"a"}},"spec":{"containers":[{"name":"c","image":"busybox"}]}}}}`

const duplicateFieldDeployment = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"NAME"},
"spec":{"replicas":1,"replicas":2,"selector":{"matchLabels":{"app":"a"}},
"template":{"metadata":{"labels":{"app":"a"}},"spec":{"containers":[{"name":"c","image":"busybox"}]}}}}`

func TestFieldValidation(t *testing.T) {
	e := start(t)
	ns := e.namespace("fv")
	base := "/apis/apps/v1/namespaces/" + ns + "/deployments"
	body := func(tmpl, name string) []byte { return []byte(strings.ReplaceAll(tmpl, "NAME", name)) }

	tests := []struct {
		name, tmpl, param string
		code              int
		msg               string // Status message for errors
		warning           string // Warning header for successes
	}{
		{name: "strict-unknown", tmpl: unknownFieldDeployment, param: "Strict", code: 400,
			msg: `strict decoding error: unknown field "spec.foo"`},
		{name: "warn-unknown", tmpl: unknownFieldDeployment, param: "Warn", code: 201, warning: `299 - "unknown field \"spec.foo\""`},
		{name: "default-unknown", tmpl: unknownFieldDeployment, param: "", code: 201, warning: `299 - "unknown field \"spec.foo\""`},
		{name: "ignore-unknown", tmpl: unknownFieldDeployment, param: "Ignore", code: 201},
		{name: "strict-duplicate", tmpl: duplicateFieldDeployment, param: "Strict", code: 400,
			msg: `strict decoding error: duplicate field "spec.replicas"`},
		{name: "warn-duplicate", tmpl: duplicateFieldDeployment, param: "Warn", code: 201, warning: `299 - "duplicate field \"spec.replicas\""`},
		{name: "ignore-duplicate", tmpl: duplicateFieldDeployment, param: "Ignore", code: 201},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := base
			if tc.param != "" {
				path += "?fieldValidation=" + tc.param
			}
			r := e.do("POST", path, body(tc.tmpl, tc.name))
			if tc.code != 201 {
				wantStatus(t, r, tc.code, metav1.StatusReasonBadRequest, tc.msg)
				if st := r.status(t); st.Message != tc.msg {
					t.Errorf("message = %q, want exactly %q", st.Message, tc.msg)
				}
				return
			}
			if r.code != 201 {
				t.Fatalf("code = %d, want 201: %s", r.code, r.body)
			}
			got := r.header.Values("Warning")
			if tc.warning == "" && len(got) > 0 {
				t.Errorf("Warning headers %q, want none", got)
			}
			if tc.warning != "" && (len(got) != 1 || got[0] != tc.warning) {
				t.Errorf("Warning headers %q, want [%s]", got, tc.warning)
			}
			// The last duplicate wins, as upstream decodes.
			if tc.tmpl == duplicateFieldDeployment {
				d, err := e.s.Client.AppsV1().Deployments(ns).Get(e.ctx, tc.name, metav1.GetOptions{})
				must(t, err)
				if *d.Spec.Replicas != 2 {
					t.Errorf("replicas = %d, want 2 (last duplicate)", *d.Spec.Replicas)
				}
			}
		})
	}

	t.Run("strict on update and patch", func(t *testing.T) {
		r := e.do("PUT", base+"/warn-unknown?fieldValidation=Strict", body(unknownFieldDeployment, "warn-unknown"))
		wantStatus(t, r, 400, metav1.StatusReasonBadRequest, `strict decoding error: unknown field "spec.foo"`)
		r = e.do("PATCH", base+"/warn-unknown?fieldValidation=Strict", []byte(`{"spec":{"bar":1}}`), "Content-Type: application/merge-patch+json")
		wantStatus(t, r, 400, metav1.StatusReasonBadRequest, `strict decoding error: unknown field "spec.bar"`)
		r = e.do("PATCH", base+"/warn-unknown?fieldValidation=Warn", []byte(`{"spec":{"bar":1}}`), "Content-Type: application/merge-patch+json")
		if r.code != 200 || len(r.header.Values("Warning")) != 1 || r.header.Get("Warning") != `299 - "unknown field \"spec.bar\""` {
			t.Errorf("warn patch = %d, Warning %q: %s", r.code, r.header.Values("Warning"), r.body)
		}
	})
}

func TestDryRun(t *testing.T) {
	e := start(t)
	ns := e.namespace("dry")
	cms := e.s.Client.CoreV1().ConfigMaps(ns)
	all := []string{metav1.DryRunAll}

	out, err := cms.Create(e.ctx, newConfigMap("ghost", nil, map[string]string{"a": "1"}), metav1.CreateOptions{DryRun: all})
	must(t, err)
	if out.Name != "ghost" || out.Data["a"] != "1" || out.UID == "" || out.CreationTimestamp.IsZero() {
		t.Errorf("dry-run create answered %+v, want the object as it would be stored", out.ObjectMeta)
	}
	if _, err := cms.Get(e.ctx, "ghost", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("dry-run create stored the object (get err %v)", err)
	}

	orig, err := cms.Create(e.ctx, newConfigMap("real", nil, map[string]string{"a": "1"}), metav1.CreateOptions{})
	must(t, err)
	check := func(what string) {
		t.Helper()
		cur, err := cms.Get(e.ctx, "real", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if cur.ResourceVersion != orig.ResourceVersion || cur.Data["a"] != "1" || cur.DeletionTimestamp != nil {
			t.Errorf("%s changed the stored object: rv %s→%s data %v", what, orig.ResourceVersion, cur.ResourceVersion, cur.Data)
		}
	}

	upd := orig.DeepCopy()
	upd.Data["a"] = "2"
	out, err = cms.Update(e.ctx, upd, metav1.UpdateOptions{DryRun: all})
	must(t, err)
	if out.Data["a"] != "2" {
		t.Errorf("dry-run update answered data %v, want the updated object", out.Data)
	}
	check("dry-run update")

	out, err = cms.Patch(e.ctx, "real", "application/merge-patch+json", []byte(`{"data":{"a":"3"}}`), metav1.PatchOptions{DryRun: all})
	must(t, err)
	if out.Data["a"] != "3" {
		t.Errorf("dry-run patch answered data %v, want the patched object", out.Data)
	}
	check("dry-run patch")

	must(t, cms.Delete(e.ctx, "real", metav1.DeleteOptions{DryRun: all}))
	check("dry-run delete")

	// deletecollection honours dryRun too.
	must(t, cms.DeleteCollection(e.ctx, metav1.DeleteOptions{DryRun: all}, metav1.ListOptions{}))
	check("dry-run deletecollection")

	// A dry run still validates.
	bad := newDeployment("bad", -1)
	_, err = e.s.Client.AppsV1().Deployments(ns).Create(e.ctx, bad, metav1.CreateOptions{DryRun: all})
	wantAPIError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, "")
	_, err = cms.Create(e.ctx, newConfigMap("real", nil, nil), metav1.CreateOptions{DryRun: all})
	wantAPIError(t, err, http.StatusConflict, metav1.StatusReasonAlreadyExists, `configmaps "real" already exists`)
	_, err = e.s.Client.CoreV1().ConfigMaps("missing-ns").Create(e.ctx, newConfigMap("x", nil, nil), metav1.CreateOptions{DryRun: all})
	wantAPIError(t, err, http.StatusNotFound, metav1.StatusReasonNotFound, `namespaces "missing-ns" not found`)

}
