package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/lotse/lotse/internal/storage"
)

// storageError turns a storage error into the API error upstream returns.
func storageError(err error, gr schema.GroupResource, name string) error {
	var status apierrors.APIStatus
	switch {
	case errors.As(err, &status):
		return err
	case errors.Is(err, storage.ErrNotFound):
		return apierrors.NewNotFound(gr, name)
	case errors.Is(err, storage.ErrExists):
		return apierrors.NewAlreadyExists(gr, name)
	case errors.Is(err, storage.ErrConflict):
		return apierrors.NewConflict(gr, name, errors.New(conflictMessage))
	case errors.Is(err, storage.ErrExpired):
		return apierrors.NewResourceExpired("The provided continue parameter or resourceVersion is too old; the list must be started again without it")
	case errors.Is(err, storage.ErrTooLarge):
		return apierrors.NewRequestEntityTooLargeError("the object is larger than the storage limit of 1.5 MiB")
	case errors.Is(err, storage.ErrInvalid):
		return apierrors.NewBadRequest(err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return apierrors.NewTimeoutError("the request did not complete in time", 1)
	}
	return apierrors.NewServiceUnavailable(fmt.Sprintf("storage is not available: %v", err))
}

const conflictMessage = "the object has been modified; please apply your changes to the latest version and try again"

// writeError answers with the metav1.Status of err.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var st *metav1.Status
	var apiStatus apierrors.APIStatus
	if errors.As(err, &apiStatus) {
		s := apiStatus.Status()
		st = &s
	} else {
		s.log.Error("unexpected error", "path", r.URL.Path, "err", err)
		st = &apierrors.NewInternalError(err).ErrStatus
	}
	st.Kind, st.APIVersion = "Status", "v1"
	if st.Status == "" {
		st.Status = metav1.StatusFailure
	}
	code := int(st.Code)
	if code == 0 {
		code = http.StatusInternalServerError
	}
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout {
		if st.Details != nil && st.Details.RetryAfterSeconds > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(st.Details.RetryAfterSeconds))
		}
	}
	out, ok := negotiate(r)
	if !ok || out.as != "" {
		out = &output{mediaType: mediaJSON, encoder: jsonSerializer}
	}
	w.Header().Set("Content-Type", out.mediaType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if r.Method == http.MethodHead {
		return
	}
	if err := out.encoder.Encode(st, w); err != nil {
		s.log.Debug("writing error body", "err", err)
	}
}

// unsupportedMediaType is the 415 upstream answers for a body it cannot read.
func unsupportedMediaType(contentType string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusUnsupportedMediaType, Reason: metav1.StatusReasonUnsupportedMediaType,
		Message: fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got %q)", contentType),
	}}
}
