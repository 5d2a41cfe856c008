package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/lotse/lotse/internal/apiserver/defaults"
	"github.com/lotse/lotse/internal/apiserver/registry"
	"github.com/lotse/lotse/internal/apiserver/validation"
	"github.com/lotse/lotse/internal/storage"
)

// request carries what every handler of one resource request needs.
type request struct {
	s    *Server
	w    http.ResponseWriter
	r    *http.Request
	ctx  context.Context
	info *requestInfo
	kind *registry.Kind
	res  *storage.Resource
	out  *output
	q    url.Values
	// applying is set for a server-side apply, whose managedFields the
	// field manager's apply has already written.
	applying bool
}

func (s *Server) serveResource(w http.ResponseWriter, r *http.Request, info *requestInfo) {
	kind, ok := s.reg.Lookup(info.GroupVersion.WithResource(info.Resource))
	if !ok || (info.Subresource != "" && !kind.HasSubresource(info.Subresource)) {
		s.writeError(w, r, notFoundPath)
		return
	}
	if info.Namespace != "" && !kind.Namespaced {
		s.writeError(w, r, notFoundPath)
		return
	}
	if kind.Namespaced && info.Namespace == "" && info.Name != "" {
		s.writeError(w, r, notFoundPath)
		return
	}
	res, ok := s.store.Resource(kind.StorageResource)
	if !ok {
		s.writeError(w, r, notFoundPath)
		return
	}
	out, ok := negotiate(r)
	if !ok {
		s.writeError(w, r, apierrors.NewGenericServerResponse(http.StatusNotAcceptable, "", kind.GroupResource(), "",
			"only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf", 0, false))
		return
	}
	out.pretty = isTrue(r.URL.Query().Get("pretty"))
	rq := &request{s: s, w: w, r: r, ctx: r.Context(), info: info, kind: kind, res: res, out: out, q: r.URL.Query()}
	var err error
	switch sub := info.Subresource; {
	case sub == "" || sub == "status":
		err = rq.serveMain()
	case sub == "scale":
		err = rq.serveScale()
	case sub == "ephemeralcontainers":
		err = rq.serveEphemeralContainers()
	case sub == "binding" && info.Verb == "create":
		err = rq.bind()
	case sub == "eviction" && info.Verb == "create":
		err = rq.evict()
	case sub == "token" && info.Verb == "create":
		err = rq.createToken()
	case sub == "finalize" && info.Verb == "update":
		err = rq.update()
	case nodeSubresources[sub] != "" && (info.Verb == "get" || info.Verb == "create"):
		err = rq.proxyToNode()
	default:
		err = apierrors.NewMethodNotSupported(kind.GroupResource(), info.Verb)
	}
	if err != nil {
		s.writeError(w, r, err)
	}
}

func (rq *request) serveMain() error {
	sub := rq.info.Subresource
	switch rq.info.Verb {
	case "get":
		return rq.get()
	case "list":
		if sub != "" {
			break
		}
		return rq.list()
	case "watch":
		if sub != "" {
			break
		}
		return rq.watch()
	case "create":
		if sub != "" {
			break
		}
		return rq.create()
	case "update":
		return rq.update()
	case "patch":
		return rq.patch()
	case "delete":
		if sub != "" {
			break
		}
		return rq.delete()
	case "deletecollection":
		if sub != "" {
			break
		}
		return rq.deleteCollection()
	}
	return apierrors.NewMethodNotSupported(rq.kind.GroupResource(), rq.info.Verb)
}

func (rq *request) notFound() error {
	return apierrors.NewNotFound(rq.kind.GroupResource(), rq.info.Name)
}

func (rq *request) storageErr(err error) error {
	return storageError(err, rq.kind.GroupResource(), rq.info.Name)
}

// --- reads ---

func (rq *request) get() error {
	var st storage.Stored
	var err error
	if rq.q.Get("resourceVersion") == "0" {
		st, err = rq.res.GetCachedEncoded(rq.info.Namespace, rq.info.Name)
	} else {
		st, err = rq.res.GetEncoded(rq.ctx, rq.info.Namespace, rq.info.Name)
	}
	if err != nil {
		return rq.storageErr(err)
	}
	if ok, err := rq.writeEncoded(st.Object, st.Enc); ok {
		return err
	}
	obj, err := st.Object()
	if err != nil {
		return rq.storageErr(err)
	}
	return rq.writeObject(http.StatusOK, toServed(rq.kind, obj))
}

