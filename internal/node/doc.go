// Package node brings up a lotse node on this machine: the registry
// mirror containerd pulls through, containerd itself (supervised, unless
// the user runs a runtime of their own), and the agent that runs the
// node's pods.
//
// Both `lotse server` (for its own machine) and `lotse agent` (joining
// another machine) start nodes through it.
package node
