package apiserver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// next waits for one watch event.
func next(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch closed early")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event in 10s")
	}
	return watch.Event{}
}

// quiet checks no further event arrives for a short while.
func quiet(t *testing.T, w watch.Interface) {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if ok {
			t.Errorf("unexpected extra event %s %s", ev.Type, describe(ev.Object))
		}
	case <-time.After(500 * time.Millisecond):
	}
}

func describe(obj any) string {
	if o, ok := obj.(metav1.Object); ok {
		return o.GetName() + "@" + o.GetResourceVersion()
	}
	return fmt.Sprintf("%T", obj)
}

func wantEvent(t *testing.T, w watch.Interface, typ watch.EventType, name string) *corev1.ConfigMap {
	t.Helper()
	ev := next(t, w)
	cm, ok := ev.Object.(*corev1.ConfigMap)
	if ev.Type != typ || !ok || cm.Name != name {
		t.Fatalf("event %s %s, want %s %s", ev.Type, describe(ev.Object), typ, name)
	}
	return cm
}

func TestWatchFromResourceVersion(t *testing.T) {
	e := start(t)
	ns := e.namespace("watch")
	cms := e.s.Client.CoreV1().ConfigMaps(ns)
	a, err := cms.Create(e.ctx, newConfigMap("a", nil, nil), metav1.CreateOptions{})
	must(t, err)
	b, err := cms.Create(e.ctx, newConfigMap("b", nil, nil), metav1.CreateOptions{})
	must(t, err)
	b.Data = map[string]string{"x": "1"}
	b2, err := cms.Update(e.ctx, b, metav1.UpdateOptions{})
	must(t, err)
	must(t, cms.Delete(e.ctx, "a", metav1.DeleteOptions{}))
	// Noise in another namespace must not show.
	other := e.namespace("watch-other")
	_, err = e.s.Client.CoreV1().ConfigMaps(other).Create(e.ctx, newConfigMap("noise", nil, nil), metav1.CreateOptions{})
	must(t, err)

	w, err := cms.Watch(e.ctx, metav1.ListOptions{ResourceVersion: a.ResourceVersion})
	must(t, err)
	defer w.Stop()
	got := wantEvent(t, w, watch.Added, "b")
	if got.ResourceVersion != b.ResourceVersion {
		t.Errorf("ADDED b at rv %s, want %s", got.ResourceVersion, b.ResourceVersion)
	}
	got = wantEvent(t, w, watch.Modified, "b")
	if got.ResourceVersion != b2.ResourceVersion || got.Data["x"] != "1" {
		t.Errorf("MODIFIED b at rv %s data %v, want rv %s x=1", got.ResourceVersion, got.Data, b2.ResourceVersion)
	}
	del := wantEvent(t, w, watch.Deleted, "a")
	if del.ResourceVersion == a.ResourceVersion {
		t.Errorf("DELETED a carries the old rv %s; upstream sends the deletion revision", del.ResourceVersion)
	}
	quiet(t, w)

	// And live events after that.
	_, err = cms.Create(e.ctx, newConfigMap("c", nil, nil), metav1.CreateOptions{})
	must(t, err)
	wantEvent(t, w, watch.Added, "c")

	t.Run("from a list's resourceVersion", func(t *testing.T) {
		list, err := cms.List(e.ctx, metav1.ListOptions{})
		must(t, err)
		w, err := cms.Watch(e.ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
		must(t, err)
		defer w.Stop()
		quiet(t, w)
		must(t, cms.Delete(e.ctx, "c", metav1.DeleteOptions{}))
		wantEvent(t, w, watch.Deleted, "c")
	})
	t.Run("resourceVersion 0 starts with the current state", func(t *testing.T) {
		w, err := cms.Watch(e.ctx, metav1.ListOptions{ResourceVersion: "0"})
		must(t, err)
		defer w.Stop()
		wantEvent(t, w, watch.Added, "b")
		quiet(t, w)
	})
	t.Run("invalid resourceVersion", func(t *testing.T) {
		_, err := cms.Watch(e.ctx, metav1.ListOptions{ResourceVersion: "abc"})
		wantAPIError(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest, "")
	})
}

func TestWatchLabelSelector(t *testing.T) {
	e := start(t)
	ns := e.namespace("wsel")
	cms := e.s.Client.CoreV1().ConfigMaps(ns)
	w, err := cms.Watch(e.ctx, metav1.ListOptions{LabelSelector: "app=x"})
	must(t, err)
	defer w.Stop()

	_, err = cms.Create(e.ctx, newConfigMap("other", map[string]string{"app": "y"}, nil), metav1.CreateOptions{})
	must(t, err)
	c, err := cms.Create(e.ctx, newConfigMap("c", map[string]string{"app": "x"}, nil), metav1.CreateOptions{})
	must(t, err)
	wantEvent(t, w, watch.Added, "c")

	c.Labels["app"] = "y"
	c, err = cms.Update(e.ctx, c, metav1.UpdateOptions{})
	must(t, err)
	gone := wantEvent(t, w, watch.Deleted, "c")
	if gone.Labels["app"] != "y" || gone.ResourceVersion != c.ResourceVersion {
		t.Errorf("DELETED for a no-longer-matching object carries labels %v rv %s, want the new object (app=y, rv %s)", gone.Labels, gone.ResourceVersion, c.ResourceVersion)
	}

	c.Labels["app"] = "x"
	_, err = cms.Update(e.ctx, c, metav1.UpdateOptions{})
	must(t, err)
	wantEvent(t, w, watch.Added, "c")
	quiet(t, w)
}

// rawWatch reads a JSON watch stream until it ends or stop returns true.
func (e *env) rawWatch(t *testing.T, path string, timeout time.Duration, stop func(metav1.WatchEvent) bool) (int, []metav1.WatchEvent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", e.s.URL+path, nil)
	must(t, err)
	resp, err := e.http.Do(req)
	must(t, err)
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return resp.StatusCode, nil
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("watch Content-Type = %q, want application/json", ct)
	}
	var events []metav1.WatchEvent
	dec := json.NewDecoder(bufio.NewReader(resp.Body))
	for {
		var ev metav1.WatchEvent
		if err := dec.Decode(&ev); err != nil {
			return 200, events
		}
		events = append(events, ev)
		if stop != nil && stop(ev) {
			return 200, events
		}
	}
}