// matcher builds the label and field selector filter of a list or watch.
func (rq *request) matcher() (func(storage.Attrs) bool, error) {
	lsel, err := labels.Parse(rq.q.Get("labelSelector"))
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	fsel, err := fields.ParseSelector(rq.q.Get("fieldSelector"))
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	if !fsel.Empty() {
		supported := map[string]bool{"metadata.name": true, "metadata.namespace": true}
		if rq.kind.FieldLabels != nil {
			for k := range rq.kind.FieldLabels(rq.res.NewObject()) {
				supported[k] = true
			}
		}
		for _, req := range fsel.Requirements() {
			if !supported[req.Field] {
				return nil, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", req.Field))
			}
		}
	}
	if lsel.Empty() && fsel.Empty() {
		return nil, nil
	}
	return func(a storage.Attrs) bool {
		return lsel.Matches(a.Labels) && fsel.Matches(a.Fields)
	}, nil
}

func (rq *request) list() error {
	match, err := rq.matcher()
	if err != nil {
		return err
	}
	opts := storage.ListOptions{
		Namespace:            rq.info.Namespace,
		ResourceVersion:      rq.q.Get("resourceVersion"),
		ResourceVersionMatch: rq.q.Get("resourceVersionMatch"),
		Continue:             rq.q.Get("continue"),
		Match:                match,
	}
	if err := validateListOptions(rq.q, false); err != nil {
		return err
	}
	if l := rq.q.Get("limit"); l != "" {
		n, err := strconv.ParseInt(l, 10, 64)
		if err != nil || n < 0 {
			return apierrors.NewBadRequest(fmt.Sprintf("invalid limit %q", l))
		}
		opts.Limit = n
	}
	if opts.Continue != "" && opts.ResourceVersion != "" && opts.ResourceVersion != "0" {
		return apierrors.NewBadRequest("specifying resource version is not allowed when using continue")
	}
	res, err := rq.res.List(rq.ctx, opts)
	if err != nil {
		if errors.Is(err, storage.ErrExpired) {
			return apierrors.NewResourceExpired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
		}
		return rq.storageErr(err)
	}
	lm := metav1.ListMeta{ResourceVersion: strconv.FormatInt(res.ResourceVersion, 10), Continue: res.Continue, RemainingItemCount: res.RemainingItemCount}
	item := func(i int) lazyObject {
		return func() (runtime.Object, error) {
			obj, err := res.Item(i)
			if err != nil {
				return nil, err
			}
			return toServed(rq.kind, obj), nil
		}
	}
	if done, err := rq.streamList(res.Len(), item, res.Encodings, lm); done || err != nil {
		return err
	}
	items, err := res.Items()
	if err != nil {
		return rq.storageErr(err)
	}
	for i, obj := range items {
		items[i] = toServed(rq.kind, obj)
	}
	return rq.writeList(items, lm)
}

// --- writes ---

// parseDryRun validates the dryRun parameter; only "All" exists.
func (rq *request) dryRun() (bool, error) {
	vals := rq.q["dryRun"]
	for _, v := range vals {
		if v != metav1.DryRunAll {
			return false, apierrors.NewBadRequest(fmt.Sprintf("Invalid dryRun value %q: only %q is supported", v, metav1.DryRunAll))
		}
	}
	return len(vals) > 0, nil
}

// fieldValidation returns the requested unknown-field handling. Upstream
// defaults to Warn.
func (rq *request) fieldValidation() (string, error) {
	switch v := rq.q.Get("fieldValidation"); v {
	case "":
		return "Warn", nil
	case "Ignore", "Warn", "Strict":
		return v, nil
	default:
		return "", apierrors.NewBadRequest(fmt.Sprintf("fieldValidation must be one of Ignore, Warn or Strict, not %q", v))
	}
}

func (rq *request) readBody() ([]byte, error) {
	var body []byte
	var err error
	if n := rq.r.ContentLength; n > 0 && n <= MaxRequestBytes {
		// One allocation of the announced size, not ReadAll's doublings;
		// net/http ends the body at Content-Length (HTTP/2 refuses more).
		body = make([]byte, n)
		_, err = io.ReadFull(rq.r.Body, body)
	} else {
		body, err = io.ReadAll(rq.r.Body)
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", MaxRequestBytes))
		}
		return nil, apierrors.NewBadRequest(fmt.Sprintf("reading request body: %v", err))
	}
	return body, nil
}

