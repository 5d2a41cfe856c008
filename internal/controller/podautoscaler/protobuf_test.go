package podautoscaler_test

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/lotse/lotse/internal/controller/podautoscaler"
	"github.com/lotse/lotse/internal/testserver"
)

// lotse's components talk protobuf; the autoscaler's raw reads of a Scale
// and of metrics.k8s.io must still get, and parse, JSON.
func TestRawReadsWithAProtobufClient(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	cfg := rest.CopyConfig(s.Config)
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	client := kubernetes.NewForConfigOrDie(cfg)

	labels1 := map[string]string{"app": "web"}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: labels1},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels1},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}},
	}
	if _, err := client.AppsV1().ReplicaSets("default").Create(ctx, rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	replicas, err := podautoscaler.ReadScaleAndMetrics(ctx, client, "default",
		autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web"}, labels.SelectorFromSet(labels1))
	if err != nil || replicas != 2 {
		t.Fatalf("scale and metrics through a protobuf client: %d replicas, %v", replicas, err)
	}
}
