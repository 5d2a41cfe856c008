package apiserver_test

import (
	"encoding/json"
	"net/http"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestFinalizers(t *testing.T) {
	e := start(t)
	ns := e.namespace("fin")
	cms := e.s.Client.CoreV1().ConfigMaps(ns)
	cm := newConfigMap("f", nil, nil)
	cm.Finalizers = []string{"example.com/a", "example.com/b"}
	_, err := cms.Create(e.ctx, cm, metav1.CreateOptions{})
	must(t, err)

	// The delete answers the object itself (200) while finalizers remain.
	r := e.do("DELETE", "/api/v1/namespaces/"+ns+"/configmaps/f", nil)
	if r.code != http.StatusOK {
		t.Fatalf("delete = %d: %s", r.code, r.body)
	}
	var tm metav1.TypeMeta
	must(t, json.Unmarshal(r.body, &tm))
	if tm.Kind != "ConfigMap" {
		t.Errorf("delete of a finalized object answered a %s, want the ConfigMap", tm.Kind)
	}
	got, err := cms.Get(e.ctx, "f", metav1.GetOptions{})
	must(t, err)
	if got.DeletionTimestamp == nil {
		t.Fatal("deletionTimestamp not set")
	}
	if got.DeletionGracePeriodSeconds == nil || *got.DeletionGracePeriodSeconds != 0 {
		t.Errorf("deletionGracePeriodSeconds = %v, want 0", got.DeletionGracePeriodSeconds)
	}
	ts := got.DeletionTimestamp

	// A second delete changes nothing.
	must(t, cms.Delete(e.ctx, "f", metav1.DeleteOptions{}))
	again, err := cms.Get(e.ctx, "f", metav1.GetOptions{})
	must(t, err)
	if !again.DeletionTimestamp.Equal(ts) {
		t.Errorf("second delete moved deletionTimestamp %v → %v", ts, again.DeletionTimestamp)
	}

	// No new finalizers once deleting.
	again.Finalizers = append(again.Finalizers, "example.com/c")
	_, err = cms.Update(e.ctx, again, metav1.UpdateOptions{})
	wantAPIError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, "")

	// Removing one finalizer keeps the object; removing the last deletes it.
	_, err = cms.Patch(e.ctx, "f", types.JSONPatchType, []byte(`[{"op":"remove","path":"/metadata/finalizers/0"}]`), metav1.PatchOptions{})
	must(t, err)
	if _, err := cms.Get(e.ctx, "f", metav1.GetOptions{}); err != nil {
		t.Fatalf("object gone with a finalizer left: %v", err)
	}
	cur, err := cms.Get(e.ctx, "f", metav1.GetOptions{})
	must(t, err)
	cur.Finalizers = nil
	_, err = cms.Update(e.ctx, cur, metav1.UpdateOptions{})
	must(t, err)
	_, err = cms.Get(e.ctx, "f", metav1.GetOptions{})
	wantAPIError(t, err, http.StatusNotFound, metav1.StatusReasonNotFound, `configmaps "f" not found`)
}

