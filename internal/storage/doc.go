// Package storage keeps API objects in etcd and serves reads and watches
// from an in-memory watch cache fed by one etcd watch per resource.
//
// Objects are stored as Kubernetes protobuf under /registry/...; the
// resourceVersion of an object is the etcd revision that last wrote it, and
// writes are etcd transactions on that revision (optimistic concurrency).
package storage
