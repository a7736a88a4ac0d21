package flowtable

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stressTime bounds each concurrent test.
func stressTime() time.Duration {
	if testing.Short() {
		return 250 * time.Millisecond
	}
	return time.Second
}

// A keyState follows the owner through one key's life, so that a reader can tell what a
// lookup must see. It only counts up: modulo 4, 0 is absent, 1 being inserted, 2 present
// and 3 being deleted. The owner steps it before and after each Insert and Delete (and,
// for Expire, in the callback, before the unlink, and after Expire returns), so a reader
// that reads the same count before and after its lookup knows the key was present (2) or
// absent (0) for the whole lookup.
type keyState struct{ atomic.Uint64 }

const (
	absent  = 0
	present = 2
)

// stressOwner is the owner of the table in the concurrent tests: until stop, it inserts,
// replaces, deletes and expires keys, filling the table to 3/4 of the key space and
// draining it to 1/20 in turn, so that it grows and shrinks all the time. It returns the
// number of operations it made.
func stressOwner(t *testing.T, tb *Table[flow], keys []netip.AddrPort, st []keyState, stop *atomic.Bool) int {
	r := rand.New(rand.NewPCG(rand.Uint64(), 1))
	space := len(keys)
	n, fill, serial := 0, true, uint64(0)
	insert := func(i int) {
		serial++
		if _, _, err := tb.Insert(keys[i], &flow{key: keys[i], id: uint64(i)<<32 | serial}); err != nil {
			t.Error(err)
		}
	}
	var expired []int
	op := 0
	for ; !stop.Load(); op++ {
		i := r.IntN(space)
		switch st[i].Load() % 4 {
		case absent:
			if fill || r.IntN(32) == 0 {
				st[i].Add(1)
				insert(i)
				st[i].Add(1)
				n++
			}
		case present:
			switch {
			case fill && r.IntN(4) == 0:
				insert(i) // replace: the key stays present
			case !fill || r.IntN(16) == 0:
				st[i].Add(1)
				tb.Delete(keys[i])
				st[i].Add(1)
				n--
			}
		}
		if op%4096 == 0 {
			expired = expired[:0]
			half := r.Uint64() & 1
			tb.Expire(func(k netip.AddrPort, v *flow) bool {
				if v.id&1 != half {
					return false
				}
				i := int(v.id >> 32)
				st[i].Add(1)
				expired = append(expired, i)
				return true
			})
			for _, i := range expired {
				st[i].Add(1)
			}
			n -= len(expired)
		}
		if fill && n > space*3/4 || !fill && n < space/20 {
			fill = !fill
		}
	}
	return op
}

// TestConcurrentLookupsLoseNothing: readers on other goroutines look keys up (Lookup, and
// LookupInSection inside their own sections) and range over the table while the owner
// inserts, replaces, deletes, expires, grows and shrinks it. A key present for the whole
// of a lookup must be found, one absent for the whole of it must not, and a value found
// must be one stored under that key; Range must visit every key present throughout once,
// no key twice, and no key absent throughout.
//
// With a load factor of 16, chains are long, so readers often stand on a node the owner
// has just unlinked, and must walk on from it to the keys after it.
func TestConcurrentLookupsLoseNothing(t *testing.T) {
	for _, load := range []int{1, 16} {
		t.Run(fmt.Sprintf("load=%d", load), func(t *testing.T) {
			defer func(old int) { maxLoad = old }(maxLoad)
			maxLoad = load
			testConcurrentLookups(t)
		})
	}
}

