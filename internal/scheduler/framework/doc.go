// Package framework holds the scheduler's vocabulary: the per-node view
// (NodeInfo) with its summed requests, the read-only Snapshot the plugins see,
// and the Filter and Score plugin interfaces with their Status results.
//
// It has no API client and no goroutines, so everything in it is testable
// with plain values.
package framework
