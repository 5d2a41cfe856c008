// Package job runs Jobs to completion as the upstream batch/v1 Job
// controller does: it creates pods from the template up to parallelism,
// counts finished pods exactly once through a tracking finalizer and
// status.uncountedTerminatedPods, and applies back-off limits, deadlines,
// suspension, Indexed completion and pod failure policies.
//
// The package also holds the ttl-after-finished loop, a separate controller
// upstream, which deletes finished Jobs once their TTL has passed; New
// returns one Controller whose Run drives both loops.
package job
