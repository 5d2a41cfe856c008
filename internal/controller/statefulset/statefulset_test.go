package statefulset_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/controller"
	"github.com/lotse/lotse/internal/controller/statefulset"
	"github.com/lotse/lotse/internal/sim"
	"github.com/lotse/lotse/internal/testserver"
)

// podLog follows the pods of the namespace through a watch and writes
// down, in order, each pod added (with which pods were Ready just then)
// and each pod that started terminating.
type podLog struct {
	mu      sync.Mutex
	ready   map[string]bool
	gone    map[types.UID]bool
	entries []string
}

func (l *podLog) follow(t *testing.T, w watch.Interface) {
	t.Cleanup(w.Stop)
	go func() {
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			l.mu.Lock()
			switch {
			case ev.Type == watch.Added:
				var ready []string
				for name, r := range l.ready {
					if r {
						ready = append(ready, name)
					}
				}
				slices.Sort(ready)
				l.entries = append(l.entries, fmt.Sprintf("add %s ready=%s", pod.Name, strings.Join(ready, ",")))
			case (ev.Type == watch.Deleted || pod.DeletionTimestamp != nil) && !l.gone[pod.UID]:
				l.gone[pod.UID] = true
				l.entries = append(l.entries, "delete "+pod.Name)
			}
			l.ready[pod.Name] = ev.Type != watch.Deleted && pod.DeletionTimestamp == nil && isReady(pod)
			l.mu.Unlock()
		}
	}()
}

// take returns the entries so far that start with prefix, and clears the log.
func (l *podLog) take(prefix string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.entries {
		if strings.HasPrefix(e, prefix) {
			out = append(out, e)
		}
	}
	l.entries = nil
	return out
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 20*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

func newSet() *appsv1.StatefulSet {
	labels := map[string]string{"app": "web"}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To[int32](3),
			Selector:    &metav1.LabelSelector{MatchLabels: labels},
			ServiceName: "web",
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers:                    []corev1.Container{{Name: "c", Image: "nginx:1"}},
					TerminationGracePeriodSeconds: ptr.To[int64](0),
				},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					StorageClassName: ptr.To("local"),
					AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
				},
			}},
			PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenScaled: appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
			},
		},
	}
}

