package uma

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A Limit is one byte limit shared by many kegs: OpenBSD's mbuf_mem_limit, which covers the
// mbuf pool and every cluster pool. Kegs charge it a whole slab at a time when they carve a
// new slab (m_pool_alloc) and credit it when they give a slab back (m_pool_free), so the
// bytes charged are always the bytes of the slabs held.
//
// A Limit of 0 is unlimited (as FreeBSD's kern.ipc.nmbclusters=0). SetMax may raise or lower
// the limit at any time; lowering frees nothing, it only refuses new slabs until enough come
// back.
//
// Allocations that wait (Zone.AllocWait) queue on the Limit. They are woken, in order, when
// any keg under the Limit gives slabs or items back, or when the limit changes: unlike
// OpenBSD's pool_wakeup, which only wakes sleepers of the same pool, a cluster freed in one
// zone wakes an allocation waiting in another. The wake-up is deferred off the freeing path
// to a short-lived goroutine and debounced to one per release batch.
type Limit struct {
	max  atomic.Int64 // 0: unlimited
	used atomic.Int64 // bytes of slabs held by all kegs
	peak atomic.Int64

	nwait   atomic.Int32 // queued waiters; read on the free path
	pending atomic.Bool  // a wake-up run is scheduled
	wakeAll atomic.Bool  // the next run wakes every waiter (the limit changed)

	refused atomic.Int64 // slab charges refused (OpenBSD mbs_drops)
	wakeups atomic.Int64 // wake-up runs

	armed     atomic.Bool  // the reclaimer's timer is set
	lastDrain atomic.Int64 // when waiters last drained the caches (UnixNano)

	mu      sync.Mutex // orders before any zone's or keg's lock
	waiters waitQueue
	kegs    []kegger
}

// NewLimit returns a Limit of max bytes; 0 means unlimited. A negative max is an error.
func NewLimit(max int64) (*Limit, error) {
	if max < 0 {
		return nil, fmt.Errorf("uma: limit %d: %w", max, syscall.EINVAL)
	}
	l := &Limit{}
	l.max.Store(max)
	return l, nil
}

// Max returns the limit in bytes; 0 means unlimited.
func (l *Limit) Max() int64 { return l.max.Load() }

// Used returns the bytes of slabs currently charged.
func (l *Limit) Used() int64 { return l.used.Load() }

// SetMax changes the limit (OpenBSD's nmbclust_update): raising it wakes every waiter;
// lowering it below what is used frees nothing and refuses new slabs until use drops.
// A negative max is an error and changes nothing.
func (l *Limit) SetMax(max int64) error {
	if max < 0 {
		return fmt.Errorf("uma: limit %d: %w", max, syscall.EINVAL)
	}
	l.max.Store(max)
	l.wakeAll.Store(true)
	l.kick()
	return nil
}

// charge takes n bytes from the Limit for a new slab, as m_pool_alloc does: add, compare,
// and roll back when over. Several chargers near the limit may all fail where only some
// would have gone over; that is accepted, as in OpenBSD.
func (l *Limit) charge(n int64) bool {
	used := l.used.Add(n)
	if max := l.max.Load(); max > 0 && used > max {
		l.used.Add(-n)
		l.refused.Add(1)
		return false
	}
	for {
		p := l.peak.Load()
		if used <= p || l.peak.CompareAndSwap(p, used) {
			return true
		}
	}
}

// uncharge gives n bytes back and wakes waiters.
func (l *Limit) uncharge(n int64) {
	l.used.Add(-n)
	l.kick()
}

// waiting reports whether allocations are queued; frees then bypass the per-P caches so
// items reach the kegs, and slabs the kegs, at once (FreeBSD's uma_zfree with sleepers).
func (l *Limit) waiting() bool { return l.nwait.Load() != 0 }

// kick schedules a wake-up run if anyone waits and none is scheduled: the deferred,
// debounced m_pool_wakeup. It never blocks and takes no lock, so it is safe on any free path.
func (l *Limit) kick() {
	if l.nwait.Load() == 0 {
		l.wakeAll.Store(false)
		return
	}
	if l.pending.CompareAndSwap(false, true) {
		go l.wake()
	}
}

