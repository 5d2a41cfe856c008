package netpol

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

const (
	ing = networkingv1.PolicyTypeIngress
	egr = networkingv1.PolicyTypeEgress
)

// The cluster every case runs against: the target "web" (10.42.0.2) in ns
// "app" on node n1, and peers around it.
func basePods() []*v1.Pod {
	web := pod("app", "web", "n1", "10.42.0.2", map[string]string{"app": "web"}, cport("http", 8080))
	client := pod("app", "client", "n1", "10.42.0.3", map[string]string{"app": "client"})
	db := pod("app", "db", "n2", "10.42.1.5", map[string]string{"app": "db"}, cport("sql", 5432))
	db2 := pod("app", "db2", "n2", "10.42.1.6", map[string]string{"app": "db"}, cport("sql", 3306))
	monA := pod("mon", "prom", "n2", "10.42.1.7", map[string]string{"app": "prom"})
	monB := pod("mon", "other", "n2", "10.42.1.8", map[string]string{"app": "other"})
	hostNet := pod("app", "hostnet", "n2", "192.168.0.2", map[string]string{"app": "client"})
	hostNet.Spec.HostNetwork = true
	done := pod("app", "done", "n2", "10.42.1.9", map[string]string{"app": "client"})
	done.Status.Phase = v1.PodSucceeded
	return []*v1.Pod{web, client, db, db2, monA, monB, hostNet, done}
}

