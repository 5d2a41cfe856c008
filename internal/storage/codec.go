package storage

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/kubernetes/scheme"
)

// codec turns objects of one storage kind into etcd values and back.
type codec struct {
	gvk    schema.GroupVersionKind
	newObj func() runtime.Object
	proto  *protobuf.Serializer
}

func newCodec(gvk schema.GroupVersionKind) (*codec, error) {
	if _, err := scheme.Scheme.New(gvk); err != nil {
		return nil, fmt.Errorf("storage: unknown kind %s: %w", gvk, err)
	}
	return &codec{
		gvk: gvk,
		newObj: func() runtime.Object {
			obj, _ := scheme.Scheme.New(gvk)
			return obj
		},
		proto: protobuf.NewSerializer(scheme.Scheme, scheme.Scheme),
	}, nil
}

// encode serializes obj without its resourceVersion, which etcd tracks.
// obj must be the caller's own, not shared: its resourceVersion and kind
// are changed during the call and put back before it returns.
func (c *codec) encode(obj runtime.Object) ([]byte, error) {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	// What is stored has no resourceVersion (etcd's revision is the
	// object's) and the stored kind. The object is the writer's own, so
	// both are set for the encoding and put back after it, instead of
	// encoding a copy.
	if rv, gvk := acc.GetResourceVersion(), obj.GetObjectKind().GroupVersionKind(); rv != "" || gvk != c.gvk {
		acc.SetResourceVersion("")
		obj.GetObjectKind().SetGroupVersionKind(c.gvk)
		defer func() {
			acc.SetResourceVersion(rv)
			obj.GetObjectKind().SetGroupVersionKind(gvk)
		}()
	}
	var w sliceWriter
	if err := c.proto.EncodeWithAllocator(obj, &w, &runtime.SimpleAllocator{}); err != nil {
		return nil, err
	}
	return w.b, nil
}

// sliceWriter keeps what is written to it. The protobuf serializer writes
// an object in one slice its allocator made for that call alone, which
// is kept as it is instead of copied.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	if w.b == nil {
		w.b = p
	} else {
		w.b = append(w.b, p...)
	}
	return len(p), nil
}

// decode parses an etcd value and stamps it with rev as its resourceVersion.
func (c *codec) decode(data []byte, rev int64) (runtime.Object, error) {
	obj, _, err := c.proto.Decode(data, nil, c.newObj())
	if err != nil {
		return nil, fmt.Errorf("storage: decoding %s: %w", c.gvk.Kind, err)
	}
	if err := setRV(obj, rev); err != nil {
		return nil, err
	}
	obj.GetObjectKind().SetGroupVersionKind(c.gvk)
	return obj, nil
}

func setRV(obj runtime.Object, rev int64) error {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	acc.SetResourceVersion(fmt.Sprint(rev))
	return nil
}
