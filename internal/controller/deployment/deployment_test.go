package deployment_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/controller"
	"github.com/lotse/lotse/internal/controller/deployment"
	"github.com/lotse/lotse/internal/controller/manager"
	"github.com/lotse/lotse/internal/testserver"
)

const ns = "default"

// start starts a control plane and, unless lotse server already runs it,
// the deployment controller against it.
func start(t *testing.T) (*testserver.Server, kubernetes.Interface, context.Context) {
	t.Helper()
	// The tests play the node: they mark pods running and ready, so the
	// server runs no scheduler to write pod status alongside them.
	s := testserver.Start(t, testserver.Options{DisableScheduler: true})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if _, registered := manager.Controllers["deployment"]; registered {
		return s, s.Client, ctx
	}
	meta, err := metadata.NewForConfig(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	cctx := &controller.Context{
		Client: s.Client, Metadata: meta,
		Informers: informers.NewSharedInformerFactory(s.Client, 0),
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Clock:     clock.RealClock{},
	}
	c, err := deployment.New(cctx)
	if err != nil {
		t.Fatal(err)
	}
	cctx.Informers.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.Run(ctx); err != nil {
			t.Errorf("controller: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		cctx.Informers.Shutdown()
	})
	return s, s.Client, ctx
}

func newDeployment(name string, n int32, image string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(n),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: image}}},
			},
		},
	}
}

func rollingStrategy(surge, unavailable intstr.IntOrString) appsv1.DeploymentStrategy {
	return appsv1.DeploymentStrategy{
		Type:          appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable},
	}
}

// owned lists the ReplicaSets d controls, oldest first.
func owned(ctx context.Context, t *testing.T, c kubernetes.Interface, d *appsv1.Deployment) []appsv1.ReplicaSet {
	t.Helper()
	list, err := c.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []appsv1.ReplicaSet
	for _, rs := range list.Items {
		if ref := metav1.GetControllerOf(&rs); ref != nil && ref.UID == d.UID {
			out = append(out, rs)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Annotations[deployment.RevisionAnnotation] < out[j].Annotations[deployment.RevisionAnnotation]
	})
	return out
}

// rsControllerRuns tells whether lotse server runs the ReplicaSet
// controller, which then owns ReplicaSet status and pods.
var rsControllerRuns = func() bool { _, ok := manager.Controllers["replicaset"]; return ok }()

