package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"

	"github.com/lotse/lotse/internal/server"
	"github.com/lotse/lotse/internal/sim"
)

// runSim runs simulated nodes against the API server of --kubeconfig until
// SIGTERM or SIGINT, then deletes the Nodes and Leases it created.
func runSim(args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("lotse sim", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg                 sim.Config
		kubeconfig          string
		cpu, memory         string
		qps                 float32
		burst               int
		logLevel            string
		podRunTime          time.Duration
		leaseRenew, leaseTT time.Duration
	)
	fs.StringVar(&kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the API server to join (default $KUBECONFIG)")
	fs.IntVar(&cfg.Nodes, "nodes", 1, "number of simulated nodes")
	fs.StringVar(&cpu, "node-cpu", "32", "cpu capacity of each node")
	fs.StringVar(&memory, "node-memory", "256Gi", "memory capacity of each node")
	fs.IntVar(&cfg.MaxPods, "max-pods", 110, "pod capacity of each node")
	fs.StringVar(&cfg.NamePrefix, "name-prefix", "sim-", "node names are this prefix followed by 0, 1, ...")
	fs.DurationVar(&podRunTime, "pod-run-time", 5*time.Second, "how long pods with restartPolicy Never or OnFailure run before they succeed")
	fs.Float32Var(&qps, "qps", 1000, "sustained requests per second to the API server")
	fs.IntVar(&burst, "burst", 2000, "burst of requests per second to the API server")
	fs.IntVar(&cfg.Workers, "workers", 32, "workers registering nodes and updating pods")
	fs.DurationVar(&leaseRenew, "lease-renew-interval", 10*time.Second, "how often each node renews its Lease")
	fs.DurationVar(&leaseTT, "lease-duration", 40*time.Second, "leaseDurationSeconds written into each Lease")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	var err error
	if cfg.NodeCPU, err = resource.ParseQuantity(cpu); err != nil {
		return fmt.Errorf("invalid --node-cpu %q: %w", cpu, err)
	}
	if cfg.NodeMemory, err = resource.ParseQuantity(memory); err != nil {
		return fmt.Errorf("invalid --node-memory %q: %w", memory, err)
	}
	if podRunTime <= 0 {
		podRunTime = -1 // sim.Config: negative means at once, zero the default
	}
	cfg.PodRunTime, cfg.LeaseRenewInterval, cfg.LeaseDuration = podRunTime, leaseRenew, leaseTT
	cfg.KubeletVersion = server.Version.GitVersion
	log, err := newLogger(stderr, logLevel)
	if err != nil {
		return err
	}
	cfg.Logger = log
	restCfg, err := requiredRESTConfig(kubeconfig)
	if err != nil {
		return err
	}
	restCfg.QPS, restCfg.Burst = qps, burst
	restCfg.UserAgent = "lotse-sim"
	if cfg.Client, err = kubernetes.NewForConfig(restCfg); err != nil {
		return err
	}
	s, err := sim.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := untilSignal()
	defer stop()
	fmt.Fprintf(stdout, "lotse sim: running %d simulated nodes (%s0..) against %s; stop with SIGTERM or Ctrl-C\n",
		cfg.Nodes, cfg.NamePrefix, restCfg.Host)
	return s.Run(ctx)
}
