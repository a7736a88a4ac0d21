package flowtable

import (
	"net/netip"
	"testing"
)

// rangeAcross runs Range over a table holding the keys [0, stable) and calls between after
// each visit, which may change the table (fn runs outside any section, so it may); it
// asserts that every stable key was visited exactly once and no key twice.
func rangeAcross(t *testing.T, tb *Table[flow], stable int, between func(visits int)) {
	t.Helper()
	want := make(map[netip.AddrPort]int, stable)
	for i := range stable {
		want[testKey(i)] = 0
	}
	seen := make(map[netip.AddrPort]bool)
	visits := 0
	tb.Range(func(k netip.AddrPort, v *flow) bool {
		if v.key != k {
			t.Fatalf("Range visited %v with the value of %v", k, v.key)
		}
		if seen[k] {
			t.Fatalf("Range visited %v twice", k)
		}
		seen[k] = true
		if _, ok := want[k]; ok {
			want[k]++
		}
		visits++
		between(visits)
		return true
	})
	for k, n := range want {
		if n != 1 {
			t.Fatalf("a key present throughout, %v, was visited %d times", k, n)
		}
	}
}

func insertRange(t *testing.T, tb *Table[flow], from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		k := testKey(i)
		if _, _, err := tb.Insert(k, &flow{key: k, id: uint64(i)}); err != nil {
			t.Fatal(err)
		}
	}
}

func deleteRange(tb *Table[flow], from, to int) {
	for i := from; i < to; i++ {
		tb.Delete(testKey(i))
	}
}

// TestRangeAcrossGrowth grows the table several times while a Range is under way.
func TestRangeAcrossGrowth(t *testing.T) {
	tb := newTable(t, nil, 0)
	insertRange(t, tb, 0, 300)
	before := tb.Stats()
	grown := 0
	rangeAcross(t, tb, 300, func(visits int) {
		if visits%50 == 1 && grown < 5 { // the new keys are visited too: bound the growth
			insertRange(t, tb, 10000*(grown+1), 10000*(grown+1)+400<<grown)
			grown++
		}
	})
	if s := tb.Stats(); s.Grows-before.Grows < 4 {
		t.Fatalf("only %d grows during the Range", s.Grows-before.Grows)
	}
}

// TestRangeAcrossShrinking shrinks the table while a Range is under way, so that the
// bucket under the cursor holds entries already visited.
func TestRangeAcrossShrinking(t *testing.T) {
	tb := newTable(t, nil, 0)
	insertRange(t, tb, 0, 5000)
	before := tb.Stats()
	rangeAcross(t, tb, 100, func(visits int) {
		switch visits {
		case 40:
			deleteRange(tb, 2500, 5000)
		case 80:
			deleteRange(tb, 400, 2500)
		case 100:
			deleteRange(tb, 100, 400)
		}
	})
	if s := tb.Stats(); s.Shrinks-before.Shrinks < 2 {
		t.Fatalf("only %d shrinks during the Range", s.Shrinks-before.Shrinks)
	}
}

// TestRangeAcrossGrowAndShrink alternates both, again and again.
func TestRangeAcrossGrowAndShrink(t *testing.T) {
	tb := newTable(t, nil, 0)
	insertRange(t, tb, 0, 200)
	before := tb.Stats()
	big, toggles := false, 0
	rangeAcross(t, tb, 200, func(visits int) {
		if visits%7 != 0 || toggles == 40 {
			return
		}
		toggles++
		if big {
			deleteRange(tb, 10000, 14000)
		} else {
			insertRange(t, tb, 10000, 14000)
		}
		big = !big
	})
	s := tb.Stats()
	t.Logf("%d grows, %d shrinks", s.Grows-before.Grows, s.Shrinks-before.Shrinks)
	if s.Grows == before.Grows || s.Shrinks == before.Shrinks {
		t.Fatal("the table did not both grow and shrink during the Range")
	}
}

func TestRangeStops(t *testing.T) {
	tb := newTable(t, nil, 0)
	insertRange(t, tb, 0, 1000)
	n := 0
	tb.Range(func(netip.AddrPort, *flow) bool {
		n++
		return n < 10
	})
	if n != 10 {
		t.Fatalf("Range went on for %d visits after fn returned false at 10", n)
	}
	n = 0
	empty := newTable(t, nil, 1<<12) // sparse: many batches of empty buckets
	empty.Range(func(netip.AddrPort, *flow) bool { n++; return true })
	if n != 0 {
		t.Fatalf("Range visited %d entries of an empty table", n)
	}
}
