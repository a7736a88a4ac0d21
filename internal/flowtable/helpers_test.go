package flowtable

import (
	"net/netip"
	"strconv"
	"testing"

	"github.com/softnet-go/softnet/uma"
)

// A flow is the tests' value: it carries its own key, so a reader can tell a value found
// under the wrong key, and an id, so it can tell one insertion from the next.
type flow struct {
	key netip.AddrPort
	id  uint64
}

func newTable(t testing.TB, limit *uma.Limit, sizeHint int) *Table[flow] {
	t.Helper()
	tb, err := New[flow](t.Name(), limit, sizeHint)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// testKey returns the i-th key of a space that mixes the kinds the relay meets: IPv4,
// IPv6, IPv4-mapped IPv6 (the same 16 bytes and port as the IPv4 key two before it, yet a
// different key) and scoped link-local IPv6 (the same address under several zones).
func testKey(i int) netip.AddrPort {
	v4 := func(j int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(j >> 16), byte(j >> 8), byte(j)}) }
	switch i % 4 {
	case 0:
		return netip.AddrPortFrom(v4(i), uint16(1024+i))
	case 1:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)}), 53)
	case 2:
		return netip.AddrPortFrom(netip.AddrFrom16(v4(i-2).As16()), uint16(1024+i-2))
	default:
		a := netip.AddrFrom16([16]byte{0xfe, 0x80, 14: byte(i >> 11), 15: byte(i >> 3)})
		return netip.AddrPortFrom(a.WithZone("eth"+strconv.Itoa(i&7)), 4789)
	}
}

// checkZone asserts the node zone's exact accounting with the table quiescent: every
// node in use is an entry, and the zone's identities hold to the item.
func checkZone(t *testing.T, tb *Table[flow]) {
	t.Helper()
	s := tb.Stats()
	z := s.Zone
	if z.InUse != int64(s.Len) {
		t.Errorf("zone has %d nodes in use for %d entries", z.InUse, s.Len)
	}
	if z.Imported != z.InUse+z.CachedP+z.CachedZone {
		t.Errorf("zone imported %d != in use %d + cached per P %d + cached in zone %d",
			z.Imported, z.InUse, z.CachedP, z.CachedZone)
	}
	if z.InUse != z.Requests-z.Frees {
		t.Errorf("zone in use %d != requests %d - frees %d", z.InUse, z.Requests, z.Frees)
	}
}
