package flowtable

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"unsafe"

	"github.com/softnet-go/softnet/uma"
)

// TestReadersHaveTheirOwnLines checks the sizes that keep what lookups read on cache
// lines nobody writes: 64-byte nodes (carved from page-aligned slabs), a 64-byte array
// header, and a 192-byte Table (64-byte aligned size classes) whose first line holds
// the readers' fields only.
func TestReadersHaveTheirOwnLines(t *testing.T) {
	var tb Table[flow]
	for _, c := range []struct {
		what      string
		got, want uintptr
	}{
		{"node", unsafe.Sizeof(node[flow]{}), 64},
		{"array", unsafe.Sizeof(array[flow]{}), 64},
		{"Table", unsafe.Sizeof(tb), 192},
		{"Table.count offset", unsafe.Offsetof(tb.count), 64},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d bytes, want %d", c.what, c.got, c.want)
		}
	}
}

// TestInsertAtTheMemoryLimit fills a table under a small Limit: Insert fails with
// ENOBUFS and changes nothing, growths that find no memory are abandoned without losing
// an entry, and deleting entries makes room again once their grace period is over.
func TestInsertAtTheMemoryLimit(t *testing.T) {
	limit, err := uma.NewLimit(128 << 10) // two slabs of 1024 nodes
	if err != nil {
		t.Fatal(err)
	}
	tb := newTable(t, limit, 0)
	n := 0
	for ; ; n++ {
		k := testKey(n)
		_, _, err := tb.Insert(k, &flow{key: k, id: uint64(n)})
		if err != nil {
			if !errors.Is(err, syscall.ENOBUFS) {
				t.Fatalf("Insert %d: %v, want ENOBUFS", n, err)
			}
			break
		}
		if n > 4096 {
			t.Fatal("4096 nodes fitted in 2048 nodes' worth of memory")
		}
	}
	s := tb.Stats()
	t.Logf("%d entries fitted; %d grows, %d failed rebuilds, %d buckets; %d of %d bytes used",
		n, s.Grows, s.FailedRebuilds, s.Buckets, limit.Used(), limit.Max())
	if n < 1024 || s.Len != n {
		t.Fatalf("%d entries fitted in memory for 2048 nodes, Len %d", n, s.Len)
	}
	if s.FailedRebuilds == 0 {
		t.Fatal("growing past 1024 entries needs more nodes than the limit holds, yet no rebuild failed")
	}
	if limit.Used() > limit.Max() {
		t.Fatalf("%d bytes used over a limit of %d", limit.Used(), limit.Max())
	}
	if _, ok := tb.Lookup(testKey(n)); ok {
		t.Fatal("the key whose Insert failed is in the table")
	}
	for i := range n {
		if v, ok := tb.Lookup(testKey(i)); !ok || v.id != uint64(i) {
			t.Fatalf("at the limit, entry %d was lost", i)
		}
	}
	checkZone(t, tb)

	// Deleting a few buckets' worth of entries makes room for new ones: their nodes come
	// back once the grace period is over (at once: no reader is in a section).
	for i := range 512 {
		tb.Delete(testKey(i))
	}
	for i := range 256 {
		k := testKey(100000 + i)
		if _, _, err := tb.Insert(k, &flow{key: k}); err != nil {
			t.Fatalf("after 512 deletes, insert %d: %v", i, err)
		}
	}
	tb.Expire(func(netip.AddrPort, *flow) bool { return true })
	checkZone(t, tb)
	if s := tb.Stats(); s.Len != 0 || s.Zone.InUse != 0 {
		t.Fatalf("emptied: %d entries, %d nodes in use", s.Len, s.Zone.InUse)
	}
}
