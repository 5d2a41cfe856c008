package daemonset_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/controller"
	"github.com/lotse/lotse/internal/controller/daemonset"
	"github.com/lotse/lotse/internal/sim"
	"github.com/lotse/lotse/internal/testserver"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 15*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// livePods maps node name to the DaemonSet's pods bound there and not
// being deleted; unbound pods go under "".
func livePods(t *testing.T, s *testserver.Server, ds *appsv1.DaemonSet) map[string][]corev1.Pod {
	t.Helper()
	pods, err := s.Client.CoreV1().Pods(ds.Namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]corev1.Pod{}
	for _, p := range pods.Items {
		if metav1.IsControlledBy(&p, ds) && p.DeletionTimestamp == nil {
			out[p.Spec.NodeName] = append(out[p.Spec.NodeName], p)
		}
	}
	return out
}

// onNodes reports whether the set runs exactly one Running pod on each
// of nodes, on the template hash (any when empty), and nowhere else.
func onNodes(t *testing.T, s *testserver.Server, ds *appsv1.DaemonSet, hash string, nodes ...string) bool {
	got := livePods(t, s, ds)
	if len(got) != len(nodes) {
		return false
	}
	for _, n := range nodes {
		ps := got[n]
		if len(ps) != 1 || ps[0].Status.Phase != corev1.PodRunning || (hash != "" && ps[0].Labels[appsv1.DefaultDaemonSetUniqueLabelKey] != hash) {
			return false
		}
	}
	return true
}

