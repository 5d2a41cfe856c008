package persistentvolume_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/controller"
	"github.com/lotse/lotse/internal/controller/persistentvolume"
	"github.com/lotse/lotse/internal/testserver"
)

const ns = "team"

// noClass is an explicit "no class": a nil class would be given the
// default class (local-path) by the DefaultStorageClass admission.
var noClass = ptr.To("")

// runBinder runs the PersistentVolume controller on client until ctx ends.
func runBinder(ctx context.Context, t *testing.T, client kubernetes.Interface) {
	t.Helper()
	factory := informers.NewSharedInformerFactory(client, 0)
	ctl, err := persistentvolume.New(&controller.Context{
		Client: client, Informers: factory, Clock: clock.RealClock{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	go func() { _ = ctl.Run(ctx) }()
}

// start runs a control plane without scheduler and the binder on it, and
// makes the namespace the tests use.
func start(t *testing.T) kubernetes.Interface {
	t.Helper()
	s := testserver.Start(t, testserver.Options{DisableScheduler: true, Controllers: []string{"namespace"}})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	runBinder(ctx, t, s.Client)
	if _, err := s.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return s.Client
}

func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 20*time.Second, true, cond)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func staticPV(name, size string, reclaim corev1.PersistentVolumeReclaimPolicy) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadOnlyMany},
			PersistentVolumeReclaimPolicy: reclaim,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/" + name}},
		},
	}
}

func claim(name, size string, class *string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
			StorageClassName: class,
		},
	}
}

func mustCreatePV(t *testing.T, c kubernetes.Interface, pv *corev1.PersistentVolume) {
	t.Helper()
	if _, err := c.CoreV1().PersistentVolumes().Create(context.Background(), pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func mustCreateClaim(t *testing.T, c kubernetes.Interface, pvc *corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim {
	t.Helper()
	out, err := c.CoreV1().PersistentVolumeClaims(ns).Create(context.Background(), pvc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func volumePhase(c kubernetes.Interface, name string, phase corev1.PersistentVolumePhase) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		pv, err := c.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
		return err == nil && pv.Status.Phase == phase, nil
	}
}

func claimPhase(c kubernetes.Interface, name string, phase corev1.PersistentVolumeClaimPhase) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		pvc, err := c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && pvc.Status.Phase == phase, nil
	}
}

// hasEvent reports whether an event with reason was recorded about the
// named object.
func hasEvent(c kubernetes.Interface, namespace, object, reason string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		evs, err := c.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == object && e.Reason == reason {
				return true, nil
			}
		}
		return false, nil
	}
}

