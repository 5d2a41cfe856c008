// Package etcd runs the embedded etcd member that lotse server keeps its
// state in, tuned for a small quiet footprint on loopback.
//
// Start returns once the member serves clients; Close stops it cleanly so
// the same data directory can be opened again.
package etcd
