package openapi

import (
	"encoding/json"
	"reflect"
	"slices"
	"sort"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/lotse/lotse/internal/apiserver/registry"
)

// site is everything both document versions are rendered from: the
// definitions and the paths of every served group version.
type site struct {
	model *model
	paths map[schema.GroupVersion][]*pathItem
	gvs   []schema.GroupVersion
}

// collect walks the registry once, registering definitions and paths.
func collect(reg *registry.Registry) *site {
	s := &site{model: newModel(), paths: map[schema.GroupVersion][]*pathItem{}, gvs: reg.GroupVersions()}
	m := s.model
	for _, k := range reg.Kinds() {
		gv := k.GVK.GroupVersion()
		s.paths[gv] = append(s.paths[gv], kindPaths(m, k)...)
		m.addGVK(reflect.TypeOf(k.New()), k.GVK)
		m.addGVK(reflect.TypeOf(k.NewList()), gv.WithKind(k.GVK.Kind+"List"))
		for _, sub := range k.Subresources {
			if t, ok := subresourceTypes[sub]; ok {
				m.addGVK(t, subresourceKinds[sub])
			}
		}
	}
	// The option and event types are registered in every group version, as
	// upstream's definitions say.
	core := schema.GroupVersion{Version: "v1"}
	m.addGVK(statusType, core.WithKind("Status"))
	for _, gv := range append([]schema.GroupVersion{core}, s.gvs...) {
		m.addGVK(deleteOptionsType, gv.WithKind("DeleteOptions"))
		m.addGVK(watchEventType, gv.WithKind("WatchEvent"))
	}
	return s
}

// addGVK records that t is served as gvk, once.
func (m *model) addGVK(t reflect.Type, gvk schema.GroupVersionKind) {
	def := m.defs[m.add(t)]
	ext := toGVKExt(gvk)
	if !slices.Contains(def.GVK, ext) {
		def.GVK = append(def.GVK, ext)
	}
}

type info struct {
	Title   string `json:"title"`
	Version string `json:"version"`
}

type securityScheme struct {
	Description string `json:"description"`
	In          string `json:"in"`
	Name        string `json:"name"`
	Type        string `json:"type"`
}

var bearer = map[string]securityScheme{"BearerToken": {
	Description: "Bearer Token authentication", In: "header", Name: "authorization", Type: "apiKey"}}

var bearerRequirement = []map[string][]string{{"BearerToken": {}}}

// ---- OpenAPI v2 (Swagger 2.0) ----

type v2Document struct {
	Definitions         map[string]*Schema        `json:"definitions"`
	Info                info                      `json:"info"`
	Paths               map[string]map[string]any `json:"paths"`
	Security            []map[string][]string     `json:"security"`
	SecurityDefinitions map[string]securityScheme `json:"securityDefinitions"`
	Swagger             string                    `json:"swagger"`
}

type v2Operation struct {
	Consumes    []string              `json:"consumes,omitempty"`
	Description string                `json:"description"`
	OperationID string                `json:"operationId"`
	Parameters  []v2Param             `json:"parameters,omitempty"`
	Produces    []string              `json:"produces"`
	Responses   map[string]v2Response `json:"responses"`
	Schemes     []string              `json:"schemes"`
	Tags        []string              `json:"tags"`
	Action      string                `json:"x-kubernetes-action"`
	GVK         gvkExt                `json:"x-kubernetes-group-version-kind"`
}

type v2Param struct {
	Description string  `json:"description,omitempty"`
	In          string  `json:"in"`
	Name        string  `json:"name"`
	Required    bool    `json:"required,omitempty"`
	Schema      *Schema `json:"schema,omitempty"`
	Type        string  `json:"type,omitempty"`
	UniqueItems bool    `json:"uniqueItems,omitempty"`
}

type v2Response struct {
	Description string  `json:"description"`
	Schema      *Schema `json:"schema,omitempty"`
}

func v2Params(ps []param) []v2Param {
	out := make([]v2Param, 0, len(ps))
	for _, p := range ps {
		out = append(out, v2Param{Description: p.description, In: p.in, Name: p.name, Required: p.required, Type: p.typ, UniqueItems: true})
	}
	return out
}

func v2Ref(name string) *Schema { return &Schema{Ref: "#/definitions/" + name} }

