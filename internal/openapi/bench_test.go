package openapi

import (
	"testing"

	"github.com/lotse/lotse/internal/apiserver/registry"
)

// BenchmarkBuild measures Build, which start-up pays: it must stay trivial.
func BenchmarkBuild(b *testing.B) {
	reg := registry.Default()
	for b.Loop() {
		if _, err := Build(reg, "v1.33.0"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRender measures rendering every JSON document, which the first
// OpenAPI request pays.
func BenchmarkRender(b *testing.B) {
	reg := registry.Default()
	b.ReportAllocs()
	for b.Loop() {
		d, _ := Build(reg, "v1.33.0")
		if err := d.Render(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkV2Protobuf measures the protobuf form kubectl asks /openapi/v2
// for, paid on its first request.
func BenchmarkV2Protobuf(b *testing.B) {
	d, _ := Build(registry.Default(), "v1.33.0")
	if err := d.Render(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		doc := &document{json: d.v2.json, toProto: d.v2.toProto}
		if _, err := doc.protobuf(); err != nil {
			b.Fatal(err)
		}
	}
}
