package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/clock"

	"github.com/lotse/lotse/internal/controller"
)

// Config configures a Manager.
type Config struct {
	RESTConfig *rest.Config
	// Enabled selects controllers as --controllers does: "*" is all,
	// "name" enables one, "-name" disables one. Empty means "*".
	Enabled []string
	// LeaderElect runs the controllers only while holding the Lease
	// kube-system/lotse-controller-manager.
	LeaderElect bool
	Logger      *slog.Logger
	Clock       clock.WithTicker
	// Informers, when set, is an informer factory shared with other
	// components of the process (see server.sharedInformers); by default
	// the manager makes its own from RESTConfig for each term it leads.
	Informers informers.SharedInformerFactory
	// RootCA is the CA bundle published as kube-root-ca.crt; by default
	// the certificate authority of RESTConfig.
	RootCA []byte
	// ClusterCIDR, NodeCIDRMaskSize and ReservedPodCIDRs configure node
	// IPAM (controller.Context says how).
	ClusterCIDR      netip.Prefix
	NodeCIDRMaskSize int
	ReservedPodCIDRs []netip.Prefix
}

// Manager runs the selected controllers.
type Manager struct {
	cfg   Config
	names []string
}

// New validates cfg and resolves the controller selection.
func New(cfg Config) (*Manager, error) {
	if cfg.RESTConfig == nil {
		return nil, errors.New("manager: a REST config is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	names, err := Select(cfg.Enabled)
	if err != nil {
		return nil, err
	}
	if len(cfg.RootCA) == 0 {
		cfg.RootCA = cfg.RESTConfig.CAData
	}
	if len(cfg.RootCA) == 0 && cfg.RESTConfig.CAFile != "" {
		if cfg.RootCA, err = os.ReadFile(cfg.RESTConfig.CAFile); err != nil {
			return nil, fmt.Errorf("manager: root CA: %w", err)
		}
	}
	if len(cfg.RootCA) == 0 {
		// Nothing to publish: pods' kube-api-access volumes then wait
		// for a kube-root-ca.crt published some other way.
		names = slices.DeleteFunc(names, func(n string) bool { return n == rootCAPublisher })
		cfg.Logger.Warn("the kubeconfig names no certificate authority; not publishing kube-root-ca.crt")
	}
	return &Manager{cfg: cfg, names: names}, nil
}

// Select resolves a --controllers list against the known controllers.
func Select(enabled []string) ([]string, error) {
	if len(enabled) == 0 {
		enabled = []string{"*"}
	}
	all := false
	on, off := map[string]bool{}, map[string]bool{}
	for _, e := range enabled {
		name := strings.TrimPrefix(e, "-")
		if e == "*" {
			all = true
			continue
		}
		if _, ok := Controllers[name]; !ok {
			return nil, fmt.Errorf("manager: unknown controller %q", name)
		}
		if strings.HasPrefix(e, "-") {
			off[name] = true
		} else {
			on[name] = true
		}
	}
	var names []string
	for name := range Controllers {
		if (all || on[name]) && !off[name] {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// Run runs the controllers until ctx is done, under leader election if
// configured.
func (m *Manager) Run(ctx context.Context) error {
	client, err := kubernetes.NewForConfig(m.cfg.RESTConfig)
	if err != nil {
		return err
	}
	if !m.cfg.LeaderElect {
		return m.runControllers(ctx)
	}
	id, _ := os.Hostname()
	id += "_" + fmt.Sprint(time.Now().UnixNano())
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: "kube-system", Name: "lotse-controller-manager"},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	// The callbacks run on goroutines of their own; channels carry the
	// controllers' result back.
	started, done := make(chan struct{}), make(chan error, 1)
	leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   15 * time.Second,
		RenewDeadline:   10 * time.Second,
		RetryPeriod:     2 * time.Second,
		ReleaseOnCancel: true,
		Name:            "lotse-controller-manager",
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				close(started)
				done <- m.runControllers(ctx)
			},
			OnStoppedLeading: func() { m.cfg.Logger.Info("controller-manager lost its lease") },
		},
	})
	select {
	case <-started:
		return <-done
	default:
		return nil
	}
}

func (m *Manager) runControllers(ctx context.Context) error {
	client, err := kubernetes.NewForConfig(m.cfg.RESTConfig)
	if err != nil {
		return err
	}
	meta, err := metadata.NewForConfig(m.cfg.RESTConfig)
	if err != nil {
		return err
	}
	factory := m.cfg.Informers
	if factory == nil {
		factory = informers.NewSharedInformerFactory(client, 0)
	}
	cctx := &controller.Context{
		Client: client, Metadata: meta, Informers: factory,
		Logger: m.cfg.Logger, Clock: m.cfg.Clock, RootCA: m.cfg.RootCA,
		ClusterCIDR: m.cfg.ClusterCIDR, NodeCIDRMaskSize: m.cfg.NodeCIDRMaskSize, ReservedPodCIDRs: m.cfg.ReservedPodCIDRs,
	}
	var controllers []controller.Controller
	for _, name := range m.names {
		c, err := Controllers[name](cctx)
		if err != nil {
			return fmt.Errorf("manager: controller %s: %w", name, err)
		}
		controllers = append(controllers, c)
	}
	cctx.Informers.Start(ctx.Done())
	defer cctx.Informers.Shutdown()
	m.cfg.Logger.Info("controllers started", "controllers", m.names)
	var wg sync.WaitGroup
	errs := make(chan error, len(controllers))
	for i, c := range controllers {
		wg.Add(1)
		go func(name string, c controller.Controller) {
			defer wg.Done()
			if err := c.Run(ctx); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("controller %s: %w", name, err)
			}
		}(m.names[i], c)
	}
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

func collect(ch <-chan error) []error {
	var out []error
	for err := range ch {
		out = append(out, err)
	}
	return out
}
