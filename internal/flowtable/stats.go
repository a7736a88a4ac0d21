package flowtable

import "github.com/softnet-go/softnet/uma"

// Stats is a snapshot of a table, for the admin endpoint.
type Stats struct {
	Len            int   // entries
	Buckets        int   // buckets of the current array
	Grows          int64 // rebuilds into a bigger array
	Shrinks        int64 // rebuilds into a smaller array
	FailedRebuilds int64 // rebuilds abandoned for want of nodes (the memory limit)
	// Zone is the node zone's snapshot. Its InUse is Len plus the nodes of a rebuild in
	// progress; freed nodes waiting out their grace period count as cached; node
	// allocations refused at the limit (by Insert or a rebuild) are its Failures.
	Zone uma.ZoneStats
}

// Stats returns a snapshot of the table. It takes no lock the owner holds for long, but
// it does take the zone's, briefly: it is not for a hot path, nor for a read section.
func (t *Table[V]) Stats() Stats {
	return Stats{
		Len:            t.Len(),
		Buckets:        len(t.cur.Load().heads),
		Grows:          t.grows.Load(),
		Shrinks:        t.shrinks.Load(),
		FailedRebuilds: t.failedRebuilds.Load(),
		Zone:           t.zone.Stats(),
	}
}