// decode parses a request body of the served kind (or into, when given),
// honouring fieldValidation.
func (rq *request) decode(data []byte, contentType string, into runtime.Object) (runtime.Object, error) {
	mode, err := rq.fieldValidation()
	if err != nil {
		return nil, err
	}
	dec, ok := decoderFor(contentType, mode != "Ignore")
	if !ok {
		return nil, unsupportedMediaType(contentType)
	}
	// into, when given, carries the kind it expects in its TypeMeta.
	want := rq.kind.GVK
	if into == nil {
		if obj := rq.kind.New(); decodeJSONFast(data, contentType, mode != "Ignore", obj, want) {
			return obj, nil
		}
		into = rq.kind.New()
	} else {
		want = into.GetObjectKind().GroupVersionKind()
	}
	if len(data) == 0 {
		return nil, apierrors.NewBadRequest("the request body is empty")
	}
	obj, gvk, err := dec.Decode(data, &want, into)
	if err != nil {
		if runtime.IsStrictDecodingError(err) && obj != nil {
			if mode == "Strict" {
				return nil, apierrors.NewBadRequest(err.Error())
			}
			for _, e := range strictErrors(err) {
				rq.warn(e)
			}
		} else {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the body of the request could not be decoded: %v", err))
		}
	}
	if gvk != nil && *gvk != want {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)", gvk.GroupVersion(), want.GroupVersion()))
	}
	obj.GetObjectKind().SetGroupVersionKind(want)
	return obj, nil
}

// strictErrors lists the unknown or duplicate fields a strict decode found.
func strictErrors(err error) []string {
	se, ok := runtime.AsStrictDecodingError(err)
	if !ok {
		return []string{err.Error()}
	}
	var out []string
	for _, e := range se.Errors() {
		out = append(out, e.Error())
	}
	return out
}

