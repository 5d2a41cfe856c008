// Package garbagecollector deletes objects whose owners are gone, as
// upstream's garbage collector does: it keeps the ownerReferences graph of
// every deletable resource from metadata-only informers and carries out
// background, foreground and orphan propagation.
//
// The graph is rebuilt from the informers on every start, so the
// controller holds no state that a restart could lose.
package garbagecollector