// settle plays the kubelet: every pod of rs becomes Ready, so the
// ReplicaSet controller counts it available. Without a ReplicaSet
// controller it plays that too and sets the ReplicaSet's status.
func settle(ctx context.Context, t *testing.T, c kubernetes.Interface, rs appsv1.ReplicaSet) {
	t.Helper()
	if !rsControllerRuns {
		n := *rs.Spec.Replicas
		if rs.Status.Replicas == n && rs.Status.AvailableReplicas == n && rs.Status.ObservedGeneration == rs.Generation {
			return
		}
		rs.Status = appsv1.ReplicaSetStatus{Replicas: n, FullyLabeledReplicas: n, ReadyReplicas: n, AvailableReplicas: n, ObservedGeneration: rs.Generation}
		if _, err := c.AppsV1().ReplicaSets(ns).UpdateStatus(ctx, &rs, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		return
	}
	for _, p := range podsOf(ctx, t, c, rs) {
		if p.DeletionTimestamp != nil || ready(&p) {
			continue
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()})
		if _, err := c.CoreV1().Pods(ns).UpdateStatus(ctx, &p, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
	}
}

func podsOf(ctx context.Context, t *testing.T, c kubernetes.Interface, rs appsv1.ReplicaSet) []corev1.Pod {
	t.Helper()
	list, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(rs.Spec.Selector)})
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if ref := metav1.GetControllerOf(&p); ref != nil && ref.UID == rs.UID {
			out = append(out, p)
		}
	}
	return out
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func poll(ctx context.Context, t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 20*time.Second, true, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// rolledOut reports what kubectl rollout status checks for success.
func rolledOut(d *appsv1.Deployment) bool {
	cond := condition(d, appsv1.DeploymentProgressing)
	return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == *d.Spec.Replicas &&
		d.Status.Replicas == d.Status.UpdatedReplicas && d.Status.AvailableReplicas == d.Status.UpdatedReplicas &&
		cond != nil && cond.Reason == "NewReplicaSetAvailable"
}

func condition(d *appsv1.Deployment, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == t {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

// settleUntilRolledOut settles every ReplicaSet of d until its rollout is
// complete, calling check on every state seen on the way.
func settleUntilRolledOut(ctx context.Context, t *testing.T, c kubernetes.Interface, d *appsv1.Deployment, check func([]appsv1.ReplicaSet)) *appsv1.Deployment {
	t.Helper()
	var cur *appsv1.Deployment
	poll(ctx, t, "rollout to complete", func(ctx context.Context) (bool, error) {
		var err error
		cur, err = c.AppsV1().Deployments(ns).Get(ctx, d.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if rolledOut(cur) {
			return true, nil
		}
		rss := owned(ctx, t, c, cur)
		if check != nil {
			check(rss)
		}
		for _, rs := range rss {
			settle(ctx, t, c, rs)
		}
		return false, nil
	})
	return cur
}

func create(ctx context.Context, t *testing.T, c kubernetes.Interface, d *appsv1.Deployment) *appsv1.Deployment {
	t.Helper()
	out, err := c.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// update applies change to the current deployment, retrying conflicts
// with the controller's own writes.
func update(ctx context.Context, t *testing.T, c kubernetes.Interface, name string, change func(*appsv1.Deployment)) *appsv1.Deployment {
	t.Helper()
	var out *appsv1.Deployment
	poll(ctx, t, "updating deployment", func(ctx context.Context) (bool, error) {
		d, err := c.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		change(d)
		out, err = c.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			return false, nil
		}
		return err == nil, err
	})
	return out
}

func setImage(image string) func(*appsv1.Deployment) {
	return func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = image }
}

func events(ctx context.Context, t *testing.T, c kubernetes.Interface, name string) []string {
	t.Helper()
	list, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == "Deployment" && e.InvolvedObject.Name == name {
			out = append(out, e.Reason+": "+e.Message)
		}
	}
	return out
}

func TestCreateAndRollOut(t *testing.T) {
	s, c, ctx := start(t)
	d := create(ctx, t, c, newDeployment("web", 3, "nginx:1"))

	var rs appsv1.ReplicaSet
	poll(ctx, t, "ReplicaSet to appear", func(ctx context.Context) (bool, error) {
		rss := owned(ctx, t, c, d)
		if len(rss) == 1 {
			rs = rss[0]
		}
		return len(rss) == 1, nil
	})
	hash := deployment.ComputeHash(&d.Spec.Template, nil)
	if rs.Name != "web-"+hash {
		t.Errorf("ReplicaSet name %s, want web-%s", rs.Name, hash)
	}
	if rs.Labels[deployment.PodTemplateHashLabel] != hash || rs.Spec.Template.Labels[deployment.PodTemplateHashLabel] != hash ||
		rs.Spec.Selector.MatchLabels[deployment.PodTemplateHashLabel] != hash || rs.Spec.Selector.MatchLabels["app"] != "web" {
		t.Errorf("pod-template-hash %s missing: labels %v, template labels %v, selector %v", hash, rs.Labels, rs.Spec.Template.Labels, rs.Spec.Selector)
	}
	ref := metav1.GetControllerOf(&rs)
	if ref == nil || ref.Kind != "Deployment" || ref.Name != "web" || ref.UID != d.UID || !ptr.Deref(ref.BlockOwnerDeletion, false) {
		t.Errorf("ownerReferences %+v, want a blocking controller reference to deployment web", rs.OwnerReferences)
	}
	if *rs.Spec.Replicas != 3 {
		t.Errorf("ReplicaSet replicas %d, want 3", *rs.Spec.Replicas)
	}
	want := map[string]string{deployment.RevisionAnnotation: "1", deployment.DesiredReplicasAnnotation: "3", deployment.MaxReplicasAnnotation: "4"}
	for k, v := range want {
		if rs.Annotations[k] != v {
			t.Errorf("ReplicaSet annotation %s = %q, want %q", k, rs.Annotations[k], v)
		}
	}

	// Not available until the ReplicaSet's pods are.
	poll(ctx, t, "status before pods are available", func(ctx context.Context) (bool, error) {
		cur, err := c.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		av := condition(cur, appsv1.DeploymentAvailable)
		pr := condition(cur, appsv1.DeploymentProgressing)
		return cur.Status.ObservedGeneration == cur.Generation && cur.Status.UnavailableReplicas == 3 &&
			av != nil && av.Reason == "MinimumReplicasUnavailable" && av.Status == corev1.ConditionFalse &&
			// Created, then Updated once the ReplicaSet reports its pods:
			// which one a poll sees depends on timing.
			pr != nil && (pr.Reason == "NewReplicaSetCreated" || pr.Reason == "ReplicaSetUpdated") &&
			cur.Annotations[deployment.RevisionAnnotation] == "1", nil
	})

	cur := settleUntilRolledOut(ctx, t, c, d, nil)
	if av := condition(cur, appsv1.DeploymentAvailable); av == nil || av.Status != corev1.ConditionTrue || av.Reason != "MinimumReplicasAvailable" {
		t.Errorf("Available condition %+v, want True MinimumReplicasAvailable", av)
	}
	if cur.Status.ReadyReplicas != 3 || cur.Status.AvailableReplicas != 3 || cur.Status.UnavailableReplicas != 0 {
		t.Errorf("status %+v, want 3 ready and available", cur.Status)
	}
	msg := fmt.Sprintf("ScalingReplicaSet: Scaled up replica set %s from 0 to 3", rs.Name)
	poll(ctx, t, "scaling event", func(ctx context.Context) (bool, error) {
		for _, e := range events(ctx, t, c, "web") {
			if e == msg {
				return true, nil
			}
		}
		return false, nil
	})

	// kubectl reads the same status and conditions.
	if _, err := exec.LookPath("kubectl"); err == nil {
		out, err := exec.CommandContext(ctx, "kubectl", "--kubeconfig", s.Kubeconfig, "-n", ns, "rollout", "status", "deployment/web", "--timeout=20s").CombinedOutput()
		if err != nil || !strings.Contains(string(out), `deployment "web" successfully rolled out`) {
			t.Errorf("kubectl rollout status: %v\n%s", err, out)
		}
	}
}

func TestRollingUpdateAndRollback(t *testing.T) {
	s, c, ctx := start(t)
	d := newDeployment("web", 4, "nginx:1")
	d.Spec.Strategy = rollingStrategy(intstr.FromInt32(1), intstr.FromInt32(1))
	d = create(ctx, t, c, d)
	settleUntilRolledOut(ctx, t, c, d, nil)
	first := owned(ctx, t, c, d)[0]

	update(ctx, t, c, "web", func(d *appsv1.Deployment) {
		metav1.SetMetaDataAnnotation(&d.ObjectMeta, "kubernetes.io/change-cause", "to v2")
		setImage("nginx:2")(d)
	})
	sawBoth := false
	settleUntilRolledOut(ctx, t, c, d, func(rss []appsv1.ReplicaSet) {
		var total, available int32
		for _, rs := range rss {
			total += *rs.Spec.Replicas
			// Pods of a ReplicaSet just scaled down still run and count
			// until the ReplicaSet controller removes them.
			available += rs.Status.AvailableReplicas
		}
		if total > 5 {
			t.Errorf("%d replicas wanted, above 4 + maxSurge 1: %v\nevents: %s", total, sizes(rss), strings.Join(events(ctx, t, c, "web"), "\n"))
		}
		if available < 3 {
			t.Errorf("%d replicas available, below 4 - maxUnavailable 1: %v\nevents: %s", available, sizes(rss), strings.Join(events(ctx, t, c, "web"), "\n"))
		}
		if len(rss) == 2 && *rss[0].Spec.Replicas > 0 && *rss[1].Spec.Replicas > 0 {
			sawBoth = true
		}
	})
	if !sawBoth {
		t.Error("never saw old and new ReplicaSet running side by side")
	}
	rss := owned(ctx, t, c, d)
	if len(rss) != 2 || rss[0].Name != first.Name || *rss[0].Spec.Replicas != 0 || *rss[1].Spec.Replicas != 4 {
		t.Fatalf("after the rollout: %v, want %s at 0 and a new one at 4", sizes(rss), first.Name)
	}
	second := rss[1]
	if second.Annotations[deployment.RevisionAnnotation] != "2" || second.Annotations["kubernetes.io/change-cause"] != "to v2" {
		t.Errorf("new ReplicaSet annotations %v, want revision 2 and the change-cause", second.Annotations)
	}

	// kubectl rollout undo patches the template back to the old one.
	update(ctx, t, c, "web", func(d *appsv1.Deployment) {
		tmpl := first.Spec.Template.DeepCopy()
		delete(tmpl.Labels, deployment.PodTemplateHashLabel)
		d.Spec.Template = *tmpl
		delete(d.Annotations, "kubernetes.io/change-cause")
	})
	cur := settleUntilRolledOut(ctx, t, c, d, nil)
	rss = owned(ctx, t, c, d)
	if len(rss) != 2 {
		t.Fatalf("rollback made a new ReplicaSet instead of reusing %s: %v", first.Name, sizes(rss))
	}
	back := rss[1] // sorted by revision
	if back.Name != first.Name || back.Annotations[deployment.RevisionAnnotation] != "3" || back.Annotations[deployment.RevisionHistoryAnnotation] != "1" {
		t.Errorf("rolled back to %s with annotations %v, want %s at revision 3 with history 1", back.Name, back.Annotations, first.Name)
	}
	if cur.Annotations[deployment.RevisionAnnotation] != "3" {
		t.Errorf("deployment revision %q, want 3", cur.Annotations[deployment.RevisionAnnotation])
	}

	if _, err := exec.LookPath("kubectl"); err == nil {
		out, err := exec.CommandContext(ctx, "kubectl", "--kubeconfig", s.Kubeconfig, "-n", ns, "rollout", "history", "deployment/web").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "to v2") || !strings.Contains(string(out), "\n3 ") {
			t.Errorf("kubectl rollout history: %v\n%s", err, out)
		}
	}
}

func sizes(rss []appsv1.ReplicaSet) string {
	var parts []string
	for _, rs := range rss {
		parts = append(parts, fmt.Sprintf("%s=%d/%d", rs.Name, *rs.Spec.Replicas, rs.Status.AvailableReplicas))
	}
	return strings.Join(parts, " ")
}

func TestPauseAndResume(t *testing.T) {
	_, c, ctx := start(t)
	d := create(ctx, t, c, newDeployment("web", 2, "nginx:1"))
	settleUntilRolledOut(ctx, t, c, d, nil)

	paused := update(ctx, t, c, "web", func(d *appsv1.Deployment) {
		d.Spec.Paused = true
		setImage("nginx:2")(d)
	})
	poll(ctx, t, "paused condition", func(ctx context.Context) (bool, error) {
		cur, err := c.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pr := condition(cur, appsv1.DeploymentProgressing)
		return cur.Status.ObservedGeneration >= paused.Generation && pr != nil && pr.Reason == "DeploymentPaused" && pr.Status == corev1.ConditionUnknown, nil
	})
	// Scaling still applies while paused; the rollout does not.
	update(ctx, t, c, "web", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](5) })
	poll(ctx, t, "scaling while paused", func(ctx context.Context) (bool, error) {
		rss := owned(ctx, t, c, d)
		return len(rss) == 1 && *rss[0].Spec.Replicas == 5, nil
	})
	if rss := owned(ctx, t, c, d); len(rss) != 1 || rss[0].Spec.Template.Spec.Containers[0].Image != "nginx:1" {
		t.Fatalf("paused deployment rolled out: %v", sizes(rss))
	}

	update(ctx, t, c, "web", func(d *appsv1.Deployment) { d.Spec.Paused = false })
	settleUntilRolledOut(ctx, t, c, d, nil)
	rss := owned(ctx, t, c, d)
	if len(rss) != 2 || rss[1].Spec.Template.Spec.Containers[0].Image != "nginx:2" || *rss[1].Spec.Replicas != 5 || *rss[0].Spec.Replicas != 0 {
		t.Errorf("after resuming: %v, want the nginx:2 ReplicaSet at 5 and the old at 0", sizes(rss))
	}
}

