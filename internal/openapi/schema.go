package openapi

import (
	"encoding/json"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Schema is one JSON schema as both documents write it. The model built by
// reflection keeps bare definition names in Ref; render turns them into
// "#/definitions/..." (v2) or "#/components/schemas/..." (v3) references.
type Schema struct {
	Ref                  string             `json:"$ref,omitempty"`
	AllOf                []*Schema          `json:"allOf,omitempty"`
	OneOf                []*Schema          `json:"oneOf,omitempty"`
	Default              json.RawMessage    `json:"default,omitempty"`
	Description          string             `json:"description,omitempty"`
	Type                 string             `json:"type,omitempty"`
	Format               string             `json:"format,omitempty"`
	Items                *Schema            `json:"items,omitempty"`
	Properties           map[string]*Schema `json:"properties,omitempty"`
	AdditionalProperties *Schema            `json:"additionalProperties,omitempty"`
	Required             []string           `json:"required,omitempty"`
	UniqueItems          bool               `json:"uniqueItems,omitempty"`
	ListMapKeys          []string           `json:"x-kubernetes-list-map-keys,omitempty"`
	ListType             string             `json:"x-kubernetes-list-type,omitempty"`
	PatchMergeKey        string             `json:"x-kubernetes-patch-merge-key,omitempty"`
	PatchStrategy        string             `json:"x-kubernetes-patch-strategy,omitempty"`
	GVK                  []gvkExt           `json:"x-kubernetes-group-version-kind,omitempty"`

	// v3OneOf holds the alternatives a scalar wrapper (Quantity,
	// IntOrString) declares for v3, where it replaces the v2 type.
	v3OneOf []string
}

// gvkExt is the value of x-kubernetes-group-version-kind. Group is written
// even when empty: kubectl explain compares the whole object.
type gvkExt struct {
	Group   string `json:"group"`
	Kind    string `json:"kind"`
	Version string `json:"version"`
}

func toGVKExt(gvk schema.GroupVersionKind) gvkExt {
	return gvkExt{Group: gvk.Group, Kind: gvk.Kind, Version: gvk.Version}
}

// The methods k8s.io types implement for the upstream generator; reading
// them keeps names and scalar encodings identical without a table of ours.
type (
	modelNamer   interface{ OpenAPIModelName() string }
	swaggerDoc   interface{ SwaggerDoc() map[string]string }
	schemaTyper  interface{ OpenAPISchemaType() []string }
	schemaFormer interface{ OpenAPISchemaFormat() string }
	v3OneOfTyper interface{ OpenAPIV3OneOfTypes() []string }
)

var (
	modelNamerType   = reflect.TypeFor[modelNamer]()
	swaggerDocType   = reflect.TypeFor[swaggerDoc]()
	schemaTyperType  = reflect.TypeFor[schemaTyper]()
	schemaFormerType = reflect.TypeFor[schemaFormer]()
	v3OneOfTyperType = reflect.TypeFor[v3OneOfTyper]()
)

// listMapKeys are the lists that upstream's types mark as maps keyed by
// more fields than their patch merge key: server-side apply tells their
// items apart by all of them (the same port number may be served over
// TCP and UDP). Other lists merge by their patch merge key, or whole.
var listMapKeys = map[reflect.Type]map[string][]string{
	reflect.TypeFor[corev1.Container]():                {"ports": {"containerPort", "protocol"}},
	reflect.TypeFor[corev1.EphemeralContainerCommon](): {"ports": {"containerPort", "protocol"}},
	reflect.TypeFor[corev1.ServiceSpec]():              {"ports": {"port", "protocol"}},
	reflect.TypeFor[corev1.PodSpec]():                  {"topologySpreadConstraints": {"topologyKey", "whenUnsatisfiable"}},
}

// keyDefaults are the defaults upstream declares for those keys, which
// apply uses when an item leaves its key out.
var keyDefaults = map[reflect.Type]map[string]json.RawMessage{
	reflect.TypeFor[corev1.ContainerPort](): {"protocol": json.RawMessage(`"TCP"`)},
	reflect.TypeFor[corev1.ServicePort]():   {"protocol": json.RawMessage(`"TCP"`)},
}

var (
	defaultObject = json.RawMessage(`{}`)
	defaultString = json.RawMessage(`""`)
	defaultZero   = json.RawMessage(`0`)
	defaultFalse  = json.RawMessage(`false`)
)

// model is the set of named definitions reached from the served kinds.
type model struct {
	defs map[string]*Schema
	// names caches the definition name of each Go type.
	names map[reflect.Type]string
}

func newModel() *model {
	return &model{defs: map[string]*Schema{}, names: map[reflect.Type]string{}}
}

// add registers t (a struct type or pointer to one) and everything it
// reaches, and returns its definition name.
func (m *model) add(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	name := m.name(t)
	if _, ok := m.defs[name]; ok {
		return name
	}
	// Register before walking the fields so that a type reaching itself
	// ends in a $ref instead of recursing forever.
	def := &Schema{}
	m.defs[name] = def
	m.fill(def, t)
	return name
}

// name is the upstream definition name: the generated OpenAPIModelName when
// the type has one, else its package path with the domain reversed
// ("k8s.io/api/apps/v1".Deployment -> io.k8s.api.apps.v1.Deployment).
func (m *model) name(t reflect.Type) string {
	if n, ok := m.names[t]; ok {
		return n
	}
	var n string
	if t.Implements(modelNamerType) {
		n = reflect.Zero(t).Interface().(modelNamer).OpenAPIModelName()
	} else {
		parts := strings.Split(t.PkgPath(), "/")
		domain := strings.Split(parts[0], ".")
		for i, j := 0, len(domain)-1; i < j; i, j = i+1, j-1 {
			domain[i], domain[j] = domain[j], domain[i]
		}
		parts[0] = strings.Join(domain, ".")
		n = strings.Join(append(parts, t.Name()), ".")
	}
	m.names[t] = n
	return n
}

// fill writes the definition of the named struct type t into def.
func (m *model) fill(def *Schema, t reflect.Type) {
	def.Description = typeDoc(t)[""]
	if t.Implements(schemaTyperType) {
		// A scalar wrapper with its own JSON encoding (Time, Quantity,
		// IntOrString, Duration): the fields say nothing about the wire.
		if types := reflect.Zero(t).Interface().(schemaTyper).OpenAPISchemaType(); len(types) > 0 {
			def.Type = types[0]
		}
		if t.Implements(schemaFormerType) {
			def.Format = reflect.Zero(t).Interface().(schemaFormer).OpenAPISchemaFormat()
		}
		if t.Implements(v3OneOfTyperType) {
			def.v3OneOf = reflect.Zero(t).Interface().(v3OneOfTyper).OpenAPIV3OneOfTypes()
		}
		return
	}
	def.Type = "object"
	m.fields(def, t, typeDoc(t))
}

// fields adds the JSON-visible fields of struct t to def, flattening
// inlined embedded structs (TypeMeta, ListMeta...) as encoding/json does.
func (m *model) fields(def *Schema, t reflect.Type, doc map[string]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		ft := f.Type
		if name == "" && f.Anonymous {
			et := ft
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				m.fields(def, et, typeDoc(et))
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		omitEmpty := strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")

		prop := m.typeSchema(ft)
		prop.Description = doc[name]
		prop.Default = enforcedDefault(ft, omitEmpty)
		prop.PatchStrategy = f.Tag.Get("patchStrategy")
		prop.PatchMergeKey = f.Tag.Get("patchMergeKey")
		if keys, ok := listMapKeys[t][name]; ok {
			prop.ListType, prop.ListMapKeys = "map", keys
		}
		if d, ok := keyDefaults[t][name]; ok {
			prop.Default = d
		}
		if def.Properties == nil {
			def.Properties = map[string]*Schema{}
		}
		def.Properties[name] = prop
		if !omitEmpty {
			def.Required = append(def.Required, name)
		}
	}
}

// typeSchema is the schema of a value of type t where it is used: a $ref
// for named structs, an inline schema for everything else. Each call
// returns a fresh Schema the caller may decorate.
func (m *model) typeSchema(t reflect.Type) *Schema {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if t.Name() == "" {
			s := &Schema{Type: "object"}
			m.fields(s, t, nil)
			return s
		}
		return &Schema{Ref: m.add(t)}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return &Schema{Type: "string", Format: "byte"}
		}
		items := m.typeSchema(t.Elem())
		items.Default = enforcedDefault(t.Elem(), false)
		return &Schema{Type: "array", Items: items}
	case reflect.Map:
		values := m.typeSchema(t.Elem())
		values.Default = enforcedDefault(t.Elem(), false)
		return &Schema{Type: "object", AdditionalProperties: values}
	case reflect.String:
		return &Schema{Type: "string"}
	case reflect.Bool:
		return &Schema{Type: "boolean"}
	case reflect.Int8, reflect.Uint8:
		return &Schema{Type: "integer", Format: "byte"}
	case reflect.Int, reflect.Int16, reflect.Int32, reflect.Uint, reflect.Uint16:
		return &Schema{Type: "integer", Format: "int32"}
	case reflect.Int64, reflect.Uint32, reflect.Uint64:
		return &Schema{Type: "integer", Format: "int64"}
	case reflect.Float32:
		return &Schema{Type: "number", Format: "float"}
	case reflect.Float64:
		return &Schema{Type: "number", Format: "double"}
	default: // interface{} and anything without a fixed shape
		return &Schema{Type: "object"}
	}
}

