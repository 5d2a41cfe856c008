package namespace_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/lotse/lotse/internal/testserver"
)

// TestDeletedNamespaceIsEmptiedThenRemoved runs the controller as lotse
// server runs it and deletes a namespace with content in it.
func TestDeletedNamespaceIsEmptiedThenRemoved(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	c := s.Client
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if _, err := c.CoreV1().ConfigMaps("shop").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// One object holds the namespace until its finalizer is removed.
	held := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{"example.com/hold"}}}
	if _, err := c.CoreV1().Secrets("shop").Create(ctx, held, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.CoreV1().Namespaces().Delete(ctx, "shop", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// The free content goes; the namespace stays Terminating and says why.
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		ns, err := c.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range ns.Status.Conditions {
			if cond.Type == corev1.NamespaceContentRemaining && cond.Status == corev1.ConditionTrue &&
				strings.Contains(cond.Message, "secrets has 1 resource instances") {
				return ns.Status.Phase == corev1.NamespaceTerminating, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("namespace never reported the held secret: %v", err)
	}
	cms, err := c.CoreV1().ConfigMaps("shop").List(ctx, metav1.ListOptions{})
	if err != nil || len(cms.Items) != 0 {
		t.Fatalf("configmaps left in the terminating namespace: %v %v", cms, err)
	}

	patch := []byte(`{"metadata":{"finalizers":null}}`)
	if _, err := c.CoreV1().Secrets("shop").Patch(ctx, "held", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := c.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("namespace not removed once empty: %v", err)
	}
}