func TestPodGracefulDeletion(t *testing.T) {
	e := start(t)
	ns := e.namespace("grace")
	pods := e.s.Client.CoreV1().Pods(ns)

	t.Run("unbound pod goes at once", func(t *testing.T) {
		_, err := pods.Create(e.ctx, newPod("unbound", nil), metav1.CreateOptions{})
		must(t, err)
		must(t, pods.Delete(e.ctx, "unbound", metav1.DeleteOptions{}))
		_, err = pods.Get(e.ctx, "unbound", metav1.GetOptions{})
		wantAPIError(t, err, http.StatusNotFound, metav1.StatusReasonNotFound, `pods "unbound" not found`)
	})

	t.Run("bound pod is marked", func(t *testing.T) {
		p := newPod("bound", nil)
		p.Spec.NodeName = "node-1"
		_, err := pods.Create(e.ctx, p, metav1.CreateOptions{})
		must(t, err)
		must(t, pods.Delete(e.ctx, "bound", metav1.DeleteOptions{}))
		got, err := pods.Get(e.ctx, "bound", metav1.GetOptions{})
		must(t, err)
		if got.DeletionTimestamp == nil || got.DeletionGracePeriodSeconds == nil || *got.DeletionGracePeriodSeconds != 30 {
			t.Fatalf("deletionTimestamp %v gracePeriod %v, want set and 30", got.DeletionTimestamp, got.DeletionGracePeriodSeconds)
		}
		if d := got.DeletionTimestamp.Sub(got.CreationTimestamp.Time).Seconds(); d < 25 || d > 40 {
			t.Errorf("deletionTimestamp is %.0fs after creation, want about 30s", d)
		}
		// A shorter grace period is honoured.
		must(t, pods.Delete(e.ctx, "bound", metav1.DeleteOptions{GracePeriodSeconds: int64p(10)}))
		got, err = pods.Get(e.ctx, "bound", metav1.GetOptions{})
		must(t, err)
		if got.DeletionGracePeriodSeconds == nil || *got.DeletionGracePeriodSeconds != 10 {
			t.Errorf("gracePeriod after a second delete with 10 = %v, want 10", got.DeletionGracePeriodSeconds)
		}
		// A longer one is not.
		must(t, pods.Delete(e.ctx, "bound", metav1.DeleteOptions{GracePeriodSeconds: int64p(60)}))
		got, err = pods.Get(e.ctx, "bound", metav1.GetOptions{})
		must(t, err)
		if got.DeletionGracePeriodSeconds == nil || *got.DeletionGracePeriodSeconds != 10 {
			t.Errorf("gracePeriod after a delete with 60 = %v, want still 10", got.DeletionGracePeriodSeconds)
		}
		// Zero removes it.
		must(t, pods.Delete(e.ctx, "bound", metav1.DeleteOptions{GracePeriodSeconds: int64p(0)}))
		_, err = pods.Get(e.ctx, "bound", metav1.GetOptions{})
		wantAPIError(t, err, http.StatusNotFound, metav1.StatusReasonNotFound, `pods "bound" not found`)
	})

	t.Run("terminationGracePeriodSeconds is the default", func(t *testing.T) {
		p := newPod("tgps", nil)
		p.Spec.NodeName = "node-1"
		p.Spec.TerminationGracePeriodSeconds = int64p(7)
		_, err := pods.Create(e.ctx, p, metav1.CreateOptions{})
		must(t, err)
		must(t, pods.Delete(e.ctx, "tgps", metav1.DeleteOptions{}))
		got, err := pods.Get(e.ctx, "tgps", metav1.GetOptions{})
		must(t, err)
		if got.DeletionGracePeriodSeconds == nil || *got.DeletionGracePeriodSeconds != 7 {
			t.Errorf("gracePeriod = %v, want 7", got.DeletionGracePeriodSeconds)
		}
	})
}

func int64p(n int64) *int64 { return &n }

func TestDeletePreconditions(t *testing.T) {
	e := start(t)
	ns := e.namespace("precond")
	cms := e.s.Client.CoreV1().ConfigMaps(ns)
	cm, err := cms.Create(e.ctx, newConfigMap("c", nil, nil), metav1.CreateOptions{})
	must(t, err)

	wrongUID := types.UID("00000000-0000-0000-0000-000000000000")
	err = cms.Delete(e.ctx, "c", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &wrongUID}})
	wantAPIError(t, err, http.StatusConflict, metav1.StatusReasonConflict,
		`Operation cannot be fulfilled on configmaps "c": Precondition failed: UID in precondition: `+string(wrongUID)+`, UID in object meta: `+string(cm.UID))
	stale := "1"
	err = cms.Delete(e.ctx, "c", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &stale}})
	wantAPIError(t, err, http.StatusConflict, metav1.StatusReasonConflict,
		`Operation cannot be fulfilled on configmaps "c": Precondition failed: ResourceVersion in precondition: 1, ResourceVersion in object meta: `+cm.ResourceVersion)
	if _, err := cms.Get(e.ctx, "c", metav1.GetOptions{}); err != nil {
		t.Fatalf("object gone after failed preconditions: %v", err)
	}
	must(t, cms.Delete(e.ctx, "c", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cm.UID, ResourceVersion: &cm.ResourceVersion}}))
	if _, err := cms.Get(e.ctx, "c", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("object still there after a delete with matching preconditions: %v", err)
	}
}

