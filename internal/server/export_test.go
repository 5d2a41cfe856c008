package server

import "time"

// SetClusterServicesInterval makes the cluster Services reconcile faster
// for the rest of a test.
func SetClusterServicesInterval(d time.Duration) func() {
	old := clusterServicesInterval
	clusterServicesInterval = d
	return func() { clusterServicesInterval = old }
}