// v2JSON renders the single Swagger document of every served kind.
func (s *site) v2JSON(version string) ([]byte, error) {
	doc := v2Document{
		Definitions:         make(map[string]*Schema, len(s.model.defs)),
		Info:                info{Title: "Kubernetes", Version: version},
		Paths:               map[string]map[string]any{},
		Security:            bearerRequirement,
		SecurityDefinitions: bearer,
		Swagger:             "2.0",
	}
	for name, def := range s.model.defs {
		doc.Definitions[name] = def.render(false)
	}
	for _, gv := range s.gvs {
		for _, p := range s.paths[gv] {
			item := map[string]any{"parameters": v2Params(p.params)}
			for _, o := range p.ops {
				op := &v2Operation{
					Consumes: o.consumes, Description: o.description, OperationID: o.id,
					Parameters: v2Params(o.params), Produces: o.produces, Responses: map[string]v2Response{},
					Schemes: []string{"https"}, Tags: []string{o.tag}, Action: o.action, GVK: toGVKExt(o.gvk),
				}
				if o.body != "" {
					op.Parameters = append([]v2Param{{In: "body", Name: "body", Required: o.bodyRequired, Schema: v2Ref(o.body)}}, op.Parameters...)
				}
				for _, r := range o.responses {
					resp := v2Response{Description: r.description}
					if r.ref != "" {
						resp.Schema = v2Ref(r.ref)
					}
					op.Responses[r.code] = resp
				}
				item[o.method] = op
			}
			doc.Paths[p.path] = item
		}
	}
	return json.Marshal(doc)
}

// ---- OpenAPI v3, one document per group version ----

type v3Document struct {
	Components v3Components              `json:"components"`
	Info       info                      `json:"info"`
	OpenAPI    string                    `json:"openapi"`
	Paths      map[string]map[string]any `json:"paths"`
	Security   []map[string][]string     `json:"security"`
}

type v3Components struct {
	Schemas         map[string]*Schema        `json:"schemas"`
	SecuritySchemes map[string]securityScheme `json:"securitySchemes"`
}

type v3Operation struct {
	Description string                `json:"description"`
	OperationID string                `json:"operationId"`
	Parameters  []v3Param             `json:"parameters,omitempty"`
	RequestBody *v3Body               `json:"requestBody,omitempty"`
	Responses   map[string]v3Response `json:"responses"`
	Tags        []string              `json:"tags"`
	Action      string                `json:"x-kubernetes-action"`
	GVK         gvkExt                `json:"x-kubernetes-group-version-kind"`
}

type v3Param struct {
	Description string  `json:"description,omitempty"`
	In          string  `json:"in"`
	Name        string  `json:"name"`
	Required    bool    `json:"required,omitempty"`
	Schema      *Schema `json:"schema"`
}

type v3Body struct {
	Content  map[string]v3Media `json:"content"`
	Required bool               `json:"required,omitempty"`
}

type v3Media struct {
	Schema *Schema `json:"schema"`
}

type v3Response struct {
	Content     map[string]v3Media `json:"content,omitempty"`
	Description string             `json:"description"`
}

func v3Params(ps []param) []v3Param {
	out := make([]v3Param, 0, len(ps))
	for _, p := range ps {
		out = append(out, v3Param{Description: p.description, In: p.in, Name: p.name, Required: p.required,
			Schema: &Schema{Type: p.typ, UniqueItems: true}})
	}
	return out
}

func v3Ref(name string) *Schema { return &Schema{Ref: "#/components/schemas/" + name} }

func v3Content(types []string, ref string) map[string]v3Media {
	out := make(map[string]v3Media, len(types))
	for _, t := range types {
		out[t] = v3Media{Schema: v3Ref(ref)}
	}
	return out
}

// v3JSON renders the document of one group version with the definitions
// its operations reach.
func (s *site) v3JSON(gv schema.GroupVersion, version string) ([]byte, error) {
	doc := v3Document{
		Info:     info{Title: "Kubernetes", Version: version},
		OpenAPI:  "3.0.0",
		Paths:    map[string]map[string]any{},
		Security: bearerRequirement,
	}
	var roots []string
	for _, p := range s.paths[gv] {
		item := map[string]any{"parameters": v3Params(p.params)}
		for _, o := range p.ops {
			op := &v3Operation{
				Description: o.description, OperationID: o.id, Parameters: v3Params(o.params),
				Responses: map[string]v3Response{}, Tags: []string{o.tag}, Action: o.action, GVK: toGVKExt(o.gvk),
			}
			if o.body != "" {
				op.RequestBody = &v3Body{Content: v3Content(o.consumes, o.body), Required: o.bodyRequired}
				roots = append(roots, o.body)
			}
			for _, r := range o.responses {
				resp := v3Response{Description: r.description}
				if r.ref != "" {
					resp.Content = v3Content(o.produces, r.ref)
					roots = append(roots, r.ref)
				}
				op.Responses[r.code] = resp
			}
			item[o.method] = op
		}
		doc.Paths[p.path] = item
	}
	sort.Strings(roots)
	defs := s.model.closure(slices.Compact(roots))
	doc.Components = v3Components{Schemas: make(map[string]*Schema, len(defs)), SecuritySchemes: bearer}
	for name, def := range defs {
		doc.Components.Schemas[name] = def.render(true)
	}
	return json.Marshal(doc)
}
