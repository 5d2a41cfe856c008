package storage

import (
	"reflect"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Canonical objects. An object a client wrote differs from what decoding
// its stored protobuf gives back in a few ways the encoding cannot carry:
// empty lists and maps come back as none, times lose what is finer than
// the stored precision, quantities come back parsed from their canonical
// text. canonicalize makes those changes in place, so that the object a
// write just stored is exactly the one the watch cache would decode from
// etcd: the cache then takes it instead of decoding (a third of the
// cache's and a sixth of a write's allocations), and the answer to the
// write is the stored form, as upstream's is. TestCanonicalIsDecoded holds
// it to protobuf's round trip over random objects of every stored kind.

// canonicalizer makes the value v (addressable) canonical; it reports
// false for values it cannot vouch for, whose object is then decoded.
type canonicalizer func(v reflect.Value) bool

// canonicalizers holds the finished canonicalizer of each type seen
// (nil: nothing to do); building them takes canonicalMu.
var (
	canonicalizers sync.Map // reflect.Type → canonicalizer
	canonicalMu    sync.Mutex
)

// canonicalize makes obj, a pointer to an API struct, canonical in place
// and reports whether it could.
func canonicalize(obj runtime.Object) bool {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return false
	}
	c := canonicalizerFor(v.Type().Elem())
	if c == nil {
		return true
	}
	// Only objects inside others lose their kind: the stored object's
	// is kept beside it.
	gvk := obj.GetObjectKind().GroupVersionKind()
	ok := c(v.Elem())
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return ok
}

var (
	timeType      = reflect.TypeFor[metav1.Time]()
	microTimeType = reflect.TypeFor[metav1.MicroTime]()
	quantityType  = reflect.TypeFor[resource.Quantity]()
	rawType       = reflect.TypeFor[runtime.RawExtension]()
	typeMetaType  = reflect.TypeFor[metav1.TypeMeta]()
)

func canonicalizerFor(t reflect.Type) canonicalizer {
	if c, ok := canonicalizers.Load(t); ok {
		return c.(canonicalizer)
	}
	canonicalMu.Lock()
	defer canonicalMu.Unlock()
	b := builder{building: map[reflect.Type]*canonicalizer{}}
	c := b.get(t)
	// Published together, once every type that refers to another through
	// an indirection (below) can follow it.
	for t, c := range b.building {
		canonicalizers.Store(t, *c)
	}
	return c
}

// builder makes the canonicalizers of a type and of the types it holds.
type builder struct {
	building map[reflect.Type]*canonicalizer
}

func (b *builder) get(t reflect.Type) canonicalizer {
	if c, ok := canonicalizers.Load(t); ok {
		return c.(canonicalizer)
	}
	if p, ok := b.building[t]; ok {
		if *p != nil {
			return *p
		}
		// A type that contains itself: follow the canonicalizer that is
		// being built, which is finished before anyone runs this.
		return func(v reflect.Value) bool { return *p == nil || (*p)(v) }
	}
	p := new(canonicalizer)
	b.building[t] = p
	*p = b.build(t)
	return *p
}

func (b *builder) build(t reflect.Type) canonicalizer {
	switch t {
	case timeType:
		// Stored in whole seconds; read back in local time.
		return func(v reflect.Value) bool {
			tm := v.Addr().Interface().(*metav1.Time)
			tm.Time = canonicalTime(tm.Time, 0)
			return true
		}
	case microTimeType:
		return func(v reflect.Value) bool {
			tm := v.Addr().Interface().(*metav1.MicroTime)
			tm.Time = canonicalTime(tm.Time, time.Duration(tm.Nanosecond()).Truncate(time.Microsecond))
			return true
		}
	case quantityType:
		// Stored as its canonical text, read back parsed. Its text is
		// memoized now: String writes the memo on first use, and the
		// object is about to be read by several goroutines at once.
		return func(v reflect.Value) bool {
			q := v.Addr().Interface().(*resource.Quantity)
			parsed, err := resource.ParseQuantity(q.String())
			*q = parsed
			_ = q.String()
			return err == nil
		}
	case typeMetaType:
		// Not part of the stored form of an object inside another (a
		// StatefulSet's claim templates).
		return func(v reflect.Value) bool {
			v.SetZero()
			return true
		}
	case rawType:
		// Only the raw bytes are stored; an object not yet encoded
		// into them would be lost.
		return func(v reflect.Value) bool { return v.Addr().Interface().(*runtime.RawExtension).Object == nil }
	}
	switch t.Kind() {
	case reflect.Struct:
		type part struct {
			index int
			c     canonicalizer
		}
		var parts []part
		for i := range t.NumField() {
			f := t.Field(i)
			c := b.get(f.Type)
			if c == nil {
				continue
			}
			if !f.IsExported() {
				return func(reflect.Value) bool { return false }
			}
			parts = append(parts, part{i, c})
		}
		if len(parts) == 0 {
			return nil
		}
		return func(v reflect.Value) bool {
			for _, p := range parts {
				if !p.c(v.Field(p.index)) {
					return false
				}
			}
			return true
		}
	case reflect.Pointer:
		elem := b.get(t.Elem())
		if elem == nil {
			return nil
		}
		return func(v reflect.Value) bool { return v.IsNil() || elem(v.Elem()) }
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil // bytes keep empty apart from none
		}
		elem := b.get(t.Elem())
		return func(v reflect.Value) bool {
			if v.Len() == 0 {
				if !v.IsNil() {
					v.SetZero() // an empty repeated field is read back as none
				}
				return true
			}
			if elem != nil {
				for i := range v.Len() {
					if !elem(v.Index(i)) {
						return false
					}
				}
			}
			return true
		}
	case reflect.Map:
		elemType := t.Elem()
		bytesValues := elemType.Kind() == reflect.Slice && elemType.Elem().Kind() == reflect.Uint8
		elem := b.get(elemType)
		return func(v reflect.Value) bool {
			if v.Len() == 0 {
				if !v.IsNil() {
					v.SetZero()
				}
				return true
			}
			if !bytesValues && elem == nil {
				return true
			}
			iter := v.MapRange()
			value := reflect.New(elemType).Elem()
			for iter.Next() {
				value.Set(iter.Value())
				switch {
				case bytesValues:
					if !value.IsNil() {
						continue
					}
					value.SetBytes([]byte{}) // a map's bytes are read back as empty, never none
				case !elem(value):
					return false
				}
				v.SetMapIndex(iter.Key(), value)
			}
			return true
		}
	case reflect.Interface, reflect.Func, reflect.Chan, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128:
		return func(v reflect.Value) bool { return v.IsZero() }
	}
	return nil
}

// canonicalTime is t as read back from storage: the zero time, or t in
// whole seconds plus the kept fraction, in local time.
func canonicalTime(t time.Time, fraction time.Duration) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.Unix(t.Unix(), int64(fraction)).Local()
}
