// Package nodelifecycle watches nodes' heartbeats (their Leases in
// kube-node-lease and their Ready condition) and acts when a node goes
// quiet or unhealthy, as upstream's node lifecycle controller does: after
// a grace period (40 s) its conditions become Unknown, it gets the
// unreachable or not-ready taints (NoSchedule and NoExecute), its pods are
// marked not ready, and pods that do not tolerate a NoExecute taint are
// evicted, at once or after their tolerationSeconds.
package nodelifecycle
