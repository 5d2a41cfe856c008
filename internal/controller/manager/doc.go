// Package manager runs lotse's controllers: it builds the shared clients
// and informers, picks the controllers by name (--controllers=-job,*),
// and runs them while it holds the controller-manager Lease.
//
// Each controller lives in its own package under internal/controller and
// registers a constructor here by name.
package manager
