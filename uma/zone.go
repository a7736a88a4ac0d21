package uma

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/softnet-go/softnet/internal/procpin"
	"github.com/softnet-go/softnet/internal/stress"
	"github.com/softnet-go/softnet/smr"
)

// ZoneConfig describes a zone. Name is required; every hook is optional.
type ZoneConfig[T any] struct {
	// Name names the zone in statistics and errors ("mbuf_cluster").
	Name string
	// Ctor runs on every allocation, outside any lock. If it fails, the item goes back to
	// the zone (without Dtor) and the allocation returns its error.
	Ctor func(*T) error
	// Dtor runs on every free, before the item is cached.
	Dtor func(*T)
	// Init is zinit: it runs when an item moves from the keg into this zone's caches and
	// may fail (the packet zone attaches a cluster here). A failed item goes back to the keg.
	Init func(*T) error
	// Fini is zfini: it runs when an item goes back from the zone to the keg.
	Fini func(*T)
	// MaxItems caps the items the zone holds from its keg, in use and cached together,
	// as uma_zone_set_max does; 0 means no cap of its own (the Limit still applies).
	MaxItems int64
	// SMR makes this an SMR zone (UMA_ZONE_SMR): a freed item is not handed out again until
	// every read section of SMR that could have seen it has ended. Frees collect in the
	// P's free bucket, which is stamped with SMR.Advance when full and queued; allocations
	// take a queued bucket only once SMR.Poll passes its stamp. Such a zone has no Dtor.
	SMR *smr.SMR
	// BucketSize is the number of items in a per-P bucket. It defaults to 16 KiB worth of
	// items, at least 2 and at most 128 (FreeBSD's bucket_select gives 8 for a 2 KiB
	// cluster): small buckets for large items keep little memory parked per P.
	BucketSize int
}

// A Zone hands out items of type T from a keg through per-P caches: FreeBSD's uma_zone.
//
// Alloc and Free use the calling P's two buckets with the P pinned and no lock or atomic
// operation; when both are empty (or full) they exchange a bucket with the zone's bucket
// cache under the zone lock, and only that falls through to the keg. Several zones may
// share one keg (uma_zsecond_create): each has its own hooks, caches and statistics.
type Zone[T any] struct {
	name      string
	keg       *Keg[T]
	limit     *Limit
	ctor      func(*T) error
	dtor      func(*T)
	init      func(*T) error
	fini      func(*T)
	maxItems  int64
	bsize     int
	smr       *smr.SMR
	errNoBufs error

	locals atomic.Pointer[pcacheArray[T]]

	fails  atomic.Int64
	sleeps atomic.Int64

	mu       sync.Mutex
	full     []bucket[T] // the bucket cache: non-empty buckets, newest last
	spare    [][]*T      // empty bucket arrays, so exchanges do not allocate
	cached   int64       // items in full
	lowWater int64       // the fewest items cached since the last trim (working set)
	imported int64       // items taken from the keg and not yet given back
	// initFailed: the last import found items in the keg but Init failed on every one (the
	// packet zone with no cluster to attach). Its waiters wait for memory to come back
	// anywhere under the Limit, not for the keg's free items, which would fail again.
	initFailed bool
	allocs     int64 // requests not counted by a P (frees bypassing the caches)
	frees      int64
}

