// Package netpol enforces Kubernetes NetworkPolicy (networking.k8s.io/v1)
// for the pods of one node with an nftables table of its own, filtering
// routed and bridged pod traffic in the forward hook after the Service
// proxy's DNAT.
//
// Every isolated pod gets one chain per isolated direction, reached through
// verdict maps keyed by pod address; peers live in named interval sets
// shared by all pods a policy rule applies to, and each change is written as
// a small atomic transaction holding only the sets, chains and map elements
// that differ from what the kernel already has.
package netpol
