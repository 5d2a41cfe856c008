package apiserver

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/munnerz/goautoneg"
	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	apidiscoveryv2beta1 "k8s.io/api/apidiscovery/v2beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/lotse/lotse/internal/apiserver/registry"
)

// discovery holds the pre-rendered discovery documents; the set of kinds
// is fixed for the life of the server.
type discovery struct {
	reg       *registry.Registry
	apiRoot   []byte            // /api
	apisRoot  []byte            // /apis
	groups    map[string][]byte // /apis/<group>
	resources map[string][]byte // /api/v1, /apis/<group>/<version>
	// aggregated discovery (apidiscovery.k8s.io v2 and v2beta1)
	aggAPI, aggAPIs         []byte
	aggAPIBeta, aggAPIsBeta []byte
}

var notFoundPath = &apierrors.StatusError{ErrStatus: metav1.Status{
	Status: metav1.StatusFailure, Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound,
	Message: "the server could not find the requested resource", Details: &metav1.StatusDetails{},
}}

var notFoundResource = schema.GroupResource{}

// verbsFor lists the verbs of a resource; every kind supports them all.
var resourceVerbs = []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}

func subresourceVerbs(sub string) []string {
	switch sub {
	case "binding", "eviction", "token":
		return []string{"create"}
	case "finalize":
		return []string{"update"}
	case "log":
		return []string{"get"}
	case "exec", "attach", "portforward":
		return []string{"create", "get"}
	}
	return []string{"get", "patch", "update"}
}

func subresourceKind(k *registry.Kind, sub string) schema.GroupVersionKind {
	switch sub {
	case "scale":
		return schema.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}
	case "binding":
		return schema.GroupVersionKind{Version: "v1", Kind: "Binding"}
	case "eviction":
		return schema.GroupVersionKind{Group: "policy", Version: "v1", Kind: "Eviction"}
	case "token":
		return tokenRequestGVK
	case "exec":
		return schema.GroupVersionKind{Version: "v1", Kind: "PodExecOptions"}
	case "attach":
		return schema.GroupVersionKind{Version: "v1", Kind: "PodAttachOptions"}
	case "portforward":
		return schema.GroupVersionKind{Version: "v1", Kind: "PodPortForwardOptions"}
	}
	return k.GVK
}

// virtualResource is a resource served without storage (metrics.k8s.io).
type virtualResource struct {
	Name, Singular, Kind string
	Namespaced           bool
	Verbs                []string
}

// virtualGroupVersion is a group version of virtual resources.
type virtualGroupVersion struct {
	GV        schema.GroupVersion
	Resources []virtualResource
}

