package plugins

import (
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"

	fw "github.com/lotse/lotse/internal/scheduler/framework"

	"github.com/lotse/lotse/internal/storageclass"
)

// testListers serves objs through real listers over plain indexers, as the
// scheduler's informers would.
func testListers(objs ...runtime.Object) Listers {
	newIndexer := func() cache.Indexer {
		return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	}
	claims, volumes, classes, namespaces := newIndexer(), newIndexer(), newIndexer(), newIndexer()
	for _, o := range objs {
		var err error
		switch o.(type) {
		case *v1.PersistentVolumeClaim:
			err = claims.Add(o)
		case *v1.PersistentVolume:
			err = volumes.Add(o)
		case *storagev1.StorageClass:
			err = classes.Add(o)
		case *v1.Namespace:
			err = namespaces.Add(o)
		}
		if err != nil {
			panic(err)
		}
	}
	return Listers{
		Claims:     corelisters.NewPersistentVolumeClaimLister(claims),
		Volumes:    corelisters.NewPersistentVolumeLister(volumes),
		Classes:    storagelisters.NewStorageClassLister(classes),
		Namespaces: corelisters.NewNamespaceLister(namespaces),
	}
}

func claim(name, volume string, mut ...func(*v1.PersistentVolumeClaim)) *v1.PersistentVolumeClaim {
	c := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       v1.PersistentVolumeClaimSpec{VolumeName: volume},
		Status:     v1.PersistentVolumeClaimStatus{Phase: v1.ClaimPending},
	}
	if volume != "" {
		c.Status.Phase = v1.ClaimBound
	}
	for _, m := range mut {
		m(c)
	}
	return c
}

func withClass(name string) func(*v1.PersistentVolumeClaim) {
	return func(c *v1.PersistentVolumeClaim) { c.Spec.StorageClassName = &name }
}

func volume(name string, labels map[string]string, affinity ...v1.NodeSelectorTerm) *v1.PersistentVolume {
	pv := &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if affinity != nil {
		pv.Spec.NodeAffinity = &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: affinity}}
	}
	return pv
}

func class(name string, mode storagev1.VolumeBindingMode) *storagev1.StorageClass {
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: "x", VolumeBindingMode: &mode}
}

// withClaims gives the pod one persistentVolumeClaim volume per name, next
// to a volume of another kind that the filters must ignore.
func withClaims(names ...string) func(*v1.Pod) {
	return func(p *v1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}})
		for _, n := range names {
			p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: "v-" + n,
				VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: n}}})
		}
	}
}

// runVolumeFilters runs both volume plugins as the algorithm does: both
// PreFilters, then both Filters on node; it returns the first failure.
func runVolumeFilters(l Listers, pod *v1.Pod, node *v1.Node) *fw.Status {
	plugins := []fw.FilterPlugin{VolumeBinding{Listers: l}, VolumeZone{Listers: l}}
	state := fw.NewCycleState()
	pi := fw.NewPodInfo(pod)
	snap := fw.SnapshotOf([]*v1.Node{node}, nil)
	var run []fw.FilterPlugin
	for _, f := range plugins {
		switch st := f.(fw.PreFilterPlugin).PreFilter(state, pi, snap); {
		case st.IsSuccess():
			run = append(run, f)
		case st.Code != fw.Skip:
			return st
		}
	}
	ni, _ := snap.Get(node.Name)
	for _, f := range run {
		if st := f.Filter(state, pi, ni); !st.IsSuccess() {
			return st
		}
	}
	return nil
}

