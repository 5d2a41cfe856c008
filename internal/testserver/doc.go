// Package testserver starts a real lotse control plane in-process for
// integration tests: embedded etcd on random loopback ports in a temporary
// directory, the real API server over HTTPS, and client-go clients for it.
//
// Every component's integration tests use this one harness.
package testserver