func newDiscovery(reg *registry.Registry, virtual ...virtualGroupVersion) *discovery {
	d := &discovery{reg: reg, groups: map[string][]byte{}, resources: map[string][]byte{}}
	d.apiRoot = mustJSON(&metav1.APIVersions{
		TypeMeta:                   metav1.TypeMeta{Kind: "APIVersions"},
		Versions:                   []string{"v1"},
		ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: ""}},
	})
	groupList := &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
	var aggCore, aggGroups apidiscoveryv2.APIGroupDiscoveryList
	groupIndex := map[string]int{}
	for _, gv := range reg.GroupVersions() {
		kinds := reg.KindsIn(gv)
		list := &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv.String()}
		var aggResources []apidiscoveryv2.APIResourceDiscovery
		for _, k := range kinds {
			list.APIResources = append(list.APIResources, metav1.APIResource{
				Name: k.Resource, SingularName: k.Singular, Namespaced: k.Namespaced, Kind: k.GVK.Kind,
				Verbs: resourceVerbs, ShortNames: k.ShortNames, Categories: k.Categories,
			})
			scope := apidiscoveryv2.ScopeCluster
			if k.Namespaced {
				scope = apidiscoveryv2.ScopeNamespace
			}
			res := apidiscoveryv2.APIResourceDiscovery{
				Resource: k.Resource, SingularResource: k.Singular, Scope: scope, Verbs: resourceVerbs,
				ShortNames: k.ShortNames, Categories: k.Categories,
				ResponseKind: &metav1.GroupVersionKind{Group: k.GVK.Group, Version: k.GVK.Version, Kind: k.GVK.Kind},
			}
			for _, sub := range k.Subresources {
				sk := subresourceKind(k, sub)
				list.APIResources = append(list.APIResources, metav1.APIResource{
					Name: k.Resource + "/" + sub, Namespaced: k.Namespaced, Kind: sk.Kind,
					Group: groupIfOther(sk.Group, gv.Group), Version: versionIfOther(sk, gv), Verbs: subresourceVerbs(sub),
				})
				res.Subresources = append(res.Subresources, apidiscoveryv2.APISubresourceDiscovery{
					Subresource:  sub,
					ResponseKind: &metav1.GroupVersionKind{Group: sk.Group, Version: sk.Version, Kind: sk.Kind},
					Verbs:        subresourceVerbs(sub),
				})
			}
			aggResources = append(aggResources, res)
		}
		body := mustJSON(list)
		version := apidiscoveryv2.APIVersionDiscovery{Version: gv.Version, Resources: aggResources, Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent}
		if gv.Group == "" {
			d.resources["/api/v1"] = body
			aggCore.Items = append(aggCore.Items, apidiscoveryv2.APIGroupDiscovery{Versions: []apidiscoveryv2.APIVersionDiscovery{version}})
			continue
		}
		d.resources["/apis/"+gv.String()] = body
		i, seen := groupIndex[gv.Group]
		if !seen {
			preferred := metav1.GroupVersionForDiscovery{GroupVersion: gv.Group + "/" + reg.PreferredVersion(gv.Group), Version: reg.PreferredVersion(gv.Group)}
			groupList.Groups = append(groupList.Groups, metav1.APIGroup{Name: gv.Group, PreferredVersion: preferred})
			aggGroups.Items = append(aggGroups.Items, apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: gv.Group}})
			i = len(groupList.Groups) - 1
			groupIndex[gv.Group] = i
		}
		groupList.Groups[i].Versions = append(groupList.Groups[i].Versions, metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version})
		aggGroups.Items[i].Versions = append(aggGroups.Items[i].Versions, version)
	}
	for _, v := range virtual {
		list := &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: v.GV.String()}
		var aggResources []apidiscoveryv2.APIResourceDiscovery
		for _, r := range v.Resources {
			list.APIResources = append(list.APIResources, metav1.APIResource{Name: r.Name, SingularName: r.Singular, Namespaced: r.Namespaced, Kind: r.Kind, Verbs: r.Verbs})
			scope := apidiscoveryv2.ScopeCluster
			if r.Namespaced {
				scope = apidiscoveryv2.ScopeNamespace
			}
			aggResources = append(aggResources, apidiscoveryv2.APIResourceDiscovery{
				Resource: r.Name, SingularResource: r.Singular, Scope: scope, Verbs: r.Verbs,
				ResponseKind: &metav1.GroupVersionKind{Group: v.GV.Group, Version: v.GV.Version, Kind: r.Kind},
			})
		}
		d.resources["/apis/"+v.GV.String()] = mustJSON(list)
		gvd := metav1.GroupVersionForDiscovery{GroupVersion: v.GV.String(), Version: v.GV.Version}
		groupList.Groups = append(groupList.Groups, metav1.APIGroup{Name: v.GV.Group, Versions: []metav1.GroupVersionForDiscovery{gvd}, PreferredVersion: gvd})
		aggGroups.Items = append(aggGroups.Items, apidiscoveryv2.APIGroupDiscovery{
			ObjectMeta: metav1.ObjectMeta{Name: v.GV.Group},
			Versions:   []apidiscoveryv2.APIVersionDiscovery{{Version: v.GV.Version, Resources: aggResources, Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent}},
		})
	}
	for _, g := range groupList.Groups {
		g := g
		d.groups["/apis/"+g.Name] = mustJSON(&struct {
			metav1.TypeMeta `json:",inline"`
			metav1.APIGroup `json:",inline"`
		}{metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}, g})
	}
	d.apisRoot = mustJSON(groupList)
	aggCore.TypeMeta = metav1.TypeMeta{Kind: "APIGroupDiscoveryList", APIVersion: "apidiscovery.k8s.io/v2"}
	aggGroups.TypeMeta = aggCore.TypeMeta
	d.aggAPI, d.aggAPIs = mustJSON(&aggCore), mustJSON(&aggGroups)
	d.aggAPIBeta, d.aggAPIsBeta = mustJSON(toBeta(&aggCore)), mustJSON(toBeta(&aggGroups))
	return d
}

