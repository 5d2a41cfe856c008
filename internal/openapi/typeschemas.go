package openapi

import (
	"encoding/json"
	"fmt"

	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/lotse/lotse/internal/apiserver/registry"
)

// TypeSchemas returns every definition the served kinds reach, keyed by
// definition name, in the form server-side apply's type converter reads
// (k8s.io/apimachinery/pkg/util/managedfields.NewTypeConverter): the v2
// rendering, whose references are plain "#/definitions/NAME" and whose
// lists carry the patch strategy and merge key that decide how applied
// lists merge.
func TypeSchemas(reg *registry.Registry) (map[string]*spec.Schema, error) {
	m := collect(reg).model
	defs := make(map[string]*Schema, len(m.defs))
	for name, def := range m.defs {
		defs[name] = def.render(false)
	}
	raw, err := json.Marshal(defs)
	if err != nil {
		return nil, err
	}
	var out map[string]*spec.Schema
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("openapi: reading back the type schemas: %w", err)
	}
	return out, nil
}
