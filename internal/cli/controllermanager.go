package cli

import (
	"io"
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
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	cfg, err := requiredRESTConfig(*kubeconfig)
	if err != nil {
		return err
	}
	mgr, err := manager.New(manager.Config{RESTConfig: cfg, Enabled: *enabled, LeaderElect: *leaderElect, Logger: log})
	if err != nil {
		return err
	}
	ctx, stop := untilSignal()
	defer stop()
	return mgr.Run(ctx)
}
