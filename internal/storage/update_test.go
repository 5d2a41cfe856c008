package storage

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
)

// catchUp waits until the watch cache has seen etcd's current revision.
func catchUp(t *testing.T, s *Store, r *Resource) {
	t.Helper()
	ctx := context.Background()
	rev, err := s.CurrentRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cache.waitFresh(ctx, rev); err != nil {
		t.Fatal(err)
	}
}

// staleCache makes the watch cache hold e for key again, as if the watch
// had not yet brought the writes made since; it first lets the cache
// catch up, so that no late event undoes the staleness.
func staleCache(t *testing.T, s *Store, r *Resource, key string, e *entry) {
	t.Helper()
	catchUp(t, s, r)
	r.cache.mu.Lock()
	r.cache.objects[key] = e
	r.cache.mu.Unlock()
}

func setData(k, v string) UpdateFunc {
	return func(cur runtime.Object) (runtime.Object, error) {
		cur.(*corev1.ConfigMap).Data[k] = v
		return cur, nil
	}
}

// Updates and deletes start from the watch cache's copy; when that copy is
// stale they must neither lose the writes it has not seen nor fail on a
// precondition the current object meets.
func TestWritesFromAStaleCacheCopy(t *testing.T) {
	s, r := newTestStore(t, 100)
	ctx := context.Background()
	key := r.Key("a", "x")
	first, err := r.Create(ctx, "a", "x", cm("a", "x", "1"))
	if err != nil {
		t.Fatal(err)
	}
	catchUp(t, s, r)
	old, ok := r.cache.get(key)
	if !ok || old.rev != accessorRV(first) {
		t.Fatalf("the cache has %v after catching up, want the created object", old)
	}
	second, err := r.Update(ctx, "a", "x", setData("v", "2"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("update keeps the writes the copy missed", func(t *testing.T) {
		staleCache(t, s, r, key, old)
		var seen []string
		got, err := r.Update(ctx, "a", "x", func(cur runtime.Object) (runtime.Object, error) {
			seen = append(seen, cur.(*corev1.ConfigMap).Data["v"])
			return setData("w", "3")(cur)
		})
		if err != nil {
			t.Fatal(err)
		}
		if d := got.(*corev1.ConfigMap).Data; d["v"] != "2" || d["w"] != "3" {
			t.Fatalf("update from a stale copy stored %v, want v=2 (the write the copy missed) and w=3", d)
		}
		if len(seen) != 2 || seen[0] != "1" || seen[1] != "2" {
			t.Fatalf("fn saw v=%v, want the stale copy's 1, then etcd's 2", seen)
		}
		stored, _ := r.Get(ctx, "a", "x")
		if rvOf(stored) != rvOf(got) {
			t.Fatalf("answered resourceVersion %s, stored %s", rvOf(got), rvOf(stored))
		}
		second = got
	})

	t.Run("no-op update from a stale copy writes nothing", func(t *testing.T) {
		staleCache(t, s, r, key, old)
		before, _ := s.CurrentRevision(ctx)
		got, err := r.Update(ctx, "a", "x", func(cur runtime.Object) (runtime.Object, error) { return cur, nil })
		if err != nil {
			t.Fatal(err)
		}
		after, _ := s.CurrentRevision(ctx)
		if after != before || rvOf(got) != rvOf(second) {
			t.Fatalf("no-op update: revision %d -> %d, answered %s, want %s unchanged", before, after, rvOf(got), rvOf(second))
		}
		if d := got.(*corev1.ConfigMap).Data; d["v"] != "2" || d["w"] != "3" {
			t.Fatalf("no-op update answered %v, want the stored object", d)
		}
	})

	t.Run("a precondition the stale copy fails is judged on etcd's", func(t *testing.T) {
		staleCache(t, s, r, key, old)
		errStale := errors.New("v is not 2")
		needV2 := func(cur runtime.Object) (runtime.Object, error) {
			if cur.(*corev1.ConfigMap).Data["v"] != "2" {
				return nil, errStale
			}
			return setData("u", "4")(cur)
		}
		if _, err := r.Update(ctx, "a", "x", needV2); err != nil {
			t.Fatalf("update whose precondition the current object meets: %v", err)
		}
		staleCache(t, s, r, key, old)
		veto := errors.New("no")
		calls := 0
		_, err := r.Update(ctx, "a", "x", func(runtime.Object) (runtime.Object, error) { calls++; return nil, veto })
		if !errors.Is(err, veto) || calls != 2 {
			t.Fatalf("update refused on both copies: err %v after %d calls, want the refusal after 2", err, calls)
		}
	})

	t.Run("delete checks and returns the current object", func(t *testing.T) {
		staleCache(t, s, r, key, old)
		gone, err := r.Delete(ctx, "a", "x", func(cur runtime.Object) error {
			if cur.(*corev1.ConfigMap).Data["u"] != "4" {
				return errors.New("stale")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if gone.(*corev1.ConfigMap).Data["u"] != "4" {
			t.Fatalf("delete returned %v, want the last stored state", gone.(*corev1.ConfigMap).Data)
		}
		staleCache(t, s, r, key, old)
		if _, err := r.Delete(ctx, "a", "x", nil); !errors.Is(err, ErrNotFound) {
			t.Fatalf("delete of an object gone from etcd but still cached: %v, want ErrNotFound", err)
		}
		if _, err := r.Update(ctx, "a", "x", setData("v", "5")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("update of an object gone from etcd but still cached: %v, want ErrNotFound", err)
		}
	})
}

// The codec stores an object without its resourceVersion and with the
// stored kind, and leaves the writer's object as it was.
func TestEncodeLeavesTheObjectAsItWas(t *testing.T) {
	c, err := newCodec(corev1.SchemeGroupVersion.WithKind("ConfigMap"))
	if err != nil {
		t.Fatal(err)
	}
	obj := cm("a", "x", "1")
	obj.ResourceVersion = "42"
	data, err := c.encode(obj)
	if err != nil {
		t.Fatal(err)
	}
	if obj.ResourceVersion != "42" || !obj.GetObjectKind().GroupVersionKind().Empty() {
		t.Fatalf("encode changed the object: resourceVersion %q, kind %v", obj.ResourceVersion, obj.GetObjectKind().GroupVersionKind())
	}
	back, err := c.decode(data, 7)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.(*corev1.ConfigMap); got.ResourceVersion != "7" || got.Data["v"] != "1" {
		t.Fatalf("decoded %+v, want the object at revision 7 (the stored bytes carry no resourceVersion)", got)
	}
	if strings.Contains(string(data), "42") {
		t.Fatal("the stored bytes carry the writer's resourceVersion")
	}
}

// accessorRV returns obj's resourceVersion as a revision.
func accessorRV(obj runtime.Object) int64 {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return 0
	}
	rv, _ := strconv.ParseInt(acc.GetResourceVersion(), 10, 64)
	return rv
}