// checkNamespace fills or checks the object's namespace against the URL.
func (rq *request) checkNamespace(acc metav1.Object) error {
	if !rq.kind.Namespaced {
		acc.SetNamespace("")
		return nil
	}
	if acc.GetNamespace() == "" {
		acc.SetNamespace(rq.info.Namespace)
	}
	if acc.GetNamespace() != rq.info.Namespace {
		return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	return nil
}

func (rq *request) create() error {
	if rq.kind.Namespaced && rq.info.Namespace == "" {
		return apierrors.NewMethodNotSupported(rq.kind.GroupResource(), "create")
	}
	body, err := rq.readBody()
	if err != nil {
		return err
	}
	obj, err := rq.decode(body, rq.r.Header.Get("Content-Type"), nil)
	if err != nil {
		return err
	}
	return rq.createObject(obj, nil)
}

// createObject stores a new object with the given managedFields (none
// unless it was created by an apply) and writes the answer.
func (rq *request) createObject(obj runtime.Object, managed []metav1.ManagedFieldsEntry) error {
	dry, err := rq.dryRun()
	if err != nil {
		return err
	}
	acc := accessor(obj)
	if err := rq.checkNamespace(acc); err != nil {
		return err
	}
	if acc.GetResourceVersion() != "" {
		return apierrors.NewBadRequest("resourceVersion should not be set on objects to be created")
	}
	if acc.GetName() == "" && acc.GetGenerateName() != "" {
		acc.SetName(generateName(acc.GetGenerateName()))
	}
	acc.SetUID(uuid.NewUUID())
	acc.SetCreationTimestamp(metav1.Now())
	acc.SetDeletionTimestamp(nil)
	acc.SetDeletionGracePeriodSeconds(nil)
	acc.SetSelfLink("")
	acc.SetManagedFields(managed)
	acc.SetGeneration(0)
	if tracksGeneration(rq.kind, obj) {
		acc.SetGeneration(1)
	}
	stampTemplateGeneration(obj, nil)
	resetStatus(rq.kind, obj)
	normalize(obj)
	defaults.Apply(obj)
	if managed == nil {
		if obj, err = rq.trackCreate(obj); err != nil {
			return err
		}
		acc = accessor(obj)
	}
	// Admission, in upstream's order: the namespace must exist first.
	if err := rq.s.admitNamespace(rq.ctx, rq.kind, acc.GetNamespace(), acc.GetName()); err != nil {
		return err
	}
	if pod, ok := obj.(*corev1.Pod); ok {
		addDefaultTolerations(pod)
		if rq.s.cfg.ServiceAccountAdmission {
			if err := rq.s.admitServiceAccount(rq.ctx, pod); err != nil {
				return err
			}
		}
	}
	if ing, ok := obj.(*networkingv1.Ingress); ok {
		if err := rq.s.setDefaultIngressClass(rq.ctx, ing); err != nil {
			return err
		}
	}
	if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok {
		if err := rq.s.setDefaultStorageClass(rq.ctx, pvc); err != nil {
			return err
		}
	}
	if errs := validation.ValidateCreate(obj); len(errs) > 0 {
		return rq.invalid(acc.GetName(), errs)
	}
	rq.info.Name = acc.GetName()
	release := func() {}
	if svc, ok := obj.(*corev1.Service); ok {
		if release, err = rq.s.ips.allocate(rq.ctx, svc, dry); err != nil {
			return err
		}
		if err := rq.s.nodePorts.assign(rq.ctx, svc, nil); err != nil {
			release()
			return err
		}
	}
	if dry {
		if _, err := rq.res.Get(rq.ctx, acc.GetNamespace(), acc.GetName()); err == nil {
			return apierrors.NewAlreadyExists(rq.kind.GroupResource(), acc.GetName())
		}
		return rq.writeObject(http.StatusCreated, obj)
	}
	stored, err := rq.res.Create(rq.ctx, acc.GetNamespace(), acc.GetName(), toStorage(rq.kind, obj))
	if err != nil {
		release()
		return rq.storageErr(err)
	}
	return rq.writeObject(http.StatusCreated, toServed(rq.kind, stored))
}

func (rq *request) invalid(name string, errs field.ErrorList) error {
	return apierrors.NewInvalid(rq.kind.GVK.GroupKind(), name, errs)
}

// update replaces the object (PUT) on the main resource, status or finalize.
func (rq *request) update() error {
	body, err := rq.readBody()
	if err != nil {
		return err
	}
	obj, err := rq.decode(body, rq.r.Header.Get("Content-Type"), nil)
	if err != nil {
		return err
	}
	result, err := rq.replace(func(cur runtime.Object) (runtime.Object, error) { return obj.DeepCopyObject(), nil })
	if err != nil {
		return err
	}
	return rq.writeObject(http.StatusOK, result)
}

// replace runs one update: next computes the wanted object from the
// current one, which it must not modify (it returns an object of its
// own); the rest (system fields, subresource rules, defaults, validation,
// optimistic concurrency) is the same for PUT and PATCH.
func (rq *request) replace(next func(cur runtime.Object) (runtime.Object, error)) (runtime.Object, error) {
	dry, err := rq.dryRun()
	if err != nil {
		return nil, err
	}
	if _, err := rq.fieldValidation(); err != nil {
		return nil, err
	}
	ns, name := rq.info.Namespace, rq.info.Name
	apply := func(stored runtime.Object) (runtime.Object, error) {
		cur := toServed(rq.kind, stored)
		obj, err := next(cur)
		if err != nil {
			return nil, err
		}
		acc, old := accessor(obj), accessor(cur)
		if acc.GetName() != name {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", acc.GetName(), name))
		}
		if err := rq.checkNamespace(acc); err != nil {
			return nil, err
		}
		if rv := acc.GetResourceVersion(); rv != "" && rv != old.GetResourceVersion() {
			return nil, apierrors.NewConflict(rq.kind.GroupResource(), name, errors.New(conflictMessage))
		}
		if uid := acc.GetUID(); uid != "" && uid != old.GetUID() {
			return nil, apierrors.NewConflict(rq.kind.GroupResource(), name,
				fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", uid, old.GetUID()))
		}
		obj = rq.mergeSubresource(obj, cur)
		acc = accessor(obj)
		keepClusterIP(obj, cur)
		if svc, ok := obj.(*corev1.Service); ok && rq.info.Subresource == "" {
			if err := rq.s.nodePorts.assign(rq.ctx, svc, cur.(*corev1.Service)); err != nil {
				return nil, err
			}
		}
		keepSystemMeta(acc, old)
		if rq.info.Subresource == "" {
			copyStatus(obj, cur)
		}
		// A status write takes everything but the status from cur
		// (mergeSubresource), so its spec cannot have changed; the
		// comparison, a walk of the whole spec, is left out.
		if rq.info.Subresource != "status" && tracksGeneration(rq.kind, obj) && specChanged(obj, cur) {
			acc.SetGeneration(old.GetGeneration() + 1)
		}
		stampTemplateGeneration(obj, cur)
		normalize(obj)
		defaults.Apply(obj)
		if !rq.applying {
			if obj, err = rq.trackUpdate(obj, cur); err != nil {
				return nil, err
			}
			acc = accessor(obj)
		}
		if acc.GetResourceVersion() == "" {
			// An update without a resourceVersion is unconditional.
			acc.SetResourceVersion(old.GetResourceVersion())
		}
		if errs := rq.validateUpdate(obj, cur); len(errs) > 0 {
			return nil, rq.invalid(name, errs)
		}
		acc.SetResourceVersion("")
		return toStorage(rq.kind, obj), nil
	}
	var result runtime.Object
	if dry {
		cur, err := rq.res.Get(rq.ctx, ns, name)
		if err != nil {
			return nil, rq.storageErr(err)
		}
		if result, err = apply(cur); err != nil {
			return nil, err
		}
		accessor(result).SetResourceVersion(accessor(cur).GetResourceVersion())
	} else {
		result, err = rq.res.Update(rq.ctx, ns, name, apply)
		if err != nil {
			return nil, rq.storageErr(err)
		}
		if _, err := rq.finishDeletion(result); err != nil {
			return nil, err
		}
	}
	return toServed(rq.kind, result), nil
}

// mergeSubresource limits what a write through a subresource changes:
// /status changes only status, /ephemeralcontainers only the pod's
// ephemeral containers, /finalize only the namespace finalizers. The
// managedFields are the written object's: an apply's result, or what
// the client sent, which the field manager reads as upstream's does.
func (rq *request) mergeSubresource(obj, cur runtime.Object) runtime.Object {
	switch rq.info.Subresource {
	case "status":
		merged := cur.DeepCopyObject()
		copyStatus(merged, obj)
		acc, in := accessor(merged), accessor(obj)
		acc.SetResourceVersion(in.GetResourceVersion())
		acc.SetManagedFields(in.GetManagedFields())
		return merged
	case "ephemeralcontainers":
		merged := cur.DeepCopyObject().(*corev1.Pod)
		merged.Spec.EphemeralContainers = obj.(*corev1.Pod).Spec.EphemeralContainers
		merged.ResourceVersion = obj.(*corev1.Pod).ResourceVersion
		merged.ManagedFields = obj.(*corev1.Pod).ManagedFields
		return merged
	case "finalize":
		merged := cur.DeepCopyObject().(*corev1.Namespace)
		merged.Spec.Finalizers = obj.(*corev1.Namespace).Spec.Finalizers
		merged.ResourceVersion = obj.(*corev1.Namespace).ResourceVersion
		merged.ManagedFields = obj.(*corev1.Namespace).ManagedFields
		return merged
	}
	return obj
}

// finishDeletion removes an object whose deletion was waiting only for
// finalizers that are now gone.
func (rq *request) finishDeletion(obj runtime.Object) (bool, error) {
	acc := accessor(obj)
	if acc.GetDeletionTimestamp() == nil || len(acc.GetFinalizers()) > 0 || pendingNamespaceFinalizers(obj) {
		return false, nil
	}
	if g := acc.GetDeletionGracePeriodSeconds(); g != nil && *g > 0 {
		return false, nil
	}
	rv := acc.GetResourceVersion()
	_, err := rq.res.Delete(rq.ctx, acc.GetNamespace(), acc.GetName(), func(cur runtime.Object) error {
		if accessor(cur).GetResourceVersion() != rv {
			return errChanged
		}
		return nil
	})
	if err != nil && !errors.Is(err, errChanged) && !errors.Is(err, storage.ErrNotFound) {
		return false, rq.storageErr(err)
	}
	if err == nil {
		rq.afterDelete(obj)
	}
	return err == nil, nil
}

var errChanged = errors.New("object changed")

func pendingNamespaceFinalizers(obj runtime.Object) bool {
	ns, ok := obj.(*corev1.Namespace)
	return ok && len(ns.Spec.Finalizers) > 0
}

// markedNamespace records the revision at which a namespace was marked
// Terminating.
func (s *Server) markedNamespace(ns runtime.Object) {
	rev, _ := strconv.ParseInt(accessor(ns).GetResourceVersion(), 10, 64)
	for {
		cur := s.namespaceMarkedAt.Load()
		if rev <= cur || s.namespaceMarkedAt.CompareAndSwap(cur, rev) {
			return
		}
	}
}

// admitNamespace refuses new objects in a missing or terminating namespace.
func (s *Server) admitNamespace(ctx context.Context, k *registry.Kind, namespace, name string) error {
	if !k.Namespaced {
		return nil
	}
	nsRes, _ := s.store.Resource(namespacesGR)
	if err := nsRes.WaitCached(ctx, s.namespaceMarkedAt.Load()); err != nil {
		return storageError(err, namespacesGR, namespace)
	}
	obj, err := nsRes.GetCached("", namespace)
	if err != nil {
		// The cache may lag a namespace created a moment ago.
		obj, err = nsRes.Get(ctx, "", namespace)
	}
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return apierrors.NewNotFound(namespacesGR, namespace)
		}
		return storageError(err, namespacesGR, namespace)
	}
	ns := obj.(*corev1.Namespace)
	if ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating {
		err := apierrors.NewForbidden(k.GroupResource(), name, fmt.Errorf("unable to create new content in namespace %s because it is being terminated", namespace))
		err.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause, Message: fmt.Sprintf("namespace %s is being terminated", namespace), Field: "metadata.namespace"}}
		return err
	}
	return nil
}

