package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Config is what an agent needs to run one node.
type Config struct {
	NodeName string
	Client   kubernetes.Interface
	// Runtime is a connection to the CRI endpoint (containerd).
	Runtime *grpc.ClientConn
	// Dir holds pod directories (volumes, logs, termination messages).
	Dir     string
	PodCIDR string
	NodeIP  net.IP
	// Labels are added to the Node's labels at registration.
	Labels map[string]string
	// ClusterDNS are the resolvers ClusterFirst pods use (the kube-dns
	// Service's address); none makes them use the node's resolvers.
	ClusterDNS []string
	// ClusterDomain is the DNS domain of Services; default cluster.local.
	ClusterDomain string
	// Version is reported as the node's kubelet version.
	Version string

	// Port is where the agent serves logs, exec and port-forward to the
	// API server (10250 upstream; 0 picks a free port).
	Port        int
	ServingCert tls.Certificate
	// ClientCAs verifies the API server's client certificate.
	ClientCAs *x509.CertPool

	// StatusInterval is how often the node status is checked and the
	// Lease renewed; default 10 s.
	StatusInterval time.Duration
	// ContainerLogMaxSize is the size at which a container's log is
	// rotated (default 10Mi), ContainerLogMaxFiles how many files of it
	// are kept, the current one included (default 5), as the kubelet's
	// containerLogMaxSize and containerLogMaxFiles.
	ContainerLogMaxSize  int64
	ContainerLogMaxFiles int
	// SandboxImage is the pods' sandbox image, which image garbage
	// collection keeps.
	SandboxImage string
	Log          *slog.Logger
}

// Agent runs one node.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	client  kubernetes.Interface
	runtime runtimeapi.RuntimeServiceClient
	images  runtimeapi.ImageServiceClient

	pods       corelisters.PodLister
	podsSynced cache.InformerSynced
	// services feed the pods' service environment variables.
	services corelisters.ServiceLister

	mu      sync.Mutex
	workers map[string]*podWorker // by pod UID
	// backoff remembers restart back-off per container (pod UID/name).
	backoff map[string]*backoffEntry
	// tokens caches projected service account tokens (pod UID/...).
	tokens  map[string]cachedToken
	probes  *probeManager
	imageGC imageGC
	metrics sampler
	// recorder sends events; nil until Run starts it.
	recorder record.EventRecorder

	port int
}

// New checks cfg; Run starts the agent.
func New(cfg Config) (*Agent, error) {
	if cfg.NodeName == "" {
		return nil, errors.New("agent: a node name is required")
	}
	if cfg.Client == nil || cfg.Runtime == nil {
		return nil, errors.New("agent: an API client and a CRI connection are required")
	}
	if _, _, err := net.ParseCIDR(cfg.PodCIDR); err != nil {
		return nil, fmt.Errorf("agent: pod CIDR: %w", err)
	}
	if cfg.NodeIP == nil {
		return nil, errors.New("agent: the node IP is required")
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = "cluster.local"
	}
	if cfg.StatusInterval <= 0 {
		cfg.StatusInterval = 10 * time.Second
	}
	if cfg.ContainerLogMaxSize <= 0 {
		cfg.ContainerLogMaxSize = defaultContainerLogMaxSize
	}
	if cfg.ContainerLogMaxFiles < 2 {
		// Upstream refuses fewer than 2: the current file and one rotated.
		cfg.ContainerLogMaxFiles = defaultContainerLogMaxFile
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "pods"), 0o750); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	a := &Agent{
		cfg:     cfg,
		log:     cfg.Log,
		client:  cfg.Client,
		runtime: runtimeapi.NewRuntimeServiceClient(cfg.Runtime),
		images:  runtimeapi.NewImageServiceClient(cfg.Runtime),
		workers: map[string]*podWorker{},
		backoff: map[string]*backoffEntry{},
		tokens:  map[string]cachedToken{},
	}
	a.probes = newProbeManager(a)
	a.imageGC.diskUsage = a.imageDiskUsage
	return a, nil
}

// Port is the port the agent serves on, once Run has started listening.
func (a *Agent) Port() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.port
}

// Run registers the node and runs its pods until ctx ends. Containers
// keep running when the agent stops; the next start adopts them.
func (a *Agent) Run(ctx context.Context) error {
	if err := enableForwarding(); err != nil {
		a.log.Warn("could not enable IP forwarding; pods may not reach beyond the node", "err", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(listenHost(a.cfg.NodeIP), fmt.Sprint(a.cfg.Port)))
	if err != nil {
		return fmt.Errorf("agent: listen: %w", err)
	}
	a.mu.Lock()
	a.port = ln.Addr().(*net.TCPAddr).Port
	a.mu.Unlock()

	a.startEvents(ctx)
	if err := a.registerNode(ctx); err != nil {
		ln.Close()
		return err
	}

	factory := informers.NewSharedInformerFactoryWithOptions(a.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", a.cfg.NodeName).String()
		}))
	podInformer := factory.Core().V1().Pods()
	a.pods = podInformer.Lister()
	a.podsSynced = podInformer.Informer().HasSynced
	_, _ = podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.podChanged(obj) },
		UpdateFunc: func(_, obj any) { a.podChanged(obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			a.podChanged(obj)
		},
	})
	factory.Start(ctx.Done())
	svcFactory := informers.NewSharedInformerFactory(a.client, 0)
	a.services = svcFactory.Core().V1().Services().Lister()
	svcFactory.Start(ctx.Done())

	var wg sync.WaitGroup
	run := func(f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	run(a.nodeStatusLoop)
	run(a.relistLoop)
	run(a.metricsLoop)
	run(a.watchLocalPaths)
	run(a.logRotateLoop)
	run(a.imageGCLoop)
	run(func(ctx context.Context) { a.serve(ctx, ln) })
	<-ctx.Done()
	factory.Shutdown()
	svcFactory.Shutdown()
	wg.Wait()
	a.stopWorkers()
	return nil
}

// podChanged hands the latest version of a pod to its worker, starting
// one for a pod the agent has not seen.
func (a *Agent) podChanged(obj any) {
	if pod, ok := obj.(*corev1.Pod); ok {
		a.wakePod(pod.UID, pod.Namespace, pod.Name)
	}
}

func numCPU() int { return runtime.NumCPU() }

func listenHost(ip net.IP) string {
	if ip.IsLoopback() {
		return ip.String()
	}
	return "" // all addresses: the API server may reach the node by any
}

// enableForwarding turns on IPv4 forwarding, which the bridge network
// needs for pods to reach beyond the node.
func enableForwarding() error {
	return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
}
