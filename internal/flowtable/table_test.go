package flowtable

import (
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"weak"
)

func TestKeysOfEveryKindAreDistinct(t *testing.T) {
	tb := newTable(t, nil, 0)
	const n = 400
	seen := make(map[netip.AddrPort]bool)
	for i := range n {
		k := testKey(i)
		if seen[k] {
			t.Fatalf("testKey(%d) = %v repeats", i, k)
		}
		seen[k] = true
		if _, replaced, err := tb.Insert(k, &flow{key: k, id: uint64(i)}); err != nil || replaced {
			t.Fatalf("Insert(%v) = replaced %v, %v", k, replaced, err)
		}
	}
	if tb.Len() != n {
		t.Fatalf("Len = %d, want %d", tb.Len(), n)
	}
	for i := range n {
		k := testKey(i)
		v, ok := tb.Lookup(k)
		if !ok || v.key != k || v.id != uint64(i) {
			t.Fatalf("Lookup(%v) = %v, %v", k, v, ok)
		}
	}
	for _, k := range []string{"10.0.0.0:1", "[::ffff:10.0.0.0]:1", "[fe80::1%eth9]:4789", "[::]:0"} {
		if v, ok := tb.Lookup(netip.MustParseAddrPort(k)); ok {
			t.Errorf("Lookup(%s) found %v", k, v)
		}
	}
	if _, ok := tb.Lookup(netip.AddrPort{}); ok {
		t.Error("the zero AddrPort was found")
	}
	checkZone(t, tb)
}

func TestInsertReplacesAndDeleteRemoves(t *testing.T) {
	tb := newTable(t, nil, 4)
	k := netip.MustParseAddrPort("192.0.2.1:5000")
	a, b := &flow{key: k, id: 1}, &flow{key: k, id: 2}
	if old, replaced, err := tb.Insert(k, a); old != nil || replaced || err != nil {
		t.Fatalf("first Insert = %v, %v, %v", old, replaced, err)
	}
	if old, replaced, err := tb.Insert(k, b); old != a || !replaced || err != nil {
		t.Fatalf("second Insert = %v, %v, %v; want the first value back", old, replaced, err)
	}
	if v, ok := tb.Lookup(k); v != b || !ok {
		t.Fatalf("Lookup = %v, %v; want the second value", v, ok)
	}
	if tb.Len() != 1 {
		t.Fatalf("Len = %d after a replace", tb.Len())
	}
	if v, ok := tb.Delete(k); v != b || !ok {
		t.Fatalf("Delete = %v, %v", v, ok)
	}
	if v, ok := tb.Delete(k); v != nil || ok {
		t.Fatalf("second Delete = %v, %v", v, ok)
	}
	if v, ok := tb.Lookup(k); v != nil || ok {
		t.Fatalf("Lookup after Delete = %v, %v", v, ok)
	}
	checkZone(t, tb)
}

func TestInsertNilPanics(t *testing.T) {
	tb := newTable(t, nil, 0)
	defer func() {
		if recover() == nil {
			t.Fatal("Insert of nil did not panic")
		}
	}()
	tb.Insert(netip.MustParseAddrPort("192.0.2.1:1"), nil)
}

func TestNewRejectsBadArguments(t *testing.T) {
	if _, err := New[flow]("", nil, 0); err == nil {
		t.Error("an empty name was accepted")
	}
	if _, err := New[flow]("x", nil, -1); err == nil {
		t.Error("a negative sizeHint was accepted")
	}
}

func TestSizeHintPresizesAndBoundsShrinking(t *testing.T) {
	tb := newTable(t, nil, 1000)
	if b := tb.Stats().Buckets; b != 1024 {
		t.Fatalf("sizeHint 1000 gave %d buckets, want 1024", b)
	}
	for i := range 1000 {
		k := testKey(i)
		tb.Insert(k, &flow{key: k})
	}
	if s := tb.Stats(); s.Grows != 0 || s.Buckets != 1024 {
		t.Fatalf("1000 entries under a hint of 1000: %d grows, %d buckets", s.Grows, s.Buckets)
	}
	tb.Insert(testKey(5000), &flow{key: testKey(5000)})
	tb.Insert(testKey(5001), &flow{key: testKey(5001)})
	for i := range 30 {
		tb.Insert(testKey(6000+i), &flow{key: testKey(6000 + i)})
	}
	if s := tb.Stats(); s.Grows != 1 || s.Buckets != 2048 {
		t.Fatalf("past the load factor: %d grows, %d buckets; want 1, 2048", s.Grows, s.Buckets)
	}
	if n := tb.Expire(func(netip.AddrPort, *flow) bool { return true }); n != 1032 {
		t.Fatalf("Expire of everything deleted %d, want 1032", n)
	}
	if s := tb.Stats(); s.Shrinks != 1 || s.Buckets != 1024 || s.Len != 0 {
		t.Fatalf("emptied: %d shrinks, %d buckets, %d entries; want 1, 1024 (the hint), 0", s.Shrinks, s.Buckets, s.Len)
	}
	checkZone(t, tb)
}