func testConcurrentLookups(t *testing.T) {
	const space = 2048
	tb := newTable(t, nil, 0)
	keys := make([]netip.AddrPort, space)
	for i := range keys {
		keys[i] = testKey(i)
	}
	st := make([]keyState, space)
	var stop atomic.Bool
	var lookups, mustFind, mustMiss, ranges, ops atomic.Int64
	var lost, ghosts, wrong, dups atomic.Int64
	var wg sync.WaitGroup

	check := func(i int, v *flow, ok bool, c1, c2 uint64) {
		if ok && (v == nil || v.key != keys[i] || int(v.id>>32) != i) {
			wrong.Add(1)
		}
		if c1 != c2 {
			return
		}
		switch c1 % 4 {
		case present:
			mustFind.Add(1)
			if !ok {
				lost.Add(1)
			}
		case absent:
			mustMiss.Add(1)
			if ok {
				ghosts.Add(1)
			}
		}
	}
	for g := range 3 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 2))
			s := tb.SMR()
			for !stop.Load() {
				i := r.IntN(space)
				c1 := st[i].Load()
				var v *flow
				var ok bool
				if g == 0 {
					// A reader in its own section: the value and its fields stay valid
					// until Exit, however the owner recycles things.
					s.Enter()
					v, ok = tb.LookupInSection(keys[i])
					var k netip.AddrPort
					if ok {
						k = v.key
					}
					s.Exit()
					if ok && k != keys[i] {
						wrong.Add(1)
					}
				} else {
					v, ok = tb.Lookup(keys[i])
				}
				c2 := st[i].Load()
				check(i, v, ok, c1, c2)
				lookups.Add(1)
			}
		})
	}
	wg.Go(func() {
		start, end := make([]uint64, space), make([]uint64, space)
		seen := make([]int, space)
		for !stop.Load() {
			for i := range st {
				start[i] = st[i].Load()
			}
			clear(seen)
			tb.Range(func(k netip.AddrPort, v *flow) bool {
				i := int(v.id >> 32)
				if v.key != k || keys[i] != k {
					wrong.Add(1)
					return true
				}
				seen[i]++
				return true
			})
			for i := range st {
				end[i] = st[i].Load()
			}
			for i := range seen {
				if seen[i] > 1 {
					dups.Add(1)
				}
				if start[i] == end[i] {
					if start[i]%4 == present && seen[i] == 0 {
						lost.Add(1)
					}
					if start[i]%4 == absent && seen[i] != 0 {
						ghosts.Add(1)
					}
				}
			}
			ranges.Add(1)
		}
	})
	wg.Go(func() { ops.Store(int64(stressOwner(t, tb, keys, st, &stop))) })

	time.Sleep(stressTime())
	stop.Store(true)
	wg.Wait()

	s := tb.Stats()
	t.Logf("%d lookups (%d had to find, %d had to miss), %d ranges; %d owner operations, %d grows, %d shrinks, %d entries",
		lookups.Load(), mustFind.Load(), mustMiss.Load(), ranges.Load(), ops.Load(), s.Grows, s.Shrinks, s.Len)
	if n := lost.Load(); n != 0 {
		t.Errorf("%d lookups or ranges missed a key present throughout", n)
	}
	if n := ghosts.Load(); n != 0 {
		t.Errorf("%d lookups or ranges found a key absent throughout", n)
	}
	if n := wrong.Load(); n != 0 {
		t.Errorf("%d lookups or ranges found a value of another key", n)
	}
	if n := dups.Load(); n != 0 {
		t.Errorf("%d keys visited twice by one Range", n)
	}
	if mustFind.Load() == 0 || mustMiss.Load() == 0 || ranges.Load() == 0 || s.Grows == 0 || s.Shrinks == 0 {
		t.Error("the test did not exercise what it checks")
	}

	// Quiescent now: the table holds exactly the keys the owner left present.
	want := 0
	for i, k := range keys {
		v, ok := tb.Lookup(k)
		if c := st[i].Load() % 4; c != absent && c != present || ok != (c == present) {
			t.Fatalf("after the run, key %v in state %d: Lookup = %v, %v", k, c, v, ok)
		}
		if ok {
			want++
		}
	}
	if tb.Len() != want {
		t.Fatalf("Len = %d, want %d", tb.Len(), want)
	}
	checkZone(t, tb)
	tb.Expire(func(netip.AddrPort, *flow) bool { return true })
	if s := tb.Stats(); s.Len != 0 || s.Zone.InUse != 0 {
		t.Fatalf("expired everything: %d entries, %d nodes in use", s.Len, s.Zone.InUse)
	}
	checkZone(t, tb)
}
