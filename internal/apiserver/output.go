package apiserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/lotse/lotse/internal/apiserver/printers"
)

func fieldErrors(path string, value any, detail string) field.ErrorList {
	return field.ErrorList{field.Invalid(field.NewPath(path), value, detail)}
}

// encode writes obj in the negotiated media type, ignoring any as=.
func (rq *request) encode(code int, obj runtime.Object) error {
	var buf bytes.Buffer
	if err := rq.out.encoder.Encode(obj, &buf); err != nil {
		return apierrors.NewInternalError(err)
	}
	body := buf.Bytes()
	if rq.out.pretty && rq.out.mediaType == mediaJSON {
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, body, "", "  "); err == nil {
			body = pretty.Bytes()
		}
	}
	rq.w.Header().Set("Content-Type", rq.out.mediaType)
	rq.w.WriteHeader(code)
	if rq.r.Method != http.MethodHead {
		_, _ = rq.w.Write(body)
	}
	return nil
}

func (rq *request) writeStatus(code int, st *metav1.Status) error {
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	st.Code = int32(code)
	saved := rq.out
	if saved.as != "" {
		rq.out = &output{mediaType: mediaJSON, encoder: jsonSerializer}
	}
	err := rq.encode(code, st)
	rq.out = saved
	return err
}

// writeObject writes one object as itself, a Table or its metadata.
func (rq *request) writeObject(code int, obj runtime.Object) error {
	switch rq.out.as {
	case "Table":
		t, err := rq.table([]runtime.Object{obj}, metav1.ListMeta{ResourceVersion: accessor(obj).GetResourceVersion()})
		if err != nil {
			return err
		}
		return rq.encode(code, t)
	case "PartialObjectMetadata", "PartialObjectMetadataList":
		return rq.encode(code, partialMetadata(obj))
	}
	return rq.encode(code, obj)
}

// writeList writes a list as the kind's list type, a Table or metadata.
func (rq *request) writeList(items []runtime.Object, lm metav1.ListMeta) error {
	switch rq.out.as {
	case "Table":
		t, err := rq.table(items, lm)
		if err != nil {
			return err
		}
		return rq.encode(http.StatusOK, t)
	case "PartialObjectMetadata", "PartialObjectMetadataList":
		list := &metav1.PartialObjectMetadataList{
			TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadataList"},
			ListMeta: lm,
			Items:    make([]metav1.PartialObjectMetadata, len(items)),
		}
		for i, obj := range items {
			list.Items[i] = *partialMetadata(obj)
		}
		return rq.encode(http.StatusOK, list)
	}
	list := rq.kind.NewList()
	if err := meta.SetList(list, items); err != nil {
		return apierrors.NewInternalError(err)
	}
	la, _ := meta.ListAccessor(list)
	la.SetResourceVersion(lm.ResourceVersion)
	la.SetContinue(lm.Continue)
	la.SetRemainingItemCount(lm.RemainingItemCount)
	list.GetObjectKind().SetGroupVersionKind(rq.kind.GVK.GroupVersion().WithKind(rq.kind.GVK.Kind + "List"))
	return rq.encode(http.StatusOK, list)
}

func partialMetadata(obj runtime.Object) *metav1.PartialObjectMetadata {
	acc := accessor(obj)
	om := metav1.ObjectMeta{
		Name: acc.GetName(), GenerateName: acc.GetGenerateName(), Namespace: acc.GetNamespace(),
		UID: acc.GetUID(), ResourceVersion: acc.GetResourceVersion(), Generation: acc.GetGeneration(),
		CreationTimestamp: acc.GetCreationTimestamp(), DeletionTimestamp: acc.GetDeletionTimestamp(),
		DeletionGracePeriodSeconds: acc.GetDeletionGracePeriodSeconds(), Labels: acc.GetLabels(),
		Annotations: acc.GetAnnotations(), OwnerReferences: acc.GetOwnerReferences(), Finalizers: acc.GetFinalizers(),
		ManagedFields: acc.GetManagedFields(),
	}
	return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadata"}, ObjectMeta: om}
}

// table renders objects as the server-side Table kubectl prints.
func (rq *request) table(objs []runtime.Object, lm metav1.ListMeta) (*metav1.Table, error) {
	p := printers.For(rq.kind.GVK)
	t := &metav1.Table{
		TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "Table"},
		ListMeta: lm,
		Rows:     make([]metav1.TableRow, 0, len(objs)),
	}
	if !isTrue(rq.q.Get("noHeaders")) {
		t.ColumnDefinitions = p.Columns
	}
	include := rq.q.Get("includeObject")
	now := time.Now()
	for _, obj := range objs {
		row := metav1.TableRow{Cells: p.Cells(obj, now)}
		var embedded runtime.Object
		switch include {
		case "None":
		case "Object":
			embedded = obj
		default:
			embedded = partialMetadata(obj)
		}
		if embedded != nil {
			raw, err := runtime.Encode(jsonSerializer, embedded)
			if err != nil {
				return nil, apierrors.NewInternalError(err)
			}
			row.Object = runtime.RawExtension{Raw: raw}
		}
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}
