package apiserver_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/lotse/lotse/internal/testserver"
)

// etcdFor connects to the test server's etcd.
func etcdFor(t *testing.T, e *env) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: e.s.EtcdEndpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestCompactedResourceVersion(t *testing.T) {
	e := start(t)
	ns := e.namespace("compact")
	cms := e.s.Client.CoreV1().ConfigMaps(ns)
	first, err := cms.Create(e.ctx, newConfigMap("a", nil, nil), metav1.CreateOptions{})
	must(t, err)
	for _, n := range []string{"b", "c", "d"} {
		_, err := cms.Create(e.ctx, newConfigMap(n, nil, nil), metav1.CreateOptions{})
		must(t, err)
	}
	page, err := cms.List(e.ctx, metav1.ListOptions{Limit: 1})
	must(t, err)
	if page.Continue == "" {
		t.Fatal("no continue token")
	}
	// Restart, so that the old revisions are outside the new watch cache
	// and only etcd could serve them.
	e.s.Stop()
	e = newEnv(t, testserver.Start(t, apiOnly(testserver.Options{DataDir: e.s.DataDir, Port: e.s.Port()})))
	cms = e.s.Client.CoreV1().ConfigMaps(ns)
	c := etcdFor(t, e)
	// More writes, then compact everything up to now.
	for i := 0; i < 3; i++ {
		_, err := cms.Create(e.ctx, newConfigMap(fmt.Sprintf("x%d", i), nil, nil), metav1.CreateOptions{})
		must(t, err)
	}
	cur, err := c.Get(e.ctx, "compact-probe")
	must(t, err)
	if _, err := c.Compact(e.ctx, cur.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}

	t.Run("continue token", func(t *testing.T) {
		_, err := cms.List(e.ctx, metav1.ListOptions{Limit: 1, Continue: page.Continue})
		wantAPIError(t, err, http.StatusGone, metav1.StatusReasonExpired, "")
	})
	t.Run("exact list", func(t *testing.T) {
		_, err := cms.List(e.ctx, metav1.ListOptions{ResourceVersion: first.ResourceVersion, ResourceVersionMatch: metav1.ResourceVersionMatchExact})
		wantAPIError(t, err, http.StatusGone, metav1.StatusReasonExpired, "")
	})
	t.Run("watch", func(t *testing.T) {
		// A revision from before the server started is not in its watch
		// cache; etcd has compacted it. Upstream answers 410 Gone, either as
		// the HTTP status or as an ERROR event carrying a 410 Status.
		w, err := cms.Watch(e.ctx, metav1.ListOptions{ResourceVersion: first.ResourceVersion})
		if err != nil {
			wantAPIError(t, err, http.StatusGone, metav1.StatusReasonExpired, "")
			return
		}
		defer w.Stop()
		ev := next(t, w)
		st, ok := ev.Object.(*metav1.Status)
		if ev.Type != watch.Error || !ok || st.Code != http.StatusGone {
			t.Errorf("watch from a compacted revision: %s %+v, want 410 Gone", ev.Type, ev.Object)
		}
	})
}
