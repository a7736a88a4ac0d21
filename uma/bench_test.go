package uma

import (
	"sync"
	"testing"
)

// The allocator's target: a 2 KiB item's Alloc+Free, with the Limit and the
// statistics on, costs no more than sync.Pool's Get+Put of a 2 KiB buffer, allocates
// nothing, and scales with Ps. Compare the pairs side by side in one run:
//
//	go test -run '^$' -bench 'ZoneAllocFree|SyncPoolGetPut' -count 10 -cpu 1,2 ./uma | benchstat -col /... -

func benchZone(b *testing.B) *Zone[cluster] {
	l, _ := NewLimit(64 << 20)
	return newClusterZone(b, l, "bench", ZoneConfig[cluster]{})
}

func BenchmarkZoneAllocFree(b *testing.B) {
	z := benchZone(b)
	b.ReportAllocs()
	for b.Loop() {
		c, err := z.Alloc()
		if err != nil {
			b.Fatal(err)
		}
		z.Free(c)
	}
}

var bufPool = sync.Pool{New: func() any { return new([2048]byte) }}

func BenchmarkSyncPoolGetPut(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		p := bufPool.Get().(*[2048]byte)
		bufPool.Put(p)
	}
}

func BenchmarkZoneAllocFreeParallel(b *testing.B) {
	z := benchZone(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c, err := z.Alloc()
			if err != nil {
				b.Fatal(err)
			}
			z.Free(c)
		}
	})
}

func BenchmarkSyncPoolGetPutParallel(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p := bufPool.Get().(*[2048]byte)
			bufPool.Put(p)
		}
	})
}

// BenchmarkZoneBulk32 allocates and frees a 32-item chain's worth in one pinned section
// each way: one pin, not 32.
func BenchmarkZoneBulk32(b *testing.B) {
	z := benchZone(b)
	items := make([]*cluster, 32)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := z.AllocBulk(items); err != nil {
			b.Fatal(err)
		}
		z.FreeBulk(items)
	}
}

// BenchmarkZoneChurn holds a working set larger than the per-P buckets, so buckets go
// through the zone's bucket cache: the slow path's cost.
func BenchmarkZoneChurn(b *testing.B) {
	z := benchZone(b)
	items := make([]*cluster, 256)
	b.ReportAllocs()
	for b.Loop() {
		for i := range items {
			c, err := z.Alloc()
			if err != nil {
				b.Fatal(err)
			}
			items[i] = c
		}
		for _, c := range items {
			z.Free(c)
		}
	}
}