// TestStaticBinding binds a claim to the smallest fitting static volume,
// checks both sides as upstream writes them, then releases it.
func TestStaticBinding(t *testing.T) {
	c := start(t)
	ctx := context.Background()
	mustCreatePV(t, c, staticPV("big", "10Gi", corev1.PersistentVolumeReclaimRetain))
	mustCreatePV(t, c, staticPV("fit", "5Gi", corev1.PersistentVolumeReclaimRetain))
	mustCreatePV(t, c, staticPV("small", "1Gi", corev1.PersistentVolumeReclaimRetain))
	eventually(t, "static volumes become Available", volumePhase(c, "small", corev1.VolumeAvailable))
	pvc := mustCreateClaim(t, c, claim("data", "2Gi", noClass))
	eventually(t, "claim Bound", claimPhase(c, "data", corev1.ClaimBound))
	eventually(t, "volume Bound", volumePhase(c, "fit", corev1.VolumeBound))

	pv, err := c.CoreV1().PersistentVolumes().Get(ctx, "fit", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ref := pv.Spec.ClaimRef
	if ref == nil || ref.Kind != "PersistentVolumeClaim" || ref.APIVersion != "v1" || ref.Namespace != ns ||
		ref.Name != "data" || ref.UID != pvc.UID || ref.ResourceVersion == "" {
		t.Errorf("claimRef %+v", ref)
	}
	if pv.Annotations["pv.kubernetes.io/bound-by-controller"] != "yes" {
		t.Errorf("volume annotations %v", pv.Annotations)
	}
	got, err := c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.VolumeName != "fit" || got.Annotations["pv.kubernetes.io/bind-completed"] != "yes" ||
		got.Annotations["pv.kubernetes.io/bound-by-controller"] != "yes" {
		t.Errorf("claim spec %+v annotations %v", got.Spec, got.Annotations)
	}
	if q := got.Status.Capacity[corev1.ResourceStorage]; q.Cmp(resource.MustParse("5Gi")) != 0 || len(got.Status.AccessModes) != 2 {
		t.Errorf("claim status %+v", got.Status)
	}
	for _, name := range []string{"big", "small"} {
		if other, _ := c.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{}); other.Spec.ClaimRef != nil {
			t.Errorf("volume %s was bound too", name)
		}
	}

	// Retain: the claim goes, the volume stays Released.
	if err := c.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "data", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "volume Released", volumePhase(c, "fit", corev1.VolumeReleased))
	time.Sleep(300 * time.Millisecond)
	pv, err = c.CoreV1().PersistentVolumes().Get(ctx, "fit", metav1.GetOptions{})
	if err != nil || pv.Status.Phase != corev1.VolumeReleased || pv.Spec.ClaimRef == nil {
		t.Fatalf("retained volume: %+v, %v", pv, err)
	}
	// A new claim does not get the released volume.
	mustCreateClaim(t, c, claim("again", "4Gi", noClass))
	eventually(t, "new claim binds elsewhere", claimPhase(c, "again", corev1.ClaimBound))
	if again, _ := c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "again", metav1.GetOptions{}); again.Spec.VolumeName != "big" {
		t.Errorf("new claim bound %q, want big", again.Spec.VolumeName)
	}
}

// TestNamedVolume covers a claim naming its volume: Pending while it is
// missing, bound once it appears, without bound-by-controller on the
// claim; deleting it marks a non-provisioned Delete volume Failed; a
// bound claim whose volume is deleted is Lost.
func TestNamedVolume(t *testing.T) {
	c := start(t)
	ctx := context.Background()
	pvc := claim("named", "1Gi", noClass)
	pvc.Spec.VolumeName = "later"
	mustCreateClaim(t, c, pvc)
	time.Sleep(time.Second)
	got, err := c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "named", metav1.GetOptions{})
	if err != nil || got.Status.Phase != corev1.ClaimPending || got.Annotations["pv.kubernetes.io/bind-completed"] != "" {
		t.Fatalf("claim for a missing volume: %+v, %v", got, err)
	}
	mustCreatePV(t, c, staticPV("later", "1Gi", corev1.PersistentVolumeReclaimDelete))
	eventually(t, "claim Bound once the volume exists", claimPhase(c, "named", corev1.ClaimBound))
	eventually(t, "volume Bound", volumePhase(c, "later", corev1.VolumeBound))
	got, _ = c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "named", metav1.GetOptions{})
	if _, ok := got.Annotations["pv.kubernetes.io/bound-by-controller"]; ok || got.Annotations["pv.kubernetes.io/bind-completed"] != "yes" {
		t.Errorf("user-bound claim annotations %v", got.Annotations)
	}

	if err := c.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "named", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "volume Failed", volumePhase(c, "later", corev1.VolumeFailed))
	pv, _ := c.CoreV1().PersistentVolumes().Get(ctx, "later", metav1.GetOptions{})
	if pv.Status.Message == "" {
		t.Error("failed volume has no message")
	}
	eventually(t, "VolumeFailedDelete event", hasEvent(c, metav1.NamespaceDefault, "later", "VolumeFailedDelete"))

	// Lost: the volume of a bound claim disappears.
	mustCreatePV(t, c, staticPV("doomed", "1Gi", corev1.PersistentVolumeReclaimRetain))
	mustCreateClaim(t, c, claim("victim", "1Gi", noClass))
	eventually(t, "claim Bound", claimPhase(c, "victim", corev1.ClaimBound))
	if err := c.CoreV1().PersistentVolumes().Delete(ctx, "doomed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "claim Lost", claimPhase(c, "victim", corev1.ClaimLost))

	// Nothing fits and no class could provision.
	mustCreateClaim(t, c, claim("lonely", "100Gi", noClass))
	eventually(t, "FailedBinding event", hasEvent(c, ns, "lonely", "FailedBinding"))
}

