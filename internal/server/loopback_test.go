package server_test

import (
	"context"
	"slices"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/lotse/lotse/internal/testserver"
)

// The in-memory connection of the server's components is no back door:
// requests over it are authenticated as the certificate's user and
// validated as any client's; watches stream over it.
func TestLoopbackIsAClientLikeAnyOther(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{DisableScheduler: true, Controllers: []string{"namespace"}})
	ctx := context.Background()

	alice := kubernetes.NewForConfigOrDie(srv.Loopback(t, "alice", "team-a"))
	review, err := alice.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if u := review.Status.UserInfo; u.Username != "alice" || !slices.Contains(u.Groups, "team-a") || !slices.Contains(u.Groups, "system:authenticated") {
		t.Fatalf("the loopback authenticated as %+v, want alice in team-a", u)
	}

	admin := kubernetes.NewForConfigOrDie(srv.Loopback(t, "loopback-admin", "system:masters"))
	w, err := admin.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := srv.Client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "seen"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-w.ResultChan():
		if cm, ok := ev.Object.(*corev1.ConfigMap); ev.Type != watch.Added || !ok || cm.Name != "seen" {
			t.Fatalf("watch over the loopback: %v %#v", ev.Type, ev.Object)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event over the loopback in 10s")
	}
	// Invalid input gets the same answer as over the network.
	_, err = admin.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "Not_Valid"}}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("invalid name over the loopback: %v, want 422 Invalid", err)
	}
}
