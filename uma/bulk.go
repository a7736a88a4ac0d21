package uma

import (
	"github.com/softnet-go/softnet/internal/procpin"
	"github.com/softnet-go/softnet/internal/stress"
)

// AllocBulk fills dst with items in as few pinned sections as the buckets allow: a chain
// of N clusters costs one pin, not N (FreeBSD's MBP_PERSIST, which held the cache across
// m_getcl's mbuf and cluster). It is non-blocking: it returns len(dst) and nil, or the
// number it did allocate (those stay in dst[:n], constructed) and an *Error wrapping
// ENOBUFS, counted as one failure. If a Ctor fails, the items not yet handed out go back
// and its error is returned with the count of good ones.
func (z *Zone[T]) AllocBulk(dst []*T) (int, error) {
	if len(dst) == 0 {
		return 0, nil
	}
	if stress.FailThreshold() != 0 && failureInjected() {
		z.fails.Add(1)
		return 0, z.errNoBufs
	}
	n := 0
	for n < len(dst) {
		if z.smr == nil {
			n += z.allocCachedN(dst[n:])
		}
		if n == len(dst) {
			break
		}
		it := z.allocSlow()
		if it == nil {
			break
		}
		dst[n] = it
		n++
	}
	if z.ctor != nil {
		for i, it := range dst[:n] {
			if err := z.ctor(it); err != nil {
				for _, rest := range dst[i:n] {
					z.put(rest)
				}
				clear(dst[i:n])
				return i, err
			}
		}
	}
	if n < len(dst) {
		z.fails.Add(1)
		return n, z.errNoBufs
	}
	return n, nil
}

// allocCachedN pops as many items as this P's buckets hold, up to len(dst).
func (z *Zone[T]) allocCachedN(dst []*T) int {
	n := 0
	pid := procpin.Pin()
	if a := z.locals.Load(); pid < len(a.caches) {
		c := a.caches[pid]
		c.lock()
		for n < len(dst) {
			if c.alloc.n == 0 {
				if c.free.n == 0 {
					break
				}
				c.alloc, c.free = c.free, c.alloc
			}
			dst[n] = c.alloc.pop()
			n++
		}
		c.allocs += int64(n)
		c.unlock()
	}
	procpin.Unpin()
	return n
}

// FreeBulk frees every item of items, running the Dtor on each, in as few pinned sections
// as the buckets allow. It does not clear the slice.
func (z *Zone[T]) FreeBulk(items []*T) {
	if z.dtor != nil {
		for _, it := range items {
			z.dtor(it)
		}
	}
	if z.smr != nil {
		for _, it := range items {
			z.freeSMR(it)
		}
		return
	}
	for len(items) > 0 {
		if !z.limit.waiting() {
			items = items[z.freeCachedN(items):]
			if len(items) == 0 {
				return
			}
		}
		z.freeSlow(items[0])
		items = items[1:]
	}
}

// freeCachedN pushes as many items as this P's buckets have room for.
func (z *Zone[T]) freeCachedN(items []*T) int {
	n := 0
	pid := procpin.Pin()
	if a := z.locals.Load(); pid < len(a.caches) {
		c := a.caches[pid]
		c.lock()
		for n < len(items) {
			if c.alloc.full() {
				if c.free.full() {
					break
				}
				c.alloc, c.free = c.free, c.alloc
			}
			c.alloc.push(items[n])
			n++
		}
		c.frees += int64(n)
		c.unlock()
	}
	procpin.Unpin()
	return n
}
