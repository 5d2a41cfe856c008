package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"syscall"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// What nft is slow at, done over nf_tables netlink: listing a table's
// objects, and adding the ~100,000 elements of the endpoint maps in a full
// sync. nft parses and evaluates every element and holds them all in
// memory at once (19 µs and 2.6 KB each, most of it malloc and page
// faults: 2 s for 100,000); written from here, the whole full sync of
// 10,000 Services takes ~1 s (bench/README, figure 12a).

// tableObjects are the names of a table's named sets and maps and of its
// chains.
type tableObjects struct {
	sets, chains []string
	maps         map[string]bool // which of sets are maps
}

// mapElements are elements for one map, in nft's text form ("10.43.0.1 .
// tcp . 80 . 0" → "10.42.0.1 . 8080"), with the kinds of the fields of its
// key and value so they can be encoded.
type mapElements struct {
	name       string
	key, value []fieldKind
	elems      [][2]string
}

// fieldKind is one field of a concatenated key or value.
type fieldKind int

const (
	fieldIPv4  fieldKind = iota // ipv4_addr
	fieldProto                  // inet_proto: tcp, udp, sctp
	fieldPort                   // inet_service
	fieldIndex                  // numgen's result: a 32-bit host-order integer
)

// tableAccess is how the proxy lists and fills its table besides nft.
type tableAccess interface {
	// objects lists the table; nothing when it does not exist.
	objects(ctx context.Context, table string) (tableObjects, error)
	// addElements adds elements to maps that exist. It may use several
	// transactions, so the maps must not be in use yet.
	addElements(ctx context.Context, table string, maps []mapElements) error
}

// netlinkTables is the tableAccess of the network namespace whose file
// descriptor is netns (0: the current one).
type netlinkTables struct{ netns int }

func (n netlinkTables) dial() (*netlink.Conn, error) {
	var cfg *netlink.Config
	if n.netns != 0 {
		cfg = &netlink.Config{NetNS: n.netns}
	}
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, cfg)
	if err != nil {
		return nil, fmt.Errorf("proxy: nf_tables netlink: %w", err)
	}
	return c, nil
}

// nfgen is the nfgenmsg header every nf_tables message starts with.
func nfgen(family uint8, resID uint16) []byte {
	return []byte{family, unix.NFNETLINK_V0, byte(resID >> 8), byte(resID)}
}

func nftType(msg int) netlink.HeaderType {
	return netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | msg)
}

func (n netlinkTables) objects(ctx context.Context, table string) (tableObjects, error) {
	c, err := n.dial()
	if err != nil {
		return tableObjects{}, err
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	// Sets and maps (anonymous ones belong to rules and go with them),
	// then chains.
	sets, setFlags, err := n.names(c, unix.NFT_MSG_GETSET, unix.NFTA_SET_TABLE, unix.NFTA_SET_NAME, unix.NFTA_SET_FLAGS, table)
	if err != nil {
		return tableObjects{}, err
	}
	maps := map[string]bool{}
	for i, name := range sets {
		if setFlags[i]&unix.NFT_SET_MAP != 0 {
			maps[name] = true
		}
	}
	chains, _, err := n.names(c, unix.NFT_MSG_GETCHAIN, unix.NFTA_CHAIN_TABLE, unix.NFTA_CHAIN_NAME, 0, table)
	return tableObjects{sets: sets, chains: chains, maps: maps}, err
}

// names dumps the objects of one kind and returns the names of table's,
// leaving out anonymous sets, and their flags (flagsAttr, when not 0,
// holds the set flags).
func (n netlinkTables) names(c *netlink.Conn, msg int, tableAttr, nameAttr, flagsAttr uint16, table string) (names []string, flagsOf []uint32, err error) {
	err = n.dump(c, msg, tableAttr, table, func(ad *netlink.AttributeDecoder) {
		var name, tbl string
		var flags uint32
		for ad.Next() {
			switch ad.Type() {
			case tableAttr:
				tbl = ad.String()
			case nameAttr:
				name = ad.String()
			case flagsAttr:
				if flagsAttr != 0 {
					flags = binary.BigEndian.Uint32(ad.Bytes())
				}
			}
		}
		if tbl == table && flags&unix.NFT_SET_ANONYMOUS == 0 {
			names = append(names, name)
			flagsOf = append(flagsOf, flags)
		}
	})
	return names, flagsOf, err
}

// dump runs one GET dump of family ip for table and calls each on every
// object in the answer. A missing table is an empty answer.
func (n netlinkTables) dump(c *netlink.Conn, msg int, tableAttr uint16, table string, each func(*netlink.AttributeDecoder)) error {
	ae := netlink.NewAttributeEncoder()
	ae.String(tableAttr, table)
	attrs, err := ae.Encode()
	if err != nil {
		return err
	}
	req := netlink.Message{
		Header: netlink.Header{Type: nftType(msg), Flags: netlink.Request | netlink.Dump},
		Data:   append(nfgen(unix.NFPROTO_IPV4, 0), attrs...),
	}
	msgs, err := c.Execute(req)
	if errors.Is(err, syscall.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("proxy: nf_tables dump: %w", err)
	}
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return fmt.Errorf("proxy: nf_tables dump: %w", err)
		}
		each(ad)
		if err := ad.Err(); err != nil {
			return fmt.Errorf("proxy: nf_tables dump: %w", err)
		}
	}
	return nil
}