func TestRulesFor(t *testing.T) {
	everyone := &metav1.LabelSelector{}
	cases := []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		dir      direction
		want     []string
	}{
		{name: "no policy", dir: ingress, want: []string{"open"}},
		{
			name:     "default deny ingress isolates ingress only",
			policies: []*networkingv1.NetworkPolicy{policy("app", "deny", everyone, ing)},
			dir:      ingress,
			want:     []string{"isolated"},
		},
		{
			name:     "default deny ingress leaves egress open",
			policies: []*networkingv1.NetworkPolicy{policy("app", "deny", everyone, ing)},
			dir:      egress,
			want:     []string{"open"},
		},
		{
			name:     "default deny egress",
			policies: []*networkingv1.NetworkPolicy{policy("app", "deny", everyone, egr)},
			dir:      egress,
			want:     []string{"isolated"},
		},
		{
			name:     "no policyTypes and no egress rules: ingress only",
			policies: []*networkingv1.NetworkPolicy{policy("app", "p", everyone)},
			dir:      egress,
			want:     []string{"open"},
		},
		{
			name: "no policyTypes with egress rules: egress isolated too",
			policies: []*networkingv1.NetworkPolicy{withEgress(policy("app", "p", everyone),
				networkingv1.NetworkPolicyEgressRule{Ports: []networkingv1.NetworkPolicyPort{udp(53)}})},
			dir:  egress,
			want: []string{"isolated", "any | udp:53"},
		},
		{
			name:     "policy in another namespace does not isolate",
			policies: []*networkingv1.NetworkPolicy{policy("mon", "deny", everyone, ing)},
			dir:      ingress,
			want:     []string{"open"},
		},
		{
			name:     "policy selecting other pods does not isolate",
			policies: []*networkingv1.NetworkPolicy{policy("app", "deny", sel("app", "db"), ing)},
			dir:      ingress,
			want:     []string{"open"},
		},
		{
			name: "podSelector peer, same namespace only, hostNetwork and finished pods left out",
			policies: []*networkingv1.NetworkPolicy{withIngress(policy("app", "p", sel("app", "web"), ing),
				networkingv1.NetworkPolicyIngressRule{
					From:  []networkingv1.NetworkPolicyPeer{podPeer(sel("app", "client"))},
					Ports: []networkingv1.NetworkPolicyPort{tcp(8080)},
				})},
			dir:  ingress,
			want: []string{"isolated", "10.42.0.3 | tcp:8080"},
		},
		{
			name: "empty from allows every source",
			policies: []*networkingv1.NetworkPolicy{withIngress(policy("app", "p", everyone, ing),
				networkingv1.NetworkPolicyIngressRule{Ports: []networkingv1.NetworkPolicyPort{protoOnly(v1.ProtocolSCTP)}})},
			dir:  ingress,
			want: []string{"isolated", "any | sctp:*"},
		},
		{
			name: "namespaceSelector peer: all pods of matching namespaces",
			policies: []*networkingv1.NetworkPolicy{withIngress(policy("app", "p", everyone, ing),
				networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{nsPeer(sel("team", "mon"))}})},
			dir:  ingress,
			want: []string{"isolated", "10.42.1.7-10.42.1.8 | all"},
		},
		{
			name: "namespaceSelector by kubernetes.io/metadata.name",
			policies: []*networkingv1.NetworkPolicy{withIngress(policy("app", "p", everyone, ing),
				networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{nsPeer(sel(v1.LabelMetadataName, "mon"))}})},
			dir:  ingress,
			want: []string{"isolated", "10.42.1.7-10.42.1.8 | all"},
		},
		{
			name: "podSelector and namespaceSelector in one peer: intersection",
			policies: []*networkingv1.NetworkPolicy{withIngress(policy("app", "p", everyone, ing),
				networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{{
					NamespaceSelector: sel("team", "mon"), PodSelector: sel("app", "prom"),
				}}})},
			dir:  ingress,
			want: []string{"isolated", "10.42.1.7 | all"},
		},
		{
			name: "empty namespaceSelector with podSelector: matching pods in all namespaces",
			policies: []*networkingv1.NetworkPolicy{withIngress(policy("app", "p", everyone, ing),
				networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{{
					NamespaceSelector: &metav1.LabelSelector{}, PodSelector: sel("app", "prom"),
				}}})},
			dir:  ingress,
			want: []string{"isolated", "10.42.1.7 | all"},
		},
		{
			name: "two peers are a union",
			policies: []*networkingv1.NetworkPolicy{withIngress(policy("app", "p", everyone, ing),
				networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{
					podPeer(sel("app", "client")), podPeer(sel("app", "db")),
				}})},
			dir:  ingress,
			want: []string{"isolated", "10.42.0.3,10.42.1.5-10.42.1.6 | all"},
		},
		{
			name: "ipBlock with except",
			policies: []*networkingv1.NetworkPolicy{withIngress(policy("app", "p", everyone, ing),
				networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{
					blockPeer("10.0.0.0/8", "10.1.0.0/16", "10.200.0.0/24"),
				}})},
			dir:  ingress,
			want: []string{"isolated", "10.0.0.0-10.0.255.255,10.2.0.0-10.199.255.255,10.200.1.0-10.255.255.255 | all"},
		},
		{
			name: "ipv6 ipBlock stands for nothing",
			policies: []*networkingv1.NetworkPolicy{withIngress(policy("app", "p", everyone, ing),
				networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{blockPeer("fd00::/8")}})},
			dir:  ingress,
			want: []string{"isolated", "none | all"},
		},
		{
			name: "ingress named port resolves against the local pod",
			policies: []*networkingv1.NetworkPolicy{withIngress(policy("app", "p", everyone, ing),
				networkingv1.NetworkPolicyIngressRule{Ports: []networkingv1.NetworkPolicyPort{named("http"), named("sql"), tcp(9000)}})},
			dir:  ingress,
			want: []string{"isolated", "any | tcp:8080,tcp:9000"},
		},
		{
			name: "ingress named port the pod lacks allows nothing",
			policies: []*networkingv1.NetworkPolicy{withIngress(policy("app", "p", everyone, ing),
				networkingv1.NetworkPolicyIngressRule{Ports: []networkingv1.NetworkPolicyPort{named("sql")}})},
			dir:  ingress,
			want: []string{"isolated"},
		},
		{
			name: "named port with the wrong protocol does not resolve",
			policies: []*networkingv1.NetworkPolicy{withIngress(policy("app", "p", everyone, ing),
				networkingv1.NetworkPolicyIngressRule{Ports: []networkingv1.NetworkPolicyPort{func() networkingv1.NetworkPolicyPort {
					p := named("http")
					u := v1.ProtocolUDP
					p.Protocol = &u
					return p
				}()}})},
			dir:  ingress,
			want: []string{"isolated"},
		},
		{
			name: "egress named port resolves per peer pod",
			policies: []*networkingv1.NetworkPolicy{withEgress(policy("app", "p", sel("app", "web"), egr),
				networkingv1.NetworkPolicyEgressRule{
					To:    []networkingv1.NetworkPolicyPeer{podPeer(sel("app", "db"))},
					Ports: []networkingv1.NetworkPolicyPort{named("sql"), udp(53)},
				})},
			dir: egress,
			want: []string{"isolated",
				"10.42.1.5-10.42.1.6 | udp:53",
				"10.42.1.6 | tcp:3306",
				"10.42.1.5 | tcp:5432"},
		},
		{
			name: "egress named port with no peers resolves over all pods",
			policies: []*networkingv1.NetworkPolicy{withEgress(policy("app", "p", sel("app", "web"), egr),
				networkingv1.NetworkPolicyEgressRule{Ports: []networkingv1.NetworkPolicyPort{named("http")}})},
			dir:  egress,
			want: []string{"isolated", "10.42.0.2 | tcp:8080"},
		},
		{
			name: "egress named port through an ipBlock peer",
			policies: []*networkingv1.NetworkPolicy{withEgress(policy("app", "p", sel("app", "web"), egr),
				networkingv1.NetworkPolicyEgressRule{
					To:    []networkingv1.NetworkPolicyPeer{blockPeer("10.42.1.0/24", "10.42.1.6/32")},
					Ports: []networkingv1.NetworkPolicyPort{named("sql")},
				})},
			dir:  egress,
			want: []string{"isolated", "10.42.1.5 | tcp:5432"},
		},
		{
			name: "endPort range",
			policies: []*networkingv1.NetworkPolicy{withEgress(policy("app", "p", everyone, egr),
				networkingv1.NetworkPolicyEgressRule{
					To:    []networkingv1.NetworkPolicyPeer{blockPeer("0.0.0.0/0")},
					Ports: []networkingv1.NetworkPolicyPort{tcpRange(30000, 32767)},
				})},
			dir:  egress,
			want: []string{"isolated", "0.0.0.0-255.255.255.255 | tcp:30000-32767"},
		},
		{
			name: "union across policies",
			policies: []*networkingv1.NetworkPolicy{
				withIngress(policy("app", "a", everyone, ing),
					networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{podPeer(sel("app", "client"))}}),
				withIngress(policy("app", "b", sel("app", "web"), ing),
					networkingv1.NetworkPolicyIngressRule{Ports: []networkingv1.NetworkPolicyPort{tcp(443)}}),
				policy("app", "c", sel("app", "web"), egr),
			},
			dir:  ingress,
			want: []string{"isolated", "10.42.0.3 | all", "any | tcp:443"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &snapshot{
				pods:       basePods(),
				namespaces: map[string]labels.Set{"app": {}, "mon": {"team": "mon"}},
				policies:   tc.policies,
			}
			got := summarize(s.rulesFor(s.pods[0], tc.dir))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("rules for app/web %s (-want +got):\n%s", tc.dir, diff)
			}
		})
	}
}

