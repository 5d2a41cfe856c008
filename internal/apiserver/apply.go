package apiserver

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/yaml"

	"github.com/lotse/lotse/internal/apiserver/defaults"
	"github.com/lotse/lotse/internal/apiserver/registry"
	"github.com/lotse/lotse/internal/openapi"
)

// Server-side apply and managedFields, with apimachinery's field manager
// (the one kube-apiserver uses) over the OpenAPI schemas lotse serves.
//
// Where lotse differs: objects start recording managedFields when they are
// first applied, or created by kubectl's client-side apply (trackCreate).
// Other creates and updates of objects nobody has applied record nothing
// (upstream records them always), so the write path of ordinary objects
// pays nothing for field tracking. The first apply to such an object gives
// the fields it already has to a manager named "before-first-apply", as
// upstream's field manager does for objects without managedFields.

// fieldManagers builds the field manager of each kind and subresource the
// first time one is needed: the type converter reads every served schema,
// which is work and memory a server that never sees an apply should not
// pay at start-up.
type fieldManagers struct {
	reg *registry.Registry

	once sync.Once
	conv managedfields.TypeConverter
	err  error

	mu     sync.Mutex
	byKind map[fieldManagerKey]*managedfields.FieldManager
}

type fieldManagerKey struct {
	gvk         schema.GroupVersionKind
	subresource string
}

func newFieldManagers(reg *registry.Registry) *fieldManagers {
	return &fieldManagers{reg: reg, byKind: map[fieldManagerKey]*managedfields.FieldManager{}}
}

// get returns the field manager for writes of kind through subresource
// ("" for the object itself).
func (f *fieldManagers) get(kind *registry.Kind, subresource string) (*managedfields.FieldManager, error) {
	f.once.Do(func() {
		schemas, err := openapi.TypeSchemas(f.reg)
		if err != nil {
			f.err = err
			return
		}
		f.conv, f.err = managedfields.NewTypeConverter(schemas, false)
	})
	if f.err != nil {
		return nil, fmt.Errorf("server-side apply: %w", f.err)
	}
	key := fieldManagerKey{kind.GVK, subresource}
	f.mu.Lock()
	defer f.mu.Unlock()
	if fm, ok := f.byKind[key]; ok {
		return fm, nil
	}
	conv := objectConverter{reg: f.reg}
	fm, err := managedfields.NewDefaultFieldManager(f.conv, conv, defaulter{}, conv, kind.GVK, kind.GVK.GroupVersion(),
		subresource, resetFields(kind, subresource))
	if err != nil {
		return nil, err
	}
	f.byKind[key] = fm
	return fm, nil
}

// resetFields are the fields a write through this endpoint cannot change,
// so its manager never owns them: the status for the main resource of a
// kind with a status subresource, everything but the status for /status.
func resetFields(kind *registry.Kind, subresource string) map[fieldpath.APIVersion]fieldpath.Filter {
	var set *fieldpath.Set
	switch {
	case subresource == "status":
		set = fieldpath.NewSet(fieldpath.MakePathOrDie("spec"), fieldpath.MakePathOrDie("metadata", "labels"),
			fieldpath.MakePathOrDie("metadata", "annotations"))
	case kind.HasSubresource("status"):
		set = fieldpath.NewSet(fieldpath.MakePathOrDie("status"))
	default:
		return nil
	}
	return map[fieldpath.APIVersion]fieldpath.Filter{
		fieldpath.APIVersion(kind.GVK.GroupVersion().String()): fieldpath.NewExcludeSetFilter(set),
	}
}

// objectConverter gives the field manager typed objects of the version it
// asks for: it reads unstructured objects into the served Go type and
// converts between served versions through the storage version.
type objectConverter struct{ reg *registry.Registry }

func (c objectConverter) kindFor(gvk schema.GroupVersionKind) (*registry.Kind, bool) {
	for _, k := range c.reg.Kinds() {
		if k.GVK == gvk {
			return k, true
		}
	}
	return nil, false
}

