// Package rootcacert publishes the cluster CA as the ConfigMap
// kube-root-ca.crt (key ca.crt) in every namespace, as upstream's
// root-ca-cert-publisher does: pods' kube-api-access volumes project it so
// that in-cluster clients can verify the API server.
package rootcacert
