// Package apiserver is lotse's Kubernetes-compatible HTTP API: request
// routing, authentication, discovery, content negotiation, the generic REST
// verbs over internal/storage, watch streaming, tables and error bodies.
//
// Per-kind behaviour (defaults, validation, printing, conversion) lives in
// the packages beside it; the kinds themselves are listed in registry.
package apiserver