// --- deletes ---

// deleteOptions reads DeleteOptions from the body and the query.
func (rq *request) deleteOptions() (*metav1.DeleteOptions, error) {
	opts := &metav1.DeleteOptions{}
	body, err := rq.readBody()
	if err != nil {
		return nil, err
	}
	if len(body) > 0 {
		if err := decodeOptions(body, rq.r.Header.Get("Content-Type"), opts); err != nil {
			return nil, err
		}
	}
	if v := rq.q.Get("gracePeriodSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid gracePeriodSeconds %q", v))
		}
		opts.GracePeriodSeconds = &n
	}
	if v := rq.q.Get("propagationPolicy"); v != "" {
		p := metav1.DeletionPropagation(v)
		opts.PropagationPolicy = &p
	}
	if v := rq.q.Get("orphanDependents"); v != "" {
		b := isTrue(v)
		opts.OrphanDependents = &b
	}
	if len(rq.q["dryRun"]) > 0 {
		opts.DryRun = rq.q["dryRun"]
	}
	for _, v := range opts.DryRun {
		if v != metav1.DryRunAll {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("Invalid dryRun value %q", v))
		}
	}
	if p := opts.PropagationPolicy; p != nil {
		switch *p {
		case metav1.DeletePropagationOrphan, metav1.DeletePropagationBackground, metav1.DeletePropagationForeground:
		default:
			return nil, apierrors.NewInvalid(metav1.SchemeGroupVersion.WithKind("DeleteOptions").GroupKind(), "", field.ErrorList{
				field.NotSupported(field.NewPath("propagationPolicy"), *p, []string{
					string(metav1.DeletePropagationForeground), string(metav1.DeletePropagationBackground), string(metav1.DeletePropagationOrphan)}),
			})
		}
		if opts.OrphanDependents != nil {
			return nil, apierrors.NewBadRequest("orphanDependents and propagationPolicy cannot both be set")
		}
	}
	if g := opts.GracePeriodSeconds; g != nil && *g < 0 {
		zero := int64(0)
		opts.GracePeriodSeconds = &zero
	}
	return opts, nil
}

