// Package satokensecret fills in Secrets of type
// kubernetes.io/service-account-token, the long-lived tokens upstream's
// documentation still shows how to make by hand: it asks the TokenRequest
// API for a token bound to the Secret (so deleting the Secret revokes it)
// and writes it with the cluster CA and the namespace, as upstream's
// token controller does.
package satokensecret