func TestVolumeFilters(t *testing.T) {
	hostA := v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{{Key: v1.LabelHostname, Operator: v1.NodeSelectorOpIn, Values: []string{"a"}}}}
	l := testListers(
		class("wffc", storagev1.VolumeBindingWaitForFirstConsumer),
		class("immediate", storagev1.VolumeBindingImmediate),
		volume("local-a", nil, hostA),
		volume("zonal", map[string]string{v1.LabelTopologyZone: "z1__z2"}),
		volume("beta-zonal", map[string]string{v1.LabelFailureDomainBetaZone: "z1"}),
		volume("regional", map[string]string{v1.LabelTopologyRegion: "r1"}),
		volume("unzoned", map[string]string{v1.LabelTopologyZone: "__"}),
		volume("plain", nil),
		claim("on-a", "local-a"),
		claim("zonal", "zonal"),
		claim("beta-zonal", "beta-zonal"),
		claim("regional", "regional"),
		claim("unzoned", "unzoned"),
		claim("plain", "plain"),
		claim("ghost", "no-such-pv"),
		claim("pending", ""),
		claim("pending-immediate", "", withClass("immediate")),
		claim("pending-wffc", "", withClass("wffc")),
		claim("pending-unknown-class", "", withClass("gone")),
		claim("pending-beta-wffc", "", withClass("immediate"), func(c *v1.PersistentVolumeClaim) {
			c.Annotations = map[string]string{storageclass.BetaAnnotation: "wffc"}
		}),
		claim("lost", "gone", func(c *v1.PersistentVolumeClaim) { c.Status.Phase = v1.ClaimLost }),
		claim("deleting", "plain", func(c *v1.PersistentVolumeClaim) { c.DeletionTimestamp = &metav1.Time{} }),
	)
	nodeA := mkNode("a", "1", "1Gi", map[string]string{v1.LabelHostname: "a", v1.LabelTopologyZone: "z1", v1.LabelTopologyRegion: "r1"})
	nodeB := mkNode("b", "1", "1Gi", map[string]string{v1.LabelHostname: "b", v1.LabelTopologyZone: "z3", v1.LabelTopologyRegion: "r2"})
	nodeZ2 := mkNode("z2", "1", "1Gi", map[string]string{v1.LabelFailureDomainBetaZone: "z2"})
	bare := mkNode("bare", "1", "1Gi", nil)

	unresolvable := func(reason string) *fw.Status { return fw.NewStatus(fw.UnschedulableAndUnresolvable, reason) }
	tests := []struct {
		name   string
		claims []string
		node   *v1.Node
		want   *fw.Status
	}{
		{"no claims", nil, nodeB, nil},
		{"plain bound volume", []string{"plain"}, nodeB, nil},
		{"volume node affinity met", []string{"on-a"}, nodeA, nil},
		{"volume node affinity conflict", []string{"on-a"}, nodeB, unresolvable(ReasonVolumeNodeAffinity)},
		{"one of several volumes conflicts", []string{"plain", "on-a"}, nodeB, unresolvable(ReasonVolumeNodeAffinity)},
		{"zone in the volume's set", []string{"zonal"}, nodeA, nil},
		{"zone not in the volume's set", []string{"zonal"}, nodeB, unresolvable(ReasonVolumeZone)},
		// Upstream translates only the volume's beta keys to GA ones.
		{"volume's GA zone against a node's beta label", []string{"zonal"}, nodeZ2, unresolvable(ReasonVolumeZone)},
		{"volume's beta zone matches a node's GA label", []string{"beta-zonal"}, nodeA, nil},
		{"volume's beta zone against another zone", []string{"beta-zonal"}, nodeZ2, unresolvable(ReasonVolumeZone)},
		{"region mismatch", []string{"regional"}, nodeB, unresolvable(ReasonVolumeZone)},
		{"node without topology labels takes any zonal volume", []string{"zonal", "regional"}, bare, nil},
		{"zone label naming no zone is ignored", []string{"unzoned"}, nodeB, nil},
		{"claim bound to a missing volume", []string{"ghost"}, nodeA, unresolvable(ReasonBoundToMissingPV)},
		{"missing claim", []string{"nope"}, nodeA, unresolvable(`persistentvolumeclaim "nope" not found`)},
		{"missing claim is reported before an unbound one", []string{"pending", "nope"}, nodeA, unresolvable(`persistentvolumeclaim "nope" not found`)},
		{"unbound claim without a class", []string{"pending"}, nodeA, unresolvable(ReasonUnboundImmediate)},
		{"unbound claim of an Immediate class", []string{"pending-immediate"}, nodeA, unresolvable(ReasonUnboundImmediate)},
		{"unbound claim of a missing class", []string{"pending-unknown-class"}, nodeA, unresolvable(ReasonUnboundImmediate)},
		{"unbound WaitForFirstConsumer claim is left alone", []string{"pending-wffc"}, nodeB, nil},
		{"beta class annotation wins over spec", []string{"pending-beta-wffc"}, nodeB, nil},
		{"WaitForFirstConsumer next to a conflicting bound claim", []string{"pending-wffc", "on-a"}, nodeB, unresolvable(ReasonVolumeNodeAffinity)},
		{"lost claim", []string{"lost"}, nodeA, unresolvable(`persistentvolumeclaim "lost" bound to non-existent persistentvolume "gone"`)},
		{"claim being deleted", []string{"deleting"}, nodeA, unresolvable(`persistentvolumeclaim "deleting" is being deleted`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runVolumeFilters(l, mkPod("p", "", "", withClaims(tt.claims...)), tt.node)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("status = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// Pods without claims, and schedulers without listers, must not pay for
// the volume filters: nothing is looked up or kept for the cycle, and the
// Filter is skipped.
func TestVolumeFiltersSkipPodsWithoutClaims(t *testing.T) {
	node := mkNode("a", "1", "1Gi", nil)
	for name, tc := range map[string]struct {
		l   Listers
		pod *v1.Pod
	}{
		"no claims":   {testListers(), mkPod("p", "", "", withClaims())},
		"no listers":  {Listers{}, mkPod("p", "", "", withClaims("missing"))},
		"no volumes":  {testListers(), mkPod("p", "", "")},
		"claims only": {Listers{Claims: testListers().Claims}, mkPod("p", "", "")},
	} {
		t.Run(name, func(t *testing.T) {
			state := fw.NewCycleState()
			pi := fw.NewPodInfo(tc.pod)
			if st := (VolumeBinding{Listers: tc.l}).PreFilter(state, pi, fw.NewSnapshot()); st == nil || st.Code != fw.Skip {
				t.Fatalf("PreFilter = %v, want Skip", st)
			}
			if _, ok := state.Read(volumesKey); ok {
				t.Fatal("state written for a pod the volume filters need not check")
			}
			if st := (VolumeBinding{Listers: tc.l}).Filter(state, pi, fw.NewNodeInfo(node)); st != nil {
				t.Fatalf("Filter = %v", st)
			}
		})
	}
}
