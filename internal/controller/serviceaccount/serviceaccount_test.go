package serviceaccount_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/lotse/lotse/internal/testserver"
)

func waitForDefault(t *testing.T, s *testserver.Server, ns string) *corev1.ServiceAccount {
	t.Helper()
	var sa *corev1.ServiceAccount
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		sa, err = s.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("no default service account in %s: %v", ns, err)
	}
	return sa
}

// TestDefaultServiceAccount checks every namespace gets "default", and
// gets it back when it is deleted.
func TestDefaultServiceAccount(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	waitForDefault(t, s, "kube-system")
	if _, err := s.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	first := waitForDefault(t, s, "team")
	if err := s.Client.CoreV1().ServiceAccounts("team").Delete(ctx, "default", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var again *corev1.ServiceAccount
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		sa, err := s.Client.CoreV1().ServiceAccounts("team").Get(ctx, "default", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		again = sa
		return sa.UID != first.UID, nil
	})
	if err != nil {
		t.Fatalf("default service account not recreated: %v (still %v)", err, again)
	}
}