// Limits of one write. An attribute's length is 16 bits, so the element
// list of one message stays under 64 KiB; a batch is one sendmsg, which
// must fit the socket's default send buffer (~208 KiB).
const (
	maxElemsBytes = 60 << 10
	maxBatchBytes = 180 << 10
)

func (n netlinkTables) addElements(ctx context.Context, table string, maps []mapElements) error {
	c, err := n.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	// Acks carry only the header of the message they answer, not all of
	// it: a batch's acks would otherwise overflow the receive buffer.
	if err := c.SetOption(netlink.CapAcknowledge, true); err != nil {
		return fmt.Errorf("proxy: nf_tables netlink: %w", err)
	}
	_ = c.SetOption(netlink.ExtendedAcknowledge, true) // error messages, where supported
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	var batch []netlink.Message
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := sendBatch(c, batch)
		batch, size = batch[:0], 0
		return err
	}
	for _, m := range maps {
		var list []byte // NFTA_LIST_ELEM attributes
		add := func() error {
			if len(list) == 0 {
				return nil
			}
			msg, err := newSetElemMessage(table, m.name, list)
			if err != nil {
				return err
			}
			if size+len(msg.Data) > maxBatchBytes {
				if err := flush(); err != nil {
					return err
				}
			}
			batch = append(batch, msg)
			size += len(msg.Data)
			list = nil
			return nil
		}
		for _, e := range m.elems {
			key, err := encodeConcat(e[0], m.key)
			if err != nil {
				return fmt.Errorf("proxy: map %s: %w", m.name, err)
			}
			val, err := encodeConcat(e[1], m.value)
			if err != nil {
				return fmt.Errorf("proxy: map %s: %w", m.name, err)
			}
			elem := encodeElem(key, val)
			if len(list)+len(elem) > maxElemsBytes {
				if err := add(); err != nil {
					return err
				}
			}
			list = append(list, elem...)
		}
		if err := add(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return flush()
}

// newSetElemMessage is a NEWSETELEM of the given NFTA_LIST_ELEM attributes.
func newSetElemMessage(table, set string, list []byte) (netlink.Message, error) {
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.NFTA_SET_ELEM_LIST_TABLE, table)
	ae.String(unix.NFTA_SET_ELEM_LIST_SET, set)
	ae.Bytes(unix.NFTA_SET_ELEM_LIST_ELEMENTS|unix.NLA_F_NESTED, list)
	attrs, err := ae.Encode()
	if err != nil {
		return netlink.Message{}, err
	}
	return netlink.Message{
		Header: netlink.Header{Type: nftType(unix.NFT_MSG_NEWSETELEM),
			Flags: netlink.Request | netlink.Acknowledge | netlink.Create},
		Data: append(nfgen(unix.NFPROTO_IPV4, 0), attrs...),
	}, nil
}

