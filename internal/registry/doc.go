// Package registry is lotse's own OCI image registry: a content-addressed
// store on disk served over the distribution API, so nodes can pull images
// without internet access.
//
// Repositories are named in full, host included (docker.io/library/busybox),
// and a request carrying containerd's ?ns=<host> mirror parameter addresses
// the repository <host>/<name>.
package registry
