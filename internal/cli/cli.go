package cli

import (
	"errors"
	"fmt"
	"io"
	"k8s.io/apimachinery/pkg/api/resource"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/lotse/lotse/internal/memtrim"
	"github.com/lotse/lotse/internal/satoken"
	"github.com/lotse/lotse/internal/server"
)

// Main runs the lotse command with args and returns the exit code.
func Main(args []string) int {
	return run(args, os.Stdout, os.Stderr)
}

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"server", "run the control plane: embedded etcd and the Kubernetes API", runServer},
		{"agent", "join this machine to a cluster as a node", runAgent},
		{"controller-manager", "run the controllers against any Kubernetes API server", runControllerManager},
		{"scheduler", "run the scheduler against any Kubernetes API server", runScheduler},
		{"sim", "run simulated nodes against any Kubernetes API server", runSim},
		{"image", "import and list the images lotse serves to its nodes", runImage},
		{"version", "print the version", runVersion},
	}
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(args[1:], stdout, stderr)
			if errors.Is(err, pflag.ErrHelp) {
				return 0
			}
			if err != nil {
				fmt.Fprintf(stderr, "lotse %s: %v\n", c.name, err)
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(stderr, "lotse: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "lotse — a container orchestrator that speaks the Kubernetes API\n\nUsage: lotse COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'lotse COMMAND --help' for a command's flags.")
}

func runVersion(args []string, stdout, stderr io.Writer) error {
	v := server.Version
	fmt.Fprintf(stdout, "lotse (Kubernetes API %s.%s, %s)\n", v.Major, v.Minor, v.GitVersion)
	return nil
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q", level)
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
	// client-go logs through klog; send it the same way.
	klog.SetSlogLogger(log)
	return log, nil
}

func runServer(args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("lotse server", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	defaultDir := "/var/lib/lotse"
	if os.Geteuid() != 0 {
		if home, err := os.UserHomeDir(); err == nil {
			defaultDir = home + "/.lotse"
		}
	}
	var cfg server.Config
	var etcdServers, sans []string
	var logLevel string
	fs.StringVar(&cfg.DataDir, "data-dir", defaultDir, "directory for etcd data, certificates and the admin kubeconfig")
	fs.StringVar(&cfg.BindAddress, "bind-address", "0.0.0.0", "IP address the API server listens on")
	var advertise string
	fs.StringVar(&advertise, "advertise-address", "", "address pods and other nodes reach the API at (default: --node-ip, or the default route's address)")
	fs.IntVar(&cfg.ClusterDNSPort, "cluster-dns-port", server.DefaultClusterDNSPort, "port cluster DNS listens on at the advertise address (kube-dns maps 53 to it; 0 disables)")
	fs.IntVar(&cfg.IngressHTTPPort, "ingress-http-port", 80, "port of the built-in Ingress proxy for HTTP (0 disables)")
	fs.IntVar(&cfg.IngressHTTPSPort, "ingress-https-port", 443, "port of the built-in Ingress proxy for HTTPS (0 disables)")
	fs.IntVar(&cfg.HTTPSPort, "https-port", 6443, "port of the HTTPS API (0 picks a free one)")
	fs.StringSliceVar(&etcdServers, "etcd-servers", nil, "client URLs of an existing etcd cluster to use instead of the embedded member")
	fs.StringSliceVar(&sans, "tls-san", nil, "extra host names or IPs for the serving certificate")
	fs.StringVar(&cfg.WriteKubeconfig, "write-kubeconfig", "", "also write the admin kubeconfig to this path")
	fs.BoolVar(&cfg.DisableAgent, "disable-agent", false, "do not run a node agent on this machine")
	var nodeIP string
	fs.StringVar(&cfg.Node.Name, "node-name", "", "name of this machine's node (default: the host name)")
	fs.StringVar(&nodeIP, "node-ip", "", "IP address of this machine's node (default: the address of the default route's interface)")
	fs.StringVar(&cfg.Node.RuntimeEndpoint, "container-runtime-endpoint", "", "CRI endpoint of a container runtime you run (default: lotse runs containerd itself)")
	fs.StringVar(&cfg.Node.PodCIDR, "pod-cidr", "", "pod addresses of this machine's node (default: the first /24 of --cluster-cidr)")
	fs.StringVar(&cfg.ClusterCIDR, "cluster-cidr", server.DefaultClusterCIDR, "pod network; every node gets a /24 of it")
	fs.StringVar(&cfg.ServiceCIDR, "service-cidr", server.DefaultServiceCIDR, "range of Service cluster IPs (the kubernetes Service takes its first address)")
	fs.StringVar(&cfg.ClusterDNS, "cluster-dns", "", "cluster IP of the kube-dns Service, which pods resolve with (default: the tenth address of --service-cidr)")
	fs.StringVar(&cfg.Node.Bridge, "cni-bridge", "lotse0", "Linux bridge the pods of this machine's node attach to")
	fs.IntVar(&cfg.Node.Port, "agent-port", 10250, "port of the node agent's API (-1 picks a free one)")
	logSize := containerLogFlags(fs, &cfg.Node.ContainerLogMaxFiles)
	fs.StringSliceVar(&cfg.Controllers, "controllers", []string{"*"}, "controllers to run: * for all, name to enable, -name to disable")
	fs.BoolVar(&cfg.Profiling, "profiling", true, "serve Go profiles at /debug/pprof/ to members of system:masters")
	fs.BoolVar(&cfg.DisableScheduler, "disable-scheduler", false, "do not run the scheduler")
	fs.StringVar(&cfg.ServiceAccountIssuer, "service-account-issuer", satoken.DefaultIssuer, "the issuer (iss) of service account tokens, also their default audience")
	fs.StringSliceVar(&cfg.DisableAdmissionPlugins, "disable-admission-plugins", nil, "admission plugins to turn off (only ServiceAccount)")
	fs.DurationVar(&cfg.EventTTL, "event-ttl", server.DefaultEventTTL, "how long events are kept after their last write")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if cfg.EventTTL <= 0 {
		return fmt.Errorf("--event-ttl must be positive, not %v", cfg.EventTTL)
	}
	maxLogSize, err := parseLogSize(*logSize, cfg.Node.ContainerLogMaxFiles)
	if err != nil {
		return err
	}
	cfg.Node.ContainerLogMaxSize = maxLogSize
	cfg.EtcdServers, cfg.TLSSANs = etcdServers, sans
	if nodeIP != "" {
		if cfg.Node.IP = net.ParseIP(nodeIP); cfg.Node.IP == nil {
			return fmt.Errorf("--node-ip %q is not an IP address", nodeIP)
		}
	}
	if advertise != "" {
		if cfg.AdvertiseAddress = net.ParseIP(advertise); cfg.AdvertiseAddress == nil {
			return fmt.Errorf("--advertise-address %q is not an IP address", advertise)
		}
	}
	log, err := newLogger(stderr, logLevel)
	if err != nil {
		return err
	}
	cfg.Logger = log
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := untilSignal()
	defer stop()
	srv.Start(ctx)
	go memtrim.Loop(ctx, log)
	select {
	case <-srv.ReadyNotify():
		fmt.Fprintf(stdout, "lotse server is ready at %s\nadmin kubeconfig: %s\n  export KUBECONFIG=%s\n", srv.URL(), srv.KubeconfigPath(), srv.KubeconfigPath())
		fmt.Fprintf(stdout, "join other machines as nodes with (token in %s):\n  lotse agent --server %s --token %s\n",
			filepath.Join(cfg.DataDir, "node-token"), srv.AdvertiseURL(), srv.NodeToken())
	case <-srv.StopNotify():
	}
	<-srv.StopNotify()
	return srv.Err()
}

// containerLogFlags registers --container-log-max-size (returned, parsed
// by parseLogSize) and --container-log-max-files, the kubelet's settings.
func containerLogFlags(fs *pflag.FlagSet, files *int) *string {
	fs.IntVar(files, "container-log-max-files", 5, "container log files kept per container, the current one included (at least 2)")
	return fs.String("container-log-max-size", "10Mi", "size at which a container's log is rotated")
}

// parseLogSize reads --container-log-max-size and checks both flags.
func parseLogSize(size string, files int) (int64, error) {
	q, err := resource.ParseQuantity(size)
	if err != nil || q.Value() <= 0 {
		return 0, fmt.Errorf("--container-log-max-size %q is not a positive quantity such as 10Mi", size)
	}
	if files < 2 {
		return 0, fmt.Errorf("--container-log-max-files must be at least 2, not %d", files)
	}
	return q.Value(), nil
}
