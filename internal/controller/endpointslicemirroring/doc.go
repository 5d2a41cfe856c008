// Package endpointslicemirroring mirrors the user-managed core/v1 Endpoints
// of Services without a selector into discovery.k8s.io/v1 EndpointSlices,
// as upstream's endpointslicemirroring controller does, so that consumers
// that read only slices (proxy, DNS, ingress) also serve such Services.
//
// Each repacked Endpoints subset becomes one slice per address type,
// capped at MaxEndpointsPerSubset addresses, owned by the Endpoints and
// labelled managed-by ControllerName.
package endpointslicemirroring
