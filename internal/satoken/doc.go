// Package satoken issues and checks service account tokens: JWTs signed
// with the cluster's service account key (RS256, as upstream), carrying
// upstream's claims so that anything that reads a Kubernetes token reads
// ours, and bound to the pod, secret or node they were requested for.
//
// The API server issues them through serviceaccounts/token (TokenRequest)
// and accepts them as bearer tokens; the node agent writes them into
// projected volumes.
package satoken
