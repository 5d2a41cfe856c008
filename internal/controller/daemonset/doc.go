// Package daemonset runs one pod of each DaemonSet on every node its pod
// template fits (node selector, required node affinity, tolerated taints),
// removes pods from nodes that no longer fit, and rolls template changes
// out node by node under maxUnavailable and maxSurge.
//
// Template versions are kept as ControllerRevisions, which is what
// `kubectl rollout history` and `kubectl rollout undo` read.
package daemonset