// TestStatefulSetLifecycle runs the controller against the real API
// server, scheduler and garbage collector, with simulated nodes that run
// and ready the pods: ordered creation, claims, ordered scale-down and a
// partitioned rolling update.
func TestStatefulSetLifecycle(t *testing.T) {
	s := testserver.Start(t, testserver.Options{Controllers: []string{"garbagecollector", "serviceaccount", "namespace"}})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	nodes, err := sim.New(sim.Config{Client: s.Client, Nodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	simDone := make(chan struct{})
	go func() { defer close(simDone); _ = nodes.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-simDone })

	factory := informers.NewSharedInformerFactory(s.Client, 0)
	ctl, err := statefulset.New(&controller.Context{
		Client: s.Client, Informers: factory, Clock: clock.RealClock{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	go func() { _ = ctl.Run(ctx) }()

	sets := s.Client.AppsV1().StatefulSets("default")
	pods := s.Client.CoreV1().Pods("default")
	claims := s.Client.CoreV1().PersistentVolumeClaims("default")
	w, err := pods.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	log := &podLog{ready: map[string]bool{}, gone: map[types.UID]bool{}}
	log.follow(t, w)

	// lotse binds no claims yet (no provisioner): a WaitForFirstConsumer
	// class lets the scheduler place pods whose claims are still unbound,
	// as upstream's does.
	wffc := storagev1.VolumeBindingWaitForFirstConsumer
	if _, err := s.Client.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{Name: "local"}, Provisioner: "kubernetes.io/no-provisioner", VolumeBindingMode: &wffc,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	set, err := sets.Create(ctx, newSet(), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	readyAt := func(replicas int32, image string) func() bool {
		return func() bool {
			cur, err := sets.Get(ctx, "web", metav1.GetOptions{})
			if err != nil || cur.Status.ObservedGeneration != cur.Generation || cur.Status.ReadyReplicas != replicas ||
				cur.Status.Replicas != replicas || cur.Status.UpdatedReplicas != replicas || cur.Status.CurrentRevision != cur.Status.UpdateRevision {
				return false
			}
			list, err := pods.List(ctx, metav1.ListOptions{})
			if err != nil || len(list.Items) != int(replicas) {
				return false
			}
			for _, p := range list.Items {
				if p.Spec.Containers[0].Image != image || !isReady(&p) {
					return false
				}
			}
			return true
		}
	}

	// OrderedReady: each pod is created only once its predecessors are Ready.
	waitFor(t, "3 ready pods", readyAt(3, "nginx:1"))
	want := []string{"add web-0 ready=", "add web-1 ready=web-0", "add web-2 ready=web-0,web-1"}
	if got := log.take("add"); !slices.Equal(got, want) {
		t.Errorf("creation order %q, want %q", got, want)
	}
	cur, _ := sets.Get(ctx, "web", metav1.GetOptions{})
	rev1 := cur.Status.CurrentRevision
	if cur.Status.AvailableReplicas != 3 || cur.Status.CurrentReplicas != 3 || !strings.HasPrefix(rev1, "web-") || ptr.Deref(cur.Status.CollisionCount, -1) != 0 {
		t.Errorf("status %+v", cur.Status)
	}
	web1, err := pods.Get(ctx, "web-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if web1.Spec.Hostname != "web-1" || web1.Spec.Subdomain != "web" || web1.Labels[statefulset.PodNameLabel] != "web-1" ||
		web1.Labels[statefulset.PodIndexLabel] != "1" || web1.Labels[statefulset.RevisionLabel] != rev1 {
		t.Errorf("web-1 identity: hostname %q subdomain %q labels %v", web1.Spec.Hostname, web1.Spec.Subdomain, web1.Labels)
	}
	if ref := metav1.GetControllerOf(web1); ref == nil || ref.UID != set.UID {
		t.Errorf("web-1 controller %+v", ref)
	}
	if v := web1.Spec.Volumes; len(v) == 0 || v[0].PersistentVolumeClaim == nil || v[0].PersistentVolumeClaim.ClaimName != "data-web-1" {
		t.Errorf("web-1 volumes %+v", v)
	}
	for i := 0; i < 3; i++ {
		pvc, err := claims.Get(ctx, fmt.Sprintf("data-web-%d", i), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("claim %d: %v", i, err)
		}
		if pvc.Labels["app"] != "web" || len(pvc.OwnerReferences) != 0 {
			t.Errorf("claim %s labels %v owners %v", pvc.Name, pvc.Labels, pvc.OwnerReferences)
		}
	}
	revs, err := s.Client.AppsV1().ControllerRevisions("default").List(ctx, metav1.ListOptions{})
	if err != nil || len(revs.Items) != 1 || revs.Items[0].Name != rev1 || revs.Items[0].Revision != 1 {
		t.Fatalf("revisions %+v %v", revs, err)
	}
	events, err := s.Client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=web,reason=SuccessfulCreate"})
	found := false
	for _, e := range events.Items {
		found = found || e.Message == "create Pod web-0 in StatefulSet web successful"
	}
	if err != nil || !found {
		t.Errorf("no upstream SuccessfulCreate event: %v", err)
	}

	// Scale down to 1: web-2 goes first, then web-1; whenScaled=Delete
	// hands their claims to the pods, and the garbage collector follows.
	if _, err := sets.Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"replicas":1}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "1 ready pod", readyAt(1, "nginx:1"))
	if got := log.take("delete"); !slices.Equal(got, []string{"delete web-2", "delete web-1"}) {
		t.Errorf("scale-down order %q", got)
	}
	waitFor(t, "claims of scaled-down pods deleted", func() bool {
		list, err := claims.List(ctx, metav1.ListOptions{})
		return err == nil && len(list.Items) == 1 && list.Items[0].Name == "data-web-0"
	})

	// Back to 3, then a partitioned update: only ordinals >= 1 change,
	// highest first, each waiting for the previous to be ready again.
	if _, err := sets.Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"replicas":3}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "3 ready pods again", readyAt(3, "nginx:1"))
	log.take("")
	patch := `{"spec":{"updateStrategy":{"rollingUpdate":{"partition":1}},"template":{"spec":{"containers":[{"name":"c","image":"nginx:2"}]}}}}`
	if _, err := sets.Patch(ctx, "web", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "partitioned rollout", func() bool {
		cur, err := sets.Get(ctx, "web", metav1.GetOptions{})
		return err == nil && cur.Status.ObservedGeneration == cur.Generation && cur.Status.UpdatedReplicas == 2 &&
			cur.Status.ReadyReplicas == 3 && cur.Status.CurrentReplicas == 1
	})
	time.Sleep(300 * time.Millisecond) // a wrongly updated web-0 would show now
	if got := log.take(""); !slices.Equal(got, []string{"delete web-2", "add web-2 ready=web-0,web-1", "delete web-1", "add web-1 ready=web-0,web-2"}) {
		t.Errorf("rollout order %q", got)
	}
	cur, _ = sets.Get(ctx, "web", metav1.GetOptions{})
	if cur.Status.CurrentRevision != rev1 || cur.Status.UpdateRevision == rev1 {
		t.Errorf("mid-rollout revisions current %s update %s", cur.Status.CurrentRevision, cur.Status.UpdateRevision)
	}
	if p, _ := pods.Get(ctx, "web-0", metav1.GetOptions{}); p.Spec.Containers[0].Image != "nginx:1" {
		t.Errorf("web-0 below the partition was updated")
	}

	// Partition 0 finishes the rollout; the update revision becomes current.
	if _, err := sets.Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rollout to finish", readyAt(3, "nginx:2"))
	revs, err = s.Client.AppsV1().ControllerRevisions("default").List(ctx, metav1.ListOptions{})
	if err != nil || len(revs.Items) != 2 {
		t.Fatalf("revisions after update: %+v %v", revs, err)
	}
	var old *appsv1.ControllerRevision
	for i, r := range revs.Items {
		if (r.Name == rev1) != (r.Revision == 1) {
			t.Errorf("revision %s has number %d", r.Name, r.Revision)
		}
		if r.Name == rev1 {
			old = &revs.Items[i]
		}
	}

	// A rollback as `kubectl rollout undo` does it: the old revision's data
	// patched onto the set. The old revision is renumbered, not copied.
	if _, err := sets.Patch(ctx, "web", types.StrategicMergePatchType, old.Data.Raw, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rollback", readyAt(3, "nginx:1"))
	back, err := s.Client.AppsV1().ControllerRevisions("default").Get(ctx, rev1, metav1.GetOptions{})
	if err != nil || back.Revision != 3 {
		t.Errorf("rolled-back revision %v: %v", back, err)
	}
	if cur, _ := sets.Get(ctx, "web", metav1.GetOptions{}); cur.Status.CurrentRevision != rev1 {
		t.Errorf("current revision after rollback %s, want %s", cur.Status.CurrentRevision, rev1)
	}
}
