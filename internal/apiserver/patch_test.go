package apiserver_test

import (
	"net/http"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestPatch(t *testing.T) {
	e := start(t)
	ns := e.namespace("patch")
	cms := e.s.Client.CoreV1().ConfigMaps(ns)
	pods := e.s.Client.CoreV1().Pods(ns)
	_, err := cms.Create(e.ctx, newConfigMap("c", map[string]string{"keep": "1", "drop": "1"}, map[string]string{"a": "1", "b": "2"}), metav1.CreateOptions{})
	must(t, err)
	_, err = pods.Create(e.ctx, newPod("p", nil, "a", "b"), metav1.CreateOptions{})
	must(t, err)

	t.Run("JSON patch", func(t *testing.T) {
		out, err := cms.Patch(e.ctx, "c", types.JSONPatchType,
			[]byte(`[{"op":"test","path":"/data/a","value":"1"},{"op":"replace","path":"/data/a","value":"10"},{"op":"remove","path":"/data/b"},{"op":"add","path":"/data/c","value":"3"}]`),
			metav1.PatchOptions{})
		must(t, err)
		if len(out.Data) != 2 || out.Data["a"] != "10" || out.Data["c"] != "3" {
			t.Errorf("data = %v, want a=10 c=3", out.Data)
		}
	})
	t.Run("JSON patch test failure", func(t *testing.T) {
		before, err := cms.Get(e.ctx, "c", metav1.GetOptions{})
		must(t, err)
		_, err = cms.Patch(e.ctx, "c", types.JSONPatchType,
			[]byte(`[{"op":"test","path":"/data/a","value":"wrong"},{"op":"replace","path":"/data/a","value":"11"}]`), metav1.PatchOptions{})
		wantAPIError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, "")
		after, err := cms.Get(e.ctx, "c", metav1.GetOptions{})
		must(t, err)
		if after.ResourceVersion != before.ResourceVersion || after.Data["a"] != "10" {
			t.Errorf("a failed test op still changed the object")
		}
	})
	t.Run("malformed JSON patch", func(t *testing.T) {
		_, err := cms.Patch(e.ctx, "c", types.JSONPatchType, []byte(`{"op":"add"}`), metav1.PatchOptions{})
		wantAPIError(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest, "")
	})
	t.Run("JSON patch of a missing path", func(t *testing.T) {
		_, err := cms.Patch(e.ctx, "c", types.JSONPatchType, []byte(`[{"op":"replace","path":"/data/nope/deeper","value":"x"}]`), metav1.PatchOptions{})
		wantAPIError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, "")
	})
	t.Run("merge patch", func(t *testing.T) {
		out, err := cms.Patch(e.ctx, "c", types.MergePatchType, []byte(`{"metadata":{"labels":{"drop":null,"new":"x"}},"data":{"c":null,"d":"4"}}`), metav1.PatchOptions{})
		must(t, err)
		if out.Labels["keep"] != "1" || out.Labels["new"] != "x" || len(out.Labels) != 2 {
			t.Errorf("labels = %v, want keep=1 new=x", out.Labels)
		}
		if out.Data["a"] != "10" || out.Data["d"] != "4" || len(out.Data) != 2 {
			t.Errorf("data = %v, want a=10 d=4", out.Data)
		}
	})
	t.Run("merge patch with stale resourceVersion conflicts", func(t *testing.T) {
		_, err := cms.Patch(e.ctx, "c", types.MergePatchType, []byte(`{"metadata":{"resourceVersion":"1"},"data":{"x":"1"}}`), metav1.PatchOptions{})
		wantAPIError(t, err, http.StatusConflict, metav1.StatusReasonConflict,
			`Operation cannot be fulfilled on configmaps "c": the object has been modified; please apply your changes to the latest version and try again`)
	})
	t.Run("malformed merge patch", func(t *testing.T) {
		_, err := cms.Patch(e.ctx, "c", types.MergePatchType, []byte(`{"data":`), metav1.PatchOptions{})
		wantAPIError(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest, "")
	})
	t.Run("patch that changes the name", func(t *testing.T) {
		_, err := cms.Patch(e.ctx, "c", types.MergePatchType, []byte(`{"metadata":{"name":"other"}}`), metav1.PatchOptions{})
		wantAPIError(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest, "")
	})
	t.Run("strategic merge patch merges containers by name", func(t *testing.T) {
		out, err := pods.Patch(e.ctx, "p", types.StrategicMergePatchType,
			[]byte(`{"spec":{"containers":[{"name":"b","image":"busybox:1.37"}]}}`), metav1.PatchOptions{})
		must(t, err)
		if len(out.Spec.Containers) != 2 {
			t.Fatalf("containers = %d, want 2 (merged by name, not replaced)", len(out.Spec.Containers))
		}
		if out.Spec.Containers[0].Name != "a" || out.Spec.Containers[0].Image != "busybox:1.36" {
			t.Errorf("container a = %+v, want unchanged", out.Spec.Containers[0])
		}
		if out.Spec.Containers[1].Name != "b" || out.Spec.Containers[1].Image != "busybox:1.37" {
			t.Errorf("container b = %s %s, want image busybox:1.37", out.Spec.Containers[1].Name, out.Spec.Containers[1].Image)
		}
	})
	t.Run("strategic merge patch with $patch directive", func(t *testing.T) {
		out, err := cms.Patch(e.ctx, "c", types.StrategicMergePatchType, []byte(`{"data":{"$patch":"replace","only":"1"}}`), metav1.PatchOptions{})
		must(t, err)
		if len(out.Data) != 1 || out.Data["only"] != "1" {
			t.Errorf("data = %v, want only=1", out.Data)
		}
	})
	t.Run("merge patch replaces lists", func(t *testing.T) {
		// A merge patch (unlike a strategic one) replaces the whole list;
		// a pod without container a is an invalid update.
		_, err := pods.Patch(e.ctx, "p", types.MergePatchType, []byte(`{"spec":{"containers":[{"name":"b","image":"busybox:1.38"}]}}`), metav1.PatchOptions{})
		wantAPIError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, "")
	})
	t.Run("status patch", func(t *testing.T) {
		out, err := pods.Patch(e.ctx, "p", types.StrategicMergePatchType,
			[]byte(`{"status":{"conditions":[{"type":"Ready","status":"False"}],"message":"hello"},"spec":{"activeDeadlineSeconds":5}}`), metav1.PatchOptions{}, "status")
		must(t, err)
		if out.Status.Message != "hello" || len(out.Status.Conditions) != 1 {
			t.Errorf("status = %+v, want message hello and one condition", out.Status)
		}
		if out.Spec.ActiveDeadlineSeconds != nil {
			t.Errorf("a status patch changed spec.activeDeadlineSeconds")
		}
		out, err = pods.Patch(e.ctx, "p", types.JSONPatchType, []byte(`[{"op":"replace","path":"/status/message","value":"bye"}]`), metav1.PatchOptions{}, "status")
		must(t, err)
		if out.Status.Message != "bye" {
			t.Errorf("status.message = %q after a JSON patch of status, want bye", out.Status.Message)
		}
	})
	t.Run("patch of a missing object", func(t *testing.T) {
		for _, pt := range []types.PatchType{types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType} {
			body := []byte(`{"data":{"a":"1"}}`)
			if pt == types.JSONPatchType {
				body = []byte(`[{"op":"add","path":"/data/a","value":"1"}]`)
			}
			_, err := cms.Patch(e.ctx, "missing", pt, body, metav1.PatchOptions{})
			wantAPIError(t, err, http.StatusNotFound, metav1.StatusReasonNotFound, `configmaps "missing" not found`)
		}
	})
}