func TestWatchBookmarks(t *testing.T) {
	e := start(t)
	ns := e.namespace("bookmark")
	cms := e.s.Client.CoreV1().ConfigMaps(ns)
	for _, n := range []string{"a", "b"} {
		_, err := cms.Create(e.ctx, newConfigMap(n, nil, nil), metav1.CreateOptions{})
		must(t, err)
	}
	base := "/api/v1/namespaces/" + ns + "/configmaps?watch=true"

	t.Run("periodic bookmark before the timeout", func(t *testing.T) {
		// Upstream sends a bookmark to bookmark-enabled watchers about 2s
		// before their timeout, so they can resume from a recent revision.
		list, err := cms.List(e.ctx, metav1.ListOptions{})
		must(t, err)
		code, events := e.rawWatch(t, base+"&allowWatchBookmarks=true&timeoutSeconds=5&resourceVersion="+list.ResourceVersion, 15*time.Second, nil)
		if code != 200 {
			t.Fatalf("watch = %d", code)
		}
		found := false
		for _, ev := range events {
			if ev.Type == string(watch.Bookmark) {
				found = true
				var obj map[string]any
				must(t, json.Unmarshal(ev.Object.Raw, &obj))
				md, _ := obj["metadata"].(map[string]any)
				if obj["kind"] != "ConfigMap" || md["resourceVersion"] == "" || md["name"] != nil {
					t.Errorf("bookmark object = %s, want a ConfigMap with only metadata.resourceVersion", ev.Object.Raw)
				}
			}
		}
		if !found {
			t.Errorf("no BOOKMARK in a 5s watch with allowWatchBookmarks (got %d events)", len(events))
		}
	})

	t.Run("watch-list ends initial events with a bookmark", func(t *testing.T) {
		var types []string
		code, events := e.rawWatch(t, base+"&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&resourceVersion=", 10*time.Second,
			func(ev metav1.WatchEvent) bool { return ev.Type == string(watch.Bookmark) })
		if code != 200 {
			t.Fatalf("watch-list = %d", code)
		}
		for _, ev := range events {
			types = append(types, ev.Type)
		}
		if len(events) != 3 || events[0].Type != "ADDED" || events[1].Type != "ADDED" || events[2].Type != "BOOKMARK" {
			t.Fatalf("events = %v, want ADDED ADDED BOOKMARK", types)
		}
		var bm metav1.PartialObjectMetadata
		must(t, json.Unmarshal(events[2].Object.Raw, &bm))
		if bm.Kind != "ConfigMap" || bm.APIVersion != "v1" {
			t.Errorf("bookmark object is %q %q, want kind ConfigMap apiVersion v1 (clients decode it as one): %s", bm.Kind, bm.APIVersion, events[2].Object.Raw)
		}
		if bm.Annotations["k8s.io/initial-events-end"] != "true" {
			t.Errorf("bookmark annotations = %v, want k8s.io/initial-events-end: \"true\"", bm.Annotations)
		}
		if bm.ResourceVersion == "" {
			t.Error("bookmark has no resourceVersion")
		}
	})

	t.Run("watch-list through client-go", func(t *testing.T) {
		yes := true
		w, err := cms.Watch(e.ctx, metav1.ListOptions{SendInitialEvents: &yes, ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan, AllowWatchBookmarks: true})
		must(t, err)
		defer w.Stop()
		wantEvent(t, w, watch.Added, "a")
		wantEvent(t, w, watch.Added, "b")
		ev := next(t, w)
		cm, ok := ev.Object.(*corev1.ConfigMap)
		if ev.Type != watch.Bookmark || !ok || cm.Annotations[metav1.InitialEventsAnnotationKey] != "true" {
			t.Errorf("third event %s %+v, want the initial-events-end BOOKMARK", ev.Type, ev.Object)
		}
	})

	t.Run("sendInitialEvents needs NotOlderThan", func(t *testing.T) {
		// timeoutSeconds bounds the request should the server wrongly start watching.
		r := e.do("GET", base+"&timeoutSeconds=2&sendInitialEvents=true&allowWatchBookmarks=true", nil)
		wantStatus(t, r, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan")
		r = e.do("GET", base+"&timeoutSeconds=2&resourceVersionMatch=NotOlderThan&resourceVersion=1", nil)
		wantStatus(t, r, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided")
	})
}

func TestProtobufWatch(t *testing.T) {
	e := start(t)
	ns := e.namespace("proto")
	cfg := rest.CopyConfig(e.s.Config)
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf"
	c, err := kubernetes.NewForConfig(cfg)
	must(t, err)
	pods := c.CoreV1().Pods(ns)
	w, err := pods.Watch(e.ctx, metav1.ListOptions{})
	must(t, err)
	defer w.Stop()
	created, err := pods.Create(e.ctx, newPod("p", map[string]string{"a": "b"}), metav1.CreateOptions{})
	must(t, err)
	ev := next(t, w)
	p, ok := ev.Object.(*corev1.Pod)
	if ev.Type != watch.Added || !ok || p.Name != "p" || p.UID != created.UID || p.Labels["a"] != "b" || len(p.Spec.Containers) != 1 {
		t.Fatalf("protobuf watch event %s %T %+v", ev.Type, ev.Object, ev.Object)
	}
	must(t, pods.Delete(e.ctx, "p", metav1.DeleteOptions{}))
	ev = next(t, w)
	if ev.Type != watch.Deleted {
		t.Errorf("second event %s, want DELETED", ev.Type)
	}
	// Protobuf lists and gets work too.
	list, err := pods.List(e.ctx, metav1.ListOptions{})
	must(t, err)
	if len(list.Items) != 0 {
		t.Errorf("protobuf list has %d items", len(list.Items))
	}
	r := e.do("GET", "/api/v1/namespaces/"+ns+"/pods?watch=true&timeoutSeconds=1", nil, "Accept: application/vnd.kubernetes.protobuf")
	if ct := r.header.Get("Content-Type"); ct != "application/vnd.kubernetes.protobuf;stream=watch" {
		t.Errorf("protobuf watch Content-Type = %q, want application/vnd.kubernetes.protobuf;stream=watch", ct)
	}
}
