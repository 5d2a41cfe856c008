// Package qos computes a pod's quality-of-service class as upstream does:
// the API server records it in the pod's status, and the node agent
// derives cgroup settings and OOM scores from it.
package qos