func TestPropagationPolicy(t *testing.T) {
	e := start(t)
	ns := e.namespace("prop")
	cms := e.s.Client.CoreV1().ConfigMaps(ns)
	for _, tc := range []struct {
		policy    metav1.DeletionPropagation
		finalizer string // "" means the object is gone at once
	}{
		{metav1.DeletePropagationForeground, metav1.FinalizerDeleteDependents},
		{metav1.DeletePropagationOrphan, metav1.FinalizerOrphanDependents},
		{metav1.DeletePropagationBackground, ""},
	} {
		name := map[metav1.DeletionPropagation]string{"Foreground": "fg", "Orphan": "or", "Background": "bg"}[tc.policy]
		_, err := cms.Create(e.ctx, newConfigMap(name, nil, nil), metav1.CreateOptions{})
		must(t, err)
		policy := tc.policy
		must(t, cms.Delete(e.ctx, name, metav1.DeleteOptions{PropagationPolicy: &policy}))
		got, err := cms.Get(e.ctx, name, metav1.GetOptions{})
		if tc.finalizer == "" {
			if !apierrors.IsNotFound(err) {
				t.Errorf("%s: object still there (%v)", tc.policy, err)
			}
			continue
		}
		must(t, err)
		if got.DeletionTimestamp == nil || len(got.Finalizers) != 1 || got.Finalizers[0] != tc.finalizer {
			t.Errorf("%s: deletionTimestamp %v finalizers %v, want set and [%s]", tc.policy, got.DeletionTimestamp, got.Finalizers, tc.finalizer)
		}
	}
	bogus := metav1.DeletionPropagation("Sideways")
	_, err := cms.Create(e.ctx, newConfigMap("bogus", nil, nil), metav1.CreateOptions{})
	must(t, err)
	err = cms.Delete(e.ctx, "bogus", metav1.DeleteOptions{PropagationPolicy: &bogus})
	wantAPIError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, "")
}

func TestDeleteCollection(t *testing.T) {
	e := start(t)
	ns := e.namespace("dc")
	other := e.namespace("dc-other")
	cms := e.s.Client.CoreV1().ConfigMaps(ns)
	for i, env := range []string{"prod", "prod", "dev", "test"} {
		_, err := cms.Create(e.ctx, newConfigMap(string(rune('a'+i)), map[string]string{"env": env}, nil), metav1.CreateOptions{})
		must(t, err)
	}
	_, err := e.s.Client.CoreV1().ConfigMaps(other).Create(e.ctx, newConfigMap("a", map[string]string{"env": "prod"}, nil), metav1.CreateOptions{})
	must(t, err)

	must(t, cms.DeleteCollection(e.ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "env=prod"}))
	list, err := cms.List(e.ctx, metav1.ListOptions{})
	must(t, err)
	if names := namesOf(list.Items); names != "c,d" {
		t.Errorf("left after deleting env=prod: %s, want c,d", names)
	}
	if _, err := e.s.Client.CoreV1().ConfigMaps(other).Get(e.ctx, "a", metav1.GetOptions{}); err != nil {
		t.Errorf("deletecollection reached into another namespace: %v", err)
	}
	must(t, cms.DeleteCollection(e.ctx, metav1.DeleteOptions{}, metav1.ListOptions{FieldSelector: "metadata.name=c"}))
	list, err = cms.List(e.ctx, metav1.ListOptions{})
	must(t, err)
	if names := namesOf(list.Items); names != "d" {
		t.Errorf("left after deleting metadata.name=c: %s, want d", names)
	}
}

func namesOf(items []corev1.ConfigMap) string {
	s := ""
	for i, it := range items {
		if i > 0 {
			s += ","
		}
		s += it.Name
	}
	return s
}
