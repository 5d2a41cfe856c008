package persistentvolume

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/storageclass"
)

// volume builds an Available PV; opts adjust it.
func volume(name, size, class string, opts ...func(*corev1.PersistentVolume)) *corev1.PersistentVolume {
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:         corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: class,
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeAvailable},
	}
	for _, o := range opts {
		o(pv)
	}
	return pv
}

// claimOf builds a claim in ns "ns" with UID "uid-<name>"; opts adjust it.
func claimOf(name, size string, class *string, opts ...func(*corev1.PersistentVolumeClaim)) *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name)},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
			StorageClassName: class,
		},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

func withModes(m ...corev1.PersistentVolumeAccessMode) func(*corev1.PersistentVolume) {
	return func(pv *corev1.PersistentVolume) { pv.Spec.AccessModes = m }
}

func withLabels(l map[string]string) func(*corev1.PersistentVolume) {
	return func(pv *corev1.PersistentVolume) { pv.Labels = l }
}

func withBlock(pv *corev1.PersistentVolume) {
	pv.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeBlock)
}

func withRef(ns, name, uid string) func(*corev1.PersistentVolume) {
	return func(pv *corev1.PersistentVolume) {
		pv.Spec.ClaimRef = &corev1.ObjectReference{Namespace: ns, Name: name, UID: types.UID(uid)}
	}
}

func withPhase(p corev1.PersistentVolumePhase) func(*corev1.PersistentVolume) {
	return func(pv *corev1.PersistentVolume) { pv.Status.Phase = p }
}

func onHost(host string) func(*corev1.PersistentVolume) {
	return func(pv *corev1.PersistentVolume) {
		pv.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: hostnameLabel, Operator: corev1.NodeSelectorOpIn, Values: []string{host}}},
		}}}}
	}
}

