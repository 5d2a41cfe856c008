package apiserver_test

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lotse/lotse/internal/testserver"
)

func TestObjectsSurviveRestart(t *testing.T) {
	s := testserver.Start(t, apiOnly(testserver.Options{}))
	e := newEnv(t, s)
	ns := e.namespace("restart")
	cm, err := s.Client.CoreV1().ConfigMaps(ns).Create(e.ctx, newConfigMap("keep", map[string]string{"a": "b"}, map[string]string{"k": "v"}), metav1.CreateOptions{})
	must(t, err)
	d, err := s.Client.AppsV1().Deployments(ns).Create(e.ctx, newDeployment("d", 3), metav1.CreateOptions{})
	must(t, err)
	s.Stop()

	s2 := testserver.Start(t, apiOnly(testserver.Options{DataDir: s.DataDir, Port: s.Port()}))
	if s2.URL != s.URL {
		t.Errorf("restarted on %s, want %s", s2.URL, s.URL)
	}
	e2 := newEnv(t, s2)
	got, err := s2.Client.CoreV1().ConfigMaps(ns).Get(e2.ctx, "keep", metav1.GetOptions{})
	must(t, err)
	if got.UID != cm.UID || got.ResourceVersion != cm.ResourceVersion || got.Data["k"] != "v" || got.Labels["a"] != "b" {
		t.Errorf("after restart: uid %s rv %s data %v, want as before (uid %s rv %s)", got.UID, got.ResourceVersion, got.Data, cm.UID, cm.ResourceVersion)
	}
	gd, err := s2.Client.AppsV1().Deployments(ns).Get(e2.ctx, "d", metav1.GetOptions{})
	must(t, err)
	if gd.UID != d.UID || *gd.Spec.Replicas != 3 || gd.Generation != 1 {
		t.Errorf("deployment after restart: %+v", gd.ObjectMeta)
	}
	// Writes keep working and resourceVersions keep growing.
	got.Data["k"] = "w"
	upd, err := s2.Client.CoreV1().ConfigMaps(ns).Update(e2.ctx, got, metav1.UpdateOptions{})
	must(t, err)
	if upd.ResourceVersion == cm.ResourceVersion {
		t.Error("resourceVersion did not change on an update after restart")
	}
	// The old client, same kubeconfig and address, still works.
	if _, err := s.Client.CoreV1().ConfigMaps(ns).Get(e2.ctx, "keep", metav1.GetOptions{}); err != nil {
		t.Errorf("old client after restart: %v", err)
	}
	// A list and a watch from an old resourceVersion still resume.
	w, err := s2.Client.CoreV1().ConfigMaps(ns).Watch(e2.ctx, metav1.ListOptions{ResourceVersion: cm.ResourceVersion})
	must(t, err)
	defer w.Stop()
	ev := next(t, w)
	if ev.Type != "MODIFIED" {
		t.Errorf("watch from before the restart: first event %s, want MODIFIED", ev.Type)
	}
}
