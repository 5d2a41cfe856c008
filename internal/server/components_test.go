package server

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

// A component that stops (a scheduler losing its Lease) must not stop the
// informers the other components of the process read.
func TestSharedInformersOutliveAComponent(t *testing.T) {
	client := fake.NewClientset()
	serverStop := make(chan struct{})
	factory := informers.NewSharedInformerFactory(client, 0)
	shared := sharedInformers{SharedInformerFactory: factory, stop: serverStop}
	defer factory.Shutdown() // after the server's stop, as the server does
	defer close(serverStop)

	// The component asks for pods, starts the factory with its own stop
	// channel, and stops again, shutting "its" factory down.
	componentStop := make(chan struct{})
	pods := shared.Core().V1().Pods().Informer()
	shared.Start(componentStop)
	shared.WaitForCacheSync(componentStop)
	close(componentStop)
	shared.Shutdown()

	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "after", Namespace: "default"}}
	if _, err := client.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		_, exists, _ := pods.GetStore().GetByKey("default/after")
		return exists, nil
	})
	if err != nil {
		t.Errorf("the pod informer stopped with the component: a pod created afterwards never arrived")
	}
}