// enforcedDefault is the default upstream writes for a value that is always
// serialized: {} for a struct held by value, the zero value for a scalar
// without omitempty, nothing for pointers, slices, maps and scalar wrappers.
func enforcedDefault(t reflect.Type, omitEmpty bool) json.RawMessage {
	if t.Implements(schemaTyperType) || t.Implements(v3OneOfTyperType) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if t.NumField() == 1 && t.Field(0).Anonymous {
			return enforcedDefault(t.Field(0).Type, omitEmpty)
		}
		return defaultObject
	case reflect.String:
		if !omitEmpty {
			return defaultString
		}
	case reflect.Bool:
		if !omitEmpty {
			return defaultFalse
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		if !omitEmpty {
			return defaultZero
		}
	}
	return nil
}

// typeDoc returns the generated field documentation of t; key "" describes
// the type itself.
func typeDoc(t reflect.Type) map[string]string {
	if t.Implements(swaggerDocType) {
		return reflect.Zero(t).Interface().(swaggerDoc).SwaggerDoc()
	}
	return nil
}

// refs calls fn with every definition name s refers to directly.
func (s *Schema) refs(fn func(string)) {
	if s == nil {
		return
	}
	if s.Ref != "" {
		fn(s.Ref)
	}
	for _, a := range s.AllOf {
		a.refs(fn)
	}
	s.Items.refs(fn)
	s.AdditionalProperties.refs(fn)
	for _, p := range s.Properties {
		p.refs(fn)
	}
}