var undeletableNamespaces = map[string]bool{"default": true, "kube-system": true, "kube-public": true}

func (rq *request) delete() error {
	opts, err := rq.deleteOptions()
	if err != nil {
		return err
	}
	if rq.kind.GVK.Kind == "Namespace" && rq.kind.GVK.Group == "" && undeletableNamespaces[rq.info.Name] {
		return apierrors.NewForbidden(rq.kind.GroupResource(), rq.info.Name, errors.New("this namespace may not be deleted"))
	}
	obj, marked, err := rq.deleteOne(rq.info.Namespace, rq.info.Name, opts)
	if err != nil {
		return err
	}
	if marked {
		return rq.writeObject(http.StatusOK, toServed(rq.kind, obj))
	}
	acc := accessor(obj)
	return rq.writeStatus(http.StatusOK, &metav1.Status{
		Status:  metav1.StatusSuccess,
		Details: &metav1.StatusDetails{Name: acc.GetName(), Group: rq.kind.GVK.Group, Kind: rq.kind.Resource, UID: acc.GetUID()},
	})
}

// deleteOne deletes one object, or marks it for deletion when finalizers
// or a pod's grace period must run first (marked is then true).
func (rq *request) deleteOne(ns, name string, opts *metav1.DeleteOptions) (obj runtime.Object, marked bool, err error) {
	dry := len(opts.DryRun) > 0
	for attempt := 0; attempt < 10; attempt++ {
		cur, err := rq.res.Get(rq.ctx, ns, name)
		if err != nil {
			return nil, false, storageError(err, rq.kind.GroupResource(), name)
		}
		if err := rq.checkPreconditions(cur, opts.Preconditions); err != nil {
			return nil, false, err
		}
		mark := deletionMark(cur, opts)
		if mark != nil {
			if dry {
				return mark(cur.DeepCopyObject()), true, nil
			}
			rv := accessor(cur).GetResourceVersion()
			updated, err := rq.res.Update(rq.ctx, ns, name, func(c runtime.Object) (runtime.Object, error) {
				if accessor(c).GetResourceVersion() != rv {
					return nil, errChanged
				}
				return mark(c), nil
			})
			if errors.Is(err, errChanged) {
				continue
			}
			if err != nil {
				return nil, false, storageError(err, rq.kind.GroupResource(), name)
			}
			if _, ok := updated.(*corev1.Namespace); ok {
				rq.s.markedNamespace(updated)
			}
			if done, err := rq.finishDeletion(updated); err != nil {
				return nil, false, err
			} else if done {
				return updated, false, nil
			}
			return updated, true, nil
		}
		if dry {
			return cur, false, nil
		}
		rv := accessor(cur).GetResourceVersion()
		deleted, err := rq.res.Delete(rq.ctx, ns, name, func(c runtime.Object) error {
			if accessor(c).GetResourceVersion() != rv {
				return errChanged
			}
			return nil
		})
		if errors.Is(err, errChanged) {
			continue
		}
		if err != nil {
			return nil, false, storageError(err, rq.kind.GroupResource(), name)
		}
		rq.afterDelete(deleted)
		return deleted, false, nil
	}
	return nil, false, apierrors.NewConflict(rq.kind.GroupResource(), name, errors.New(conflictMessage))
}

