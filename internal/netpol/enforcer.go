package netpol

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	coreinformers "k8s.io/client-go/informers/core/v1"
	networkinginformers "k8s.io/client-go/informers/networking/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
)

// Config is the static configuration of an Enforcer.
type Config struct {
	// NodeName is the node whose pods are enforced.
	NodeName string
	// Table is the nftables table (family ip) the enforcer owns; default
	// "lotse-netpol".
	Table string
	// HostIPs are this node's own addresses (and the bridge gateway
	// 10.42.x.1); traffic from the node to its pods is always allowed, as
	// upstream (probes).
	HostIPs []netip.Addr
	// Run applies one nft script atomically; default `nft -f -`.
	Run func(ctx context.Context, script string) error
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

const (
	// burstDelay coalesces a burst of informer events into one write.
	burstDelay = 100 * time.Millisecond
	// Failed writes are retried with a doubling delay between these bounds.
	minRetry = 500 * time.Millisecond
	maxRetry = 30 * time.Second
)

// Enforcer programs the node's NetworkPolicy rules into nftables.
type Enforcer struct {
	cfg      Config
	log      *slog.Logger
	pods     corelisters.PodLister
	nss      corelisters.NamespaceLister
	policies networkinglisters.NetworkPolicyLister
	synced   []cache.InformerSynced
	dirty    chan struct{}
	burst    time.Duration
	localNft bool // rules go to this process's netns, so its sysctls apply

	// applied is what the kernel holds after the last successful write;
	// nil forces a full rebuild (at start and after a failed write, when
	// the kernel state is unknown).
	applied *ruleset
}

// New builds an Enforcer on shared informers and registers its event
// handlers; the caller starts the informer factory.
func New(cfg Config, pods coreinformers.PodInformer, namespaces coreinformers.NamespaceInformer, policies networkinginformers.NetworkPolicyInformer) *Enforcer {
	if cfg.Table == "" {
		cfg.Table = "lotse-netpol"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	localNft := cfg.Run == nil
	if localNft {
		cfg.Run = runNft
	}
	e := &Enforcer{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "netpol", "table", cfg.Table),
		pods:     pods.Lister(),
		nss:      namespaces.Lister(),
		policies: policies.Lister(),
		dirty:    make(chan struct{}, 1),
		burst:    burstDelay,
		localNft: localNft,
	}
	poke := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { e.poke() },
		UpdateFunc: func(any, any) { e.poke() },
		DeleteFunc: func(any) { e.poke() },
	}
	podHandler := poke
	// Pod status changes often (conditions, restarts); only some fields
	// matter here.
	podHandler.UpdateFunc = func(oldObj, newObj any) {
		o, ok1 := oldObj.(*v1.Pod)
		n, ok2 := newObj.(*v1.Pod)
		if !ok1 || !ok2 || podChanged(o, n) {
			e.poke()
		}
	}
	for _, reg := range []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{pods.Informer(), podHandler},
		{namespaces.Informer(), poke},
		{policies.Informer(), poke},
	} {
		// AddEventHandler fails only on a stopped informer; Run's sync
		// wait then never completes, which is the visible symptom.
		if _, err := reg.inf.AddEventHandler(reg.h); err != nil {
			e.log.Error("registering event handler", "err", err)
		}
		e.synced = append(e.synced, reg.inf.HasSynced)
	}
	return e
}

// podChanged reports whether an update touches what the rules use.
func podChanged(o, n *v1.Pod) bool {
	return !reflect.DeepEqual(o.Labels, n.Labels) ||
		o.Spec.NodeName != n.Spec.NodeName ||
		o.Spec.HostNetwork != n.Spec.HostNetwork ||
		o.Status.Phase != n.Status.Phase ||
		o.Status.PodIP != n.Status.PodIP ||
		!reflect.DeepEqual(o.Status.PodIPs, n.Status.PodIPs) ||
		!reflect.DeepEqual(o.Spec.Containers, n.Spec.Containers) ||
		!reflect.DeepEqual(o.Spec.InitContainers, n.Spec.InitContainers)
}