func groupIfOther(g, own string) string {
	if g == own {
		return ""
	}
	return g
}

func versionIfOther(sk schema.GroupVersionKind, gv schema.GroupVersion) string {
	if sk.GroupVersion() == gv {
		return ""
	}
	return sk.Version
}

// toBeta re-labels a v2 document as v2beta1, which has the same shape and
// is what kubectl 1.27–1.29 ask for.
func toBeta(in *apidiscoveryv2.APIGroupDiscoveryList) *apidiscoveryv2beta1.APIGroupDiscoveryList {
	var out apidiscoveryv2beta1.APIGroupDiscoveryList
	b, _ := json.Marshal(in)
	_ = json.Unmarshal(b, &out)
	out.APIVersion = "apidiscovery.k8s.io/v2beta1"
	return &out
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// aggregatedVersion returns the apidiscovery version the client accepts
// first, or "" when it wants the classic documents.
func aggregatedVersion(r *http.Request) string {
	for _, a := range goautoneg.ParseAccept(r.Header.Get("Accept")) {
		if a.Params["g"] == "apidiscovery.k8s.io" && a.Params["as"] == "APIGroupDiscoveryList" {
			if a.Params["v"] == "v2" || a.Params["v"] == "v2beta1" {
				return a.Params["v"]
			}
			continue
		}
		if a.Type+"/"+a.SubType == "application/json" || a.Type == "*" {
			return ""
		}
	}
	return ""
}

func (d *discovery) serveRoot(s *Server, w http.ResponseWriter, r *http.Request) {
	core := strings.HasPrefix(r.URL.Path, "/api") && !strings.HasPrefix(r.URL.Path, "/apis")
	switch v := aggregatedVersion(r); v {
	case "v2", "v2beta1":
		body := map[bool][]byte{true: d.aggAPI, false: d.aggAPIs}[core]
		if v == "v2beta1" {
			body = map[bool][]byte{true: d.aggAPIBeta, false: d.aggAPIsBeta}[core]
		}
		w.Header().Set("Content-Type", "application/json;g=apidiscovery.k8s.io;v="+v+";as=APIGroupDiscoveryList")
		w.Header().Set("Vary", "Accept")
		w.Header().Set("X-Varied-Accept", r.Header.Get("Accept"))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
		return
	}
	if core {
		writeRaw(w, http.StatusOK, d.apiRoot)
	} else {
		writeRaw(w, http.StatusOK, d.apisRoot)
	}
}

// serveGroup answers /apis/<group>, /api/v1 and /apis/<group>/<version>.
func (d *discovery) serveGroup(s *Server, w http.ResponseWriter, r *http.Request) bool {
	p := strings.TrimSuffix(r.URL.Path, "/")
	if b, ok := d.resources[p]; ok {
		writeRaw(w, http.StatusOK, b)
		return true
	}
	if b, ok := d.groups[p]; ok {
		writeRaw(w, http.StatusOK, b)
		return true
	}
	return false
}

func writeRaw(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", mediaJSON)
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	writeRaw(w, code, mustJSON(v))
}
