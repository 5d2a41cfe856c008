// Package defaults fills in the fields the Kubernetes API server sets on
// objects a client leaves out, the way upstream's SetDefaults_* functions do.
//
// Apply works in place on the served-version k8s.io/api types and is called
// by the REST handlers before validation on every create and update.
package defaults
