// Package podautoscaler is the HorizontalPodAutoscaler controller: every
// sync period it reads each target's scale subresource and its pods'
// resource metrics, computes the replica count upstream 1.33 would, and
// writes it back through the scale subresource.
//
// The arithmetic (tolerance, missing and unready pods, stabilization
// windows, scaling policies) is pure and tested without an API server;
// metrics come through the MetricsSource interface so tests can fake them.
package podautoscaler
