// Package printers defines, for every kind the API server serves, the table
// columns upstream Kubernetes prints and how to fill them from one object.
//
// The API server uses it to answer requests for the meta.k8s.io Table form
// (what `kubectl get` asks for), so that lotse prints exactly what users see
// from an upstream cluster.
package printers
