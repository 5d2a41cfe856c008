// Package controller holds what every lotse controller is built from: the
// shared clients, informers, logger and clock, and the Controller interface
// the manager runs.
//
// Each controller lives in its own package below this one.
package controller
