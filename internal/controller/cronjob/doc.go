// Package cronjob creates a batch/v1 Job from a CronJob's template at each
// activation of its cron schedule, applies the concurrency policy and the
// starting deadline, reports the running jobs in status and prunes old
// finished ones.
//
// It has its own cron parser (Schedule) and requeues each CronJob for its
// next activation rather than polling; a Job's name is derived from its
// scheduled minute, which is what keeps a slow informer from creating the
// same run twice.
package cronjob
