package garbagecollector_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/utils/clock"

	"github.com/lotse/lotse/internal/controller"
	"github.com/lotse/lotse/internal/controller/garbagecollector"
	"github.com/lotse/lotse/internal/testserver"
)

// startGC starts a server and runs the collector against it until the
// test ends.
func startGC(t *testing.T) kubernetes.Interface {
	t.Helper()
	s := testserver.Start(t, testserver.Options{})
	runGC(t, s)
	return s.Client
}

// runGC runs a collector against s until the test ends.
func runGC(t *testing.T, s *testserver.Server) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("LOTSE_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c, err := garbagecollector.New(&controller.Context{
		Client: s.Client, Metadata: metadata.NewForConfigOrDie(s.Config),
		Logger: log, Clock: clock.RealClock{},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.Run(ctx); err != nil {
			t.Errorf("garbage collector: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

func ownerRef(cm *corev1.ConfigMap, block bool) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: cm.Name, UID: cm.UID, BlockOwnerDeletion: &block}
}

func createOwner(t *testing.T, c kubernetes.Interface, name string) *corev1.ConfigMap {
	t.Helper()
	cm, err := c.CoreV1().ConfigMaps("default").Create(context.Background(),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

func createDependent(t *testing.T, c kubernetes.Interface, name string, owners ...metav1.OwnerReference) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: owners}}
	if _, err := c.CoreV1().Secrets("default").Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func deleteWith(t *testing.T, c kubernetes.Interface, name string, policy metav1.DeletionPropagation) {
	t.Helper()
	err := c.CoreV1().ConfigMaps("default").Delete(context.Background(), name, metav1.DeleteOptions{PropagationPolicy: &policy})
	if err != nil {
		t.Fatal(err)
	}
}

func secretGone(c kubernetes.Interface, name string) wait.ConditionWithContextFunc {
	return func(ctx context.Context) (bool, error) {
		_, err := c.CoreV1().Secrets("default").Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	}
}

func configMapGone(c kubernetes.Interface, name string) wait.ConditionWithContextFunc {
	return func(ctx context.Context) (bool, error) {
		_, err := c.CoreV1().ConfigMaps("default").Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	}
}

func eventually(t *testing.T, what string, cond wait.ConditionWithContextFunc) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 20*time.Second, true, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestBackgroundDeletesDependents(t *testing.T) {
	c := startGC(t)
	owner := createOwner(t, c, "owner")
	createDependent(t, c, "dep-a", ownerRef(owner, false))
	createDependent(t, c, "dep-b", ownerRef(owner, false))
	deleteWith(t, c, "owner", metav1.DeletePropagationBackground)
	eventually(t, "dep-a deleted", secretGone(c, "dep-a"))
	eventually(t, "dep-b deleted", secretGone(c, "dep-b"))
}

func TestForegroundDeletesDependentsFirst(t *testing.T) {
	c := startGC(t)
	ctx := context.Background()
	owner := createOwner(t, c, "owner")
	createDependent(t, c, "dep-a", ownerRef(owner, true))
	// A finalizer holds dep-b, so the owner must wait for it.
	held := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "dep-b", Finalizers: []string{"example.com/hold"},
		OwnerReferences: []metav1.OwnerReference{ownerRef(owner, true)}}}
	if _, err := c.CoreV1().Secrets("default").Create(ctx, held, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deleteWith(t, c, "owner", metav1.DeletePropagationForeground)
	eventually(t, "dep-a deleted", secretGone(c, "dep-a"))
	eventually(t, "dep-b marked for deletion", func(ctx context.Context) (bool, error) {
		s, err := c.CoreV1().Secrets("default").Get(ctx, "dep-b", metav1.GetOptions{})
		return err == nil && s.DeletionTimestamp != nil, err
	})
	cm, err := c.CoreV1().ConfigMaps("default").Get(ctx, "owner", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("owner went before its blocking dependent: %v", err)
	}
	if cm.DeletionTimestamp == nil || len(cm.Finalizers) != 1 || cm.Finalizers[0] != metav1.FinalizerDeleteDependents {
		t.Fatalf("owner should wait with the foregroundDeletion finalizer, has %v", cm.Finalizers)
	}
	patch := []byte(`{"metadata":{"finalizers":null}}`)
	if _, err := c.CoreV1().Secrets("default").Patch(ctx, "dep-b", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "dep-b deleted", secretGone(c, "dep-b"))
	eventually(t, "owner deleted after its dependents", configMapGone(c, "owner"))
}