// TestOrphanedVolume: a volume whose claimRef names a claim that does
// not exist (with a UID) is Released; one merely reserved by name stays
// Available for that claim, which then gets it although it is not the
// smallest.
func TestOrphanedVolume(t *testing.T) {
	c := start(t)
	ctx := context.Background()
	orphan := staticPV("orphan", "1Gi", corev1.PersistentVolumeReclaimRetain)
	orphan.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: ns, Name: "ghost", UID: "0d9c5bc2-0000-4000-8000-000000000000"}
	mustCreatePV(t, c, orphan)
	reserved := staticPV("reserved", "8Gi", corev1.PersistentVolumeReclaimRetain)
	reserved.Spec.ClaimRef = &corev1.ObjectReference{Namespace: ns, Name: "owner"}
	mustCreatePV(t, c, reserved)
	mustCreatePV(t, c, staticPV("free", "1Gi", corev1.PersistentVolumeReclaimRetain))
	eventually(t, "orphan Released", volumePhase(c, "orphan", corev1.VolumeReleased))
	eventually(t, "reserved Available", volumePhase(c, "reserved", corev1.VolumeAvailable))
	eventually(t, "free Available", volumePhase(c, "free", corev1.VolumeAvailable))

	mustCreateClaim(t, c, claim("owner", "1Gi", noClass))
	eventually(t, "owner Bound", claimPhase(c, "owner", corev1.ClaimBound))
	got, _ := c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "owner", metav1.GetOptions{})
	if got.Spec.VolumeName != "reserved" {
		t.Errorf("owner bound %q, want reserved", got.Spec.VolumeName)
	}
	pv, _ := c.CoreV1().PersistentVolumes().Get(ctx, "reserved", metav1.GetOptions{})
	if _, ok := pv.Annotations["pv.kubernetes.io/bound-by-controller"]; ok || pv.Spec.ClaimRef.UID != got.UID {
		t.Errorf("reserved volume %+v %+v", pv.Annotations, pv.Spec.ClaimRef)
	}
}