// NewZone returns a zone on keg k. The first zone of a keg is its primary zone; later
// ones are secondary zones (uma_zsecond_create) sharing the keg's slabs.
func NewZone[T any](k *Keg[T], cfg ZoneConfig[T]) (*Zone[T], error) {
	if k == nil {
		return nil, errors.New("uma: NewZone: nil Keg")
	}
	if cfg.Name == "" {
		return nil, errors.New("uma: NewZone: empty Name")
	}
	if cfg.MaxItems < 0 || cfg.BucketSize < 0 {
		return nil, fmt.Errorf("uma: zone %s: negative MaxItems or BucketSize", cfg.Name)
	}
	if cfg.SMR != nil && cfg.Dtor != nil {
		return nil, fmt.Errorf("uma: zone %s: an SMR zone cannot have a Dtor (readers may still see a freed item; reset items in Ctor)", cfg.Name)
	}
	z := &Zone[T]{
		name:     cfg.Name,
		keg:      k,
		limit:    k.limit,
		ctor:     cfg.Ctor,
		dtor:     cfg.Dtor,
		init:     cfg.Init,
		fini:     cfg.Fini,
		maxItems: cfg.MaxItems,
		bsize:    cfg.BucketSize,
		smr:      cfg.SMR,
	}
	if z.bsize == 0 {
		z.bsize = int(min(128, max(2, (16<<10)/k.itemSize)))
	}
	z.errNoBufs = &Error{Zone: z.name, Err: syscall.ENOBUFS}
	z.locals.Store(&pcacheArray[T]{})
	k.mu.Lock()
	k.zones = append(k.zones, z)
	k.mu.Unlock()
	return z, nil
}

// Name returns the zone's name.
func (z *Zone[T]) Name() string { return z.name }

// Keg returns the keg the zone allocates from.
func (z *Zone[T]) Keg() *Keg[T] { return z.keg }

// BucketSize returns the number of items in one of the zone's per-P buckets: what a P
// takes from the keg at a time, and may keep in each of its two buckets.
func (z *Zone[T]) BucketSize() int { return z.bsize }

// Alloc is uma_zalloc(zone, M_NOWAIT): it returns an item, or an *Error wrapping
// syscall.ENOBUFS (counted as a failure) when the zone or the Limit is full.
func (z *Zone[T]) Alloc() (*T, error) {
	if stress.FailThreshold() != 0 && failureInjected() {
		z.fails.Add(1)
		return nil, z.errNoBufs
	}
	// The fast path, cache_alloc's first lines: pop from this P's alloc bucket.
	pid := procpin.Pin()
	if a := z.locals.Load(); pid < len(a.caches) {
		c := a.caches[pid]
		c.lock()
		if c.alloc.n > 0 {
			it := c.alloc.pop()
			c.allocs++
			c.unlock()
			procpin.Unpin()
			if z.ctor != nil {
				return z.construct(it)
			}
			return it, nil
		}
		c.unlock()
	}
	procpin.Unpin()
	it := z.allocSlow()
	if it == nil {
		z.fails.Add(1)
		return nil, z.errNoBufs
	}
	return z.construct(it)
}

// AllocWait is uma_zalloc(zone, M_WAITOK) under a context: when the zone or the Limit is
// full it waits (counted as one sleep) until another allocation anywhere under the same
// Limit gives memory back, or the limit is raised, and then retries. It returns ctx.Err()
// unchanged if the context ends first, leaving nothing allocated.
func (z *Zone[T]) AllocWait(ctx context.Context) (*T, error) {
	it := z.allocSlow()
	if it == nil {
		z.sleeps.Add(1)
		w := &waiter{target: z, ch: make(chan struct{}, 1)}
		retry := 10 * time.Millisecond
		for front := false; it == nil; front = true {
			if err := z.limit.wait(ctx, w, front, retry); err != nil {
				return nil, err
			}
			it = z.allocSlow()
			retry = min(2*retry, time.Second)
		}
	}
	return z.construct(it)
}

// TryAlloc is the first step of AllocWait alone: it returns an item if the zone can hand
// one out without waiting, and nil otherwise (or the Ctor's error). Unlike Alloc it counts
// no failure and is never failed by injection (stress.SetFailureRate). It is for a
// waiting allocation of several items that must not sleep holding some of them: it tries
// for the rest with TryAlloc, and if one cannot be had, frees what it holds and waits
// with AllocWait for the one that was missing.
func (z *Zone[T]) TryAlloc() (*T, error) {
	it := z.allocSlow()
	if it == nil {
		return nil, nil
	}
	return z.construct(it)
}

func (z *Zone[T]) construct(it *T) (*T, error) {
	if z.ctor != nil {
		if err := z.ctor(it); err != nil {
			z.put(it)
			return nil, err
		}
	}
	return it, nil
}