// New implements runtime.ObjectCreater.
func (c objectConverter) New(gvk schema.GroupVersionKind) (runtime.Object, error) {
	k, ok := c.kindFor(gvk)
	if !ok {
		return nil, runtime.NewNotRegisteredErrForKind("lotse", gvk)
	}
	obj := k.New()
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return obj, nil
}

func (c objectConverter) ConvertToVersion(in runtime.Object, target runtime.GroupVersioner) (runtime.Object, error) {
	from := in.GetObjectKind().GroupVersionKind()
	if from.Empty() {
		kinds, _, err := scheme.Scheme.ObjectKinds(in)
		if err != nil {
			return nil, err
		}
		from = kinds[0]
	}
	to, ok := target.KindForGroupVersionKinds([]schema.GroupVersionKind{from})
	if !ok {
		return nil, fmt.Errorf("%v cannot be converted to %v", from, target)
	}
	if u, ok := in.(*unstructured.Unstructured); ok {
		obj, err := c.New(from)
		if err != nil {
			return nil, err
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
			return nil, err
		}
		in = obj
	}
	if from != to {
		src, ok1 := c.kindFor(from)
		dst, ok2 := c.kindFor(to)
		if !ok1 || !ok2 || src.StorageGVK != dst.StorageGVK {
			return nil, fmt.Errorf("%v cannot be converted to %v", from, to)
		}
		in = toServed(dst, toStorage(src, in))
	}
	in.GetObjectKind().SetGroupVersionKind(to)
	return in, nil
}

func (c objectConverter) Convert(in, out, context any) error {
	return errors.New("objectConverter: Convert is not used by the field manager")
}

func (c objectConverter) ConvertFieldLabel(gvk schema.GroupVersionKind, label, value string) (string, string, error) {
	return "", "", errors.New("objectConverter: ConvertFieldLabel is not used by the field manager")
}

// defaulter applies lotse's defaults to what an apply produced.
type defaulter struct{}

func (defaulter) Default(obj runtime.Object) { defaults.Apply(obj) }

// fieldManagerName is the manager a write is recorded under: the
// fieldManager parameter, else the client's user agent up to its first
// "/" (as upstream does).
func (rq *request) fieldManagerName() (string, error) {
	name := rq.q.Get("fieldManager")
	if name == "" {
		name, _, _ = strings.Cut(rq.r.UserAgent(), "/")
		name = strings.Map(func(r rune) rune {
			if unicode.IsPrint(r) {
				return r
			}
			return -1
		}, name)
		if len(name) > 128 {
			name = name[:128]
		}
		if name == "" {
			name = "unknown"
		}
		return name, nil
	}
	if len(name) > 128 {
		return "", apierrors.NewBadRequest("fieldManager: Too long: may not be more than 128 bytes")
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return "", apierrors.NewBadRequest(fmt.Sprintf("fieldManager: Invalid value: %q: must only contain printable characters", name))
		}
	}
	return name, nil
}

// trackUpdate records in obj's managedFields what a non-apply write
// changed, once the object has managedFields (see the top of this file);
// otherwise it leaves none.
func (rq *request) trackUpdate(obj, cur runtime.Object) (runtime.Object, error) {
	if len(accessor(cur).GetManagedFields()) == 0 {
		accessor(obj).SetManagedFields(nil)
		return obj, nil
	}
	return rq.recordUpdate(cur, obj, rq.info.Subresource)
}

// recordUpdate has the field manager of subresource record what the
// write of obj over live changed, under the request's manager name.
func (rq *request) recordUpdate(live, obj runtime.Object, subresource string) (runtime.Object, error) {
	manager, err := rq.fieldManagerName()
	if err != nil {
		return nil, err
	}
	fm, err := rq.s.fieldManagers.get(rq.kind, subresource)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	return fm.UpdateNoErrors(withKind(live, rq.kind), withKind(obj, rq.kind), manager), nil
}

