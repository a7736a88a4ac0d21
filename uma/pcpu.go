package uma

import (
	"runtime"
	"unsafe"

	"github.com/softnet-go/softnet/smr"
)

// A bucket is a stack of free items: uma_bucket. Its items slice has the zone's bucket
// size as capacity; n counts the items in it.
type bucket[T any] struct {
	items []*T
	n     int
	seq   smr.Seq // an SMR zone's stamp: its items may be reused once this goal is reached
}

// pop leaves the slot it empties as it was: a stale pointer there only delays the
// collection of a slab the keg has already given back, and by one bucket at most, while a
// store would cost the fast path.
func (b *bucket[T]) pop() *T {
	b.n--
	return b.items[b.n]
}

// newBucketArray returns the items array of a bucket, padded so that two Ps' buckets never
// share a cache line.
func newBucketArray[T any](size int) []*T {
	return make([]*T, size, size+cacheLinePtrs)
}

const cacheLinePtrs = 128 / 8

func (b *bucket[T]) push(it *T) {
	b.items[b.n] = it
	b.n++
}

func (b *bucket[T]) full() bool { return b.n == len(b.items) }

// A pcache is one P's cache of a zone, uma_cache: an alloc bucket and a free bucket, used
// by the goroutine that has pinned the P with no lock and no atomic. Nobody else writes it;
// statistics read its counters as machine words (see Zone.Stats).
type pcache[T any] struct {
	alloc    bucket[T]
	free     bucket[T]
	allocs   int64 // requests served from this P's buckets
	frees    int64 // frees taken by this P's buckets
	raceLock       // a real lock only under the race detector
	_        [64]byte
}

// cached returns the items in the P's buckets.
func (c *pcache[T]) cached() int { return c.alloc.n + c.free.n }

// A pcacheArray holds one pcache per P. It grows when GOMAXPROCS grows (as sync.Pool's
// local array does); the caches of Ps that went away stay, with their items counted as
// cached, until a P of that id comes back.
type pcacheArray[T any] struct {
	caches []*pcache[T]
}

func gomaxprocs() int { return runtime.GOMAXPROCS(0) }

// sizeOf is unsafe.Sizeof for a type parameter.
func sizeOf[T any]() uintptr {
	var v T
	return unsafe.Sizeof(v)
}
