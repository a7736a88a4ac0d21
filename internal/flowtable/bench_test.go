package flowtable

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
)

// The lookup benchmarks compare the table with sync.Map and an RWMutex-guarded map on the
// same keys (random IPv4 client addresses and ports, all present), read-only and
// read-mostly: one operation in a hundred, by the same goroutines, is a write that
// deletes a flow and inserts it again (a flow that expired and whose client came back),
// so that the table stays full and its nodes are recycled all the time, while lookups
// find what they look for, as most of a relay's do. Compare the implementations side by
// side, within one run:
//
//	go test -run '^$' -bench . -count 8 -cpu 1,2 ./internal/flowtable/ | tee /tmp/ft.txt
//	benchstat -col /impl /tmp/ft.txt

var benchSizes = []int{1 << 10, 1 << 16}

// benchKeys returns n distinct keys scattered like real clients.
func benchKeys(n int) []netip.AddrPort {
	keys := make([]netip.AddrPort, 0, n)
	seen := make(map[netip.AddrPort]bool, n)
	r := uint64(0x9e3779b97f4a7c15)
	for len(keys) < n {
		r ^= r << 13
		r ^= r >> 7
		r ^= r << 17
		k := netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(r), byte(r >> 8), byte(r >> 16), byte(r >> 24)}), uint16(r>>32))
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// rng is a per-goroutine xorshift, cheap enough not to blur the measurement.
type rng uint64

func (r *rng) next() uint64 {
	x := uint64(*r)
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	*r = rng(x)
	return x
}

var seeds atomic.Uint64

func newRNG() rng { return rng(seeds.Add(0x9e3779b97f4a7c15) | 1) }

// rwMap is the baseline a lock-based relay would use.
type rwMap struct {
	mu sync.RWMutex
	m  map[netip.AddrPort]*flow
}

func BenchmarkLookup(b *testing.B) {
	for _, n := range benchSizes {
		for _, writes := range []int{0, 1} {
			keys := benchKeys(n)
			name := fmt.Sprintf("n=%d/writes=%d%%", n, writes)
			b.Run(name+"/impl=flowtable", func(b *testing.B) { benchTable(b, keys, writes) })
			b.Run(name+"/impl=syncmap", func(b *testing.B) { benchSyncMap(b, keys, writes) })
			b.Run(name+"/impl=rwmutex", func(b *testing.B) { benchRWMutex(b, keys, writes) })
		}
	}
}

// Every goroutine makes the same mix: out of each 100 operations, writes are a write (a
// delete and an insert of the same key) and the rest lookups.

func benchTable(b *testing.B, keys []netip.AddrPort, writes int) {
	tb := newTable(b, nil, 0)
	vals := make([]flow, len(keys))
	for i, k := range keys {
		vals[i].key = k
		tb.Insert(k, &vals[i])
	}
	mask := uint64(len(keys) - 1)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := newRNG()
		for i := 0; pb.Next(); i++ {
			j := r.next() & mask
			if i%100 < writes {
				tb.Delete(keys[j])
				tb.Insert(keys[j], &vals[j])
				continue
			}
			if v, ok := tb.Lookup(keys[j]); ok && v.key != keys[j] {
				panic("wrong flow")
			}
		}
	})
}

func benchSyncMap(b *testing.B, keys []netip.AddrPort, writes int) {
	var m sync.Map
	vals := make([]flow, len(keys))
	for i, k := range keys {
		vals[i].key = k
		m.Store(k, &vals[i])
	}
	mask := uint64(len(keys) - 1)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := newRNG()
		for i := 0; pb.Next(); i++ {
			j := r.next() & mask
			if i%100 < writes {
				m.Delete(keys[j])
				m.Store(keys[j], &vals[j])
				continue
			}
			if v, ok := m.Load(keys[j]); ok && v.(*flow).key != keys[j] {
				panic("wrong flow")
			}
		}
	})
}

func benchRWMutex(b *testing.B, keys []netip.AddrPort, writes int) {
	m := &rwMap{m: make(map[netip.AddrPort]*flow, len(keys))}
	vals := make([]flow, len(keys))
	for i, k := range keys {
		vals[i].key = k
		m.m[k] = &vals[i]
	}
	mask := uint64(len(keys) - 1)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := newRNG()
		for i := 0; pb.Next(); i++ {
			j := r.next() & mask
			if i%100 < writes {
				m.mu.Lock()
				delete(m.m, keys[j])
				m.mu.Unlock()
				m.mu.Lock()
				m.m[keys[j]] = &vals[j]
				m.mu.Unlock()
				continue
			}
			m.mu.RLock()
			v, ok := m.m[keys[j]]
			m.mu.RUnlock()
			if ok && v.key != keys[j] {
				panic("wrong flow")
			}
		}
	})
}