func (e *Enforcer) poke() {
	select {
	case e.dirty <- struct{}{}:
	default: // a sync is already pending; it will see this change too
	}
}

// Run waits for the informers to sync, programs the table, keeps it up to
// date until ctx ends and then deletes the table.
func (e *Enforcer) Run(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), e.synced...) {
		return fmt.Errorf("netpol: informers did not sync: %w", ctx.Err())
	}
	if e.localNft {
		e.checkBridgeNetfilter()
	}
	e.log.Info("starting", "node", e.cfg.NodeName)

	retry := time.Duration(0)
	var retryC <-chan time.Time
	e.poke()
	for {
		select {
		case <-ctx.Done():
			return e.cleanup(ctx)
		case <-e.dirty:
		case <-retryC:
		}
		if !sleep(ctx, e.burst) {
			continue // ctx ended; the next loop iteration cleans up
		}
		retryC = nil
		if err := e.sync(ctx); err != nil {
			retry = min(max(2*retry, minRetry), maxRetry)
			e.log.Error("writing nftables rules; retrying with a full rebuild", "err", err, "retry", retry)
			retryC = time.After(retry)
			continue
		}
		retry = 0
	}
}

// sync writes the difference between what is applied and what the current
// state asks for.
func (e *Enforcer) sync(ctx context.Context) error {
	snap, err := e.snapshot()
	if err != nil {
		return err
	}
	want := buildRuleset(snap, e.cfg.NodeName)
	var script string
	full := e.applied == nil
	if full {
		script = fullScript(e.cfg.Table, e.cfg.HostIPs, want)
	} else {
		script = diffScript(e.cfg.Table, e.applied, want)
	}
	if script == "" {
		return nil
	}
	start := time.Now()
	if err := e.cfg.Run(ctx, script); err != nil {
		e.applied = nil
		return err
	}
	e.applied = want
	e.log.Debug("rules written", "full", full, "lines", strings.Count(script, "\n"),
		"chains", len(want.chains), "sets", len(want.sets), "took", time.Since(start))
	return nil
}

func (e *Enforcer) snapshot() (*snapshot, error) {
	pods, err := e.pods.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("netpol: listing pods: %w", err)
	}
	nss, err := e.nss.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("netpol: listing namespaces: %w", err)
	}
	pols, err := e.policies.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("netpol: listing network policies: %w", err)
	}
	s := &snapshot{pods: pods, namespaces: map[string]labels.Set{}, policies: pols}
	for _, ns := range nss {
		s.namespaces[ns.Name] = ns.Labels
	}
	// Lister order is map order; sort policies so the rendered chains are
	// stable and the diff stays small.
	sortPolicies(s.policies)
	return s, nil
}

// cleanup deletes the table; ctx is already done, so it gets a short
// context of its own.
func (e *Enforcer) cleanup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	t := e.cfg.Table
	if err := e.cfg.Run(ctx, "add table ip "+t+"\ndelete table ip "+t+"\n"); err != nil {
		return fmt.Errorf("netpol: deleting table %s: %w", t, err)
	}
	e.log.Info("stopped; table deleted")
	return nil
}

// checkBridgeNetfilter warns when bridged pod-to-pod traffic would bypass
// the ip forward hook: pods on one bridge only meet these rules with
// br_netfilter's bridge-nf-call-iptables on (a per-netns sysctl).
func (e *Enforcer) checkBridgeNetfilter() {
	b, err := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables")
	if err != nil || strings.TrimSpace(string(b)) != "1" {
		e.log.Warn("net.bridge.bridge-nf-call-iptables is not 1 (br_netfilter); traffic between pods of this node is not filtered")
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// runNft applies a script with `nft -f -`; nft applies a file as one
// transaction, so a failing script leaves the kernel unchanged.
func runNft(ctx context.Context, script string) error {
	cmd := exec.CommandContext(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nft -f -: %w: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}
