// Package bench holds lotse's benchmarks: API throughput, large lists,
// watch fan-out, memory and start-up time of the control plane.
//
// Every figure is reported as a ratio against a baseline measured in the
// same run (usually the same etcd without the API server); README.md
// lists the figures and the commands that produce them.
package bench
