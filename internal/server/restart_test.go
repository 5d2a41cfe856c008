package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/lotse/lotse/internal/testserver"
)

// recorder keeps every informer callback as "type name rv".
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(typ string, obj any) {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		if d, ok2 := obj.(cache.DeletedFinalStateUnknown); ok2 {
			cm, _ = d.Obj.(*corev1.ConfigMap)
			typ += "-unknown"
		}
	}
	if cm == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf("%s %s %s", typ, cm.Name, cm.ResourceVersion))
}

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

func (r *recorder) waitFor(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if ev := r.snapshot(); len(ev) >= n {
			return ev
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("informer saw %d events, want %d: %v", len(r.snapshot()), n, r.snapshot())
	return nil
}

// TestInformerSurvivesRestart runs a client-go shared informer across a
// server restart: it must resume its watch and see every change made
// after the restart exactly once, and no spurious ones.
func TestInformerSurvivesRestart(t *testing.T) {
	// The informer counts every ConfigMap event of its namespace: no
	// kube-root-ca.crt may appear in it.
	opts := testserver.Options{Controllers: []string{"*", "-root-ca-cert-publisher"}}
	s := testserver.Start(t, opts)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "restart"}}
	if _, err := s.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i)}, Data: map[string]string{"v": "1"}}
		if _, err := s.Client.CoreV1().ConfigMaps("restart").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// The informer's client outlives the server it first talks to.
	client := kubernetes.NewForConfigOrDie(s.Config)
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace("restart"))
	inf := factory.Core().V1().ConfigMaps().Informer()
	rec := &recorder{}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { rec.add("add", obj) },
		UpdateFunc: func(_, obj any) { rec.add("update", obj) },
		DeleteFunc: func(obj any) { rec.add("delete", obj) },
	})
	factory.Start(ctx.Done())
	defer func() { cancel(); factory.Shutdown() }()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("informer did not sync")
	}
	rec.waitFor(t, 5)

	// One change before the restart, so the informer's last seen
	// resourceVersion is not the list's.
	before, err := s.Client.CoreV1().ConfigMaps("restart").Get(ctx, "cm-4", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before.Data["v"] = "2"
	if _, err := s.Client.CoreV1().ConfigMaps("restart").Update(ctx, before, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, 6)

	s.Stop()
	opts.DataDir, opts.Port = s.DataDir, s.Port()
	s2 := testserver.Start(t, opts)
	cms := s2.Client.CoreV1().ConfigMaps("restart")
	cm0, err := cms.Get(ctx, "cm-0", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("object lost across restart: %v", err)
	}
	cm0.Data["v"] = "2"
	updated, err := cms.Update(ctx, cm0, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "cm-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	added, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm-5"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	got := rec.waitFor(t, 9)
	// Give a duplicate or a relist's replay a moment to show up.
	time.Sleep(500 * time.Millisecond)
	got = rec.snapshot()
	want := []string{
		"update cm-0 " + updated.ResourceVersion,
		"delete cm-1 " + "",
		"add cm-5 " + added.ResourceVersion,
	}
	tail := got[6:]
	if len(tail) != 3 {
		t.Fatalf("after restart the informer saw %v, want exactly %v", tail, want)
	}
	if tail[0] != want[0] || tail[2] != want[2] || tail[1][:len("delete cm-1 ")] != "delete cm-1 " {
		t.Fatalf("after restart the informer saw %v, want %v", tail, want)
	}
	if n := len(inf.GetStore().List()); n != 5 {
		t.Fatalf("informer store holds %d objects, want 5", n)
	}
}
