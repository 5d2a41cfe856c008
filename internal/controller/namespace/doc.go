// Package namespace empties namespaces that are being deleted: it deletes
// every namespaced object in them and then removes the "kubernetes"
// finalizer, after which the API server removes the namespace itself.
//
// While content remains the namespace reports it in its conditions.
package namespace