func (rq *request) checkPreconditions(cur runtime.Object, p *metav1.Preconditions) error {
	if p == nil {
		return nil
	}
	acc := accessor(cur)
	if p.UID != nil && *p.UID != acc.GetUID() {
		return apierrors.NewConflict(rq.kind.GroupResource(), acc.GetName(),
			fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, acc.GetUID()))
	}
	if p.ResourceVersion != nil && *p.ResourceVersion != acc.GetResourceVersion() {
		return apierrors.NewConflict(rq.kind.GroupResource(), acc.GetName(),
			fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, acc.GetResourceVersion()))
	}
	return nil
}

// deletionMark returns how to mark obj for a deletion that cannot happen
// at once, or nil when it can be removed now.
func deletionMark(cur runtime.Object, opts *metav1.DeleteOptions) func(runtime.Object) runtime.Object {
	acc := accessor(cur)
	finalizers := append([]string(nil), acc.GetFinalizers()...)
	if acc.GetDeletionTimestamp() == nil {
		if p := opts.PropagationPolicy; p != nil && *p == metav1.DeletePropagationForeground {
			finalizers = addString(finalizers, metav1.FinalizerDeleteDependents)
		}
		if p := opts.PropagationPolicy; (p != nil && *p == metav1.DeletePropagationOrphan) || (opts.OrphanDependents != nil && *opts.OrphanDependents) {
			finalizers = addString(finalizers, metav1.FinalizerOrphanDependents)
		}
	}
	grace := int64(0)
	if pod, ok := cur.(*corev1.Pod); ok {
		grace = podGracePeriod(pod, opts)
	}
	ns, isNamespace := cur.(*corev1.Namespace)
	if len(finalizers) == 0 && grace == 0 && !(isNamespace && len(ns.Spec.Finalizers) > 0) {
		return nil
	}
	return func(obj runtime.Object) runtime.Object {
		a := accessor(obj)
		a.SetFinalizers(finalizers)
		now := metav1.Now()
		if dt := a.GetDeletionTimestamp(); dt == nil || grace > 0 {
			t := metav1.NewTime(now.Add(time.Duration(grace) * time.Second))
			if dt == nil || t.Before(dt) {
				a.SetDeletionTimestamp(&t)
				a.SetDeletionGracePeriodSeconds(&grace)
			}
		} else if grace == 0 {
			a.SetDeletionGracePeriodSeconds(&grace)
		}
		if n, ok := obj.(*corev1.Namespace); ok {
			n.Status.Phase = corev1.NamespaceTerminating
		}
		return obj
	}
}

// podGracePeriod is how long a pod gets to stop: pods that never ran or
// have finished go at once, as upstream does.
func podGracePeriod(pod *corev1.Pod, opts *metav1.DeleteOptions) int64 {
	if pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return 0
	}
	if opts.GracePeriodSeconds != nil {
		return *opts.GracePeriodSeconds
	}
	if g := pod.DeletionGracePeriodSeconds; g != nil {
		return *g
	}
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		return *pod.Spec.TerminationGracePeriodSeconds
	}
	return corev1.DefaultTerminationGracePeriodSeconds
}

func addString(list []string, s string) []string {
	for _, v := range list {
		if v == s {
			return list
		}
	}
	return append(list, s)
}

