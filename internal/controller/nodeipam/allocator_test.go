package nodeipam

import (
	"net/netip"
	"testing"
)

func TestAllocator(t *testing.T) {
	a, err := newAllocator(netip.MustParsePrefix("10.42.0.0/22"), 24)
	if err != nil {
		t.Fatal(err)
	}
	a.occupy(netip.MustParsePrefix("10.42.1.0/24"))
	a.occupy(netip.MustParsePrefix("10.99.0.0/24")) // not ours: ignored
	a.occupy(netip.MustParsePrefix("10.42.2.0/23")) // not node-sized: ignored
	var got []string
	for {
		p, ok := a.next()
		if !ok {
			break
		}
		got = append(got, p.String())
	}
	want := []string{"10.42.0.0/24", "10.42.2.0/24", "10.42.3.0/24"}
	if len(got) != len(want) {
		t.Fatalf("allocated %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("allocated %v, want %v", got, want)
		}
	}
	// A freed CIDR is given again once the others are taken.
	a.free(netip.MustParsePrefix("10.42.2.0/24"))
	if p, ok := a.next(); !ok || p.String() != "10.42.2.0/24" {
		t.Errorf("after freeing 10.42.2.0/24 next = %v %v", p, ok)
	}
	if v6, err := newAllocator(netip.MustParsePrefix("fd00:42::/56"), 64); err != nil {
		t.Error(err)
	} else if p, _ := v6.next(); p.String() != "fd00:42::/64" {
		t.Errorf("IPv6 first = %v", p)
	} else if p, _ := v6.next(); p.String() != "fd00:42:0:1::/64" {
		t.Errorf("IPv6 second = %v", p)
	}
	for _, bad := range []struct {
		cluster string
		bits    int
	}{{"10.42.0.0/16", 8}, {"10.0.0.0/8", 28}, {"10.42.0.0/16", 33}} {
		if _, err := newAllocator(netip.MustParsePrefix(bad.cluster), bad.bits); err == nil {
			t.Errorf("cluster %s with /%d accepted", bad.cluster, bad.bits)
		}
	}
}