func TestFindBestMatch(t *testing.T) {
	fast := ptr.To("fast")
	node1 := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1", Labels: map[string]string{hostnameLabel: "node1"}}}
	tests := []struct {
		name    string
		claim   *corev1.PersistentVolumeClaim
		volumes []*corev1.PersistentVolume
		node    *corev1.Node
		delay   bool
		want    string // "" for no match
	}{
		{name: "smallest that fits wins",
			claim:   claimOf("c", "5Gi", nil),
			volumes: []*corev1.PersistentVolume{volume("big", "20Gi", ""), volume("small", "1Gi", ""), volume("fit", "10Gi", "")},
			want:    "fit"},
		{name: "exact size fits",
			claim:   claimOf("c", "1Gi", nil),
			volumes: []*corev1.PersistentVolume{volume("a", "1Gi", "")},
			want:    "a"},
		{name: "too small never",
			claim:   claimOf("c", "2Gi", nil),
			volumes: []*corev1.PersistentVolume{volume("a", "1Gi", "")},
			want:    ""},
		{name: "no class matches only no class",
			claim:   claimOf("c", "1Gi", nil),
			volumes: []*corev1.PersistentVolume{volume("fast", "1Gi", "fast"), volume("none", "2Gi", "")},
			want:    "none"},
		{name: "empty class equals nil class",
			claim:   claimOf("c", "1Gi", ptr.To("")),
			volumes: []*corev1.PersistentVolume{volume("fast", "1Gi", "fast"), volume("none", "2Gi", "")},
			want:    "none"},
		{name: "class must be equal",
			claim:   claimOf("c", "1Gi", fast),
			volumes: []*corev1.PersistentVolume{volume("none", "1Gi", ""), volume("slow", "1Gi", "slow"), volume("fast", "5Gi", "fast")},
			want:    "fast"},
		{name: "beta class annotation on the claim wins over spec",
			claim: claimOf("c", "1Gi", fast, func(c *corev1.PersistentVolumeClaim) {
				c.Annotations = map[string]string{storageclass.BetaAnnotation: "slow"}
			}),
			volumes: []*corev1.PersistentVolume{volume("fast", "1Gi", "fast"), volume("slow", "1Gi", "slow")},
			want:    "slow"},
		{name: "access modes must be a superset",
			claim: claimOf("c", "1Gi", nil, func(c *corev1.PersistentVolumeClaim) {
				c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadOnlyMany}
			}),
			volumes: []*corev1.PersistentVolume{
				volume("rwo", "1Gi", ""),
				volume("rwx", "1Gi", "", withModes(corev1.ReadWriteMany)),
				volume("both", "9Gi", "", withModes(corev1.ReadOnlyMany, corev1.ReadWriteOnce, corev1.ReadWriteMany)),
			},
			want: "both"},
		{name: "selector matches labels",
			claim: claimOf("c", "1Gi", nil, func(c *corev1.PersistentVolumeClaim) {
				c.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "db"}}
			}),
			volumes: []*corev1.PersistentVolume{
				volume("unlabelled", "1Gi", ""),
				volume("web", "1Gi", "", withLabels(map[string]string{"tier": "web"})),
				volume("db", "3Gi", "", withLabels(map[string]string{"tier": "db", "x": "y"})),
			},
			want: "db"},
		{name: "nil volume mode is filesystem and does not match block",
			claim:   claimOf("c", "1Gi", nil),
			volumes: []*corev1.PersistentVolume{volume("block", "1Gi", "", withBlock)},
			want:    ""},
		{name: "block claim takes block volume",
			claim: claimOf("c", "1Gi", nil, func(c *corev1.PersistentVolumeClaim) {
				c.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeBlock)
			}),
			volumes: []*corev1.PersistentVolume{volume("fs", "1Gi", ""), volume("block", "2Gi", "", withBlock)},
			want:    "block"},
		{name: "only Available volumes",
			claim: claimOf("c", "1Gi", nil),
			volumes: []*corev1.PersistentVolume{
				volume("pending", "1Gi", "", withPhase(corev1.VolumePending)),
				volume("released", "1Gi", "", withPhase(corev1.VolumeReleased)),
			},
			want: ""},
		{name: "volume reserved for another claim is not taken",
			claim:   claimOf("c", "1Gi", nil),
			volumes: []*corev1.PersistentVolume{volume("other", "1Gi", "", withRef("ns", "other", ""))},
			want:    ""},
		{name: "volume reserved for this claim wins over a smaller free one",
			claim: claimOf("c", "1Gi", nil),
			volumes: []*corev1.PersistentVolume{
				volume("free", "1Gi", ""),
				volume("mine", "9Gi", "slow", withRef("ns", "c", ""), withPhase(corev1.VolumePending)),
			},
			want: "mine"},
		{name: "reservation with another UID is for another claim",
			claim:   claimOf("c", "1Gi", nil),
			volumes: []*corev1.PersistentVolume{volume("old", "1Gi", "", withRef("ns", "c", "someone-else"))},
			want:    ""},
		{name: "waiting for first consumer binds nothing without a node",
			claim:   claimOf("c", "1Gi", fast),
			volumes: []*corev1.PersistentVolume{volume("fast", "1Gi", "fast")},
			delay:   true,
			want:    ""},
		{name: "waiting for first consumer still takes its reserved volume",
			claim:   claimOf("c", "1Gi", fast),
			volumes: []*corev1.PersistentVolume{volume("mine", "1Gi", "fast", withRef("ns", "c", ""))},
			delay:   true,
			want:    "mine"},
		{name: "node affinity must admit the selected node",
			claim: claimOf("c", "1Gi", fast),
			volumes: []*corev1.PersistentVolume{
				volume("elsewhere", "1Gi", "fast", onHost("node2")),
				volume("here", "2Gi", "fast", onHost("node1")),
				volume("anywhere", "3Gi", "fast"),
			},
			node: node1, delay: true,
			want: "here"},
		{name: "reserved volume on another node is no match at all",
			claim: claimOf("c", "1Gi", fast),
			volumes: []*corev1.PersistentVolume{
				volume("mine", "1Gi", "fast", onHost("node2"), withRef("ns", "c", "")),
				volume("free", "1Gi", "fast"),
			},
			node: node1, delay: true,
			want: ""},
		{name: "volume being deleted is skipped",
			claim: claimOf("c", "1Gi", nil),
			volumes: []*corev1.PersistentVolume{volume("gone", "1Gi", "", func(pv *corev1.PersistentVolume) {
				pv.DeletionTimestamp = &metav1.Time{}
			})},
			want: ""},
		{name: "equal sizes go to the first name",
			claim:   claimOf("c", "1Gi", nil),
			volumes: []*corev1.PersistentVolume{volume("b", "1Gi", ""), volume("a", "1Gi", "")},
			want:    "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := findBestMatch(tt.claim, tt.volumes, tt.node, tt.delay)
			if err != nil {
				t.Fatal(err)
			}
			name := ""
			if got != nil {
				name = got.Name
			}
			if name != tt.want {
				t.Errorf("matched %q, want %q", name, tt.want)
			}
		})
	}
}

