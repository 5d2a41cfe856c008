package validation

import (
	"math/rand"
	"testing"

	"github.com/lotse/lotse/internal/apiserver/defaults"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/randfill"
)

// TestEveryKindIsRegistered keeps the kinds table and allKinds in step.
func TestEveryKindIsRegistered(t *testing.T) {
	for _, newObj := range allKinds {
		if _, ok := kinds[typeOfValue(newObj())]; !ok {
			t.Errorf("%T has no validation rules", newObj())
		}
	}
	if len(kinds) != len(allKinds) {
		t.Errorf("kinds has %d entries, allKinds %d", len(kinds), len(allKinds))
	}
}

// TestZeroObjects feeds empty objects through defaulting and validation.
// Nothing may panic; a zero object is never valid (it has no name).
func TestZeroObjects(t *testing.T) {
	for _, newObj := range allKinds {
		obj := newObj()
		t.Run(typeName(obj), func(t *testing.T) {
			if errs := ValidateCreate(obj); len(errs) == 0 {
				t.Errorf("zero object validated")
			}
			ValidateUpdate(obj, newObj())
			defaults.Apply(obj)
			ValidateCreate(obj)
			ValidateUpdate(obj, newObj())
			ValidateUpdate(newObj(), obj)
		})
	}
}

func TestNilAndForeignObjects(t *testing.T) {
	for _, newObj := range allKinds {
		obj := newObj()
		// A typed nil pointer, as a handler bug might pass.
		nilObj := runtime.Object(nil)
		if errs := ValidateCreate(nilObj); errs != nil {
			t.Errorf("nil: %v", errs)
		}
		if errs := ValidateUpdate(obj, nilObj); len(errs) == 0 {
			t.Errorf("%T: update from nil accepted", obj)
		}
		defaults.Apply(nilPointer(obj))
		if errs := ValidateCreate(nilPointer(obj)); errs != nil {
			t.Errorf("%T typed nil: %v", obj, errs)
		}
	}
	if errs := ValidateCreate(&metav1.Status{}); errs != nil {
		t.Errorf("unknown type: %v", errs)
	}
	if errs := ValidateUpdate(allKinds[0](), &runtime.Unknown{}); len(errs) != 1 {
		t.Errorf("update from an object without metadata: %v", errs)
	}
}

// TestRandomObjects fills every kind with random data, nil pointers and
// empty slices included, and checks that nothing panics.
func TestRandomObjects(t *testing.T) {
	iterations := 60
	if testing.Short() {
		iterations = 5
	}
	f := randfill.NewWithSeed(1).NilChance(0.3).NumElements(0, 2).MaxDepth(12).Funcs(
		func(q *resource.Quantity, c randfill.Continue) {
			*q = *resource.NewQuantity(int64(c.Intn(2000)-100), resource.DecimalSI)
		},
		func(v *intstr.IntOrString, c randfill.Continue) {
			if c.Bool() {
				*v = intstr.FromInt32(int32(c.Intn(100) - 10))
			} else {
				*v = intstr.FromString([]string{"", "25%", "x", "150%"}[c.Intn(4)])
			}
		},
		func(m *metav1.ObjectMeta, c randfill.Continue) {
			m.Name = []string{"", "a", "Bad_Name", "ok-name"}[c.Intn(4)]
			m.Namespace = []string{"", "default"}[c.Intn(2)]
			m.UID = "uid"
			c.Fill(&m.Labels)
		},
		func(e *runtime.RawExtension, c randfill.Continue) {
			e.Raw = []byte(`{"a":1}`)
		},
		func(tm *metav1.Time, c randfill.Continue) {
			if c.Bool() {
				*tm = metav1.Unix(int64(c.Intn(1<<30)), 0)
			}
		},
	)
	r := rand.New(rand.NewSource(2))
	for _, newObj := range allKinds {
		t.Run(typeName(newObj()), func(t *testing.T) {
			for i := 0; i < iterations; i++ {
				obj, old := newObj(), newObj()
				f.Fill(obj)
				f.Fill(old)
				if r.Intn(2) == 0 {
					defaults.Apply(obj)
				}
				ValidateCreate(obj)
				ValidateUpdate(obj, old)
				ValidateUpdate(obj, obj.DeepCopyObject())
			}
		})
	}
}
