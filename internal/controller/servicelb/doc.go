// Package servicelb is lotse's built-in answer to Services of type
// LoadBalancer: it publishes the Ready nodes' addresses in each such
// Service's status.loadBalancer, and the node proxies send traffic for
// those addresses and ports to the Service's endpoints, as k3s's
// klipper-lb does with host ports.
package servicelb
