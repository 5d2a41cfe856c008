package storage

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/randfill"

	"github.com/lotse/lotse/internal/apiserver/registry"
)

// A canonical object must be exactly what decoding its stored bytes gives
// (the watch cache keeps it instead of decoding), and must store as the
// same bytes as before: random objects of every stored kind, with
// sub-second times, non-canonical quantities, empty lists and maps, and
// maps of bytes with none among their values.
func TestCanonicalIsDecoded(t *testing.T) {
	quantities := []string{"0.1", "100m", "1.5Gi", "1536Mi", "1e3", "2k", "0", "12345678901234n", "7"}
	filler := randfill.New().NilChance(.2).NumElements(0, 2).MaxDepth(12).RandSource(rand.NewSource(1)).Funcs(
		func(q *resource.Quantity, c randfill.Continue) {
			*q = resource.MustParse(quantities[c.Intn(len(quantities))])
		},
		func(i *intstr.IntOrString, c randfill.Continue) {
			if c.Bool() {
				*i = intstr.FromInt32(c.Int31())
			} else {
				*i = intstr.FromString(c.String(0))
			}
		},
		func(r *runtime.RawExtension, c randfill.Continue) {
			*r = runtime.RawExtension{}
			if c.Bool() {
				r.Raw = []byte(`{"apiVersion":"v1","kind":"Pod"}`)
			}
		},
		func(tm *metav1.Time, c randfill.Continue) {
			if c.Intn(5) > 0 {
				*tm = metav1.NewTime(time.Unix(c.Int63n(4e9), c.Int63n(1e9)).In(time.FixedZone("X", 3600)))
			}
		},
		func(tm *metav1.MicroTime, c randfill.Continue) {
			if c.Intn(5) > 0 {
				*tm = metav1.NewMicroTime(time.Unix(c.Int63n(4e9), c.Int63n(1e9)))
			}
		},
		func(f *metav1.FieldsV1, c randfill.Continue) { *f = metav1.FieldsV1{Raw: []byte(`{"f:metadata":{}}`)} },
	)
	seen := map[schema.GroupVersionKind]bool{}
	var checked, refused int
	for _, k := range registry.Default().Kinds() {
		if seen[k.StorageGVK] {
			continue
		}
		seen[k.StorageGVK] = true
		c, err := newCodec(k.StorageGVK)
		if err != nil {
			t.Fatal(err)
		}
		for range 200 {
			obj := c.newObj()
			filler.Fill(obj)
			obj.GetObjectKind().SetGroupVersionKind(k.StorageGVK)
			setRV(obj, 0)
			accessorOf(t, obj).SetResourceVersion("")
			data, err := c.encode(obj)
			if err != nil {
				continue // random values protobuf cannot hold
			}
			canonical := obj.DeepCopyObject()
			if !canonicalize(canonical) {
				refused++
				continue
			}
			// What a write stores is the canonical object, and what the
			// cache would decode from it must be that object; it must also
			// be what the object as written would have been read back as.
			stored, err := c.encode(canonical)
			if err != nil {
				t.Fatalf("%s: the canonical object cannot be stored: %v", k.StorageGVK, err)
			}
			got, _ := stamped(canonical, k.StorageGVK, 7)
			for _, b := range [][]byte{stored, data} {
				want, err := c.decode(b, 7)
				if err != nil {
					t.Fatalf("%s: decoding: %v", k.StorageGVK, err)
				}
				// A canonical quantity's text is memoized; a decoded one's
				// is on first use.
				memoizeQuantities(reflect.ValueOf(want))
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: canonical object differs from the decoded one at %s", k.StorageGVK, firstDiff(reflect.ValueOf(got), reflect.ValueOf(want), "obj"))
				}
			}
			checked++
		}
	}
	t.Logf("%d objects checked, %d refused", checked, refused)
	if checked < 100*len(seen) {
		t.Errorf("only %d objects checked", checked)
	}
}

func accessorOf(t *testing.T, obj runtime.Object) metav1.Object {
	acc, ok := obj.(metav1.Object)
	if !ok {
		t.Fatalf("%T has no metadata", obj)
	}
	return acc
}

// A RawExtension holding an object that is not yet encoded cannot be made
// canonical: storage keeps only its bytes.
func TestCanonicalRefusesUnencodedObjects(t *testing.T) {
	obj := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{}}}
	if !canonicalize(obj) || obj.Spec.Containers != nil {
		t.Fatalf("an empty list stays: %#v", obj.Spec.Containers)
	}
}

