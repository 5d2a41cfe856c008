package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/lotse/lotse/internal/scheduler"
)

// runScheduler runs lotse's scheduler alone against any Kubernetes API
// server until SIGINT or SIGTERM.
func runScheduler(args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("lotse scheduler", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg scheduler.Config
	var kubeconfig, logLevel string
	var qps float32
	var burst int
	fs.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the API server (default: in-cluster config, then $KUBECONFIG)")
	fs.StringVar(&cfg.SchedulerName, "scheduler-name", scheduler.DefaultSchedulerName, "schedule pods whose spec.schedulerName is this")
	fs.BoolVar(&cfg.LeaderElect, "leader-elect", true, "schedule only while holding the Lease kube-system/lotse-scheduler")
	fs.Float32Var(&qps, "kube-api-qps", 500, "queries per second to the API server")
	fs.IntVar(&burst, "kube-api-burst", 1000, "burst of queries to the API server")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	log, err := newLogger(stderr, logLevel)
	if err != nil {
		return err
	}
	if kubeconfig == "" {
		kubeconfig = os.Getenv("KUBECONFIG")
	}
	restCfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	restCfg.QPS, restCfg.Burst = qps, burst
	restCfg.UserAgent = "lotse-scheduler"
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	cfg.Client, cfg.Logger = client, log
	s, err := scheduler.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := untilSignal()
	defer stop()
	fmt.Fprintf(stdout, "lotse scheduler %q running against %s\n", cfg.SchedulerName, restCfg.Host)
	return s.Run(ctx)
}
