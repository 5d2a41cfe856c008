package netpol

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func testSnapshot(pods []*v1.Pod, pols ...*networkingv1.NetworkPolicy) *snapshot {
	return &snapshot{pods: pods, namespaces: map[string]labels.Set{"app": {}}, policies: pols}
}

func TestFullScript(t *testing.T) {
	web := pod("app", "web", "n1", "10.42.0.2", map[string]string{"app": "web"})
	client := pod("app", "client", "n1", "10.42.0.3", map[string]string{"app": "client"})
	remote := pod("app", "remote", "n2", "10.42.1.2", map[string]string{"app": "web"})
	pol := withIngress(policy("app", "allow-client", sel("app", "web"), ing),
		networkingv1.NetworkPolicyIngressRule{
			From:  []networkingv1.NetworkPolicyPeer{podPeer(sel("app", "client"))},
			Ports: []networkingv1.NetworkPolicyPort{tcp(80)},
		})
	denyEgress := policy("app", "deny-egress", sel("app", "client"), egr)
	rs := buildRuleset(testSnapshot([]*v1.Pod{web, client, remote}, pol, denyEgress), "n1")
	got := fullScript("t", []netip.Addr{netip.MustParseAddr("10.42.0.1"), netip.MustParseAddr("fd00::1")}, rs)

	set := setName(pol, ingress, 0, "")
	ingChain, egrChain := chainName(web, ingress), chainName(client, egress)
	want := strings.Join([]string{
		"add table ip t",
		"delete table ip t",
		"add table ip t",
		"add set ip t host-ips { type ipv4_addr; }",
		"add element ip t host-ips { 10.42.0.1 }",
		"add map ip t ingress-pods { type ipv4_addr : verdict; }",
		"add map ip t egress-pods { type ipv4_addr : verdict; }",
		"add chain ip t forward { type filter hook forward priority filter; policy accept; }",
		"add rule ip t forward ct state established,related accept",
		"add rule ip t forward ip saddr @host-ips accept",
		"add rule ip t forward ip saddr vmap @egress-pods",
		"add rule ip t forward ip daddr vmap @ingress-pods",
		"add set ip t " + set + " { type ipv4_addr; flags interval; }",
		"add element ip t " + set + " { 10.42.0.3 }",
	}, "\n") + "\n"
	// Chains come in name order; egr- sorts before ing-.
	want += strings.Join([]string{
		"add chain ip t " + egrChain,
		"add rule ip t " + egrChain + " drop",
		"add chain ip t " + ingChain,
		"add rule ip t " + ingChain + " ip saddr @" + set + " meta l4proto tcp th dport { 80 } accept",
		"add rule ip t " + ingChain + " drop",
		"add element ip t ingress-pods { 10.42.0.2 : jump " + ingChain + " }",
		"add element ip t egress-pods { 10.42.0.3 : jump " + egrChain + " }",
	}, "\n") + "\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("full script (-want +got):\n%s", diff)
	}
}