// wake wakes, in FIFO order, the waiters that can now make progress: those whose zone has
// items to hand out without a new slab (as many as it has), and those that need a new slab
// while the limit has room (as many slabs as fit). Waking only as many as can succeed keeps
// a thousand waiting flows from stampeding for one freed page.
func (l *Limit) wake() {
	l.pending.Store(false) // a kick after this point schedules another run
	l.wakeups.Add(1)
	all := l.wakeAll.Swap(false)
	avail := int64(-1) // unlimited
	if lim := l.max.Load(); lim > 0 {
		avail = max(lim-l.used.Load(), 0)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	budget := make(map[waitTarget]int)
	for w := l.waiters.head; w != nil; {
		next := w.next
		ok := all || w.target.dependent()
		if !ok {
			items, ok1 := budget[w.target]
			if !ok1 {
				items = w.target.itemsReady()
			}
			switch {
			case items > 0:
				items--
				ok = true
			case w.target.canGrow():
				need := w.target.slabBytes()
				if avail < 0 || avail >= need {
					if avail > 0 {
						avail -= need
					}
					ok = true
				}
			}
			budget[w.target] = items
		}
		if ok {
			l.waiters.remove(w)
			l.nwait.Add(-1)
			w.ch <- struct{}{}
		}
		w = next
	}
}

// wait queues the caller for target and blocks until woken, ctx ends, or retry fires; it
// returns ctx.Err() only for an ended context. The caller retries its allocation after a
// nil return.
func (l *Limit) wait(ctx context.Context, w *waiter, front bool, retry time.Duration) error {
	l.mu.Lock()
	if front {
		l.waiters.pushFront(w)
	} else {
		l.waiters.pushBack(w)
	}
	l.nwait.Add(1)
	l.mu.Unlock()

	// Memory may sit in caches nobody is freeing from: push it back toward the kegs, at
	// most once a millisecond however many wait.
	if now := time.Now().UnixNano(); now-l.lastDrain.Load() > int64(time.Millisecond) {
		l.lastDrain.Store(now)
		l.drainCaches()
	}
	if !w.target.dependent() && (w.target.itemsReady() > 0 || (w.target.canGrow() && l.roomFor(w.target.slabBytes()))) {
		l.cancelWait(w)
		return nil
	}

	t := time.NewTimer(retry)
	defer t.Stop()
	select {
	case <-w.ch:
		return nil
	case <-t.C:
		l.cancelWait(w)
		return nil
	case <-ctx.Done():
		if l.cancelWait(w) {
			// The wake-up raced the cancellation: pass it on, or it is lost.
			l.kick()
		}
		return ctx.Err()
	}
}

// cancelWait takes w off the queue; if a wake-up run got to it first, it consumes the
// wake-up, so that w can queue again clean, and reports true.
func (l *Limit) cancelWait(w *waiter) (wasWoken bool) {
	if l.dequeue(w) {
		return false
	}
	<-w.ch
	return true
}

// dequeue removes w if it is still queued and reports whether it was.
func (l *Limit) dequeue(w *waiter) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !w.queued {
		return false
	}
	l.waiters.remove(w)
	l.nwait.Add(-1)
	return true
}

func (l *Limit) roomFor(n int64) bool {
	lim := l.max.Load()
	return lim == 0 || l.used.Load()+n <= lim
}

// register adds a keg to the Limit's list, for drains and the reclaimer.
func (l *Limit) register(k kegger) {
	l.mu.Lock()
	l.kegs = append(l.kegs, k)
	l.mu.Unlock()
}

func (l *Limit) kegList() []kegger {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]kegger(nil), l.kegs...)
}

// drainCaches moves items cached in the zones' bucket lists and in this P's buckets back
// to their kegs, and gives fully free slabs back to the Limit. Items in other Ps' buckets
// are drained by those Ps themselves: a P's buckets are touched by nobody else (that is
// what keeps the fast path free of atomics), so drainCPUs sends goroutines to run there.
func (l *Limit) drainCaches() {
	for _, k := range l.kegList() {
		k.drain(true)
	}
	l.drainCPUs()
}

