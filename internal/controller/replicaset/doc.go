// Package replicaset keeps the number of pods a ReplicaSet asks for: it
// adopts matching orphans, releases pods whose labels stopped matching,
// creates and deletes pods, and reports the set's status.
//
// Expectations record the creates and deletes in flight so that a slow pod
// informer never makes it create (or delete) twice.
package replicaset