func (rq *request) deleteCollection() error {
	opts, err := rq.deleteOptions()
	if err != nil {
		return err
	}
	match, err := rq.matcher()
	if err != nil {
		return err
	}
	res, err := rq.res.List(rq.ctx, storage.ListOptions{Namespace: rq.info.Namespace, Match: match})
	if err != nil {
		return rq.storageErr(err)
	}
	all, err := res.Items()
	if err != nil {
		return rq.storageErr(err)
	}
	var items []runtime.Object
	for _, obj := range all {
		acc := accessor(obj)
		if rq.kind.GVK.Kind == "Namespace" && undeletableNamespaces[acc.GetName()] {
			continue
		}
		deleted, _, err := rq.deleteOne(acc.GetNamespace(), acc.GetName(), opts)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		items = append(items, toServed(rq.kind, deleted))
	}
	return rq.writeList(items, metav1.ListMeta{ResourceVersion: strconv.FormatInt(res.ResourceVersion, 10)})
}

var namespacesGR = corev1.Resource("namespaces")

// decodeOptions reads an options body such as DeleteOptions. Clients send
// them under any group version (v1, meta.k8s.io/v1, apps/v1...), so the
// type metadata is not checked.
func decodeOptions(body []byte, contentType string, into *metav1.DeleteOptions) error {
	mt, _, _ := mime.ParseMediaType(contentType)
	var err error
	switch mt {
	case mediaProtobuf:
		_, _, err = protoSerializer.Decode(body, nil, into)
	case mediaYAML:
		err = yaml.Unmarshal(body, into)
	case "", mediaJSON:
		err = json.Unmarshal(body, into)
	default:
		return unsupportedMediaType(contentType)
	}
	if err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("invalid DeleteOptions: %v", err))
	}
	return nil
}

// afterDelete releases what a removed object held.
func (rq *request) afterDelete(obj runtime.Object) {
	if svc, ok := obj.(*corev1.Service); ok {
		rq.s.ips.release(rq.ctx, svc.Spec.ClusterIP)
	}
}

// keepClusterIP keeps a Service's allocated address when an update leaves
// it out, as upstream does; the address itself cannot change.
func keepClusterIP(obj, cur runtime.Object) {
	svc, ok1 := obj.(*corev1.Service)
	old, ok2 := cur.(*corev1.Service)
	if !ok1 || !ok2 || !wantsIP(svc) || svc.Spec.ClusterIP != "" {
		return
	}
	svc.Spec.ClusterIP, svc.Spec.ClusterIPs = old.Spec.ClusterIP, old.Spec.ClusterIPs
	if len(svc.Spec.IPFamilies) == 0 {
		svc.Spec.IPFamilies = old.Spec.IPFamilies
	}
}

var listOptionsGK = metav1.SchemeGroupVersion.WithKind("ListOptions").GroupKind()

// validateListOptions checks the list and watch parameters the way upstream
// validates ListOptions (422 Invalid).
func validateListOptions(q url.Values, watch bool) error {
	var errs field.ErrorList
	rv, match := q.Get("resourceVersion"), q.Get("resourceVersionMatch")
	sendInitial := q.Get("sendInitialEvents")
	switch match {
	case "":
	case string(metav1.ResourceVersionMatchNotOlderThan), string(metav1.ResourceVersionMatchExact):
		switch {
		case watch && sendInitial == "":
			errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"))
		case !watch && rv == "":
			errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch is forbidden unless resourceVersion is provided"))
		case !watch && q.Get("continue") != "":
			errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch is forbidden when continue is provided"))
		case match == string(metav1.ResourceVersionMatchExact) && rv == "0":
			errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), `resourceVersionMatch "exact" is forbidden for resourceVersion "0"`))
		}
	default:
		errs = append(errs, field.NotSupported(field.NewPath("resourceVersionMatch"), match,
			[]string{string(metav1.ResourceVersionMatchExact), string(metav1.ResourceVersionMatchNotOlderThan), ""}))
	}
	if sendInitial != "" {
		if !watch {
			errs = append(errs, field.Forbidden(field.NewPath("sendInitialEvents"), "sendInitialEvents is forbidden for list"))
		} else if match != string(metav1.ResourceVersionMatchNotOlderThan) {
			errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"))
		} else if !isTrue(q.Get("allowWatchBookmarks")) && isTrue(sendInitial) {
			errs = append(errs, field.Forbidden(field.NewPath("allowWatchBookmarks"), "sendInitialEvents requires setting allowWatchBookmarks to true"))
		}
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(listOptionsGK, "", errs)
	}
	return nil
}

// warn adds a Warning header, once per text as upstream's recorder does:
// an update retried after a conflict decodes its patch again.
func (rq *request) warn(text string) {
	v := "299 - " + strconv.Quote(text)
	if !slices.Contains(rq.w.Header().Values("Warning"), v) {
		rq.w.Header().Add("Warning", v)
	}
}