// drainCPUs is FreeBSD's DRAIN_CPU without sched_bind: Go cannot send a goroutine to a
// chosen P, but new goroutines are spread over idle Ps by the scheduler, so a few per P
// reach every P in practice; each flushes the buckets of the P it runs on. Waiters that
// are still not served retry on a timer and drain again, so a P that was missed once is
// not missed for ever.
func (l *Limit) drainCPUs() {
	kegs := l.kegList()
	var wg sync.WaitGroup
	n := 2 * gomaxprocs()
	wg.Add(n)
	for range n {
		go func() {
			defer wg.Done()
			for _, k := range kegs {
				k.flushLocal()
			}
		}()
	}
	wg.Wait()
	for _, k := range kegs {
		k.drain(true)
	}
}

// Reclaim is uma_reclaim(UMA_RECLAIM_DRAIN_CPU) for the kegs under this Limit: it empties
// every zone's bucket cache and the per-P buckets it can reach, and gives every fully free
// slab back to the Go heap and its bytes back to the Limit.
func (l *Limit) Reclaim() {
	l.drainCPUs()
}

// armReclaim starts the reclaimer if it is not running: a timer, not a goroutine, so an
// idle Limit costs nothing. It takes no lock, so kegs and zones call it with theirs held.
func (l *Limit) armReclaim(after time.Duration) {
	if l.armed.CompareAndSwap(false, true) {
		time.AfterFunc(after, l.reclaimIdle)
	}
}

// reclaimIdle gives back the slabs that stayed free for their keg's idle time, and trims
// bucket caches that went unused as long; it re-arms itself while idle slabs remain.
func (l *Limit) reclaimIdle() {
	l.armed.Store(false)
	next := time.Duration(0)
	for _, k := range l.kegList() {
		if d := k.reclaimIdle(time.Now()); d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	if next > 0 {
		l.armReclaim(next)
	}
}

// LimitStats is a snapshot of a Limit.
type LimitStats struct {
	Max      int64 // bytes; 0 is unlimited
	Used     int64 // bytes of slabs held by all kegs under the Limit
	Peak     int64 // the most bytes ever held at once
	Waiters  int64 // allocations waiting now
	Refused  int64 // slab charges refused at the limit
	Wakeups  int64 // wake-up runs (one per release batch)
	KegCount int
}

// Stats returns a snapshot of the Limit.
func (l *Limit) Stats() LimitStats {
	return LimitStats{
		Max:      l.max.Load(),
		Used:     l.used.Load(),
		Peak:     l.peak.Load(),
		Waiters:  int64(l.nwait.Load()),
		Refused:  l.refused.Load(),
		Wakeups:  l.wakeups.Load(),
		KegCount: len(l.kegList()),
	}
}

// A kegger is what the Limit needs of a keg of any item type.
type kegger interface {
	drain(releaseSlabs bool)                 // zone bucket caches to the keg; free slabs to the Limit
	flushLocal()                             // this P's buckets of every zone on the keg to the zone
	reclaimIdle(now time.Time) time.Duration // give back idle slabs; how long until the next one is due
}

// A waitTarget is a zone as the wake-up run sees it.
type waitTarget interface {
	itemsReady() int  // items the zone could hand out without a new slab
	canGrow() bool    // the zone is under its own item limit
	slabBytes() int64 // bytes a new slab would charge
	dependent() bool  // its Init depends on memory elsewhere: wake on any release
}

type waiter struct {
	target     waitTarget
	ch         chan struct{} // buffered: the waker never blocks
	prev, next *waiter
	queued     bool
}

type waitQueue struct{ head, tail *waiter }

func (q *waitQueue) pushBack(w *waiter) {
	w.prev, w.next, w.queued = q.tail, nil, true
	if q.tail != nil {
		q.tail.next = w
	} else {
		q.head = w
	}
	q.tail = w
}

func (q *waitQueue) pushFront(w *waiter) {
	w.prev, w.next, w.queued = nil, q.head, true
	if q.head != nil {
		q.head.prev = w
	} else {
		q.tail = w
	}
	q.head = w
}

func (q *waitQueue) remove(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		q.tail = w.prev
	}
	w.prev, w.next, w.queued = nil, nil, false
}
