package uma

// ZoneStats is a snapshot of a zone's counts, in items unless named otherwise.
//
// Imported == InUse + CachedP + CachedZone, and InUse == Requests − Frees: the counts are
// exact, never sampled, so whenever the zone is quiescent both identities hold to the item
// (tests assert them). A snapshot taken while other goroutines allocate reads each P's
// counters as that P last wrote them, as FreeBSD's counter(9) sums do, so it may be a
// moment stale, never torn.
type ZoneStats struct {
	Name       string
	Keg        string
	ItemSize   int64 // bytes each item stands for
	BucketSize int
	InUse      int64 // handed out and not freed: Requests − Frees
	CachedP    int64 // in per-P buckets
	CachedZone int64 // in the zone's bucket cache
	Imported   int64 // taken from the keg and not given back
	Requests   int64 // successful allocations
	Frees      int64
	Failures   int64 // non-blocking allocations refused (ENOBUFS)
	Sleeps     int64 // waiting allocations that had to wait
	MaxItems   int64 // 0: no limit of its own
	PerP       []PStats
}

// PStats is one P's part of a zone's counts.
type PStats struct {
	Cached   int64
	Requests int64
	Frees    int64
}

// Stats returns a snapshot of the zone.
func (z *Zone[T]) Stats() ZoneStats {
	z.mu.Lock()
	s := ZoneStats{
		Name:       z.name,
		Keg:        z.keg.name,
		ItemSize:   z.keg.itemSize,
		BucketSize: z.bsize,
		CachedZone: z.cached,
		Imported:   z.imported,
		Requests:   z.allocs,
		Frees:      z.frees,
		Failures:   z.fails.Load(),
		Sleeps:     z.sleeps.Load(),
		MaxItems:   z.maxItems,
	}
	caches := z.locals.Load().caches
	s.PerP = make([]PStats, len(caches))
	for i, c := range caches {
		c.readLock()
		p := PStats{Cached: int64(c.cached()), Requests: c.allocs, Frees: c.frees}
		c.readUnlock()
		s.PerP[i] = p
		s.CachedP += p.Cached
		s.Requests += p.Requests
		s.Frees += p.Frees
	}
	z.mu.Unlock()
	s.InUse = s.Requests - s.Frees
	return s
}