func TestRecreate(t *testing.T) {
	_, c, ctx := start(t)
	d := newDeployment("db", 2, "postgres:15")
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	d = create(ctx, t, c, d)
	settleUntilRolledOut(ctx, t, c, d, nil)
	old := owned(ctx, t, c, d)[0]

	// Hold the old pods: with a finalizer they outlive their deletion,
	// as pods in their termination grace period do.
	var held []string
	if rsControllerRuns {
		for _, p := range podsOf(ctx, t, c, old) {
			p.Finalizers = append(p.Finalizers, "example.com/hold")
			if _, err := c.CoreV1().Pods(ns).Update(ctx, &p, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			held = append(held, p.Name)
		}
	}

	changed := update(ctx, t, c, "db", setImage("postgres:16"))
	// The old ReplicaSet goes to zero first; while its pods still run no
	// new ReplicaSet may start.
	poll(ctx, t, "old ReplicaSet scaled to zero", func(ctx context.Context) (bool, error) {
		cur, err := c.AppsV1().Deployments(ns).Get(ctx, "db", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		rss := owned(ctx, t, c, d)
		if len(rss) == 0 || *rss[0].Spec.Replicas != 0 || cur.Status.ObservedGeneration < changed.Generation {
			return false, nil
		}
		if rsControllerRuns {
			// The controller has seen the old ReplicaSet count no pods.
			return rss[0].Status.Replicas == 0 && cur.Status.Replicas == 0, nil
		}
		return true, nil
	})
	if rss := owned(ctx, t, c, d); len(rss) != 1 {
		t.Fatalf("new ReplicaSet started while old pods run: %v", sizes(rss))
	}
	// The old pods go away.
	for _, name := range held {
		patch := []byte(`{"metadata":{"finalizers":null}}`)
		if _, err := c.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if !rsControllerRuns {
		settle(ctx, t, c, owned(ctx, t, c, d)[0])
	}
	cur := settleUntilRolledOut(ctx, t, c, d, nil)
	rss := owned(ctx, t, c, d)
	if len(rss) != 2 || *rss[1].Spec.Replicas != 2 || rss[1].Spec.Template.Spec.Containers[0].Image != "postgres:16" {
		t.Errorf("after Recreate: %v, want the postgres:16 ReplicaSet at 2", sizes(rss))
	}
	if cur.Annotations[deployment.RevisionAnnotation] != "2" {
		t.Errorf("deployment revision %q, want 2", cur.Annotations[deployment.RevisionAnnotation])
	}
}

func TestProportionalScalingMidRollout(t *testing.T) {
	_, c, ctx := start(t)
	d := newDeployment("web", 10, "nginx:1")
	d.Spec.Strategy = rollingStrategy(intstr.FromInt32(3), intstr.FromInt32(2))
	d = create(ctx, t, c, d)
	settleUntilRolledOut(ctx, t, c, d, nil)

	// The new ReplicaSet never becomes available, so the rollout stops at
	// old 8 (10 - maxUnavailable 2) and new 5 (13 - 8).
	update(ctx, t, c, "web", setImage("nginx:2"))
	poll(ctx, t, "rollout to stall at 8 + 5", func(ctx context.Context) (bool, error) {
		rss := owned(ctx, t, c, d)
		if len(rss) != 2 {
			return false, nil
		}
		settle(ctx, t, c, rss[0])
		return *rss[0].Spec.Replicas == 8 && *rss[1].Spec.Replicas == 5, nil
	})

	// 10 -> 20 with surge 3: 13 become 23, spread 8:5 as 14 and 9.
	update(ctx, t, c, "web", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](20) })
	poll(ctx, t, "proportional scale-up", func(ctx context.Context) (bool, error) {
		rss := owned(ctx, t, c, d)
		return len(rss) == 2 && *rss[0].Spec.Replicas == 14 && *rss[1].Spec.Replicas == 9 &&
			rss[1].Annotations[deployment.DesiredReplicasAnnotation] == "20" && rss[1].Annotations[deployment.MaxReplicasAnnotation] == "23", nil
	})
	cur := settleUntilRolledOut(ctx, t, c, d, nil)
	if cur.Status.Replicas != 20 || cur.Status.AvailableReplicas != 20 {
		t.Errorf("status %+v, want 20 replicas available", cur.Status)
	}
}

func TestRevisionHistoryLimit(t *testing.T) {
	_, c, ctx := start(t)
	d := newDeployment("web", 1, "nginx:1")
	d.Spec.RevisionHistoryLimit = ptr.To[int32](1)
	d = create(ctx, t, c, d)
	settleUntilRolledOut(ctx, t, c, d, nil)
	for _, image := range []string{"nginx:2", "nginx:3"} {
		update(ctx, t, c, "web", setImage(image))
		settleUntilRolledOut(ctx, t, c, d, nil)
	}
	poll(ctx, t, "oldest ReplicaSet to be deleted", func(ctx context.Context) (bool, error) {
		rss := owned(ctx, t, c, d)
		for _, rs := range rss {
			settle(ctx, t, c, rs)
		}
		return len(rss) == 2 && rss[0].Annotations[deployment.RevisionAnnotation] == "2" && rss[1].Annotations[deployment.RevisionAnnotation] == "3", nil
	})
}

func TestAdoptAndRelease(t *testing.T) {
	_, c, ctx := start(t)
	d := newDeployment("web", 2, "nginx:1")
	// An orphan with the deployment's template, as left by
	// kubectl delete deployment --cascade=orphan.
	tmpl := d.Spec.Template.DeepCopy()
	tmpl.Labels = map[string]string{"app": "web", deployment.PodTemplateHashLabel: "orphan"}
	orphan := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-orphan", Namespace: ns, Labels: tmpl.Labels},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: tmpl.Labels},
			Template: *tmpl,
		},
	}
	if _, err := c.AppsV1().ReplicaSets(ns).Create(ctx, orphan, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d = create(ctx, t, c, d)
	settleUntilRolledOut(ctx, t, c, d, nil)
	rss := owned(ctx, t, c, d)
	if len(rss) != 1 || rss[0].Name != "web-orphan" {
		t.Fatalf("deployment owns %v, want only the adopted web-orphan", sizes(rss))
	}
	// The ReplicaSet gets its revision first, the deployment on the next pass.
	poll(ctx, t, "revision 1 on the deployment", func(ctx context.Context) (bool, error) {
		cur, err := c.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && cur.Annotations[deployment.RevisionAnnotation] == "1", err
	})

	// Relabelled out of the selector, it is released and replaced.
	poll(ctx, t, "relabelling", func(ctx context.Context) (bool, error) {
		rs, err := c.AppsV1().ReplicaSets(ns).Get(ctx, "web-orphan", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		rs.Labels = map[string]string{"app": "other"}
		_, err = c.AppsV1().ReplicaSets(ns).Update(ctx, rs, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			return false, nil
		}
		return err == nil, err
	})
	poll(ctx, t, "release and replacement", func(ctx context.Context) (bool, error) {
		got, err := c.AppsV1().ReplicaSets(ns).Get(ctx, "web-orphan", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		rss := owned(ctx, t, c, d)
		return metav1.GetControllerOf(got) == nil && len(rss) == 1 && rss[0].Name != "web-orphan", nil
	})
}
