// Package pki creates and keeps the cluster's own certificate authority and
// the certificates lotse server serves and administers the cluster with.
//
// Everything lives as PEM files under DATA_DIR/pki; the CA is made once and
// reused, while leaf certificates are reissued when they drift or near expiry.
package pki
