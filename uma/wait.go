package uma

// itemsReady, canGrow and slabBytes make a zone a waitTarget: what the Limit's wake-up run
// asks before it wakes a waiter of this zone.

func (z *Zone[T]) itemsReady() int {
	z.mu.Lock()
	defer z.mu.Unlock()
	n := z.cached
	z.keg.mu.Lock()
	free := int64(z.keg.free)
	z.keg.mu.Unlock()
	if z.maxItems > 0 {
		free = min(free, max(0, z.maxItems-z.imported))
	}
	return int(n + free)
}

func (z *Zone[T]) canGrow() bool {
	if z.maxItems == 0 {
		return true
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.imported < z.maxItems
}

func (z *Zone[T]) slabBytes() int64 { return z.keg.slabBytes }

// dependent reports that the zone's items wait on memory elsewhere (its Init failed): a
// wake-up run wakes its waiters on any release, and they do not retry before one.
func (z *Zone[T]) dependent() bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.initFailed
}
