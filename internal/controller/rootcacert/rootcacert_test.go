package rootcacert_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/lotse/lotse/internal/controller/rootcacert"
	"github.com/lotse/lotse/internal/testserver"
)

// TestPublish checks that every namespace gets kube-root-ca.crt with the
// cluster CA, and gets it back when it is deleted or changed.
func TestPublish(t *testing.T) {
	s := testserver.Start(t, testserver.Options{DisableScheduler: true, Controllers: []string{"namespace", "root-ca-cert-publisher"}})
	ctx := context.Background()
	ca := string(s.Config.CAData)
	if ca == "" {
		t.Fatal("the test server's kubeconfig has no CA")
	}
	cms := s.Client.CoreV1().ConfigMaps("team")
	published := func(what string, ok func(*corev1.ConfigMap) bool) {
		t.Helper()
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
			cm, err := cms.Get(ctx, rootcacert.Name, metav1.GetOptions{})
			return err == nil && ok(cm), nil
		})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	exact := func(cm *corev1.ConfigMap) bool {
		return len(cm.Data) == 1 && cm.Data[rootcacert.Key] == ca && cm.Annotations["kubernetes.io/description"] != ""
	}
	if _, err := s.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	published("published in a new namespace", exact)
	first, err := cms.Get(ctx, rootcacert.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, rootcacert.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	published("recreated after deletion", func(cm *corev1.ConfigMap) bool { return cm.UID != first.UID && exact(cm) })
	cm, err := cms.Get(ctx, rootcacert.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data = map[string]string{rootcacert.Key: "forged", "extra": "x"}
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	published("restored after a change", exact)
	// Other ConfigMaps are none of its business.
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if app, err := cms.Get(ctx, "app", metav1.GetOptions{}); err != nil || app.Data["k"] != "v" || len(app.Data) != 1 {
		t.Fatalf("another ConfigMap was touched: %+v, %v", app, err)
	}
}