// TestLocalPath covers the built-in provisioner: the default class
// exists, a claim waits for its consumer, a node without a directory
// fails and recovers, and the provisioned volume has the right shape and
// goes with its claim.
func TestLocalPath(t *testing.T) {
	c := start(t)
	ctx := context.Background()
	eventually(t, "local-path class created", func(ctx context.Context) (bool, error) {
		sc, err := c.StorageV1().StorageClasses().Get(ctx, persistentvolume.ClassName, metav1.GetOptions{})
		return err == nil && sc.Provisioner == persistentvolume.ProvisionerName &&
			sc.Annotations["storageclass.kubernetes.io/is-default-class"] == "true", nil
	})
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:   "n1",
		Labels: map[string]string{"kubernetes.io/hostname": "n1"},
	}}
	if _, err := c.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pvc := mustCreateClaim(t, c, claim("data", "3Gi", ptr.To(persistentvolume.ClassName)))
	eventually(t, "WaitForFirstConsumer event", hasEvent(c, ns, "data", "WaitForFirstConsumer"))
	got, _ := c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
	if got.Status.Phase != corev1.ClaimPending || got.Spec.VolumeName != "" {
		t.Fatalf("unconsumed claim: %+v", got)
	}
	if _, err := c.CoreV1().PersistentVolumes().Get(ctx, persistentvolume.VolumeName(pvc.UID), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("volume provisioned before a node was selected: %v", err)
	}

	// The scheduler picks n1, whose agent has not announced a directory.
	got.Annotations = map[string]string{"volume.kubernetes.io/selected-node": "n1"}
	if _, err := c.CoreV1().PersistentVolumeClaims(ns).Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ProvisioningFailed event", hasEvent(c, ns, "data", "ProvisioningFailed"))
	if got, _ := c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{}); got.Spec.VolumeName != "" {
		t.Fatal("bound without a directory")
	}
	n, _ := c.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	n.Annotations = map[string]string{persistentvolume.LocalPathDirAnnotation: "/var/lib/lotse/storage"}
	if _, err := c.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "claim Bound", claimPhase(c, "data", corev1.ClaimBound))
	eventually(t, "ProvisioningSucceeded event", hasEvent(c, ns, "data", "ProvisioningSucceeded"))

	name := "pvc-" + string(pvc.UID)
	pv, err := c.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if hp := pv.Spec.HostPath; hp == nil || hp.Path != "/var/lib/lotse/storage/"+name+"_team_data" || hp.Type == nil || *hp.Type != corev1.HostPathDirectoryOrCreate {
		t.Errorf("hostPath %+v", pv.Spec.HostPath)
	}
	if q := pv.Spec.Capacity[corev1.ResourceStorage]; q.Cmp(resource.MustParse("3Gi")) != 0 {
		t.Errorf("capacity %v", pv.Spec.Capacity)
	}
	if pv.Spec.StorageClassName != "local-path" || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete ||
		pv.Status.Phase != corev1.VolumeBound || pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != pvc.UID {
		t.Errorf("volume %+v status %+v", pv.Spec, pv.Status)
	}
	if pv.Annotations["pv.kubernetes.io/provisioned-by"] != persistentvolume.ProvisionerName || pv.Labels[persistentvolume.LocalPathNodeLabel] != "n1" {
		t.Errorf("volume meta %v %v", pv.Annotations, pv.Labels)
	}
	req := pv.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0]
	if req.Key != "kubernetes.io/hostname" || req.Operator != corev1.NodeSelectorOpIn || len(req.Values) != 1 || req.Values[0] != "n1" {
		t.Errorf("node affinity %+v", pv.Spec.NodeAffinity)
	}
	got, _ = c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
	if got.Spec.VolumeName != name || got.Annotations["pv.kubernetes.io/bind-completed"] != "yes" ||
		got.Annotations["volume.kubernetes.io/storage-provisioner"] != persistentvolume.ProvisionerName {
		t.Errorf("claim %+v %v", got.Spec, got.Annotations)
	}

	// Delete: the provisioned volume goes with its claim.
	if err := c.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "data", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "provisioned volume deleted", func(ctx context.Context) (bool, error) {
		_, err := c.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// TestRetroactiveDefaultClass creates a claim without a class before any
// default class exists (a chart applied as a fresh cluster starts); once
// the binder has made local-path, the claim gets it, as upstream assigns
// defaults retroactively. A claim asking for no class ("") keeps none.
func TestRetroactiveDefaultClass(t *testing.T) {
	s := testserver.Start(t, testserver.Options{DisableScheduler: true, Controllers: []string{"namespace"}})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if _, err := s.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	claims := s.Client.CoreV1().PersistentVolumeClaims(ns)
	for _, c := range []*corev1.PersistentVolumeClaim{claim("early", "1Gi", nil), claim("classless", "1Gi", noClass)} {
		if _, err := claims.Create(ctx, c, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := claims.Get(ctx, "early", metav1.GetOptions{}); got.Spec.StorageClassName != nil {
		t.Fatalf("with no default class, the claim got %q", *got.Spec.StorageClassName)
	}
	runBinder(ctx, t, s.Client)
	eventually(t, "the early claim assigned the default class", func(ctx context.Context) (bool, error) {
		got, err := claims.Get(ctx, "early", metav1.GetOptions{})
		return err == nil && ptr.Deref(got.Spec.StorageClassName, "") == persistentvolume.ClassName, nil
	})
	time.Sleep(300 * time.Millisecond)
	if got, err := claims.Get(ctx, "classless", metav1.GetOptions{}); err != nil || ptr.Deref(got.Spec.StorageClassName, "<nil>") != "" {
		t.Fatalf("a claim asking for no class got %v (%v)", got.Spec.StorageClassName, err)
	}
}
