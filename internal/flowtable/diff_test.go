package flowtable

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestMatchesAMap drives the table and a plain map with the same random operations, from
// the owner only, and compares them after each: lookups, Len, and now and then a Range
// and the zone's accounting. Fills and drains alternate, so the table grows and shrinks.
func TestMatchesAMap(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	tb := newTable(t, nil, 0)
	model := make(map[netip.AddrPort]*flow)
	const space = 3000
	ops := 200000
	if testing.Short() {
		ops = 40000
	}
	fill := true
	for op := range ops {
		k := testKey(r.IntN(space))
		ins := 5 // percent of inserts: few while draining, most while filling
		if fill {
			ins = 55
		}
		switch x := r.IntN(100); {
		case x < ins: // insert or replace
			v := &flow{key: k, id: uint64(op)}
			old, replaced, err := tb.Insert(k, v)
			if err != nil {
				t.Fatalf("op %d: Insert(%v): %v", op, k, err)
			}
			if mo, ok := model[k]; old != mo || replaced != ok {
				t.Fatalf("op %d: Insert(%v) = %v, %v; want %v, %v", op, k, old, replaced, mo, ok)
			}
			model[k] = v
		case x < ins+35: // delete, present or not
			v, ok := tb.Delete(k)
			if mv, mok := model[k]; v != mv || ok != mok {
				t.Fatalf("op %d: Delete(%v) = %v, %v; want %v, %v", op, k, v, ok, mv, mok)
			}
			delete(model, k)
		case x < ins+37: // expire a random part
			mod, rem := 2+r.IntN(5), r.IntN(2)
			want := 0
			for k, v := range model {
				if v.id%uint64(mod) == uint64(rem) {
					delete(model, k)
					want++
				}
			}
			got := tb.Expire(func(k netip.AddrPort, v *flow) bool {
				if v.key != k {
					t.Fatalf("op %d: Expire offered %v with the value of %v", op, k, v.key)
				}
				return v.id%uint64(mod) == uint64(rem)
			})
			if got != want {
				t.Fatalf("op %d: Expire deleted %d, want %d", op, got, want)
			}
		default: // lookup
			v, ok := tb.Lookup(k)
			if mv, mok := model[k]; v != mv || ok != mok {
				t.Fatalf("op %d: Lookup(%v) = %v, %v; want %v, %v", op, k, v, ok, mv, mok)
			}
		}
		if tb.Len() != len(model) {
			t.Fatalf("op %d: Len = %d, want %d", op, tb.Len(), len(model))
		}
		if fill && len(model) > space*8/10 || !fill && len(model) < space/20 {
			fill = !fill
		}
		if op%997 == 0 {
			checkRangeMatches(t, tb, model)
			checkZone(t, tb)
		}
	}
	for k, mv := range model {
		if v, ok := tb.Lookup(k); v != mv || !ok {
			t.Fatalf("at the end: Lookup(%v) = %v, %v; want %v", k, v, ok, mv)
		}
	}
	checkRangeMatches(t, tb, model)
	s := tb.Stats()
	t.Logf("%d grows, %d shrinks, %d buckets for %d entries", s.Grows, s.Shrinks, s.Buckets, s.Len)
	if s.Grows == 0 || s.Shrinks == 0 {
		t.Errorf("the table never grew (%d) or never shrank (%d): the test missed its point", s.Grows, s.Shrinks)
	}
	for k := range model {
		tb.Delete(k)
	}
	s = tb.Stats()
	if s.Len != 0 || s.Zone.InUse != 0 || s.Buckets != minBuckets {
		t.Errorf("emptied: %d entries, %d nodes in use, %d buckets; want 0, 0, %d", s.Len, s.Zone.InUse, s.Buckets, minBuckets)
	}
	checkZone(t, tb)
}

// checkRangeMatches asserts that Range on a quiescent table visits exactly the model.
func checkRangeMatches(t *testing.T, tb *Table[flow], model map[netip.AddrPort]*flow) {
	t.Helper()
	seen := make(map[netip.AddrPort]bool, len(model))
	tb.Range(func(k netip.AddrPort, v *flow) bool {
		if seen[k] {
			t.Fatalf("Range visited %v twice", k)
		}
		seen[k] = true
		if model[k] != v {
			t.Fatalf("Range visited %v with %v, want %v", k, v, model[k])
		}
		return true
	})
	if len(seen) != len(model) {
		t.Fatalf("Range visited %d entries, want %d", len(seen), len(model))
	}
}
