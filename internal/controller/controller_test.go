package controller

import (
	"context"
	"slices"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

func TestRunWorkers(t *testing.T) {
	yes := func() bool { return true }
	no := func() bool { return false }
	tests := []struct {
		name    string
		synced  []cache.InformerSynced
		n       int
		wantErr string // "" when the workers should run
	}{
		{name: "no informers", n: 1},
		{name: "synced", synced: []cache.InformerSynced{yes, yes}, n: 3},
		{name: "one never syncs", synced: []cache.InformerSynced{yes, no}, n: 2, wantErr: "test: informers did not sync"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var started atomic.Int32
			worker := func(ctx context.Context) {
				started.Add(1)
				<-ctx.Done()
			}
			done := make(chan error, 1)
			go func() { done <- RunWorkers(ctx, "test", tt.synced, tt.n, worker) }()

			if tt.wantErr == "" {
				// Every worker starts, and RunWorkers keeps running.
				deadline := time.Now().Add(5 * time.Second)
				for started.Load() < int32(tt.n) && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
			} else {
				// Give the sync wait a few polls before giving up on it.
				time.Sleep(300 * time.Millisecond)
			}
			select {
			case err := <-done:
				t.Fatalf("RunWorkers returned %v before ctx was done", err)
			default:
			}
			cancel()
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("RunWorkers did not return after ctx was done")
			}

			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("err = %v, want nil", err)
				}
				if got := started.Load(); got != int32(tt.n) {
					t.Errorf("started %d workers, want %d", got, tt.n)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
			if got := started.Load(); got != 0 {
				t.Errorf("started %d workers before the informers synced", got)
			}
		})
	}
}

func TestControlledOrOrphaned(t *testing.T) {
	owner := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "owner", Namespace: "a", UID: "owner-uid"}}
	other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "a", UID: "other-uid"}}
	pod := func(ns, name string, controller metav1.Object, plainOwner metav1.Object) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
		if controller != nil {
			p.OwnerReferences = append(p.OwnerReferences, *metav1.NewControllerRef(controller, corev1.SchemeGroupVersion.WithKind("Pod")))
		}
		if plainOwner != nil {
			p.OwnerReferences = append(p.OwnerReferences, metav1.OwnerReference{Name: plainOwner.GetName(), UID: plainOwner.GetUID()})
		}
		return p
	}
	inf := cache.NewSharedIndexInformer(&cache.ListWatch{}, &corev1.Pod{}, 0, cache.Indexers{})
	for range 2 { // a second controller asking for the index is no error
		if err := AddControllerUIDIndex(inf); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []*corev1.Pod{
		pod("a", "mine", owner, nil),
		pod("a", "orphan", nil, nil),
		pod("a", "orphan-with-plain-owner", nil, owner),
		pod("a", "others", other, nil),
		pod("b", "orphan-elsewhere", nil, nil),
		pod("a", "others-with-plain-owner-mine", other, owner),
	} {
		if err := inf.GetIndexer().Add(p); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ControlledOrOrphaned[*corev1.Pod](inf.GetIndexer(), owner)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range got {
		names = append(names, p.Name)
	}
	sort.Strings(names)
	if want := []string{"mine", "orphan", "orphan-with-plain-owner"}; !slices.Equal(names, want) {
		t.Errorf("got %v, want %v", names, want)
	}
}

func TestActiveNamespace(t *testing.T) {
	now := metav1.Now()
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "shop"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
		{ObjectMeta: metav1.ObjectMeta{Name: "going", DeletionTimestamp: &now}},
		{ObjectMeta: metav1.ObjectMeta{Name: "ending"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}},
	} {
		_ = indexer.Add(ns)
	}
	lister := corelisters.NewNamespaceLister(indexer)
	for name, want := range map[string]bool{"shop": true, "going": false, "ending": false, "missing": false} {
		if got, err := ActiveNamespace(lister, name); got != want || err != nil {
			t.Errorf("ActiveNamespace(%s) = %v, %v; want %v", name, got, err, want)
		}
	}
}
