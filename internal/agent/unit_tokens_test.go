package agent

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

// TestServiceAccountToken checks that projected tokens are requested bound
// to the pod, reused while fresh, renewed after 80% of their lifetime,
// kept while renewal fails and they are still good, and forgotten with
// the pod.
func TestServiceAccountToken(t *testing.T) {
	a := newTestAgent(t)
	client := fake.NewClientset()
	var requests []*authenticationv1.TokenRequest
	var fail error
	client.PrependReactor("create", "serviceaccounts", func(action k8stesting.Action) (bool, runtime.Object, error) {
		ca := action.(k8stesting.CreateAction)
		if ca.GetSubresource() != "token" {
			return false, nil, nil
		}
		if fail != nil {
			return true, nil, fail
		}
		tr := ca.GetObject().(*authenticationv1.TokenRequest).DeepCopy()
		requests = append(requests, tr)
		tr.Status = authenticationv1.TokenRequestStatus{
			Token:               fmt.Sprintf("token-%d", len(requests)),
			ExpirationTimestamp: metav1.NewTime(time.Now().Add(time.Duration(*tr.Spec.ExpirationSeconds) * time.Second)),
		}
		return true, tr, nil
	})
	a.client = client
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "uid-1"}, Spec: corev1.PodSpec{ServiceAccountName: "robot"}}
	src := &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](3607)}
	ctx := context.Background()

	get := func(want string) {
		t.Helper()
		got, err := a.serviceAccountToken(ctx, pod, src)
		if err != nil || string(got) != want {
			t.Fatalf("token = %q, %v; want %q", got, err, want)
		}
	}
	get("token-1")
	r := requests[0]
	if ref := r.Spec.BoundObjectRef; ref == nil || ref.Kind != "Pod" || ref.Name != "web" || ref.UID != "uid-1" || *r.Spec.ExpirationSeconds != 3607 || len(r.Spec.Audiences) != 0 {
		t.Fatalf("request = %+v, want bound to the pod with the projection's lifetime", r.Spec)
	}
	get("token-1") // fresh: cached
	if len(requests) != 1 {
		t.Fatalf("%d requests, want the cached token reused", len(requests))
	}
	key := tokenKey(pod.UID, "", 3607)
	if d := time.Until(a.tokens[key].refreshAt); d < 47*time.Minute || d > 49*time.Minute {
		t.Fatalf("refresh in %v, want 80%% of 3607 s", d)
	}

	// Another audience is another token.
	vault := &corev1.ServiceAccountTokenProjection{Path: "vault", Audience: "vault", ExpirationSeconds: ptr.To[int64](3607)}
	if got, _ := a.serviceAccountToken(ctx, pod, vault); string(got) != "token-2" || requests[1].Spec.Audiences[0] != "vault" {
		t.Fatalf("audience token = %q (%+v)", got, requests[1].Spec)
	}

	// Due for renewal, but the API fails: the old one is kept while good.
	entry := a.tokens[key]
	entry.refreshAt = time.Now().Add(-time.Second)
	a.tokens[key] = entry
	fail = errors.New("apiserver down")
	get("token-1")
	fail = nil
	get("token-3")

	// Expired and unrenewable: an error, not a stale token.
	entry = a.tokens[key]
	entry.refreshAt, entry.expires = time.Now().Add(-time.Second), time.Now().Add(-time.Second)
	a.tokens[key] = entry
	fail = errors.New("apiserver down")
	if _, err := a.serviceAccountToken(ctx, pod, src); err == nil {
		t.Fatal("an expired token was served")
	}

	a.forgetTokens(pod.UID)
	if len(a.tokens) != 0 {
		t.Fatalf("tokens left after the pod went: %v", a.tokens)
	}
}
