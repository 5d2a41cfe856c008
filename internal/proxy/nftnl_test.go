package proxy

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// The elements addElements writes read back from nft exactly as the same
// elements written by nft itself, and objects lists what nft made (not
// the anonymous set of a rule).
func TestKernelNetlinkTables(t *testing.T) {
	requireRoot(t)
	ns := newNetns(t, "nl")
	nl := netlinkTables{netns: netnsFD(t, ns)}
	run := nftIn(ns)

	if objs, err := nl.objects(t.Context(), "by-netlink"); err != nil || len(objs.sets)+len(objs.chains) > 0 {
		t.Fatalf("objects of a missing table: %+v, %v", objs, err)
	}

	d := dispatchKey{policy: "cluster", n: 3, gen: 2}
	addr := mapElements{name: d.addrMap(), key: []fieldKind{fieldIPv4, fieldProto, fieldPort, fieldIndex}, value: []fieldKind{fieldIPv4, fieldPort},
		elems: [][2]string{{"10.43.0.1 . tcp . 80 . 0", "10.42.0.1 . 8080"}, {"10.43.0.1 . tcp . 80 . 2", "10.42.0.3 . 65535"},
			{"198.51.100.7 . udp . 53 . 1", "10.42.1.2 . 5353"}, {"10.43.255.254 . sctp . 9 . 65536", "10.42.0.1 . 1"}}}
	port := mapElements{name: d.portMap(), key: []fieldKind{fieldProto, fieldPort, fieldIndex}, value: addr.value,
		elems: [][2]string{{"tcp . 30080 . 1", "10.42.0.2 . 8080"}}}
	// Enough elements for several messages and batches.
	for i := range 20000 {
		port.elems = append(port.elems, [2]string{fmt.Sprintf("udp . %d . %d", 30000+i%2000, i/2000), fmt.Sprintf("10.42.%d.%d . %d", i>>8&255, i&255, i%65536)})
	}
	maps := []mapElements{addr, port}

	for _, table := range []string{"by-nft", "by-netlink"} {
		var w strings.Builder
		fmt.Fprintf(&w, "add table ip %[1]s\nadd chain ip %[1]s c\nadd rule ip %[1]s c ip saddr != { 10.0.0.0/8, 192.168.0.1 } drop\n", table)
		writeDispatchMaps(&w, table, d)
		if table == "by-nft" {
			for _, m := range maps {
				for _, e := range m.elems {
					fmt.Fprintf(&w, "add element ip %s %s { %s : %s }\n", table, m.name, e[0], e[1])
				}
			}
		}
		if err := run(t.Context(), w.String()); err != nil {
			t.Fatal(err)
		}
	}
	if err := nl.addElements(t.Context(), "by-netlink", maps); err != nil {
		t.Fatal(err)
	}
	for _, m := range maps {
		list := func(table string) string {
			out := sh(t, "ip", "netns", "exec", ns, "nft", "list", "map", "ip", table, m.name)
			return strings.ReplaceAll(out, table, "T")
		}
		if a, b := list("by-nft"), list("by-netlink"); a != b {
			t.Errorf("map %s differs:\nwritten by nft:\n%.2000s\nwritten through netlink:\n%.2000s", m.name, a, b)
		}
	}

	objs, err := nl.objects(t.Context(), "by-netlink")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(objs.sets)
	if want := []string{d.addrMap(), d.portMap()}; !slices.Equal(objs.sets, want) || !slices.Equal(objs.chains, []string{"c"}) {
		t.Errorf("objects: %+v, want sets %v and chain c", objs, want)
	}

	// A bad element fails the call.
	bad := mapElements{name: d.addrMap(), key: addr.key, value: addr.value, elems: [][2]string{{"10.43.0.1 . tcp . 80 . 0", "10.42.0.9 . 80"}}}
	if err := nl.addElements(t.Context(), "by-netlink", []mapElements{bad}); err == nil {
		t.Error("an element whose key exists with another value was accepted")
	}
	bad.name = "no-such-map"
	if err := nl.addElements(t.Context(), "by-netlink", []mapElements{bad}); err == nil {
		t.Error("elements for a missing map were accepted")
	}
}

func TestEncodeConcat(t *testing.T) {
	for _, tc := range []struct {
		text  string
		kinds []fieldKind
		want  []byte // nil: an error
	}{
		{"10.43.0.1 . tcp . 80 . 1", []fieldKind{fieldIPv4, fieldProto, fieldPort, fieldIndex},
			binary.NativeEndian.AppendUint32([]byte{10, 43, 0, 1, 6, 0, 0, 0, 0, 80, 0, 0}, 1)},
		{"udp . 30000", []fieldKind{fieldProto, fieldPort}, []byte{17, 0, 0, 0, 0x75, 0x30, 0, 0}},
		{"sctp . 65535", []fieldKind{fieldProto, fieldPort}, []byte{132, 0, 0, 0, 0xff, 0xff, 0, 0}},
		{"10.43.0.1 . tcp", []fieldKind{fieldIPv4}, nil},
		{"::1", []fieldKind{fieldIPv4}, nil},
		{"icmp", []fieldKind{fieldProto}, nil},
		{"65536", []fieldKind{fieldPort}, nil},
		{"-1", []fieldKind{fieldIndex}, nil},
	} {
		got, err := encodeConcat(tc.text, tc.kinds)
		if tc.want == nil {
			if err == nil {
				t.Errorf("%q: no error, got %v", tc.text, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %v, %v; want %v", tc.text, got, err, tc.want)
		}
	}
}
