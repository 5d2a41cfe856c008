// Package dns is lotse's cluster DNS server: it answers the Kubernetes DNS
// schema (services, headless endpoints, pods, reverse lookups) for the cluster
// domain straight from the Service and EndpointSlice informer caches.
//
// Names outside the cluster domain are forwarded to upstream resolvers, so the
// server can stand in for CoreDNS with its kubernetes and forward plugins.
package dns
