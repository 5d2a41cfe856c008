package server

import (
	"strings"
	"testing"
)

func TestNetworkPlanChecks(t *testing.T) {
	for _, tc := range []struct{ cluster, service, dns, pod, err string }{
		{"", "", "", "", ""},
		{"10.244.0.0/16", "10.96.0.0/12", "10.96.0.10", "10.244.3.0/24", ""},
		{"10.42.0.0/16", "10.42.128.0/20", "", "", "overlap"},
		{"10.42.0.0/25", "", "", "", "--cluster-cidr"},
		{"fd00::/64", "", "", "", "--cluster-cidr"},
		{"", "10.43.0.0/29", "", "", "--service-cidr"},
		{"", "", "10.44.0.10", "", "--cluster-dns"},
		{"", "", "10.43.0.1", "", "--cluster-dns"},
		{"", "", "", "10.43.1.0/24", "--pod-cidr"},
		{"", "", "", "10.89.0.0/24", ""}, // outside the cluster CIDR: allowed
	} {
		_, err := newNetwork(tc.cluster, tc.service, tc.dns, tc.pod)
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%+v: got %v", tc, err)
		}
	}
}
