package uma

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/softnet-go/softnet/internal/procpin"
)

// A Limit is one byte limit shared by many kegs: OpenBSD's mbuf_mem_limit, which covers the
// mbuf pool and every cluster pool. Kegs charge it a whole slab at a time when they carve a
// new slab (m_pool_alloc) and credit it when they give a slab back (m_pool_free), so the
// bytes charged are always the bytes of the slabs held.
//
// A Limit of 0 is unlimited (as FreeBSD's kern.ipc.nmbclusters=0). SetMax may raise or lower
// the limit at any time; lowering frees nothing, it only refuses new slabs until enough come
// back. A Limit may have a floor (SetFloor): the least non-zero limit under which the
// allocations its kegs serve can all make progress, given that slabs are charged whole.
// SetMax refuses a limit below it, so that no waiter can wait for a slab that could never
// fit.
//
// Allocations that wait (Zone.AllocWait) queue on the Limit. They are woken, in order, when
// any keg under the Limit gives slabs or items back, or when the limit changes: unlike
// OpenBSD's pool_wakeup, which only wakes sleepers of the same pool, a cluster freed in one
// zone wakes an allocation waiting in another. The wake-up is deferred off the freeing path
// to a short-lived goroutine and debounced to one per release batch.
type Limit struct {
	max   atomic.Int64 // 0: unlimited
	floor atomic.Int64 // the least non-zero max; 0: none
	used  atomic.Int64 // bytes of slabs held by all kegs
	peak  atomic.Int64

	nwait   atomic.Int32 // queued waiters; read on the free path
	pending atomic.Bool  // a wake-up run is scheduled
	wakeAll atomic.Bool  // the next run wakes every waiter (the limit changed)

	refused atomic.Int64 // slab charges refused (OpenBSD mbs_drops)
	wakeups atomic.Int64 // wake-up runs

	armed     atomic.Bool  // the reclaimer's timer is set
	lastDrain atomic.Int64 // when waiters last drained the caches (UnixNano)
	drainMu   sync.Mutex   // held by the drainCPUs running: one at a time

	setMu   sync.Mutex // serialises SetMax and SetFloor
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
// A negative max, or a non-zero max below the floor (SetFloor), is an error wrapping
// syscall.EINVAL that names the floor, and changes nothing.
func (l *Limit) SetMax(max int64) error {
	if max < 0 {
		return fmt.Errorf("uma: limit %d: %w", max, syscall.EINVAL)
	}
	l.setMu.Lock()
	if f := l.floor.Load(); max != 0 && max < f {
		l.setMu.Unlock()
		return fmt.Errorf("uma: limit %d: must be 0 (unlimited) or at least %d bytes, the floor: %w", max, f, syscall.EINVAL)
	}
	l.max.Store(max)
	l.setMu.Unlock()
	l.wakeAll.Store(true)
	l.kick()
	return nil
}

// SetFloor sets the least non-zero limit that SetMax accepts: what the allocations served
// under the Limit need at once, in whole slabs, to make progress. Below it a waiter could
// wait for a slab that never fits beside the slabs the others hold, and so wait for ever.
// A negative floor, or one above the limit in force (unless that is 0, unlimited), is an
// error wrapping syscall.EINVAL and changes nothing: raise the limit first. 0 removes the
// floor.
func (l *Limit) SetFloor(floor int64) error {
	l.setMu.Lock()
	defer l.setMu.Unlock()
	if max := l.max.Load(); floor < 0 || max != 0 && max < floor {
		return fmt.Errorf("uma: floor %d with limit %d: %w", floor, max, syscall.EINVAL)
	}
	l.floor.Store(floor)
	return nil
}

// Floor returns the least non-zero limit SetMax accepts; 0 means any.
func (l *Limit) Floor() int64 { return l.floor.Load() }

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

// drainCaches moves items cached in the zones' bucket lists and in every P's buckets back
// to their kegs, and gives fully free slabs back to the Limit. Items in a P's buckets are
// moved by goroutines running on that P (drainCPUs): a P's buckets are touched by nobody
// else, which is what keeps the fast path free of atomics.
func (l *Limit) drainCaches() {
	for _, k := range l.kegList() {
		k.drain(true)
	}
	l.drainCPUs(false)
}

// drainReach bounds how long drainCPUs looks for the Ps whose buckets hold items. A P
// still missed then is tried again at the waiter's next retry.
const drainReach = 20 * time.Millisecond

// drainCPUs is FreeBSD's DRAIN_CPU without sched_bind. Go cannot send a goroutine to a
// chosen P, so it finds the Ps whose buckets hold items (reading the counts as Stats
// does) and sends goroutines that flush the buckets of the P they run on and then yield
// with runtime.Gosched, which puts them on the global run queue and wakes an idle P: an
// idle P takes them at once, and a busy one at its next check of that queue, so every P
// that holds items is reached, not only the Ps the scheduler happened to spread them to.
// They stop once every such P is flushed, or after drainReach. The buckets of Ps that
// GOMAXPROCS took away, which no goroutine can run on until the P comes back, are moved
// directly. One drain runs at a time: a waiter that finds one running returns at once (it
// will see its result), Reclaim (wait set) waits for it and drains again.
func (l *Limit) drainCPUs(wait bool) {
	if wait {
		l.drainMu.Lock()
	} else if !l.drainMu.TryLock() {
		return
	}
	defer l.drainMu.Unlock()
	kegs := l.kegList()
	var zones []pcacheOwner
	for _, k := range kegs {
		zones = append(zones, k.caches()...)
	}
	for _, z := range zones {
		z.flushOrphans()
	}
	np := gomaxprocs()
	// todo[i*np+p]: zone i holds items in P p's buckets.
	todo := make([]bool, len(zones)*np)
	left := 0
	for i, z := range zones {
		for p := range np {
			if z.parkedOn(p) > 0 {
				todo[i*np+p] = true
				left++
			}
		}
	}
	if left > 0 {
		var mu sync.Mutex
		end := time.Now().Add(drainReach)
		var wg sync.WaitGroup
		for range np {
			wg.Go(func() {
				for {
					p := procpin.Pin()
					procpin.Unpin()
					for i, z := range zones {
						mu.Lock()
						want := p < np && todo[i*np+p]
						mu.Unlock()
						if !want {
							continue
						}
						q := z.flushLocal() // the P it ran on: p, unless the goroutine moved
						mu.Lock()
						if q < np && todo[i*np+q] {
							todo[i*np+q] = false
							left--
						}
						mu.Unlock()
					}
					mu.Lock()
					done := left == 0
					mu.Unlock()
					if done || time.Now().After(end) {
						return
					}
					runtime.Gosched()
				}
			})
		}
		wg.Wait()
	}
	for _, k := range kegs {
		k.drain(true)
	}
}

// Reclaim is uma_reclaim(UMA_RECLAIM_DRAIN_CPU) for the kegs under this Limit: it empties
// every zone's bucket cache and every P's buckets (those of a P that the scheduler does
// not let run its goroutines within drainReach excepted), and gives every fully free slab
// back to the Go heap and its bytes back to the Limit.
func (l *Limit) Reclaim() {
	l.drainCPUs(true)
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
	caches() []pcacheOwner                   // the zones on the keg, as drainCPUs sees them
	reclaimIdle(now time.Time) time.Duration // give back idle slabs; how long until the next one is due
}

// A pcacheOwner is a zone as drainCPUs sees it: per-P buckets that only goroutines running
// on their P may move.
type pcacheOwner interface {
	parkedOn(pid int) int // items in P pid's buckets, read as Stats reads them
	flushLocal() int      // this P's buckets to the bucket cache; returns the P's id
	flushOrphans()        // the buckets of Ps beyond GOMAXPROCS to the bucket cache
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
