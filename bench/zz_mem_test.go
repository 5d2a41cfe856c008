package bench

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func BenchmarkZZMem(b *testing.B) {
	tmpl := newPod("many", "template")
	tmpl.UID = "5f1c2b7e-3a44-4c1e-9b6f-0d2f9e8a7c11"
	vals := make([][]byte, 15000)
	for i := range vals {
		vals[i] = encodePod(b, tmpl, podName("pod", i))
	}
	var js bytes.Buffer
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	objs := make([]*corev1.Pod, len(vals))
	for i, v := range vals {
		p := &corev1.Pod{}
		if _, _, err := storageCodec.Decode(v, nil, p); err != nil {
			b.Fatal(err)
		}
		objs[i] = p
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	fmt.Printf("protobuf %d B/pod, decoded %d B/pod, total %.1f MB\n", len(vals[0]), (m1.HeapAlloc-m0.HeapAlloc)/uint64(len(vals)), float64(m1.HeapAlloc-m0.HeapAlloc)/(1<<20))
	runtime.KeepAlive(objs)
	_ = js
}
