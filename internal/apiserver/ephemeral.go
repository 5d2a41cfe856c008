package apiserver

import (
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/lotse/lotse/internal/apiserver/validation"
)

// serveEphemeralContainers serves pods/ephemeralcontainers, the only way
// to add a container to an existing pod (kubectl debug). It reads and
// writes whole Pods, as upstream does; a write keeps everything of the
// stored pod but spec.ephemeralContainers (see mergeSubresource).
//
// Upstream accepts the write whatever the pod's state: a pod not yet
// bound gets its ephemeral containers started with the others, and the
// node never starts them in a pod that has finished. So do we.
func (rq *request) serveEphemeralContainers() error {
	switch rq.info.Verb {
	case "get":
		return rq.get()
	case "update":
		return rq.update()
	case "patch":
		return rq.patch()
	}
	return apierrors.NewMethodNotSupported(rq.kind.GroupResource(), rq.info.Verb)
}

// validateUpdate validates an update as the subresource written to
// requires: a pod's ephemeral containers follow their own rules, since the
// main resource forbids changing them.
func (rq *request) validateUpdate(obj, cur runtime.Object) field.ErrorList {
	if rq.info.Subresource == "ephemeralcontainers" {
		pod, ok1 := obj.(*corev1.Pod)
		old, ok2 := cur.(*corev1.Pod)
		if ok1 && ok2 {
			return validation.ValidateEphemeralContainersUpdate(pod, old)
		}
	}
	return validation.ValidateUpdate(obj, cur)
}
