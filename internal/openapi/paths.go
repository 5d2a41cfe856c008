package openapi

import (
	"reflect"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/lotse/lotse/internal/apiserver/registry"
)

// pathItem is one URL path and its operations, independent of the document
// version that will write it.
type pathItem struct {
	path   string
	params []param // path-level: {namespace}, {name}, pretty
	ops    []*operation
}

// operation is one HTTP method on a path.
type operation struct {
	method      string // get, post, put, patch, delete
	id          string
	description string
	action      string // x-kubernetes-action
	gvk         schema.GroupVersionKind
	tag         string
	params      []param
	// body is the definition name of the request body, "" for none.
	body         string
	bodyRequired bool
	consumes     []string
	produces     []string
	responses    []response
}

type response struct {
	code        string
	description string
	ref         string // definition name, "" for no body
}

type param struct {
	name        string
	in          string // path or query
	typ         string // string, integer, boolean
	description string
	required    bool
}

// Content types, as upstream lists them.
var (
	mediaObject = []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf"}
	mediaList   = []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf",
		"application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch"}
	mediaWatch = []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf",
		"application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch"}
	mediaPatch = []string{"application/json-patch+json", "application/merge-patch+json",
		"application/strategic-merge-patch+json", "application/apply-patch+yaml"}
	mediaAny = []string{"*/*"}
)

// Query parameters. The descriptions are ours; the names and types are the
// wire contract clients rely on (kubectl looks for fieldValidation on PATCH
// to decide whether the server validates fields itself).
var (
	pPretty = param{name: "pretty", in: "query", typ: "string",
		description: "If 'true', the output is indented for people to read."}
	pDryRun = param{name: "dryRun", in: "query", typ: "string",
		description: "When set to 'All', the request is validated and admitted but nothing is persisted."}
	pFieldManager = param{name: "fieldManager", in: "query", typ: "string",
		description: "Name of the actor making the change, recorded in managedFields. At most 128 printable characters."}
	pFieldValidation = param{name: "fieldValidation", in: "query", typ: "string",
		description: "How the server treats unknown or duplicate fields in the request body: Ignore drops them, Warn (the default) drops them with a warning, Strict fails the request."}
	pForce = param{name: "force", in: "query", typ: "boolean",
		description: "Take over fields other managers own when applying. Only for apply patches."}

	pAllowWatchBookmarks = param{name: "allowWatchBookmarks", in: "query", typ: "boolean",
		description: "Ask for BOOKMARK events in a watch; the server may send them or not."}
	pContinue = param{name: "continue", in: "query", typ: "string",
		description: "Token from a previous paged list response to fetch the next page."}
	pFieldSelector = param{name: "fieldSelector", in: "query", typ: "string",
		description: "Restrict the result to objects whose fields match. Default: everything."}
	pLabelSelector = param{name: "labelSelector", in: "query", typ: "string",
		description: "Restrict the result to objects whose labels match. Default: everything."}
	pLimit = param{name: "limit", in: "query", typ: "integer",
		description: "Largest number of objects to return in one page; the response carries a continue token when more remain."}
	pResourceVersion = param{name: "resourceVersion", in: "query", typ: "string",
		description: "The resource version the result must be at least as new as, or must match exactly, per resourceVersionMatch. Watch starts after it."}
	pResourceVersionMatch = param{name: "resourceVersionMatch", in: "query", typ: "string",
		description: "How resourceVersion applies to a list: NotOlderThan or Exact."}
	pSendInitialEvents = param{name: "sendInitialEvents", in: "query", typ: "boolean",
		description: "Start a watch with synthetic ADDED events for the current state, followed by a bookmark."}
	pTimeoutSeconds = param{name: "timeoutSeconds", in: "query", typ: "integer",
		description: "Time limit for the list or watch call, in seconds."}
	pWatch = param{name: "watch", in: "query", typ: "boolean",
		description: "Stream add, update and delete notifications instead of returning a list."}

	pGracePeriodSeconds = param{name: "gracePeriodSeconds", in: "query", typ: "integer",
		description: "Seconds to wait before the object is deleted. Zero means at once; unset means the kind's default."}
	pIgnoreStoreReadError = param{name: "ignoreStoreReadErrorWithClusterBreakingPotential", in: "query", typ: "boolean",
		description: "Delete an object whose stored data cannot be read. Dangerous; needs extra permission."}
	pOrphanDependents = param{name: "orphanDependents", in: "query", typ: "boolean",
		description: "Deprecated: use propagationPolicy. Whether dependents are orphaned instead of deleted."}
	pPropagationPolicy = param{name: "propagationPolicy", in: "query", typ: "string",
		description: "Whether and how dependents are garbage collected: Orphan, Background or Foreground."}
)

