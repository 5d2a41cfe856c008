package server_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/lotse/lotse/internal/etcd"
	"github.com/lotse/lotse/internal/server"
)

// TestExternalEtcd runs the server on an etcd it did not start
// (--etcd-servers) and checks objects land there under /registry.
func TestExternalEtcd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	member, err := etcd.Start(ctx, etcd.Config{DataDir: t.TempDir(), ClientURL: "http://127.0.0.1:0", PeerURL: "http://127.0.0.1:0", Unsafe: true})
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()

	srv, err := server.New(server.Config{
		DataDir: t.TempDir(), HTTPSPort: 0, EtcdServers: member.Endpoints(), DisableAgent: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srvCtx, stop := context.WithCancel(ctx)
	srv.Start(srvCtx)
	defer func() { stop(); <-srv.StopNotify() }()
	select {
	case <-srv.ReadyNotify():
	case <-srv.StopNotify():
		t.Fatalf("server stopped: %v", srv.Err())
	case <-time.After(30 * time.Second):
		t.Fatal("server not ready in 30s")
	}
	if got := srv.EtcdEndpoints(); len(got) != 1 || got[0] != member.Endpoints()[0] {
		t.Fatalf("server uses etcd %v, want %v", got, member.Endpoints())
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", srv.KubeconfigPath())
	if err != nil {
		t.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(cfg)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "ext"}, Data: map[string]string{"a": "b"}}
	if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	etcdClient, err := clientv3.New(clientv3.Config{Endpoints: member.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	defer etcdClient.Close()
	resp, err := etcdClient.Get(ctx, "/registry/configmaps/default/ext")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value[:4]) != "k8s\x00" {
		t.Fatalf("configmap not stored as Kubernetes protobuf in the external etcd: %q", resp.Kvs)
	}
}
