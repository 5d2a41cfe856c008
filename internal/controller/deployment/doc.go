// Package deployment is the Deployment controller: it rolls a Deployment's
// pod template out through ReplicaSets it owns, one per template revision,
// with the RollingUpdate or Recreate strategy.
//
// It keeps the revision annotations, the status and the Progressing and
// Available conditions the way upstream does, so kubectl rollout works.
package deployment
