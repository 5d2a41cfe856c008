// Package podgc collects pods nobody else will: pods bound to a node that
// no longer exists, pods being deleted that were never scheduled, and the
// oldest finished pods once there are more than a threshold (12,500), as
// upstream's pod garbage collector does every 20 s.
package podgc