// trackCreate records the creator of an object that kubectl's client-side
// apply creates (it carries the last-applied-configuration annotation) and
// leaves other new objects without managedFields. Those are the objects a
// later `kubectl apply --server-side` migrates: kubectl hands the fields of
// the client-side apply's manager to its server-side one, which must then
// not own what admission added after the create (a pod's token volume);
// a "before-first-apply" manager would own those too. It runs before
// admission, as upstream's does. obj comes without managedFields.
func (rq *request) trackCreate(obj runtime.Object) (runtime.Object, error) {
	if _, ok := accessor(obj).GetAnnotations()[corev1.LastAppliedConfigAnnotation]; !ok {
		return obj, nil
	}
	return rq.recordUpdate(rq.kind.New(), obj, "")
}

// withKind sets the served kind on a typed object, which the field
// manager reads to find its schema.
func withKind(obj runtime.Object, kind *registry.Kind) runtime.Object {
	obj.GetObjectKind().SetGroupVersionKind(kind.GVK)
	return obj
}

// applyRequest is a decoded server-side apply: the applied configuration
// and how to merge it.
type applyRequest struct {
	patch   *unstructured.Unstructured
	manager string
	force   bool
}

// readApply reads and checks an apply patch (YAML or JSON) and its
// parameters.
func (rq *request) readApply(body []byte) (*applyRequest, error) {
	if rq.q.Get("fieldManager") == "" {
		return nil, apierrors.NewBadRequest("PATCH, application/apply-patch+yaml: fieldManager is required for apply requests")
	}
	manager, err := rq.fieldManagerName()
	if err != nil {
		return nil, err
	}
	force := false
	if v := rq.q.Get("force"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("force: Invalid value: %q: must be true or false", v))
		}
		force = b
	}
	js, err := yaml.YAMLToJSON(body)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("error decoding YAML: %v", err))
	}
	patch := &unstructured.Unstructured{}
	if err := patch.UnmarshalJSON(js); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("error decoding apply patch: %v", err))
	}
	if gvk := patch.GroupVersionKind(); gvk != rq.kind.GVK {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the apply patch is a %s, but the request is for %s",
			describeGVK(gvk), describeGVK(rq.kind.GVK)))
	}
	if n := patch.GetName(); n != "" && n != rq.info.Name {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", n, rq.info.Name))
	}
	if err := rq.checkNamespace(patch); err != nil {
		return nil, err
	}
	return &applyRequest{patch: patch, manager: manager, force: force}, nil
}

func describeGVK(gvk schema.GroupVersionKind) string {
	return gvk.Kind + " of " + gvk.GroupVersion().String()
}

// merge applies the configuration to cur, the object as stored (or an
// empty one to create). Errors other than the field manager's own
// statuses (conflicts, bad versions) are about the applied document.
func (a *applyRequest) merge(rq *request, cur runtime.Object) (runtime.Object, error) {
	fm, err := rq.s.fieldManagers.get(rq.kind, rq.info.Subresource)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	out, err := fm.Apply(withKind(cur, rq.kind), a.patch.DeepCopy(), a.manager, a.force)
	if err != nil {
		var status apierrors.APIStatus
		if errors.As(err, &status) {
			return nil, err
		}
		return nil, apierrors.NewBadRequest(err.Error())
	}
	return out, nil
}

// apply serves a server-side apply: it merges the configuration into the
// object, or creates the object when there is none (main resource only).
func (rq *request) apply(body []byte) error {
	a, err := rq.readApply(body)
	if err != nil {
		return err
	}
	rq.applying = true
	for attempt := 0; ; attempt++ {
		result, err := rq.replace(func(cur runtime.Object) (runtime.Object, error) { return a.merge(rq, cur.DeepCopyObject()) })
		if err == nil {
			return rq.writeObject(http.StatusOK, result)
		}
		if !apierrors.IsNotFound(err) || rq.info.Subresource != "" {
			return err
		}
		empty := rq.kind.New()
		acc := accessor(empty)
		acc.SetName(rq.info.Name)
		acc.SetNamespace(rq.info.Namespace)
		obj, err := a.merge(rq, empty)
		if err != nil {
			return err
		}
		err = rq.createObject(obj, accessor(obj).GetManagedFields())
		// Someone created it meanwhile: apply to theirs, once.
		if !apierrors.IsAlreadyExists(err) || attempt > 0 {
			return err
		}
	}
}
