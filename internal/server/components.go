package server

import (
	"context"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/lotse/lotse/internal/controller/manager"
	"github.com/lotse/lotse/internal/pki"
	"github.com/lotse/lotse/internal/scheduler"
)

// clientConfig is how an in-process component reaches the API: over
// loopback HTTPS with a client certificate of its own, exactly as it would
// from another machine (no back doors).
func (s *Server) clientConfig(bundle *pki.Bundle, user string) (*rest.Config, error) {
	cert, key, err := bundle.IssueClientCert(user, nil, 365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	return &rest.Config{
		Host:            s.url,
		TLSClientConfig: rest.TLSClientConfig{CAData: bundle.CAPEM, CertData: cert, KeyData: key},
		QPS:             200,
		Burst:           400,
		UserAgent:       user,
	}, nil
}

// startComponents starts the control-plane components that run on the
// API: the scheduler and the controllers, each leader-elected so several
// servers can run them.
func (s *Server) startComponents(ctx context.Context, bundle *pki.Bundle) (*sync.WaitGroup, error) {
	var wg sync.WaitGroup
	if !s.cfg.DisableScheduler {
		cfg, err := s.clientConfig(bundle, "system:kube-scheduler")
		if err != nil {
			return &wg, err
		}
		sched, err := scheduler.New(scheduler.Config{
			Client: kubernetes.NewForConfigOrDie(cfg), LeaderElect: true, Logger: s.log.With("component", "scheduler"),
		})
		if err != nil {
			return &wg, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sched.Run(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("scheduler stopped", "err", err)
			}
		}()
	}
	if err := s.startServing(ctx, bundle, &wg); err != nil {
		return &wg, err
	}
	cfg, err := s.clientConfig(bundle, "system:kube-controller-manager")
	if err != nil {
		return &wg, err
	}
	mgr, err := manager.New(manager.Config{
		RESTConfig: cfg, Enabled: s.cfg.Controllers, LeaderElect: true, Logger: s.log.With("component", "controller-manager"),
	})
	if err != nil {
		return &wg, err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := mgr.Run(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("controller-manager stopped", "err", err)
		}
	}()
	return &wg, nil
}

// startServing starts what every server runs, leader or not: the cluster
// Services' endpoints at this server's address, cluster DNS and the
// Ingress proxy.
func (s *Server) startServing(ctx context.Context, bundle *pki.Bundle, wg *sync.WaitGroup) error {
	cfg, err := s.clientConfig(bundle, "system:apiserver")
	if err != nil {
		return err
	}
	client := kubernetes.NewForConfigOrDie(cfg)
	dnsPort := s.cfg.ClusterDNSPort
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.keepClusterServices(ctx, client, s.cfg.AdvertiseAddress, s.apiPort, dnsPort)
	}()
	return nil
}
