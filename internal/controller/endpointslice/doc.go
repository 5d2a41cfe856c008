// Package endpointslice publishes where a Service's pods answer: it runs
// both the EndpointSlice controller (discovery.k8s.io/v1 slices of at most
// 100 endpoints, reused rather than churned) and the legacy Endpoints
// controller (one core/v1 Endpoints per Service, capped at 1000 addresses).
//
// New builds one Controller whose Run drives the two loops, each with its
// own rate-limited workqueue over the same Service, Pod and Node informers.
package endpointslice
