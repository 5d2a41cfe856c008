package replicaset_test

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/testserver"
)

func newSet(name string, replicas int32) *appsv1.ReplicaSet {
	labels := map[string]string{"app": name}
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36"}}},
			},
		},
	}
}

// owned lists the pods of a set that are not being deleted.
func owned(t *testing.T, s *testserver.Server, rs *appsv1.ReplicaSet) []corev1.Pod {
	t.Helper()
	pods, err := s.Client.CoreV1().Pods(rs.Namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range pods.Items {
		if ref := metav1.GetControllerOf(&p); ref != nil && ref.UID == rs.UID && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 20*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestReplicaSetKeepsItsPods runs the controller as lotse server does:
// it creates, adopts, releases and deletes pods and reports status.
func TestReplicaSetKeepsItsPods(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	sets := s.Client.AppsV1().ReplicaSets("default")
	pods := s.Client.CoreV1().Pods("default")

	// An orphan that matches is adopted rather than a new pod created.
	orphan := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "orphan", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36"}}},
	}
	if _, err := pods.Create(ctx, orphan, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rs, err := sets.Create(ctx, newSet("web", 3), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "3 pods", func() bool { return len(owned(t, s, rs)) == 3 })
	adopted := false
	for _, p := range owned(t, s, rs) {
		adopted = adopted || p.Name == "orphan"
		ref := metav1.GetControllerOf(&p)
		if ref.Kind != "ReplicaSet" || ref.Name != "web" || !*ref.BlockOwnerDeletion {
			t.Errorf("pod %s controller ref = %+v", p.Name, ref)
		}
	}
	if !adopted {
		t.Error("the matching orphan was not adopted")
	}
	waitFor(t, "status.replicas 3", func() bool {
		cur, err := sets.Get(ctx, "web", metav1.GetOptions{})
		return err == nil && cur.Status.Replicas == 3 && cur.Status.FullyLabeledReplicas == 3 && cur.Status.ObservedGeneration == cur.Generation
	})

	// A pod relabelled out of the selector is released and replaced.
	patch := []byte(`{"metadata":{"labels":{"app":"debug"}}}`)
	if _, err := pods.Patch(ctx, "orphan", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the relabelled pod released", func() bool {
		p, err := pods.Get(ctx, "orphan", metav1.GetOptions{})
		return err == nil && metav1.GetControllerOf(p) == nil
	})
	waitFor(t, "a replacement", func() bool { return len(owned(t, s, rs)) == 3 })

	// Scaling down deletes pods; scaling to zero deletes all of them.
	// The controller writes the status meanwhile: retry a stale scale, as
	// clients do.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		scale, err := sets.GetScale(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		scale.Spec.Replicas = 1
		_, err = sets.UpdateScale(ctx, "web", scale, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "1 pod", func() bool { return len(owned(t, s, rs)) == 1 })
	time.Sleep(300 * time.Millisecond) // a double create would show now
	if n := len(owned(t, s, rs)); n != 1 {
		t.Fatalf("after scaling to 1 there are %d pods", n)
	}
	events, err := s.Client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=web,reason=SuccessfulCreate"})
	if err != nil || len(events.Items) == 0 {
		t.Errorf("no SuccessfulCreate events: %v %v", events, err)
	}
}
