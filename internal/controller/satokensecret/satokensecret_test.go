package satokensecret_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/lotse/lotse/internal/controller"
	"github.com/lotse/lotse/internal/controller/satokensecret"
	"github.com/lotse/lotse/internal/testserver"
)

// TestTokenSecret checks that a service-account-token Secret gets a token
// that authenticates as its account, the CA and the namespace; that a
// Secret for a missing account stays empty; and that deleting the Secret
// revokes its token.
func TestTokenSecret(t *testing.T) {
	s := testserver.Start(t, testserver.Options{DisableScheduler: true, Controllers: []string{"namespace", "serviceaccount"}})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ctl, err := satokensecret.New(&controller.Context{
		Client: s.Client, Informers: informers.NewSharedInformerFactory(s.Client, 0), Clock: clock.RealClock{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RootCA: s.Config.CAData,
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = ctl.Run(ctx) }()

	secrets := s.Client.CoreV1().Secrets("default")
	tokenSecret := func(name, account string) {
		t.Helper()
		_, err := secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{corev1.ServiceAccountNameKey: account}},
			Type:       corev1.SecretTypeServiceAccountToken,
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := s.Client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatal("no default service account")
	}
	tokenSecret("robot-token", "default")
	tokenSecret("orphan-token", "nobody")

	var got *corev1.Secret
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err = secrets.Get(ctx, "robot-token", metav1.GetOptions{})
		return err == nil && len(got.Data[corev1.ServiceAccountTokenKey]) > 0, nil
	})
	if err != nil {
		t.Fatalf("token secret not filled in: %v", err)
	}
	if string(got.Data[corev1.ServiceAccountNamespaceKey]) != "default" || string(got.Data[corev1.ServiceAccountRootCAKey]) != string(s.Config.CAData) ||
		got.Annotations[corev1.ServiceAccountUIDKey] == "" {
		t.Fatalf("token secret = %+v", got)
	}
	whoami := func() (string, error) {
		cfg := rest.AnonymousClientConfig(s.Config)
		cfg.BearerToken = string(got.Data[corev1.ServiceAccountTokenKey])
		r, err := kubernetes.NewForConfigOrDie(cfg).AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			return "", err
		}
		return r.Status.UserInfo.Username, nil
	}
	if user, err := whoami(); err != nil || user != "system:serviceaccount:default:default" {
		t.Fatalf("the secret's token authenticates as %q, %v", user, err)
	}
	time.Sleep(500 * time.Millisecond)
	if orphan, err := secrets.Get(ctx, "orphan-token", metav1.GetOptions{}); err != nil || len(orphan.Data) != 0 {
		t.Fatalf("a token secret for a missing account got data: %+v, %v", orphan, err)
	}
	if err := secrets.Delete(ctx, "robot-token", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := whoami()
		return apierrors.IsUnauthorized(err), nil
	})
	if err != nil {
		t.Fatal("the token of a deleted secret still authenticates")
	}
}