// Free is uma_zfree: it runs the Dtor and caches the item in the calling P's buckets.
// While allocations wait on the Limit, it skips the caches and gives the item straight
// back to the keg, so the waiters see it at once.
func (z *Zone[T]) Free(it *T) {
	if z.dtor != nil {
		z.dtor(it)
	}
	if z.smr != nil {
		z.freeSMR(it)
		return
	}
	if z.limit.nwait.Load() == 0 {
		// The fast path: push onto this P's alloc bucket.
		pid := procpin.Pin()
		if a := z.locals.Load(); pid < len(a.caches) {
			c := a.caches[pid]
			c.lock()
			if c.alloc.n < len(c.alloc.items) {
				c.alloc.push(it)
				c.frees++
				c.unlock()
				procpin.Unpin()
				return
			}
			c.unlock()
		}
		procpin.Unpin()
	}
	z.freeSlow(it)
}

// put frees without the Dtor (a failed Ctor's item).
func (z *Zone[T]) put(it *T) {
	if z.limit.waiting() || !z.freeCached(it) {
		z.freeSlow(it)
	}
}

// freeCached pushes onto this P's buckets.
func (z *Zone[T]) freeCached(it *T) bool {
	pid := procpin.Pin()
	if a := z.locals.Load(); pid < len(a.caches) {
		c := a.caches[pid]
		c.lock()
		if c.alloc.full() && !c.free.full() {
			c.alloc, c.free = c.free, c.alloc
		}
		if !c.alloc.full() {
			c.alloc.push(it)
			c.frees++
			c.unlock()
			procpin.Unpin()
			return true
		}
		c.unlock()
	}
	procpin.Unpin()
	return false
}

// allocSlow is cache_alloc: this P's buckets are empty, so it takes a full bucket from
// the bucket cache, or fills one from the keg, installs it as this P's alloc bucket and
// pops from it. It returns nil when the keg cannot grow.
func (z *Zone[T]) allocSlow() *T {
	// The alloc bucket is empty: swap in the free bucket if it has items.
	pid := procpin.Pin()
	if a := z.locals.Load(); pid < len(a.caches) {
		c := a.caches[pid]
		c.lock()
		if c.alloc.n == 0 && c.free.n > 0 && z.smr == nil { // an SMR zone's free bucket waits its grace period
			c.alloc, c.free = c.free, c.alloc
		}
		if c.alloc.n > 0 {
			it := c.alloc.pop()
			c.allocs++
			c.unlock()
			procpin.Unpin()
			return it
		}
		c.unlock()
	}
	procpin.Unpin()

	z.mu.Lock()
	defer z.mu.Unlock()
	var b bucket[T]
	switch n := len(z.full); {
	case z.smr != nil:
		b = z.takeReady(false)
	case n > 0:
		b = z.full[n-1]
		z.full[n-1] = bucket[T]{}
		z.full = z.full[:n-1]
		z.cached -= int64(b.n)
		z.lowWater = min(z.lowWater, z.cached)
	}
	if b.n == 0 {
		b = bucket[T]{items: z.spareBucket()}
		want := b.items
		if z.limit.waiting() {
			// Allocations wait on the Limit: take one item, not a bucket, so that none
			// sits in this P's buckets out of the waiters' reach (as Free then bypasses
			// the buckets).
			want = want[:1]
		}
		if b.n = z.importItems(want); b.n == 0 {
			z.spare = append(z.spare, b.items)
			if z.smr == nil || len(z.full) == 0 {
				return nil
			}
			// Out of memory but items are waiting out their grace period: wait for it.
			if b = z.takeReady(true); b.n == 0 {
				return nil
			}
		} else if z.smr != nil {
			b.seq = smr.SeqInvalid // never seen by a reader: no grace period needed
		}
	}
	c := z.cache(procpin.Pin())
	c.lock()
	it := b.pop()
	c.allocs++
	if c.alloc.n == 0 {
		c.alloc, b = b, c.alloc
	}
	c.unlock()
	procpin.Unpin()
	z.stash(b)
	return it
}

