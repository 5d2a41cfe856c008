// Package containerlog reads container log files that a CRI runtime such as
// containerd writes, and copies them out the way `kubectl logs` expects.
//
// It knows nothing of HTTP routing: the node agent resolves the log path of a
// container and calls Copy with the options taken from the request.
package containerlog