// closure returns roots and every definition they reach.
func (m *model) closure(roots []string) map[string]*Schema {
	out := map[string]*Schema{}
	var visit func(string)
	visit = func(name string) {
		if _, ok := out[name]; ok {
			return
		}
		def := m.defs[name]
		out[name] = def
		def.refs(visit)
	}
	for _, r := range roots {
		visit(r)
	}
	return out
}

// render copies s for one document version: references get the document's
// prefix, and in v3 a reference with siblings (a description, a default)
// moves into allOf because v3 ignores the siblings of $ref.
func (s *Schema) render(v3 bool) *Schema {
	if s == nil {
		return nil
	}
	out := *s
	out.v3OneOf = nil
	if v3 && len(s.v3OneOf) > 0 {
		out.Type = ""
		for _, t := range s.v3OneOf {
			out.OneOf = append(out.OneOf, &Schema{Type: t})
		}
	}
	out.Items = s.Items.render(v3)
	out.AdditionalProperties = s.AdditionalProperties.render(v3)
	if s.Properties != nil {
		out.Properties = make(map[string]*Schema, len(s.Properties))
		for k, p := range s.Properties {
			out.Properties[k] = p.render(v3)
		}
	}
	if s.Ref != "" {
		if !v3 {
			out.Ref = "#/definitions/" + s.Ref
		} else {
			ref := &Schema{Ref: "#/components/schemas/" + s.Ref}
			if out.Description == "" && out.Default == nil && out.PatchStrategy == "" {
				return ref
			}
			out.Ref = ""
			out.AllOf = []*Schema{ref}
		}
	}
	return &out
}
