// Package proxy is lotse's Service proxy: it turns Services and EndpointSlices
// into one nftables table that DNATs cluster IPs, NodePorts, external IPs and
// LoadBalancer ingress IPs to endpoints, like kube-proxy in nftables mode.
// It keeps what it last wrote and, per sync, rewrites only the chains and map
// elements of the Services that changed, in one atomic `nft -f` transaction,
// then deletes the UDP conntrack entries the change left stale. A full
// rebuild writes the bulk of the table, the endpoint maps' elements, over
// nf_tables netlink itself (nftnl.go), since nft is slow to parse them.
package proxy