// freeSlow is cache_free: both of this P's buckets are full (or allocations are waiting).
func (z *Zone[T]) freeSlow(it *T) {
	if !z.limit.waiting() && z.freeCached(it) {
		return // the free bucket had room
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.limit.waiting() {
		z.frees++
		one := [1]*T{it}
		z.release(one[:])
		return
	}
	b := bucket[T]{items: z.spareBucket()}
	c := z.cache(procpin.Pin())
	c.lock()
	if c.alloc.full() && !c.free.full() {
		c.alloc, c.free = c.free, c.alloc
	}
	if c.alloc.full() {
		// Retire the full free bucket to the cache and start a new one.
		c.free, b = b, c.free
		c.alloc, c.free = c.free, c.alloc
	}
	c.alloc.push(it)
	c.frees++
	c.unlock()
	procpin.Unpin()
	z.stash(b)
	z.keg.limit.armReclaim(z.keg.idleTime)
}

// stash files a bucket that came out of a P's cache: into the bucket cache if it holds
// items, among the spares if not. Called with z.mu held.
func (z *Zone[T]) stash(b bucket[T]) {
	if b.n == 0 {
		z.spare = append(z.spare, b.items)
		return
	}
	z.full = append(z.full, b)
	z.cached += int64(b.n)
}

// cache returns this P's cache, growing the per-P array when GOMAXPROCS has grown. Called
// pinned, with z.mu held so that growth is serialised.
func (z *Zone[T]) cache(pid int) *pcache[T] {
	a := z.locals.Load()
	if pid < len(a.caches) {
		return a.caches[pid]
	}
	n := max(pid+1, gomaxprocs())
	grown := &pcacheArray[T]{caches: make([]*pcache[T], n)}
	copy(grown.caches, a.caches)
	for i := len(a.caches); i < n; i++ {
		grown.caches[i] = &pcache[T]{
			alloc: bucket[T]{items: newBucketArray[T](z.bsize)},
			free:  bucket[T]{items: newBucketArray[T](z.bsize)},
		}
	}
	z.locals.Store(grown)
	return grown.caches[pid]
}

// spareBucket returns an empty bucket array. Called with z.mu held.
func (z *Zone[T]) spareBucket() []*T {
	if n := len(z.spare); n > 0 {
		s := z.spare[n-1]
		z.spare = z.spare[:n-1]
		return s
	}
	return newBucketArray[T](z.bsize)
}

// importItems moves items from the keg into dst, running Init on each, within the zone's
// item limit: zone_import. Called with z.mu held.
func (z *Zone[T]) importItems(dst []*T) int {
	if z.maxItems > 0 {
		room := z.maxItems - z.imported
		if room <= 0 {
			return 0
		}
		dst = dst[:min(int64(len(dst)), room)]
	}
	n := z.keg.alloc(dst)
	if z.init != nil {
		ok := 0
		var bad []*T
		for _, it := range dst[:n] {
			if err := z.init(it); err != nil {
				bad = append(bad, it)
				continue
			}
			dst[ok] = it
			ok++
		}
		clear(dst[ok:n])
		// The failed items were free in the keg before: returning them wakes nobody.
		z.keg.releaseQuiet(bad)
		z.initFailed = n > 0 && ok == 0
		n = ok
	}
	z.imported += int64(n)
	return n
}

// release gives items back to the keg, running Fini on each: zone_release. Called with
// z.mu held.
func (z *Zone[T]) release(items []*T) {
	if z.fini != nil {
		for _, it := range items {
			z.fini(it)
		}
	}
	z.imported -= int64(len(items))
	z.keg.release(items)
}

// Drain is zone_drain: it gives every bucket in the zone's bucket cache back to the keg.
// Items in the per-P buckets stay; Limit.Reclaim reaches those too.
func (z *Zone[T]) Drain() {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.trimTo(0)
}

// trimTo releases buckets, oldest first, until at most keep items stay cached. Called
// with z.mu held.
func (z *Zone[T]) trimTo(keep int64) {
	i := 0
	for ; i < len(z.full) && z.cached > keep; i++ {
		b := z.full[i]
		if z.smr != nil {
			z.smr.Wait(b.seq) // readers leave sections quickly; the keg must not see it sooner
		}
		z.cached -= int64(b.n)
		z.release(b.items[:b.n])
		clear(b.items)
		z.spare = append(z.spare, b.items)
		z.full[i] = bucket[T]{}
	}
	z.full = append(z.full[:0], z.full[i:]...)
	z.lowWater = z.cached
}

// trim gives back the cached items that went unused since the last trim: the part of the
// bucket cache below its low-water mark, as UMA's working-set estimate does.
// It reports whether items stay cached, so the reclaimer comes back.
func (z *Zone[T]) trim() bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.trimTo(z.cached - z.lowWater)
	return z.cached > 0
}

