package apiserver_test

import (
	"net/http"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestAccessReviews checks the authorization.k8s.io reviews `kubectl auth
// can-i` and controllers post: answered at once (201, nothing stored),
// validated as upstream validates them, and saying what lotse does —
// every authenticated user may do everything, anonymous requests none.
func TestAccessReviews(t *testing.T) {
	e := start(t)
	authz := e.s.Client.AuthorizationV1()
	pods := &authorizationv1.ResourceAttributes{Namespace: "default", Verb: "create", Resource: "pods"}

	self, err := authz.SelfSubjectAccessReviews().Create(e.ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: pods}}, metav1.CreateOptions{})
	must(t, err)
	if !self.Status.Allowed || !strings.Contains(self.Status.Reason, "does not enforce authorization") {
		t.Errorf("self review status = %+v", self.Status)
	}
	sar, err := authz.SubjectAccessReviews().Create(e.ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{User: "system:serviceaccount:default:default", ResourceAttributes: pods}}, metav1.CreateOptions{})
	must(t, err)
	if !sar.Status.Allowed {
		t.Errorf("a service account is not allowed: %+v", sar.Status)
	}
	anon, err := authz.SubjectAccessReviews().Create(e.ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{Groups: []string{"system:unauthenticated"}, NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/api", Verb: "get"}}}, metav1.CreateOptions{})
	must(t, err)
	if anon.Status.Allowed || !anon.Status.Denied {
		t.Errorf("anonymous review status = %+v, want denied", anon.Status)
	}
	rules, err := authz.SelfSubjectRulesReviews().Create(e.ctx, &authorizationv1.SelfSubjectRulesReview{
		Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: "default"}}, metav1.CreateOptions{})
	must(t, err)
	if len(rules.Status.ResourceRules) != 1 || rules.Status.ResourceRules[0].Verbs[0] != "*" || rules.Status.Incomplete {
		t.Errorf("rules review status = %+v", rules.Status)
	}

	_, err = authz.SubjectAccessReviews().Create(e.ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{ResourceAttributes: pods}}, metav1.CreateOptions{})
	wantAPIError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid,
		`SubjectAccessReview.authorization.k8s.io "" is invalid: spec.user: Invalid value: "": at least one of user or group must be specified`)
	_, err = authz.SelfSubjectAccessReviews().Create(e.ctx, &authorizationv1.SelfSubjectAccessReview{}, metav1.CreateOptions{})
	wantAPIError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, "")
	_, err = authz.LocalSubjectAccessReviews("other").Create(e.ctx, &authorizationv1.LocalSubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{User: "u", ResourceAttributes: pods}}, metav1.CreateOptions{})
	wantAPIError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, "")
	local, err := authz.LocalSubjectAccessReviews("default").Create(e.ctx, &authorizationv1.LocalSubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{User: "u", ResourceAttributes: pods}}, metav1.CreateOptions{})
	must(t, err)
	if !local.Status.Allowed || local.Namespace != "default" {
		t.Errorf("local review = %+v", local)
	}

	r := e.do("GET", "/apis/authorization.k8s.io/v1/subjectaccessreviews", nil)
	wantStatus(t, r, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, "")
	r = e.do("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", []byte("{not json"))
	wantStatus(t, r, http.StatusBadRequest, metav1.StatusReasonBadRequest, "")
	r = e.do("POST", "/apis/authorization.k8s.io/v1/nosuchreviews", []byte("{}"))
	if r.code != http.StatusNotFound {
		t.Errorf("unknown review resource = %d, want 404", r.code)
	}
}
