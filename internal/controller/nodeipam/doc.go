// Package nodeipam is the node IPAM controller: it gives every Node
// without one a pod CIDR (spec.podCIDR and spec.podCIDRs) of the size
// --node-cidr-mask-size from the cluster CIDR, and takes it back when the
// Node goes, as kube-controller-manager's range allocator does.
package nodeipam
