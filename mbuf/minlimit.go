package mbuf

import (
	"fmt"
	"runtime"
	"syscall"
)

// MinLimit returns the smallest memory Limit under which workers softnet workers can each
// move one flow through mbufs at once; workers <= 0 means one per P
// (runtime.GOMAXPROCS(0)), as netq.NewGroup counts them. Any smaller non-zero Limit can
// leave an allocation waiting for ever: the kegs charge the Limit a whole slab at a time,
// and a flow needs a slab of mbufs and a slab of 2 KiB clusters at once, so under
// SlabBytes(mbuf) + SlabBytes(2 KiB cluster) (132 KiB with 4 KiB pages) the second slab
// never fits beside the first.
//
// It is derived from the zones, not fixed. Each worker gets one per-P bucket of the
// packet zone's mbuf and 2 KiB cluster pairs, which its input reads into and which its P
// takes from the kegs a bucket at a time, and one more mbuf and cluster, for a split or
// for a pair made by hand when the packet zone has none ready. The floor is the whole
// slabs of the mbuf keg and the 2 KiB cluster keg that hold all of that at once. So every
// worker can fill its first bucket without waiting for another P's buckets to be
// drained; what Ps cache beyond that, a waiting allocation drains back (uma.Limit).
// Jumbo clusters are left out: the input path takes them only when they can be had
// without waiting, and falls back to 2 KiB clusters.
func MinLimit(workers int) int64 {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	each := int64(packetZone.BucketSize() + 1)
	items := int64(workers) * each
	return mbufZone.Keg().BytesFor(items) + clZones[extCluster].Keg().BytesFor(items)
}

// SetLimit sets the memory Limit to max bytes, 0 for unlimited, for a process that moves
// flows on workers softnet workers (<= 0: one per P). A non-zero max below
// MinLimit(workers) is refused with an error wrapping syscall.EINVAL that names the
// minimum, and changes nothing. Limit().SetMax checks only MinLimit(1), the Limit's floor.
func SetLimit(max int64, workers int) error {
	if floor := MinLimit(workers); max != 0 && max < floor {
		if workers <= 0 {
			workers = runtime.GOMAXPROCS(0)
		}
		return fmt.Errorf("mbuf: memory limit %d: must be 0 (unlimited) or at least %d bytes, what %d worker(s) need to move one flow each: %w",
			max, floor, workers, syscall.EINVAL)
	}
	return limit.SetMax(max)
}