// firstDiff names the first place where a and b differ, and how.
func firstDiff(a, b reflect.Value, path string) string {
	if a.Type() != b.Type() {
		return fmt.Sprintf("%s: types %s and %s", path, a.Type(), b.Type())
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				return fmt.Sprintf("%s: %v and %v", path, a, b)
			}
			return ""
		}
		return firstDiff(a.Elem(), b.Elem(), path)
	case reflect.Struct:
		for i := range a.NumField() {
			if d := firstDiff(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); d != "" {
				return d
			}
		}
		return ""
	case reflect.Slice:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return fmt.Sprintf("%s: %d items (nil %v) and %d (nil %v)", path, a.Len(), a.IsNil(), b.Len(), b.IsNil())
		}
		for i := range a.Len() {
			if d := firstDiff(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
		return ""
	case reflect.Map:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return fmt.Sprintf("%s: %d entries (nil %v) and %d (nil %v)", path, a.Len(), a.IsNil(), b.Len(), b.IsNil())
		}
		for _, k := range a.MapKeys() {
			if !b.MapIndex(k).IsValid() {
				return fmt.Sprintf("%s[%v]: missing", path, k)
			}
			if d := firstDiff(a.MapIndex(k), b.MapIndex(k), fmt.Sprintf("%s[%v]", path, k)); d != "" {
				return d
			}
		}
		return ""
	}
	if !reflect.DeepEqual(valueOf(a), valueOf(b)) {
		return fmt.Sprintf("%s: %v and %v", path, valueOf(a), valueOf(b))
	}
	return ""
}

// valueOf reads unexported fields too, for comparing them.
func valueOf(v reflect.Value) any {
	if v.CanInterface() {
		return v.Interface()
	}
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint()
	case reflect.Bool:
		return v.Bool()
	}
	return v.String()
}

// The watch cache takes what a write stored instead of decoding it: the
// watch event's object is the stored form, the caller's made canonical,
// and the cache keeps the bytes that were stored.
func TestCacheTakesWrittenObjects(t *testing.T) {
	_, r := newTestStore(t, 100)
	ctx := context.Background()
	w, err := r.Watch(ctx, WatchOptions{SendInitialEvents: new(bool)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	obj := cm("a", "x", "1")
	obj.CreationTimestamp = metav1.NewTime(time.Unix(1000, 123456789))
	obj.Finalizers = []string{}
	obj.BinaryData = map[string][]byte{"b": nil}
	created, err := r.Create(ctx, "a", "x", obj)
	if err != nil {
		t.Fatal(err)
	}
	c := created.(*corev1.ConfigMap)
	if c.Finalizers != nil || c.BinaryData["b"] == nil || c.CreationTimestamp.Nanosecond() != 0 {
		t.Errorf("created object is not the stored form: %#v", c)
	}
	cached := func(want runtime.Object) {
		t.Helper()
		ev := next(t, w)
		if !reflect.DeepEqual(ev.Object, want) {
			t.Fatalf("the watch got %#v, want the written object %#v", ev.Object, want)
		}
		// Taken, not decoded: it shares what the written object points to.
		if reflect.ValueOf(ev.Object.(*corev1.ConfigMap).Data).UnsafePointer() != reflect.ValueOf(want.(*corev1.ConfigMap).Data).UnsafePointer() {
			t.Fatalf("the cache decoded the object instead of taking the written one")
		}
		e, ok := r.cache.get(r.Key("a", "x"))
		if !ok {
			t.Fatal("not in the cache")
		}
		if got, err := e.object(r.codec); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("the cache holds %#v (%v), want the written object %#v", got, err, want)
		}
		r.cache.writtenMu.Lock()
		defer r.cache.writtenMu.Unlock()
		if len(r.cache.written) != 0 {
			t.Errorf("written objects left over: %v", r.cache.written)
		}
	}
	cached(created)

	updated, err := r.Update(ctx, "a", "x", func(cur runtime.Object) (runtime.Object, error) {
		cur.(*corev1.ConfigMap).Data["v"] = "2"
		return cur, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cached(updated)

	// A write that fails withdraws its offer.
	if _, err := r.Create(ctx, "a", "x", cm("a", "x", "3")); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	r.cache.writtenMu.Lock()
	n := len(r.cache.written)
	r.cache.writtenMu.Unlock()
	if n != 0 {
		t.Errorf("a failed write's offer was kept")
	}
}

// memoizeQuantities has every quantity in v memoize its text.
func memoizeQuantities(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			memoizeQuantities(v.Elem())
		}
	case reflect.Struct:
		if q, ok := v.Addr().Interface().(*resource.Quantity); ok {
			_ = q.String()
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				memoizeQuantities(v.Field(i))
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			memoizeQuantities(v.Index(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			value := reflect.New(v.Type().Elem()).Elem()
			value.Set(v.MapIndex(k))
			memoizeQuantities(value)
			v.SetMapIndex(k, value)
		}
	}
}
