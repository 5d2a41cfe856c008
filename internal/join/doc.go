// Package join lets a machine become a node of a lotse cluster with the
// bootstrap token `lotse server` keeps in DATA/node-token, and nothing
// else: the new node sends certificate requests with the token, the
// server signs them (a client certificate for system:node:<name> and a
// serving certificate for the node's agent) and allocates the node's pod
// CIDR.
//
// The node does not know the cluster CA beforehand. The server proves its
// answer with an HMAC of the CA keyed by the token's secret, so a
// man in the middle without the token cannot hand out a CA of its own.
package join
