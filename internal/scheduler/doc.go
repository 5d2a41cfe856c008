// Package scheduler assigns pending pods to nodes: it watches pods and nodes
// (and the claims, volumes, namespaces and disruption budgets some decisions
// read) through informers, queues unscheduled pods by priority, filters and
// scores nodes with the plugins in package plugins, and binds through
// pods/binding.
//
// The decision itself is pure logic over a framework.Snapshot; the cluster is
// touched only through the narrow Binder and Reporter interfaces, so tests pair
// a real in-memory cache with a recording binder.
package scheduler
