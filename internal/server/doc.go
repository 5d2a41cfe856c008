// Package server wires lotse's control plane from one Config: PKI, etcd
// (embedded or external), storage with its watch caches, and the HTTPS API.
//
// Components start in order and stop in reverse when the context ends.
package server
