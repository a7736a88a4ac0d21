package uma

import "github.com/softnet-go/softnet/internal/procpin"

// freeSMR is uma_zfree_smr: the item goes to this P's free bucket, never the alloc bucket,
// so that nobody can take it before its grace period. A full free bucket is stamped with
// a new goal and queued at the tail of the bucket cache.
func (z *Zone[T]) freeSMR(it *T) {
	pid := procpin.Pin()
	if a := z.locals.Load(); pid < len(a.caches) {
		c := a.caches[pid]
		c.lock()
		if !c.free.full() {
			c.free.push(it)
			c.frees++
			c.unlock()
			procpin.Unpin()
			return
		}
		c.unlock()
	}
	procpin.Unpin()

	z.mu.Lock()
	defer z.mu.Unlock()
	b := bucket[T]{items: z.spareBucket()}
	c := z.cache(procpin.Pin())
	c.lock()
	if c.free.full() {
		c.free, b = b, c.free
	}
	c.free.push(it)
	c.frees++
	c.unlock()
	procpin.Unpin()
	if b.n > 0 {
		// Every item in b was freed before this Advance: its goal covers them all.
		b.seq = z.smr.Advance()
	}
	z.stash(b)
	z.limit.armReclaim(z.keg.idleTime)
}

// takeReady takes the oldest queued bucket of an SMR zone if its grace period is over,
// or, with wait, after waiting for it. It returns an empty bucket if there is none.
// Called with z.mu held; the wait is short, since read sections are.
func (z *Zone[T]) takeReady(wait bool) bucket[T] {
	if len(z.full) == 0 {
		return bucket[T]{}
	}
	b := z.full[0]
	if !z.smr.Poll(b.seq) {
		if !wait {
			return bucket[T]{}
		}
		z.smr.Wait(b.seq)
	}
	// Shift rather than reslice: z.full[1:] would walk the slice off its array, and
	// every stash would then grow a new one (an allocation per bucket).
	n := copy(z.full, z.full[1:])
	z.full[n] = bucket[T]{}
	z.full = z.full[:n]
	z.cached -= int64(b.n)
	z.lowWater = min(z.lowWater, z.cached)
	return b
}
