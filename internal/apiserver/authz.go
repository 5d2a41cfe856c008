package apiserver

import (
	"net/http"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/scheme"
)

// authorizationGV is authorization.k8s.io/v1: the access reviews that
// `kubectl auth can-i` and controllers post to ask what someone may do.
// lotse does not enforce authorization yet, so the answers say what the
// server does: every authenticated user may do everything. Nothing is
// stored; each review is answered at once.
var authorizationGV = authorizationv1.SchemeGroupVersion

var authorizationResources = []virtualResource{
	{Name: "localsubjectaccessreviews", Kind: "LocalSubjectAccessReview", Namespaced: true, Verbs: []string{"create"}},
	{Name: "selfsubjectaccessreviews", Kind: "SelfSubjectAccessReview", Verbs: []string{"create"}},
	{Name: "selfsubjectrulesreviews", Kind: "SelfSubjectRulesReview", Verbs: []string{"create"}},
	{Name: "subjectaccessreviews", Kind: "SubjectAccessReview", Verbs: []string{"create"}},
}

// allowedReason is why every review is allowed.
const allowedReason = "lotse does not enforce authorization yet: every authenticated user may do everything"

func (s *Server) serveAuthorization(w http.ResponseWriter, r *http.Request) {
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, "/apis/"+authorizationGV.String()), "/")
	namespace := ""
	if parts := strings.Split(rest, "/"); len(parts) == 3 && parts[0] == "namespaces" {
		namespace, rest = parts[1], parts[2]
	}
	gr := authorizationGV.WithResource(rest).GroupResource()
	var into runtime.Object
	switch {
	case rest == "localsubjectaccessreviews" && namespace != "":
		into = &authorizationv1.LocalSubjectAccessReview{}
	case rest == "selfsubjectaccessreviews" && namespace == "":
		into = &authorizationv1.SelfSubjectAccessReview{}
	case rest == "selfsubjectrulesreviews" && namespace == "":
		into = &authorizationv1.SelfSubjectRulesReview{}
	case rest == "subjectaccessreviews" && namespace == "":
		into = &authorizationv1.SubjectAccessReview{}
	default:
		s.writeError(w, r, notFoundPath)
		return
	}
	kinds, _, _ := scheme.Scheme.ObjectKinds(into)
	kind := kinds[0]
	if !s.readReview(w, r, gr, into, kind) {
		return
	}
	if errs := reviewAccess(into, namespace); len(errs) > 0 {
		s.writeError(w, r, apierrors.NewInvalid(kind.GroupKind(), "", errs))
		return
	}
	accessor(into).SetCreationTimestamp(metav1.Now())
	writeJSON(w, http.StatusCreated, into)
}

// reviewAccess checks a review as upstream validates it and fills in
// its status.
func reviewAccess(obj runtime.Object, namespace string) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	oneOfAttributes := func(res *authorizationv1.ResourceAttributes, nonRes *authorizationv1.NonResourceAttributes) {
		if (res == nil) == (nonRes == nil) {
			errs = append(errs, field.Invalid(spec.Child("resourceAttributes"), res, "exactly one of nonResourceAttributes or resourceAttributes must be specified"))
		}
	}
	allowed := authorizationv1.SubjectAccessReviewStatus{Allowed: true, Reason: allowedReason}
	switch review := obj.(type) {
	case *authorizationv1.SelfSubjectAccessReview:
		oneOfAttributes(review.Spec.ResourceAttributes, review.Spec.NonResourceAttributes)
		review.Status = allowed
	case *authorizationv1.SubjectAccessReview:
		oneOfAttributes(review.Spec.ResourceAttributes, review.Spec.NonResourceAttributes)
		if review.Spec.User == "" && len(review.Spec.Groups) == 0 {
			errs = append(errs, field.Invalid(spec.Child("user"), review.Spec.User, "at least one of user or group must be specified"))
		}
		review.Status = subjectStatus(review.Spec.User, review.Spec.Groups)
	case *authorizationv1.LocalSubjectAccessReview:
		oneOfAttributes(review.Spec.ResourceAttributes, review.Spec.NonResourceAttributes)
		if review.Spec.User == "" && len(review.Spec.Groups) == 0 {
			errs = append(errs, field.Invalid(spec.Child("user"), review.Spec.User, "at least one of user or group must be specified"))
		}
		if a := review.Spec.ResourceAttributes; a != nil && a.Namespace != namespace {
			errs = append(errs, field.Invalid(spec.Child("resourceAttributes", "namespace"), a.Namespace, "must match metadata.namespace"))
		}
		if review.Spec.NonResourceAttributes != nil {
			errs = append(errs, field.Invalid(spec.Child("nonResourceAttributes"), review.Spec.NonResourceAttributes, "disallowed on this kind of request"))
		}
		review.Namespace = namespace
		review.Status = subjectStatus(review.Spec.User, review.Spec.Groups)
	case *authorizationv1.SelfSubjectRulesReview:
		review.Status = authorizationv1.SubjectRulesReviewStatus{
			ResourceRules:    []authorizationv1.ResourceRule{{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}}},
			NonResourceRules: []authorizationv1.NonResourceRule{{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}}},
		}
	}
	return errs
}

// subjectStatus answers for someone else: anyone the server would
// authenticate may do everything; anonymous requests are refused.
func subjectStatus(user string, groups []string) authorizationv1.SubjectAccessReviewStatus {
	for _, g := range groups {
		if g == "system:unauthenticated" {
			user = "system:anonymous"
		}
	}
	if user == "system:anonymous" {
		return authorizationv1.SubjectAccessReviewStatus{Denied: true, Reason: "lotse does not accept anonymous requests"}
	}
	return authorizationv1.SubjectAccessReviewStatus{Allowed: true, Reason: allowedReason}
}