// flushLocal moves the calling P's buckets to the bucket cache (cache_drain for one CPU)
// and returns the P's id.
func (z *Zone[T]) flushLocal() int {
	z.mu.Lock()
	defer z.mu.Unlock()
	a := bucket[T]{items: z.spareBucket()}
	f := bucket[T]{items: z.spareBucket()}
	pid := procpin.Pin()
	if arr := z.locals.Load(); pid < len(arr.caches) {
		c := arr.caches[pid]
		c.lock()
		c.alloc, a = a, c.alloc
		c.free, f = f, c.free
		c.unlock()
	}
	procpin.Unpin()
	z.stashFlushed(a, f)
	return pid
}

// stashFlushed files the two buckets taken from a P. Called with z.mu held.
func (z *Zone[T]) stashFlushed(a, f bucket[T]) {
	if z.smr != nil {
		a.seq = smr.SeqInvalid // the alloc bucket's items are past their grace period
		f.seq = z.smr.Advance()
	}
	z.stash(a)
	z.stash(f)
}

// parkedOn returns the items in P pid's buckets, read as Stats reads them: a moment stale
// perhaps, never torn.
func (z *Zone[T]) parkedOn(pid int) int {
	a := z.locals.Load()
	if pid >= len(a.caches) {
		return 0
	}
	c := a.caches[pid]
	c.readLock()
	n := c.cached()
	c.readUnlock()
	return n
}

// flushOrphans moves to the bucket cache the buckets of Ps at or beyond GOMAXPROCS, which
// stay when GOMAXPROCS shrinks (see pcacheArray) and which no goroutine can flush until a
// P of that id comes back. It runs pinned: no stop-the-world, and so no GOMAXPROCS change,
// can happen meanwhile, so no goroutine is on such a P while their buckets are moved.
func (z *Zone[T]) flushOrphans() {
	n := gomaxprocs()
	if len(z.locals.Load().caches) <= n {
		return
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	arr := z.locals.Load()
	empty := make([]bucket[T], 0, 2*(len(arr.caches)-min(n, len(arr.caches))))
	for range cap(empty) {
		empty = append(empty, bucket[T]{items: z.spareBucket()})
	}
	taken := make([]bucket[T], 0, len(empty))
	procpin.Pin()
	n = gomaxprocs()
	for i := n; i < len(arr.caches) && len(empty) >= 2; i++ {
		c := arr.caches[i]
		c.lock()
		if c.alloc.n+c.free.n > 0 {
			taken = append(taken, c.alloc, c.free)
			c.alloc, c.free = empty[len(empty)-1], empty[len(empty)-2]
			empty = empty[:len(empty)-2]
		}
		c.unlock()
	}
	procpin.Unpin()
	for i := 0; i+1 < len(taken); i += 2 {
		z.stashFlushed(taken[i], taken[i+1])
	}
	for _, b := range empty {
		z.spare = append(z.spare, b.items)
	}
}

// Error is the error of a failed allocation: the zone and the errno (ENOBUFS).
type Error struct {
	Zone string
	Err  error
}

func (e *Error) Error() string {
	return "uma: zone " + e.Zone + ": " + e.Err.Error()
}

// Unwrap returns the errno, so errors.Is(err, syscall.ENOBUFS) holds.
func (e *Error) Unwrap() error { return e.Err }
