package controller

import (
	"context"
	"log/slog"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/utils/clock"
)

// Context is what a controller is built from. Informers requested from
// Informers before the controllers run are started by the manager.
type Context struct {
	Client    kubernetes.Interface
	Metadata  metadata.Interface
	Informers informers.SharedInformerFactory
	Logger    *slog.Logger
	Clock     clock.WithTicker
}

// Controller is one control loop; Run blocks until ctx is done.
type Controller interface {
	Run(ctx context.Context) error
}

// Constructor builds a controller from the shared context.
type Constructor func(*Context) (Controller, error)
