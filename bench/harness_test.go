package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/lotse/lotse/internal/server"
)

// workers is the number of concurrent clients in the throughput figures.
const workers = 16

// Content types; client-go's typed clients default to asking for
// protobuf with JSON as fallback, so JSON has to be asked for explicitly.
const (
	jsonType     = "application/json"
	protobufType = "application/vnd.kubernetes.protobuf"
)

// cluster is an API server and, beside it, a raw client of the very etcd
// member it stores into, so a baseline can be measured against the same
// database in the same run.
type cluster struct {
	endpoints []string
	etcd      *clientv3.Client
	cfg       *rest.Config
	client    kubernetes.Interface
}

// startCluster runs an embedded etcd member (with fsync, as lotse server
// does, unless noFsync) and an in-process API server on top of it.
func startCluster(b *testing.B, noFsync bool) *cluster {
	b.Helper()
	dir := b.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	// The API is what is measured: no scheduler binding the pods, and no
	// garbage collector deleting them for their made-up ReplicaSet owner;
	// only the controllers a namespace needs to take pods. Its etcd member
	// is embedded, as `lotse server` runs it; the baselines reach the same
	// member as etcd clients do, through its client URL.
	srv, err := server.New(server.Config{
		DataDir: dir, HTTPSPort: 0, EtcdUnsafeNoSync: noFsync, DisableAgent: true, Logger: quiet,
		DisableScheduler: true, Controllers: []string{"namespace", "serviceaccount"},
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv.Start(ctx)
	b.Cleanup(func() { cancel(); <-srv.StopNotify() })
	select {
	case <-srv.ReadyNotify():
	case <-srv.StopNotify():
		b.Fatalf("lotse server stopped: %v", srv.Err())
	case <-time.After(time.Minute):
		b.Fatal("lotse server not ready in a minute")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", srv.KubeconfigPath())
	if err != nil {
		b.Fatal(err)
	}
	// No client-side rate limit: the server is what is measured.
	cfg.QPS, cfg.Burst = -1, 0
	c := &cluster{endpoints: srv.EtcdEndpoints(), cfg: cfg}
	c.etcd = c.newEtcdClient(b)
	c.client = kubernetes.NewForConfigOrDie(cfg)
	return c
}

func (c *cluster) newEtcdClient(b *testing.B) *clientv3.Client {
	b.Helper()
	cl, err := clientv3.New(clientv3.Config{Endpoints: c.endpoints, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cl.Close() })
	return cl
}

// ownConnection returns a clientset with its own TCP connection that
// sends and accepts contentType ("" keeps client-go's default). client-go
// shares one transport (one HTTP/2 connection) between clientsets with the
// same TLS config; a custom dialer opts out of that cache.
func (c *cluster) ownConnection(contentType string) kubernetes.Interface {
	cfg := rest.CopyConfig(c.cfg)
	cfg.Dial = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	if contentType != "" {
		cfg.ContentType = contentType
		cfg.AcceptContentTypes = contentType
	}
	return kubernetes.NewForConfigOrDie(cfg)
}

// podServiceAccount is the account the realistic pods run as.
const podServiceAccount = "shop-frontend"

func (c *cluster) createNamespace(b *testing.B, name string) {
	b.Helper()
	createNamespace(b, c.client, name)
}

// createNamespace makes a namespace for the realistic pods, with the
// ServiceAccount they run as: the ServiceAccount admission refuses pods
// whose account does not exist, as upstream.
func createNamespace(b *testing.B, client kubernetes.Interface, name string) {
	b.Helper()
	ctx := context.Background()
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: podServiceAccount}}
	if _, err := client.CoreV1().ServiceAccounts(name).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
}

// storedTemplate creates one pod through the API and returns it as stored,
// so raw etcd values carry exactly what the API would have written
// (defaults, UID, timestamps).
func (c *cluster) storedTemplate(b *testing.B, ns string) *corev1.Pod {
	b.Helper()
	p, err := c.client.CoreV1().Pods(ns).Create(context.Background(), newPod(ns, "template"), metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return p
}

var storageCodec = protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)

// encodePod encodes a copy of tmpl renamed to name as the storage layer
// does: protobuf, storage GVK set, no resourceVersion.
func encodePod(b *testing.B, tmpl *corev1.Pod, name string) []byte {
	b.Helper()
	p := tmpl.DeepCopy()
	p.Name = name
	p.UID = types.UID(fmt.Sprintf("00000000-0000-4000-8000-%012d", fnv(name)))
	p.ResourceVersion = ""
	p.APIVersion, p.Kind = "v1", "Pod"
	var buf bytes.Buffer
	if err := storageCodec.Encode(p, &buf); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// encodeRequest encodes obj as a client sends it in contentType.
func encodeRequest(b *testing.B, contentType string, obj runtime.Object) []byte {
	b.Helper()
	info, ok := runtime.SerializerInfoForMediaType(scheme.Codecs.SupportedMediaTypes(), contentType)
	if !ok {
		b.Fatalf("no serializer for %s", contentType)
	}
	data, err := runtime.Encode(scheme.Codecs.EncoderForVersion(info.Serializer, corev1.SchemeGroupVersion), obj)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func fnv(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h % 1e12
}

func podName(prefix string, i int) string { return fmt.Sprintf("%s-%05d", prefix, i) }

// newPod is a pod of realistic size: what a ReplicaSet creates for a web
// service with a sidecar (labels, owner, two containers with env, probes,
// resources and mounts, a projected token volume, default tolerations).
// About 4.5 KB as JSON, 2.2 KB as stored protobuf.
func newPod(ns, name string) *corev1.Pod {
	yes, no := true, false
	uid := int64(1000)
	grace := int64(30)
	ctrl := func(name, image string, port int32, extraEnv int) corev1.Container {
		env := []corev1.EnvVar{
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}},
			{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}},
		}
		for i := 0; i < extraEnv; i++ {
			env = append(env, corev1.EnvVar{Name: fmt.Sprintf("SETTING_%d", i), Value: fmt.Sprintf("value-%d-for-%s", i, name)})
		}
		return corev1.Container{
			Name: name, Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
			Args:  []string{"--listen=:" + strconv.Itoa(int(port)), "--log-level=info"},
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: port, Protocol: corev1.ProtocolTCP}},
			Env:   env,
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
			},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "config", MountPath: "/etc/app", ReadOnly: true},
				{Name: "kube-api-access", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true},
			},
			LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
				InitialDelaySeconds: 10, PeriodSeconds: 10, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromString("http")}},
				PeriodSeconds: 5, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3},
			SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes,
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
			TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		}
	}
	expire := int64(3607)
	mode := int32(420)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns,
			Labels: map[string]string{"app.kubernetes.io/name": "shop-frontend", "app.kubernetes.io/part-of": "shop",
				"pod-template-hash": "7d9f8b6c5d", "tier": "web"},
			Annotations: map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-11-28T10:00:00Z",
				"prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "shop-frontend-7d9f8b6c5d",
				UID: "5f1c2b7e-3a44-4c1e-9b6f-0d2f9e8a7c11", Controller: &yes, BlockOwnerDeletion: &yes}},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{
				ctrl("frontend", "registry.example.com/shop/frontend:v2.14.3", 8080, 6),
				ctrl("metrics-sidecar", "registry.example.com/observability/exporter:1.8.0", 9090, 2),
			},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "shop-frontend-config"}, DefaultMode: &mode}}},
				{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{DefaultMode: &mode,
					Sources: []corev1.VolumeProjection{
						{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: &expire, Path: "token"}},
						{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
							Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
						{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
							{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
					}}}},
			},
			RestartPolicy: corev1.RestartPolicyAlways, TerminationGracePeriodSeconds: &grace, DNSPolicy: corev1.DNSClusterFirst,
			ServiceAccountName: podServiceAccount, SecurityContext: &corev1.PodSecurityContext{RunAsUser: &uid, RunAsNonRoot: &yes},
			SchedulerName: "default-scheduler", EnableServiceLinks: &no,
			Tolerations: []corev1.Toleration{
				{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(300))},
				{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(300))},
			},
		},
	}
}

func ptr[T any](v T) *T { return &v }

// parallel runs fn(worker, i) for i in [0, n) on `workers` goroutines and
// returns the wall time; the first error fails the benchmark.
func parallel(b *testing.B, n int, fn func(worker, i int) error) time.Duration {
	b.Helper()
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || firstErr.Load() != nil {
					return
				}
				if err := fn(w, i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	took := time.Since(start)
	if err, ok := firstErr.Load().(error); ok {
		b.Fatal(err)
	}
	return took
}

// putRaw writes a value the way the store creates an object: a
// transaction that succeeds only if the key does not exist yet.
func putRaw(ctx context.Context, cl *clientv3.Client, key string, val []byte) error {
	resp, err := cl.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val))).Commit()
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return fmt.Errorf("key %s exists", key)
	}
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// rssMB reads a process's resident set size from /proc.
func rssMB(b *testing.B, pid int) float64 {
	b.Helper()
	return statusKB(b, pid, "VmRSS") / 1024
}
