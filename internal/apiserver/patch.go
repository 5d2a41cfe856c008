package apiserver

import (
	"fmt"
	"mime"
	"net/http"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// patchType returns the patch format of the request or a 415.
func (rq *request) patchType() (types.PatchType, error) {
	ct := rq.r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	switch pt := types.PatchType(mt); pt {
	case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType:
		return pt, nil
	case types.ApplyYAMLPatchType:
		if rq.info.Subresource != "" && rq.info.Subresource != "status" {
			return "", unsupportedMediaType(ct)
		}
		return pt, nil
	}
	return "", unsupportedMediaType(ct)
}

// applyPatch applies a patch document to the JSON of an object. The patch
// libraries panic on some malformed documents; those are bad requests too.
func applyPatch(pt types.PatchType, original, patch []byte, schema runtime.Object) (out []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			out, err = nil, invalidPatch(fmt.Errorf("malformed patch: %v", v))
		}
	}()
	switch pt {
	case types.JSONPatchType:
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid JSON patch: %v", err))
		}
		out, err := p.Apply(original)
		if err != nil {
			return nil, invalidPatch(err)
		}
		return out, nil
	case types.MergePatchType:
		out, err := jsonpatch.MergePatch(original, patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid merge patch: %v", err))
		}
		return out, nil
	default:
		out, err := strategicpatch.StrategicMergePatch(original, patch, schema)
		if err != nil {
			return nil, invalidPatch(err)
		}
		return out, nil
	}
}

func invalidPatch(err error) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusUnprocessableEntity, Reason: metav1.StatusReasonInvalid,
		Message: fmt.Sprintf("the patch could not be applied: %v", err),
	}}
}

// patch serves PATCH on the main resource and the status subresource.
func (rq *request) patch() error {
	pt, err := rq.patchType()
	if err != nil {
		return err
	}
	body, err := rq.readBody()
	if err != nil {
		return err
	}
	if pt == types.ApplyYAMLPatchType {
		return rq.apply(body)
	}
	result, err := rq.replace(func(cur runtime.Object) (runtime.Object, error) {
		original, err := runtime.Encode(jsonSerializer, cur)
		if err != nil {
			return nil, err
		}
		patched, err := applyPatch(pt, original, body, rq.kind.New())
		if err != nil {
			return nil, err
		}
		return rq.decode(patched, mediaJSON, nil)
	})
	if err != nil {
		return err
	}
	return rq.writeObject(http.StatusOK, result)
}
