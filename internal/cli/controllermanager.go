package cli

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/lotse/lotse/internal/controller/manager"
)

func runControllerManager(args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("lotse controller-manager", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var names []string
	for name := range manager.Controllers {
		names = append(names, name)
	}
	sort.Strings(names)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the API server to run against")
	enabled := fs.StringSlice("controllers", []string{"*"}, "controllers to run ("+strings.Join(names, ", ")+"): * for all, name to enable, -name to disable")
	leaderElect := fs.Bool("leader-elect", true, "run only while holding the Lease kube-system/lotse-controller-manager")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	clusterCIDR := fs.String("cluster-cidr", "", "give nodes without one a pod CIDR from this range (the nodeipam controller); empty: none")
	maskSize := fs.Int("node-cidr-mask-size", 0, "prefix length of each node's pod CIDR (default 24 for IPv4, 64 for IPv6)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var cluster netip.Prefix
	if *clusterCIDR != "" {
		p, err := netip.ParsePrefix(*clusterCIDR)
		if err != nil {
			return fmt.Errorf("--cluster-cidr: %w", err)
		}
		cluster = p
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	cfg, err := requiredRESTConfig(*kubeconfig)
	if err != nil {
		return err
	}
	mgr, err := manager.New(manager.Config{RESTConfig: cfg, Enabled: *enabled, LeaderElect: *leaderElect, Logger: log,
		ClusterCIDR: cluster, NodeCIDRMaskSize: *maskSize})
	if err != nil {
		return err
	}
	ctx, stop := untilSignal()
	defer stop()
	return mgr.Run(ctx)
}
