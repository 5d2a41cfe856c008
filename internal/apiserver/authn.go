package apiserver

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// authenticationGV is authentication.k8s.io/v1: SelfSubjectReview (what
// `kubectl auth whoami` posts) and TokenReview (how other programs check a
// service account token). Neither is stored; both answer at once.
var authenticationGV = authenticationv1.SchemeGroupVersion

var authenticationResources = []virtualResource{
	{Name: "selfsubjectreviews", Kind: "SelfSubjectReview", Verbs: []string{"create"}},
	{Name: "tokenreviews", Kind: "TokenReview", Verbs: []string{"create"}},
}

func (s *Server) serveAuthentication(w http.ResponseWriter, r *http.Request) {
	resource := strings.Trim(strings.TrimPrefix(r.URL.Path, "/apis/"+authenticationGV.String()), "/")
	var into runtime.Object
	var kind schema.GroupVersionKind
	switch resource {
	case "selfsubjectreviews":
		into, kind = &authenticationv1.SelfSubjectReview{}, authenticationGV.WithKind("SelfSubjectReview")
	case "tokenreviews":
		into, kind = &authenticationv1.TokenReview{}, authenticationGV.WithKind("TokenReview")
	default:
		s.writeError(w, r, apierrors.NewNotFound(authenticationGV.WithResource(resource).GroupResource(), ""))
		return
	}
	if !s.readReview(w, r, authenticationGV.WithResource(resource).GroupResource(), into, kind) {
		return
	}
	u := UserFrom(r.Context())
	switch review := into.(type) {
	case *authenticationv1.SelfSubjectReview:
		review.CreationTimestamp = metav1.Now()
		review.Status.UserInfo = authenticationv1.UserInfo{Username: u.Name, Groups: u.Groups}
	case *authenticationv1.TokenReview:
		if review.Spec.Token == "" {
			s.writeError(w, r, apierrors.NewBadRequest("token is required for TokenReview in authentication"))
			return
		}
		review.CreationTimestamp = metav1.Now()
		review.Status = s.reviewToken(review.Spec)
	}
	writeJSON(w, http.StatusCreated, into)
}

// reviewToken checks a service account token for someone else.
func (s *Server) reviewToken(spec authenticationv1.TokenReviewSpec) authenticationv1.TokenReviewStatus {
	if s.cfg.Tokens == nil {
		return authenticationv1.TokenReviewStatus{Error: "service account tokens are not served"}
	}
	name, groups, err := s.cfg.Tokens.Authenticate(spec.Token, time.Now(), spec.Audiences, s.lookupBound)
	if err != nil {
		return authenticationv1.TokenReviewStatus{Error: "[invalid bearer token, " + err.Error() + "]"}
	}
	audiences := spec.Audiences
	if len(audiences) == 0 {
		audiences = s.cfg.Tokens.Audiences
	}
	return authenticationv1.TokenReviewStatus{
		Authenticated: true,
		User:          authenticationv1.UserInfo{Username: name, Groups: append(groups, "system:authenticated")},
		Audiences:     audiences,
	}
}

// readReview reads the POST of a review (a kind that is answered at once
// and never stored) into into, or writes why it cannot and reports false.
func (s *Server) readReview(w http.ResponseWriter, r *http.Request, gr schema.GroupResource, into runtime.Object, kind schema.GroupVersionKind) bool {
	if r.Method != http.MethodPost {
		s.writeError(w, r, apierrors.NewMethodNotSupported(gr, strings.ToLower(r.Method)))
		return false
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.writeError(w, r, apierrors.NewBadRequest(err.Error()))
		return false
	}
	dec, ok := decoderFor(r.Header.Get("Content-Type"), false)
	if !ok {
		s.writeError(w, r, unsupportedMediaType(r.Header.Get("Content-Type")))
		return false
	}
	if _, _, err := dec.Decode(body, &kind, into); err != nil {
		s.writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("the body of the request could not be decoded: %v", err)))
		return false
	}
	into.GetObjectKind().SetGroupVersionKind(kind)
	return true
}
