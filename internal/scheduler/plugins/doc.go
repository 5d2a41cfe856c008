// Package plugins implements the scheduler's filters and scores, one file per
// plugin, each a small pure function of a pod and a framework.NodeInfo (and,
// for the volume and inter-pod affinity plugins, the read-only Listers).
//
// Messages of failing filters are the ones upstream kube-scheduler prints, so
// "kubectl describe pod" reads the same on lotse as on Kubernetes.
package plugins
