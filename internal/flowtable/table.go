package flowtable

import (
	"errors"
	"hash/maphash"
	"math/bits"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/softnet-go/softnet/smr"
	"github.com/softnet-go/softnet/uma"
)

// minBuckets is the smallest bucket array. It keeps at least three hash bits in a bucket
// index, which Range's cursor relies on (see Range).
const minBuckets = 8

// An array is one generation of the table: a power-of-two array of chain heads. A reader
// that loaded it walks it to the end of its section, while the writer may already have
// published its successor; the writer never touches an array it has replaced.
//
// Every lookup reads it, so it fills a cache line of its own (a 64-byte object is 64-byte
// aligned): a small object written elsewhere must not share its line, as a benchmark's
// testing.PB, written on every iteration, was seen to do, halving lookups on two Ps.
type array[V any] struct {
	heads []atomic.Pointer[node[V]]
	mask  uint64 // len(heads) - 1
	_     [64 - 32]byte
}

func newArray[V any](size int) *array[V] {
	return &array[V]{heads: make([]atomic.Pointer[node[V]], size), mask: uint64(size - 1)}
}

// A Table maps client addresses to flows (*V). Lookups and Range take no lock and may run
// on any goroutine; Insert, Delete and Expire are the owner's (see the package
// documentation for both sets of rules). Make it with New; the zero Table is not usable.
type Table[V any] struct {
	// What readers load: written once by New, except cur, which only rebuilds store. The
	// table is 192 bytes, a size class whose objects are 64-byte aligned, so these
	// fields have the first cache line to themselves: writes to other objects, and the
	// writers' fields below, which change on every insert and delete, leave it alone.
	cur  atomic.Pointer[array[V]]
	smr  *smr.SMR
	seed maphash.Seed
	_    [64 - 24]byte

	count atomic.Int64 // entries; written under mu, read by Len without it

	mu         sync.Mutex // serialises writers
	zone       *uma.Zone[node[V]]
	minBuckets int
	growAt     int64 // rebuild bigger when count exceeds this
	shrinkAt   int64 // rebuild smaller when count falls below this (-1: never)

	grows, shrinks, failedRebuilds atomic.Int64
	_                              [192 - 136]byte
}

// New returns an empty table named name (which names its SMR, keg and zone) whose nodes
// are charged to limit; a nil limit is a private, unlimited one. sizeHint is the number
// of entries to expect: the table starts with room for it and never shrinks below it.
func New[V any](name string, limit *uma.Limit, sizeHint int) (*Table[V], error) {
	if name == "" {
		return nil, errors.New("flowtable: New: empty name")
	}
	if sizeHint < 0 {
		return nil, errors.New("flowtable: New: negative sizeHint")
	}
	if limit == nil {
		limit, _ = uma.NewLimit(0)
	}
	s := smr.New(name)
	keg, err := uma.NewKeg(limit, uma.KegConfig[node[V]]{Name: name})
	if err != nil {
		return nil, err
	}
	zone, err := uma.NewZone(keg, uma.ZoneConfig[node[V]]{Name: name, SMR: s, Ctor: ctor[V]})
	if err != nil {
		return nil, err
	}
	t := &Table[V]{smr: s, seed: maphash.MakeSeed(), zone: zone}
	t.minBuckets = roundUp(sizeHint)
	t.install(newArray[V](t.minBuckets))
	return t, nil
}

// roundUp returns the bucket count for n entries at a load factor of at most one.
func roundUp(n int) int {
	if n <= minBuckets {
		return minBuckets
	}
	return 1 << bits.Len(uint(n-1))
}

// SMR returns the table's SMR: readers who keep a value past a lookup enter its sections
// (with LookupInSection), and an owner who recycles values frees them through an SMR zone
// on it, so that a value is not reused while a reader may hold it.
func (t *Table[V]) SMR() *smr.SMR { return t.smr }

// Len returns the number of entries, as of the last completed write.
func (t *Table[V]) Len() int { return int(t.count.Load()) }

// Lookup returns the value stored under key, and whether there is one. It takes no lock
// and does not allocate; it runs in its own read section of t.SMR(), so it must not be
// called inside one (use LookupInSection there). See the package documentation for how
// long the value stays valid.
func (t *Table[V]) Lookup(key netip.AddrPort) (*V, bool) {
	h := hashKey(t.seed, key) // outside the section, which should stay short
	t.smr.Enter()
	v := t.find(h, key)
	t.smr.Exit()
	return v, v != nil
}

// LookupInSection is Lookup for a caller already inside a read section of t.SMR(): the
// table's nodes, and values the owner recycles through an SMR zone on t.SMR(), stay
// valid until the caller's Exit. Outside a section it could walk nodes being recycled
// under it: a data race.
func (t *Table[V]) LookupInSection(key netip.AddrPort) (*V, bool) {
	v := t.find(hashKey(t.seed, key), key)
	return v, v != nil
}

// find walks key's chain in the current array. It runs inside a read section, so it must
// not panic: the index is masked to the array's length, and every node it reaches is
// either linked or waiting out its grace period, with key, hash and next intact. A node
// found deleted has no value: the key is reported absent.
func (t *Table[V]) find(h uint64, key netip.AddrPort) *V {
	if n := t.findNode(h, key); n != nil {
		return n.val.Load()
	}
	return nil
}

func (t *Table[V]) findNode(h uint64, key netip.AddrPort) *node[V] {
	a := t.cur.Load()
	for n := a.heads[h&a.mask].Load(); n != nil; n = n.next.Load() {
		if n.hash == h && n.key == key {
			return n
		}
	}
	return nil
}
