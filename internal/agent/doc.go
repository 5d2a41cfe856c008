// Package agent is lotse's node agent (the kubelet's job): it registers
// the Node and renews its Lease, runs the pods bound to the node through
// the CRI runtime, reports their status, and serves logs, exec, attach and
// port-forward to the API server.
//
// Pods are driven by one worker goroutine each, woken by the pod's own
// updates, by changes the runtime reports (a relist every second), and by
// timers (restart back-off, probes). A worker's sync is level-based: it
// compares the pod spec with what the runtime has and closes the gap.
package agent
