// Package disruption keeps the status of every PodDisruptionBudget current:
// how many of its pods are healthy, how many must be, and how many may be
// disrupted now, which the eviction subresource and kubectl drain rely on.
//
// It follows upstream's disruption controller, including expiry of the
// status.disruptedPods entries the eviction subresource records.
package disruption