func patchNode(t *testing.T, s *testserver.Server, name, patch string) {
	t.Helper()
	if _, err := s.Client.CoreV1().Nodes().Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestDaemonSetOnSimulatedNodes runs the controller with the real API
// server, the scheduler and three simulated nodes.
func TestDaemonSetOnSimulatedNodes(t *testing.T) {
	// The server runs no DaemonSet controller of its own: this test runs one.
	s := testserver.Start(t, testserver.Options{Controllers: []string{"garbagecollector", "namespace", "serviceaccount"}})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	nodes, err := sim.New(sim.Config{Client: s.Client, Nodes: 3, NamePrefix: "ds-"})
	if err != nil {
		t.Fatal(err)
	}
	simDone := make(chan struct{})
	go func() { defer close(simDone); _ = nodes.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-simDone })
	names := nodes.NodeNames()
	waitFor(t, "3 nodes", func() bool { return nodes.Registered() == 3 })
	n0, n1, n2 := names[0], names[1], names[2]
	for _, n := range names {
		patchNode(t, s, n, `{"metadata":{"labels":{"daemon":"yes"}}}`)
	}
	// n2 is dedicated to something else: the daemon does not tolerate it.
	patchNode(t, s, n2, `{"spec":{"taints":[{"key":"dedicated","value":"db","effect":"NoSchedule"}]}}`)

	inf := informers.NewSharedInformerFactory(s.Client, 0)
	c, err := daemonset.New(&controller.Context{
		Client: s.Client, Informers: inf, Clock: clock.RealClock{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	inf.Start(ctx.Done())
	go func() { _ = c.Run(ctx) }()

	sets := s.Client.AppsV1().DaemonSets("default")
	lbls := map[string]string{"app": "agent"}
	ds, err := sets.Create(ctx, &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: lbls},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbls},
				Spec: corev1.PodSpec{
					NodeSelector:                  map[string]string{"daemon": "yes"},
					TerminationGracePeriodSeconds: ptr.To(int64(0)),
					Containers:                    []corev1.Container{{Name: "c", Image: "busybox:1.36"}},
				},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// One pod per eligible node, bound by the scheduler; none on the
	// tainted node.
	waitFor(t, "pods on the two untainted nodes", func() bool { return onNodes(t, s, ds, "", n0, n1) })
	hash1 := ""
	for _, ps := range livePods(t, s, ds) {
		p := ps[0]
		hash1 = p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]
		terms := p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		if len(terms) != 1 || len(terms[0].MatchFields) != 1 || terms[0].MatchFields[0].Values[0] != p.Spec.NodeName {
			t.Errorf("pod %s on %s: required affinity %+v", p.Name, p.Spec.NodeName, terms)
		}
		if len(p.Spec.Tolerations) != 6 {
			t.Errorf("pod %s: tolerations %+v, want the 6 automatic ones", p.Name, p.Spec.Tolerations)
		}
	}
	revs, err := s.Client.AppsV1().ControllerRevisions("default").List(ctx, metav1.ListOptions{})
	if err != nil || len(revs.Items) != 1 || revs.Items[0].Name != "agent-"+hash1 || revs.Items[0].Revision != 1 {
		t.Fatalf("revisions = %+v, %v; want agent-%s at revision 1", revs, err, hash1)
	}
	status := func(want appsv1.DaemonSetStatus) func() bool {
		return func() bool {
			cur, err := sets.Get(ctx, "agent", metav1.GetOptions{})
			if err != nil {
				return false
			}
			want.ObservedGeneration = cur.Generation
			want.CollisionCount = cur.Status.CollisionCount
			want.Conditions = cur.Status.Conditions
			return equality.Semantic.DeepEqual(cur.Status, want)
		}
	}
	waitFor(t, "status 2/2/2", status(appsv1.DaemonSetStatus{DesiredNumberScheduled: 2, CurrentNumberScheduled: 2,
		NumberReady: 2, NumberAvailable: 2, UpdatedNumberScheduled: 2}))

	// Node labels decide: unlabelled n1 loses its pod, labelled it gets one back.
	patchNode(t, s, n1, `{"metadata":{"labels":{"daemon":null}}}`)
	waitFor(t, "the pod on n1 removed", func() bool { return onNodes(t, s, ds, "", n0) })
	waitFor(t, "status 1", status(appsv1.DaemonSetStatus{DesiredNumberScheduled: 1, CurrentNumberScheduled: 1,
		NumberReady: 1, NumberAvailable: 1, UpdatedNumberScheduled: 1}))
	patchNode(t, s, n1, `{"metadata":{"labels":{"daemon":"yes"}}}`)
	waitFor(t, "a pod back on n1", func() bool { return onNodes(t, s, ds, "", n0, n1) })

	// Tolerating the taint brings n2 in, as a template change rolled out.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := sets.Get(ctx, "agent", metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}}
		cur.Spec.Template.Spec.Containers[0].Image = "busybox:1.37"
		_, err = sets.Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var hash2 string
	waitFor(t, "a second revision", func() bool {
		revs, err := s.Client.AppsV1().ControllerRevisions("default").List(ctx, metav1.ListOptions{})
		if err != nil || len(revs.Items) != 2 {
			return false
		}
		for _, r := range revs.Items {
			if r.Revision == 2 {
				hash2 = r.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]
			}
		}
		return hash2 != "" && hash2 != hash1
	})
	waitFor(t, "all three nodes on the new template", func() bool { return onNodes(t, s, ds, hash2, n0, n1, n2) })
	for _, ps := range livePods(t, s, ds) {
		if img := ps[0].Spec.Containers[0].Image; img != "busybox:1.37" {
			t.Errorf("pod %s runs %s", ps[0].Name, img)
		}
	}
	waitFor(t, "status 3/3/3", status(appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3,
		NumberReady: 3, NumberAvailable: 3, UpdatedNumberScheduled: 3}))

	// Nothing more happens once settled: no double creates.
	time.Sleep(300 * time.Millisecond)
	if !onNodes(t, s, ds, hash2, n0, n1, n2) {
		t.Fatalf("pods changed after the rollout: %v", livePods(t, s, ds))
	}
	for _, reason := range []string{"SuccessfulCreate", "SuccessfulDelete"} {
		ev, err := s.Client.CoreV1().Events("default").List(ctx, metav1.ListOptions{
			FieldSelector: fmt.Sprintf("involvedObject.name=agent,reason=%s", reason)})
		if err != nil || len(ev.Items) == 0 {
			t.Errorf("no %s events: %v", reason, err)
		}
	}
}