func TestRangeArithmetic(t *testing.T) {
	r := func(a, b string) ipRange {
		return ipRange{addrToU32(mustAddr(a)), addrToU32(mustAddr(b))}
	}
	cases := []struct {
		name string
		got  []ipRange
		want []string
	}{
		{"merge overlapping and adjacent", mergeRanges([]ipRange{r("10.0.0.5", "10.0.0.9"), r("10.0.0.1", "10.0.0.4"), r("10.0.0.8", "10.0.0.20"), r("10.0.1.0", "10.0.1.0")}),
			[]string{"10.0.0.1-10.0.0.20", "10.0.1.0"}},
		{"cut in the middle", subtract([]ipRange{r("10.0.0.0", "10.0.0.255")}, r("10.0.0.10", "10.0.0.19")),
			[]string{"10.0.0.0-10.0.0.9", "10.0.0.20-10.0.0.255"}},
		{"cut everything", subtract([]ipRange{r("10.0.0.0", "10.0.0.255")}, r("10.0.0.0", "10.0.0.255")), []string{}},
		{"cut at the top of the space", subtract([]ipRange{r("0.0.0.0", "255.255.255.255")}, r("255.255.255.0", "255.255.255.255")),
			[]string{"0.0.0.0-255.255.254.255"}},
	}
	for _, tc := range cases {
		got := renderRanges(tc.got)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestPortMatches(t *testing.T) {
	cases := []struct {
		in   []portRange
		want []string
	}{
		{nil, nil},
		{[]portRange{{v1.ProtocolUDP, 53, 53}, {v1.ProtocolTCP, 80, 80}, {v1.ProtocolTCP, 81, 90}, {v1.ProtocolTCP, 443, 443}},
			[]string{"meta l4proto tcp th dport { 80-90, 443 }", "meta l4proto udp th dport { 53 }"}},
		{[]portRange{{v1.ProtocolTCP, 80, 80}, {proto: v1.ProtocolTCP}}, []string{"meta l4proto tcp"}},
		{[]portRange{{v1.ProtocolSCTP, 9, 9}}, []string{"meta l4proto sctp th dport { 9 }"}},
	}
	for _, tc := range cases {
		if diff := cmp.Diff(tc.want, portMatches(tc.in)); diff != "" {
			t.Errorf("portMatches(%v) (-want +got):\n%s", tc.in, diff)
		}
	}
}