func TestFindBestMatchBadSelector(t *testing.T) {
	c := claimOf("c", "1Gi", nil, func(c *corev1.PersistentVolumeClaim) {
		c.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: "Bogus"}}}
	})
	if _, err := findBestMatch(c, []*corev1.PersistentVolume{volume("a", "1Gi", "")}, nil, false); err == nil {
		t.Fatal("an invalid selector matched")
	}
}

func TestCheckSatisfies(t *testing.T) {
	tests := []struct {
		name  string
		pv    *corev1.PersistentVolume
		claim *corev1.PersistentVolumeClaim
		ok    bool
	}{
		{"fits", volume("a", "2Gi", "x"), claimOf("c", "1Gi", ptr.To("x")), true},
		{"labels and phase do not matter when named", volume("a", "2Gi", "", withPhase(corev1.VolumePending)),
			claimOf("c", "1Gi", nil, func(c *corev1.PersistentVolumeClaim) {
				c.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"no": "such"}}
			}), true},
		{"too small", volume("a", "1Gi", ""), claimOf("c", "2Gi", nil), false},
		{"other class", volume("a", "1Gi", "x"), claimOf("c", "1Gi", nil), false},
		{"other volume mode", volume("a", "1Gi", "", withBlock), claimOf("c", "1Gi", nil), false},
		{"missing access mode", volume("a", "1Gi", ""), claimOf("c", "1Gi", nil, func(c *corev1.PersistentVolumeClaim) {
			c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
		}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkSatisfies(tt.pv, tt.claim); (err == nil) != tt.ok {
				t.Errorf("checkSatisfies = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestNodeAdmits(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{hostnameLabel: "n1", "zone": "a", "disks": "4"}}}
	term := func(exprs []corev1.NodeSelectorRequirement, fields ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
		return corev1.NodeSelectorTerm{MatchExpressions: exprs, MatchFields: fields}
	}
	req := func(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorRequirement {
		return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
	}
	tests := []struct {
		name  string
		terms []corev1.NodeSelectorTerm
		want  bool
	}{
		{"hostname in", []corev1.NodeSelectorTerm{term([]corev1.NodeSelectorRequirement{req(hostnameLabel, corev1.NodeSelectorOpIn, "n1")})}, true},
		{"hostname not in", []corev1.NodeSelectorTerm{term([]corev1.NodeSelectorRequirement{req(hostnameLabel, corev1.NodeSelectorOpIn, "n2")})}, false},
		{"terms are ORed", []corev1.NodeSelectorTerm{
			term([]corev1.NodeSelectorRequirement{req("zone", corev1.NodeSelectorOpIn, "b")}),
			term([]corev1.NodeSelectorRequirement{req("zone", corev1.NodeSelectorOpIn, "a")}),
		}, true},
		{"expressions are ANDed", []corev1.NodeSelectorTerm{term([]corev1.NodeSelectorRequirement{
			req("zone", corev1.NodeSelectorOpIn, "a"), req("ssd", corev1.NodeSelectorOpExists),
		})}, false},
		{"gt", []corev1.NodeSelectorTerm{term([]corev1.NodeSelectorRequirement{req("disks", corev1.NodeSelectorOpGt, "3")})}, true},
		{"does not exist", []corev1.NodeSelectorTerm{term([]corev1.NodeSelectorRequirement{req("ssd", corev1.NodeSelectorOpDoesNotExist)})}, true},
		{"match field name", []corev1.NodeSelectorTerm{term(nil, req("metadata.name", corev1.NodeSelectorOpIn, "n1"))}, true},
		{"match field other name", []corev1.NodeSelectorTerm{term(nil, req("metadata.name", corev1.NodeSelectorOpIn, "n2"))}, false},
		{"empty term matches nothing", []corev1.NodeSelectorTerm{{}}, false},
		{"unknown operator matches nothing", []corev1.NodeSelectorTerm{term([]corev1.NodeSelectorRequirement{req("zone", "Near", "a")})}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pv := volume("v", "1Gi", "")
			pv.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: tt.terms}}
			if got := nodeAdmits(pv, node); got != tt.want {
				t.Errorf("nodeAdmits = %v, want %v", got, tt.want)
			}
		})
	}
	if !nodeAdmits(volume("v", "1Gi", ""), node) {
		t.Error("a volume without affinity refused a node")
	}
}
