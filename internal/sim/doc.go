// Package sim runs simulated ("hollow") nodes against any Kubernetes API
// server: each registers a Node, renews its Lease and marks the pods bound
// to it Running, then Succeeded or deleted, without running any container.
//
// It is how lotse measures its control plane at the scale upstream promises
// (5,000 nodes, 150,000 pods) on one small machine; see Sim for what it
// writes and what it removes when it stops.
package sim