// TestForegroundCycle deletes one of two objects that own each other with
// blocking references: without breaking the cycle each would wait for the
// other forever (upstream unblocks the references of the second).
func TestForegroundCycle(t *testing.T) {
	c := startGC(t)
	ctx := context.Background()
	a := createOwner(t, c, "cycle-a")
	b := createOwner(t, c, "cycle-b")
	for _, link := range []struct {
		dependent *corev1.ConfigMap
		owner     *corev1.ConfigMap
	}{{a, b}, {b, a}} {
		cur, err := c.CoreV1().ConfigMaps("default").Get(ctx, link.dependent.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.OwnerReferences = []metav1.OwnerReference{ownerRef(link.owner, true)}
		if _, err := c.CoreV1().ConfigMaps("default").Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	createDependent(t, c, "cycle-dep", ownerRef(b, true))
	deleteWith(t, c, "cycle-a", metav1.DeletePropagationForeground)
	eventually(t, "cycle-a deleted", configMapGone(c, "cycle-a"))
	eventually(t, "cycle-b deleted", configMapGone(c, "cycle-b"))
	eventually(t, "cycle-b's other dependent deleted", secretGone(c, "cycle-dep"))
}

func TestOrphanKeepsDependents(t *testing.T) {
	c := startGC(t)
	ctx := context.Background()
	owner := createOwner(t, c, "owner")
	other := createOwner(t, c, "other")
	createDependent(t, c, "dep-a", ownerRef(owner, false))
	createDependent(t, c, "dep-b", ownerRef(owner, false), ownerRef(other, false))
	deleteWith(t, c, "owner", metav1.DeletePropagationOrphan)
	eventually(t, "owner deleted", configMapGone(c, "owner"))
	for name, want := range map[string]int{"dep-a": 0, "dep-b": 1} {
		s, err := c.CoreV1().Secrets("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("orphaned %s was deleted: %v", name, err)
		}
		if len(s.OwnerReferences) != want {
			t.Errorf("%s has owner references %v, want %d", name, s.OwnerReferences, want)
		}
		for _, o := range s.OwnerReferences {
			if o.UID == owner.UID {
				t.Errorf("%s still refers to the deleted owner", name)
			}
		}
	}
}

func TestDependentWithAnotherOwnerStays(t *testing.T) {
	c := startGC(t)
	ctx := context.Background()
	a, b := createOwner(t, c, "owner-a"), createOwner(t, c, "owner-b")
	createDependent(t, c, "shared", ownerRef(a, false), ownerRef(b, false))
	createDependent(t, c, "only-a", ownerRef(a, false))
	deleteWith(t, c, "owner-a", metav1.DeletePropagationBackground)
	eventually(t, "only-a deleted", secretGone(c, "only-a"))
	eventually(t, "shared loses the reference to owner-a", func(ctx context.Context) (bool, error) {
		s, err := c.CoreV1().Secrets("default").Get(ctx, "shared", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return len(s.OwnerReferences) == 1 && s.OwnerReferences[0].UID == b.UID, nil
	})
	if _, err := c.CoreV1().Secrets("default").Get(ctx, "shared", metav1.GetOptions{}); err != nil {
		t.Fatalf("shared dependent was deleted: %v", err)
	}
}

func TestDanglingReferenceIsCollected(t *testing.T) {
	c := startGC(t)
	ghost := metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "ghost", UID: "00000000-0000-0000-0000-000000000001"}
	createDependent(t, c, "dangling", ghost)
	// Same name as the reference but another UID: still dangling.
	createOwner(t, c, "ghost")
	createDependent(t, c, "wrong-uid", ghost)
	eventually(t, "dependent of a never-existing owner deleted", secretGone(c, "dangling"))
	eventually(t, "dependent of a replaced owner deleted", secretGone(c, "wrong-uid"))
	if _, err := c.CoreV1().ConfigMaps("default").Get(context.Background(), "ghost", metav1.GetOptions{}); err != nil {
		t.Fatalf("the unrelated configmap named ghost was touched: %v", err)
	}
}

// TestCollectsWhatHappenedWhileStopped deletes owners while no collector
// runs: a new one rebuilds the graph from the informers and catches up.
func TestCollectsWhatHappenedWhileStopped(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	c := s.Client
	bg, fgOwner, orphaned := createOwner(t, c, "bg"), createOwner(t, c, "fg"), createOwner(t, c, "orphaned")
	createDependent(t, c, "dep-bg", ownerRef(bg, false))
	createDependent(t, c, "dep-fg", ownerRef(fgOwner, true))
	createDependent(t, c, "dep-orphaned", ownerRef(orphaned, false))
	deleteWith(t, c, "bg", metav1.DeletePropagationBackground)
	deleteWith(t, c, "fg", metav1.DeletePropagationForeground)
	deleteWith(t, c, "orphaned", metav1.DeletePropagationOrphan)

	runGC(t, s)
	eventually(t, "dependent of the background-deleted owner deleted", secretGone(c, "dep-bg"))
	eventually(t, "dependent of the foreground-deleted owner deleted", secretGone(c, "dep-fg"))
	eventually(t, "foreground-deleted owner deleted", configMapGone(c, "fg"))
	eventually(t, "orphaning owner deleted", configMapGone(c, "orphaned"))
	dep, err := c.CoreV1().Secrets("default").Get(context.Background(), "dep-orphaned", metav1.GetOptions{})
	if err != nil || len(dep.OwnerReferences) != 0 {
		t.Fatalf("orphaned dependent: %v, references %v", err, dep.GetOwnerReferences())
	}
}