func TestLookupDoesNotAllocate(t *testing.T) {
	tb := newTable(t, nil, 0)
	keys := make([]netip.AddrPort, 64)
	for i := range keys {
		keys[i] = testKey(i) // every kind: IPv4, IPv6, mapped, scoped
		tb.Insert(keys[i], &flow{key: keys[i]})
	}
	misses := []netip.AddrPort{testKey(1000), testKey(1001), testKey(1002), testKey(1003)}
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		tb.Lookup(keys[i%len(keys)])
		tb.Lookup(misses[i%len(misses)])
		s := tb.SMR()
		s.Enter()
		tb.LookupInSection(keys[i%len(keys)])
		s.Exit()
		i++
	}); n != 0 {
		t.Fatalf("a lookup allocates %v times", n)
	}
}

// TestDeletedValueIsNotRetained: a deleted node waits in the zone's caches, but it must
// not keep its flow from the garbage collector.
func TestDeletedValueIsNotRetained(t *testing.T) {
	tb := newTable(t, nil, 0)
	k := netip.MustParseAddrPort("192.0.2.1:5000")
	v := &flow{key: k}
	w := weak.Make(v)
	tb.Insert(k, v)
	tb.Delete(k)
	v = nil
	runtime.GC()
	if w.Value() != nil {
		t.Fatal("a deleted flow is still reachable from the table's zone")
	}
	if tb.Stats().Zone.CachedP+tb.Stats().Zone.CachedZone == 0 {
		t.Fatal("the deleted node is not in the zone's caches: the test missed its point")
	}
}

func TestLoadOrInsertNeverReplaces(t *testing.T) {
	tb := newTable(t, nil, 4)
	k := netip.MustParseAddrPort("192.0.2.1:0")
	a, b := &flow{key: k, id: 1}, &flow{key: k, id: 2}
	if v, loaded, err := tb.LoadOrInsert(k, a); v != a || loaded || err != nil {
		t.Fatalf("first LoadOrInsert = %v, %v, %v; want the value stored", v, loaded, err)
	}
	if v, loaded, err := tb.LoadOrInsert(k, b); v != a || !loaded || err != nil {
		t.Fatalf("second LoadOrInsert = %v, %v, %v; want the first value loaded", v, loaded, err)
	}
	if v, ok := tb.Lookup(k); v != a || !ok || tb.Len() != 1 {
		t.Fatalf("Lookup = %v, %v, Len %d; want the first value, alone", v, ok, tb.Len())
	}
}

func TestLoadOrInsertRacersAgree(t *testing.T) {
	tb := newTable(t, nil, 0)
	const racers, keys = 4, 500
	got := make([][]*flow, racers)
	var wg sync.WaitGroup
	for r := range racers {
		got[r] = make([]*flow, keys)
		wg.Go(func() {
			for i := range keys {
				k := testKey(i)
				v, _, err := tb.LoadOrInsert(k, &flow{key: k, id: uint64(r)})
				if err != nil {
					t.Error(err)
					return
				}
				got[r][i] = v
			}
		})
	}
	wg.Wait()
	for i := range keys {
		for r := 1; r < racers; r++ {
			if got[r][i] != got[0][i] {
				t.Fatalf("key %v: racer %d got %p, racer 0 got %p", testKey(i), r, got[r][i], got[0][i])
			}
		}
	}
	if tb.Len() != keys {
		t.Fatalf("Len = %d, want %d", tb.Len(), keys)
	}
	checkZone(t, tb)
}