// TestDiffScript checks that changes touch only what they affect.
func TestDiffScript(t *testing.T) {
	web := pod("app", "web", "n1", "10.42.0.2", map[string]string{"app": "web"})
	api := pod("app", "api", "n1", "10.42.0.4", map[string]string{"app": "api"})
	client := pod("app", "client", "n1", "10.42.0.3", map[string]string{"app": "client"})
	webPol := withIngress(policy("app", "web", sel("app", "web"), ing),
		networkingv1.NetworkPolicyIngressRule{
			From:  []networkingv1.NetworkPolicyPeer{podPeer(sel("app", "client"))},
			Ports: []networkingv1.NetworkPolicyPort{tcp(80)},
		})
	apiPol := withIngress(policy("app", "api", sel("app", "api"), ing),
		networkingv1.NetworkPolicyIngressRule{Ports: []networkingv1.NetworkPolicyPort{tcp(8443)}})
	webPol2 := webPol.DeepCopy()
	webPol2.Spec.Ingress[0].Ports = []networkingv1.NetworkPolicyPort{tcp(81)}
	client2 := client.DeepCopy()
	client2.Status.PodIP, client2.Status.PodIPs = "10.42.0.9", []v1.PodIP{{IP: "10.42.0.9"}}
	web2 := web.DeepCopy()
	web2.Status.PodIP, web2.Status.PodIPs = "10.42.0.7", []v1.PodIP{{IP: "10.42.0.7"}}

	base := []*v1.Pod{web, api, client}
	webChain, apiChain := chainName(web, ingress), chainName(api, ingress)
	webSet := setName(webPol, ingress, 0, "")
	cases := []struct {
		name   string
		after  *snapshot
		want   []string // commands expected, in order
		absent []string // substrings that must not occur
	}{
		{
			name:  "nothing changed",
			after: testSnapshot(base, webPol, apiPol),
			want:  nil,
		},
		{
			name:  "policy change rewrites only the chains of pods it selects",
			after: testSnapshot(base, webPol2, apiPol),
			want: []string{
				"flush chain ip t " + webChain,
				"add rule ip t " + webChain + " ip saddr @" + webSet + " meta l4proto tcp th dport { 81 } accept",
				"add rule ip t " + webChain + " drop",
			},
			absent: []string{apiChain, "set", "element"},
		},
		{
			name:  "peer address change updates only the set",
			after: testSnapshot([]*v1.Pod{web, api, client2}, webPol, apiPol),
			want: []string{
				"flush set ip t " + webSet,
				"add element ip t " + webSet + " { 10.42.0.9 }",
			},
			absent: []string{"chain"},
		},
		{
			name:  "local pod address change moves its map element",
			after: testSnapshot([]*v1.Pod{web2, api, client}, webPol, apiPol),
			want: []string{
				"delete element ip t ingress-pods { 10.42.0.2 }",
				"add element ip t ingress-pods { 10.42.0.7 : jump " + webChain + " }",
			},
			absent: []string{"chain ip", "set"},
		},
		{
			name:  "policy deleted: map element, chain and set go, in that order",
			after: testSnapshot(base, apiPol),
			want: []string{
				"delete element ip t ingress-pods { 10.42.0.2 }",
				"flush chain ip t " + webChain,
				"delete chain ip t " + webChain,
				"delete set ip t " + webSet,
			},
			absent: []string{apiChain},
		},
	}
	before := buildRuleset(testSnapshot(base, webPol, apiPol), "n1")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := diffScript("t", before, buildRuleset(tc.after, "n1"))
			var lines []string
			if got != "" {
				lines = strings.Split(strings.TrimSuffix(got, "\n"), "\n")
			}
			if diff := cmp.Diff(tc.want, lines); diff != "" {
				t.Errorf("diff script (-want +got):\n%s", diff)
			}
			for _, a := range tc.absent {
				if strings.Contains(got, a) {
					t.Errorf("script mentions %q:\n%s", a, got)
				}
			}
		})
	}
}

func TestBuildRulesetSkipsPods(t *testing.T) {
	everyone := &metav1.LabelSelector{}
	hostNet := pod("app", "hostnet", "n1", "192.168.0.2", nil)
	hostNet.Spec.HostNetwork = true
	noIP := pod("app", "pending", "n1", "", nil)
	failed := pod("app", "failed", "n1", "10.42.0.8", nil)
	failed.Status.Phase = v1.PodFailed
	remote := pod("app", "remote", "n2", "10.42.1.2", nil)
	rs := buildRuleset(testSnapshot([]*v1.Pod{hostNet, noIP, failed, remote}, policy("app", "deny", everyone, ing, egr)), "n1")
	if len(rs.chains)+len(rs.ingress)+len(rs.egress) != 0 {
		t.Errorf("expected no pod chains, got %v %v %v", rs.chains, rs.ingress, rs.egress)
	}
}