// encodeElem is one NFTA_LIST_ELEM: key and data, each an NFTA_DATA_VALUE.
func encodeElem(key, val []byte) []byte {
	value := func(b []byte) []byte { return attr(unix.NFTA_DATA_VALUE, b) }
	inner := append(attr(unix.NFTA_SET_ELEM_KEY|unix.NLA_F_NESTED, value(key)),
		attr(unix.NFTA_SET_ELEM_DATA|unix.NLA_F_NESTED, value(val))...)
	return attr(unix.NFTA_LIST_ELEM|unix.NLA_F_NESTED, inner)
}

// attr encodes one netlink attribute, padded to 4 bytes.
func attr(typ uint16, data []byte) []byte {
	n := 4 + len(data)
	b := make([]byte, (n+3)&^3)
	binary.NativeEndian.PutUint16(b[0:2], uint16(n))
	binary.NativeEndian.PutUint16(b[2:4], typ)
	copy(b[4:], data)
	return b
}

// sendBatch sends msgs as one nf_tables transaction and waits for the
// kernel's answer to each.
func sendBatch(c *netlink.Conn, msgs []netlink.Message) error {
	all := make([]netlink.Message, 0, len(msgs)+2)
	all = append(all, netlink.Message{
		Header: netlink.Header{Type: unix.NFNL_MSG_BATCH_BEGIN, Flags: netlink.Request},
		Data:   nfgen(unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES),
	})
	all = append(all, msgs...)
	all = append(all, netlink.Message{
		Header: netlink.Header{Type: unix.NFNL_MSG_BATCH_END, Flags: netlink.Request},
		Data:   nfgen(unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES),
	})
	if _, err := c.SendMessages(all); err != nil {
		return fmt.Errorf("proxy: nf_tables batch: %w", err)
	}
	for acked := 0; acked < len(msgs); {
		got, err := c.Receive()
		if err != nil {
			return fmt.Errorf("proxy: nf_tables batch: %w", err)
		}
		acked += len(got)
	}
	return nil
}

// encodeConcat encodes a concatenation in nft's text form ("a . b . c") as
// the kernel stores it: each field in a 4-byte-aligned slot.
func encodeConcat(text string, kinds []fieldKind) ([]byte, error) {
	fields := strings.Split(text, " . ")
	if len(fields) != len(kinds) {
		return nil, fmt.Errorf("%q: want %d fields", text, len(kinds))
	}
	out := make([]byte, 4*len(kinds))
	for i, f := range fields {
		slot := out[4*i : 4*i+4]
		switch kinds[i] {
		case fieldIPv4:
			a, err := netip.ParseAddr(f)
			if err != nil || !a.Is4() {
				return nil, fmt.Errorf("%q: bad IPv4 address %q", text, f)
			}
			a4 := a.As4()
			copy(slot, a4[:])
		case fieldProto:
			switch f {
			case "tcp":
				slot[0] = unix.IPPROTO_TCP
			case "udp":
				slot[0] = unix.IPPROTO_UDP
			case "sctp":
				slot[0] = unix.IPPROTO_SCTP
			default:
				return nil, fmt.Errorf("%q: unknown protocol %q", text, f)
			}
		case fieldPort:
			p, err := strconv.ParseUint(f, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("%q: bad port %q", text, f)
			}
			binary.BigEndian.PutUint16(slot, uint16(p))
		case fieldIndex:
			v, err := strconv.ParseUint(f, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%q: bad index %q", text, f)
			}
			binary.NativeEndian.PutUint32(slot, uint32(v))
		}
	}
	return out, nil
}
