// Package uma is FreeBSD's UMA zone allocator for Go, under OpenBSD's single memory limit.
//
// A Keg carves large slabs into items of one type T; a Zone hands them out through per-P
// caches, so that the common Alloc and Free touch only the calling P's buckets, with the P
// pinned and no lock or atomic operation (as sync.Pool's fast path, but with a cap and
// statistics). Every keg charges one shared Limit a slab at a time: one byte limit over
// many zones, like OpenBSD's mbuf_mem_limit, changeable at run time.
//
// At the limit, Alloc fails at once with an error wrapping syscall.ENOBUFS (M_NOWAIT),
// and AllocWait waits under a context (M_WAITOK) until any zone under the same Limit
// gives memory back or the limit is raised. Waiters are served in order and only as many
// as the returned memory can satisfy; while anyone waits, frees skip the caches so memory
// flows straight back, and memory parked in caches is drained toward the waiters.
//
// Typical use, for 2 KiB buffers under a 64 MiB limit:
//
//	l, _ := uma.NewLimit(64 << 20)
//	k, _ := uma.NewKeg(l, uma.KegConfig[Buf]{Name: "buf", ItemSize: 2048, SlabInit: carve})
//	z, _ := uma.NewZone(k, uma.ZoneConfig[Buf]{Name: "buf"})
//	b, err := z.Alloc()          // or z.AllocWait(ctx)
//	...
//	z.Free(b)
//
// Statistics (Zone.Stats, Keg.Stats, Limit.Stats) are exact counts: items in use + cached
// per P + cached in the zone + free in the keg = items carved, and bytes charged = slabs
// held, to the item, whenever the zone is quiescent.
package uma
