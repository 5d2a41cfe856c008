// Package ingress is lotse's built-in Ingress controller: an HTTP and HTTPS
// reverse proxy that routes requests by networking.k8s.io/v1 Ingress rules
// straight to the ready pod endpoints in the backend Services' EndpointSlices.
//
// Its routing table is rebuilt from informer caches (at most every 100 ms)
// and swapped atomically so reloads never drop a connection, and it owns the
// `lotse` IngressClass and writes the node addresses into the status of the
// Ingresses it serves.
package ingress