var (
	listParams   = []param{pAllowWatchBookmarks, pContinue, pFieldSelector, pLabelSelector, pLimit, pResourceVersion, pResourceVersionMatch, pSendInitialEvents, pTimeoutSeconds, pWatch}
	writeParams  = []param{pDryRun, pFieldManager, pFieldValidation}
	patchParams  = []param{pDryRun, pFieldManager, pFieldValidation, pForce}
	deleteParams = []param{pDryRun, pGracePeriodSeconds, pIgnoreStoreReadError, pOrphanDependents, pPropagationPolicy}
	// deletecollection takes the list filters (but not watch) and the delete options.
	deleteCollectionParams = []param{pContinue, pDryRun, pFieldSelector, pGracePeriodSeconds, pIgnoreStoreReadError, pLabelSelector, pLimit,
		pOrphanDependents, pPropagationPolicy, pResourceVersion, pResourceVersionMatch, pSendInitialEvents, pTimeoutSeconds}
)

// join concatenates parameter lists into a new slice, so that lists shared
// between paths never alias.
func join(lists ...[]param) []param {
	var out []param
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

func pathParam(name, description string) param {
	return param{name: name, in: "path", typ: "string", description: description, required: true}
}

// Well-known responses.
var (
	rUnauthorized = response{code: "401", description: "Unauthorized"}
)

func ok(ref string) response       { return response{code: "200", description: "OK", ref: ref} }
func created(ref string) response  { return response{code: "201", description: "Created", ref: ref} }
func accepted(ref string) response { return response{code: "202", description: "Accepted", ref: ref} }

// subresourceKinds are the kinds a subresource reads and writes when it is
// not the parent kind itself.
var subresourceKinds = map[string]schema.GroupVersionKind{
	"scale":    autoscalingv1.SchemeGroupVersion.WithKind("Scale"),
	"binding":  corev1.SchemeGroupVersion.WithKind("Binding"),
	"eviction": policyv1.SchemeGroupVersion.WithKind("Eviction"),
	"token":    authenticationv1.SchemeGroupVersion.WithKind("TokenRequest"),
}

var subresourceTypes = map[string]reflect.Type{
	"scale":    reflect.TypeFor[autoscalingv1.Scale](),
	"binding":  reflect.TypeFor[corev1.Binding](),
	"eviction": reflect.TypeFor[policyv1.Eviction](),
	"token":    reflect.TypeFor[authenticationv1.TokenRequest](),
}

// Meta types every group version's operations refer to.
var (
	statusType        = reflect.TypeFor[metav1.Status]()
	deleteOptionsType = reflect.TypeFor[metav1.DeleteOptions]()
	watchEventType    = reflect.TypeFor[metav1.WatchEvent]()
	patchType         = reflect.TypeFor[metav1.Patch]()
)

// groupCamel is the group as operation IDs spell it: core -> Core,
// rbac.authorization.k8s.io -> RbacAuthorization.
func groupCamel(group string) string {
	if group == "" {
		return "Core"
	}
	parts := strings.Split(strings.TrimSuffix(group, ".k8s.io"), ".")
	for i, p := range parts {
		parts[i] = upperFirst(p)
	}
	return strings.Join(parts, "")
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// gvPrefix is the URL prefix of a group version: /api/v1, /apis/apps/v1.
func gvPrefix(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "/api/" + gv.Version
	}
	return "/apis/" + gv.Group + "/" + gv.Version
}

// gvKey is the group version's key in the /openapi/v3 index: api/v1, apis/apps/v1.
func gvKey(gv schema.GroupVersion) string {
	return strings.TrimPrefix(gvPrefix(gv), "/")
}

// kindPaths returns the paths serving one kind, registering every
// definition their operations refer to in m.
func kindPaths(m *model, k *registry.Kind) []*pathItem {
	gvk := k.GVK
	gv := gvk.GroupVersion()
	kind := gvk.Kind
	obj := m.add(reflect.TypeOf(k.New()))
	list := m.add(reflect.TypeOf(k.NewList()))
	status := m.add(statusType)
	deleteOptions := m.add(deleteOptionsType)
	watchEvent := m.add(watchEventType)
	patch := m.add(patchType)

	id := groupCamel(gv.Group) + upperFirst(gv.Version) // AppsV1
	tag := lowerFirst(groupCamel(gv.Group)) + "_" + gv.Version
	scoped := kind // NamespacedDeployment or Node
	prefix := gvPrefix(gv)
	collection := prefix + "/" + k.Resource
	watchCollection := prefix + "/watch/" + k.Resource
	scopeParams := []param{}
	if k.Namespaced {
		scoped = "Namespaced" + kind
		collection = prefix + "/namespaces/{namespace}/" + k.Resource
		watchCollection = prefix + "/watch/namespaces/{namespace}/" + k.Resource
		scopeParams = append(scopeParams, pathParam("namespace", "namespace of the objects"))
	}
	nameParam := pathParam("name", "name of the "+kind)
	item := collection + "/{name}"

	op := func(method, verb, action, description string, params []param, responses ...response) *operation {
		return &operation{method: method, id: verb + id + scoped, action: action, description: description,
			gvk: gvk, tag: tag, params: params, produces: mediaObject, consumes: mediaAny,
			responses: append(responses, rUnauthorized)}
	}
	withBody := func(o *operation, body string, required bool) *operation {
		o.body, o.bodyRequired = body, required
		return o
	}

	listOp := op("get", "list", "list", "list or watch objects of kind "+kind, listParams, ok(list))
	listOp.produces = mediaList
	createOp := withBody(op("post", "create", "post", "create a "+kind, writeParams, ok(obj), created(obj), accepted(obj)), obj, true)
	deleteCollectionOp := withBody(op("delete", "delete", "deletecollection", "delete a collection of "+kind, deleteCollectionParams, ok(status)), deleteOptions, false)
	deleteCollectionOp.id = "delete" + id + "Collection" + scoped

	readOp := op("get", "read", "get", "read the named "+kind, nil, ok(obj))
	replaceOp := withBody(op("put", "replace", "put", "replace the named "+kind, writeParams, ok(obj), created(obj)), obj, true)
	patchOp := withBody(op("patch", "patch", "patch", "partially update the named "+kind, patchParams, ok(obj), created(obj)), patch, true)
	patchOp.consumes = mediaPatch
	deleteOp := withBody(op("delete", "delete", "delete", "delete a "+kind, deleteParams, ok(status), accepted(status)), deleteOptions, false)

	paths := []*pathItem{
		{path: collection, params: join(scopeParams, []param{pPretty}), ops: []*operation{listOp, createOp, deleteCollectionOp}},
		{path: item, params: join([]param{nameParam}, scopeParams, []param{pPretty}), ops: []*operation{readOp, replaceOp, patchOp, deleteOp}},
	}

	watchOp := func(verb, action, description string) *operation {
		o := op("get", "watch", action, description, listParams, ok(watchEvent))
		o.id = "watch" + id + verb
		o.produces = mediaWatch
		return o
	}
	paths = append(paths,
		&pathItem{path: watchCollection, params: join(scopeParams, []param{pPretty}),
			ops: []*operation{watchOp(scoped+"List", "watchlist", "watch changes to a list of "+kind+"; deprecated in favour of list with watch=true")}},
		&pathItem{path: watchCollection + "/{name}", params: join([]param{nameParam}, scopeParams, []param{pPretty}),
			ops: []*operation{watchOp(scoped, "watch", "watch changes to one "+kind+"; deprecated in favour of list with watch=true and a metadata.name field selector")}},
	)
	if k.Namespaced {
		all := op("get", "list", "list", "list or watch objects of kind "+kind+" in all namespaces", listParams, ok(list))
		all.id = "list" + id + kind + "ForAllNamespaces"
		all.produces = mediaList
		allWatch := watchOp(kind+"ListForAllNamespaces", "watchlist", "watch changes to a list of "+kind+" in all namespaces; deprecated in favour of list with watch=true")
		paths = append(paths,
			&pathItem{path: prefix + "/" + k.Resource, params: []param{pPretty}, ops: []*operation{all}},
			&pathItem{path: prefix + "/watch/" + k.Resource, params: []param{pPretty}, ops: []*operation{allWatch}},
		)
	}

	for _, sub := range k.Subresources {
		if p := subresourcePath(m, k, sub, item, nameParam, scopeParams, op, withBody); p != nil {
			paths = append(paths, p)
		}
	}
	return paths
}

// subresourcePath returns the path of one subresource of k, or nil for one
// that has no object schema.
func subresourcePath(m *model, k *registry.Kind, sub, item string, nameParam param, scopeParams []param,
	op func(method, verb, action, description string, params []param, responses ...response) *operation,
	withBody func(*operation, string, bool) *operation,
) *pathItem {
	kind := k.GVK.Kind
	ref := m.add(reflect.TypeOf(k.New()))
	gvk := k.GVK
	if t, ok := subresourceTypes[sub]; ok {
		ref = m.add(t)
		gvk = subresourceKinds[sub]
	}
	suffix := upperFirst(sub)
	what := sub + " of the named " + kind
	var ops []*operation
	switch sub {
	case "binding", "eviction", "token":
		ops = []*operation{withBody(op("post", "create", "post", "create "+sub+" of a "+kind, writeParams, ok(ref), created(ref), accepted(ref)), ref, true)}
	case "finalize":
		ops = []*operation{withBody(op("put", "replace", "put", "replace finalize of the named "+kind, writeParams, ok(ref), created(ref)), ref, true)}
	case "log":
		get := op("get", "read", "get", "read the log of the named "+kind, nil, ok(""))
		get.produces = []string{"text/plain"}
		ops = []*operation{get}
	case "status", "scale", "ephemeralcontainers", "resize":
		get := op("get", "read", "get", "read "+what, nil, ok(ref))
		put := withBody(op("put", "replace", "put", "replace "+what, writeParams, ok(ref), created(ref)), ref, true)
		patch := withBody(op("patch", "patch", "patch", "partially update "+what, patchParams, ok(ref), created(ref)), m.add(patchType), true)
		patch.consumes = mediaPatch
		ops = []*operation{get, put, patch}
	default:
		// Streaming subresources (exec, attach, portforward, proxy) are
		// connections, not objects; the documents leave them out.
		return nil
	}
	for _, o := range ops {
		o.id += suffix
		o.gvk = gvk
	}
	return &pathItem{path: item + "/" + sub, params: join([]param{nameParam}, scopeParams, []param{pPretty}), ops: ops}
}
