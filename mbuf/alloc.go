package mbuf

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/softnet-go/softnet/uma"
)

// How is the allocation mode, BSD's how/wait argument.
//
// The zero value, DontWait, is M_NOWAIT: at the memory Limit an allocation fails at once
// with an error wrapping syscall.ENOBUFS. Wait(ctx) is M_WAITOK under a context: the
// allocation waits until memory comes back anywhere under the Limit, and fails only with
// ctx.Err() when the context ends first, or at once with an error wrapping ENOBUFS when it
// could never be satisfied under the Limit in force: an mbuf with a jumbo cluster whose
// slab does not fit beside a slab of mbufs (a Limit at its floor, MinLimit(1), always
// fits a 2 KiB cluster's).
type How struct {
	ctx context.Context
}

// DontWait is M_NOWAIT (OpenBSD M_DONTWAIT).
var DontWait How

// Wait is M_WAITOK (OpenBSD M_WAIT) under ctx; a nil ctx waits without end.
func Wait(ctx context.Context) How {
	if ctx == nil {
		ctx = context.Background()
	}
	return How{ctx: ctx}
}

// zalloc allocates from z as how says.
func zalloc[T any](z *uma.Zone[T], how How) (*T, error) {
	if how.ctx == nil {
		return z.Alloc()
	}
	return z.AllocWait(how.ctx)
}

// The zones, created at init as kern_mbuf.c's mbuf_init does, all under one Limit.
var (
	limit      *uma.Limit
	mbufZone   *uma.Zone[Mbuf]            // "mbuf"
	packetZone *uma.Zone[Mbuf]            // "mbuf_packet": a secondary zone on the mbuf keg
	clZones    [numExt]*uma.Zone[cluster] // by extType; [extCaller] holds ExtAdd's descriptors
	extSize    [numExt]int                // buffer bytes by extType

	// pktBare counts packet-zone items cached without their cluster: a pair whose cluster
	// was still shared when its mbuf was freed. GetCL gives such an item a new cluster.
	pktBare atomic.Int64
)

// An Mbuf is exactly MSize bytes, so the mbuf keg charges what an mbuf costs: these fail
// to compile otherwise.
var (
	_ [MSize - unsafe.Sizeof(Mbuf{})]byte
	_ [unsafe.Sizeof(Mbuf{}) - MSize]byte
)

func init() {
	var err error
	if limit, err = uma.NewLimit(0); err != nil {
		panic(err)
	}
	mk := must(uma.NewKeg(limit, uma.KegConfig[Mbuf]{Name: "mbuf", ItemSize: MSize}))
	mbufZone = must(uma.NewZone(mk, uma.ZoneConfig[Mbuf]{Name: "mbuf"}))

	extSize = [numExt]int{0, MCLBytes, MJumPageSize, MJum9Bytes, MJum16Bytes, MJum64Bytes}
	names := [numExt]string{"mbuf_ext_refcnt", "mbuf_cluster", "mbuf_jumbo_page", "mbuf_jumbo_9k",
		"mbuf_jumbo_16k", "mbuf_jumbo_64k"}
	for k := range numExt {
		newCluster(k, names[k])
	}

	// zone_pack: pairs of an mbuf and a 2 KiB cluster, joined when the mbuf enters the
	// zone's caches (zinit) and parted when it leaves them (zfini), so that GetCL is one
	// allocation. Its buckets are sized for the clusters they carry, not the mbufs.
	packetZone = must(uma.NewZone(mk, uma.ZoneConfig[Mbuf]{
		Name:       "mbuf_packet",
		Init:       packInit,
		Fini:       packFini,
		BucketSize: clZones[extCluster].Stats().BucketSize,
	}))

	// No limit below what one worker needs: see MinLimit.
	if err := limit.SetFloor(MinLimit(1)); err != nil {
		panic(err)
	}
}

// newCluster creates the keg and zone of one external storage kind. A slab holds 64 KiB
// of 2 KiB clusters or about 128 KiB of larger ones, carved from one []byte, beside their
// descriptors; a slab of ExtAdd descriptors holds 1024 of them and no buffer.
func newCluster(k extType, name string) {
	size := extSize[k]
	cfg := uma.KegConfig[cluster]{Name: name}
	if size > 0 {
		per := max(1, (128<<10)/size)
		if size < 4096 {
			per = (64 << 10) / size
		}
		cfg.ItemSize = int64(size) + int64(unsafe.Sizeof(cluster{}))
		cfg.ItemsPerSlab = per
	}
	var z *uma.Zone[cluster]
	cfg.SlabInit = func(items []cluster) {
		var store []byte
		if size > 0 {
			store = make([]byte, len(items)*size)
		}
		for i := range items {
			c := &items[i]
			c.ref.Store(1)
			c.kind, c.zone = k, z
			if size > 0 {
				c.buf = store[i*size : (i+1)*size : (i+1)*size]
			}
		}
	}
	keg := must(uma.NewKeg(limit, cfg))
	z = must(uma.NewZone(keg, uma.ZoneConfig[cluster]{Name: name}))
	clZones[k] = z
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// packInit is zone_pack's zinit: attach a fresh 2 KiB cluster.
func packInit(m *Mbuf) error {
	c, err := clZones[extCluster].Alloc()
	if err != nil {
		return err
	}
	m.ext, m.origin = c, fromPacket
	return nil
}

// packFini is zone_pack's zfini: give the cluster back.
func packFini(m *Mbuf) {
	if m.ext == nil {
		pktBare.Add(-1)
		return
	}
	c := m.ext
	m.ext = nil
	clZones[extCluster].Free(c)
}

// Limit returns the memory Limit every mbuf and cluster zone charges (OpenBSD's
// mbuf_mem_limit, FreeBSD's kern.ipc.maxmbufmem). It is unlimited until someone calls
// SetMax on it, or SetLimit, as the daemon's --mem-limit does. Its floor is MinLimit(1):
// SetMax refuses a smaller non-zero limit.
func Limit() *uma.Limit { return limit }

// init readies an mbuf fresh from a zone: m_init.
func (m *Mbuf) init(t Type, f Flags, o origin) {
	m.next, m.nextpkt, m.tags = nil, nil, nil
	m.off, m.len = 0, 0
	m.flags = f & (userFlags | MPktHdr)
	m.typ = t
	m.origin = o
	if f&MPktHdr != 0 {
		m.hdr = PktHdr{}
	}
	debugAlloc(m)
}

// Get is m_get(9): one mbuf with its data in its internal storage (MLen bytes), empty.
// With DontWait at the Limit it returns an error wrapping ENOBUFS; with Wait it waits.
func Get(how How, t Type) (*Mbuf, error) {
	return get(how, t, 0)
}

// GetHdr is m_gethdr(9): like Get, with a zeroed packet header (MPktHdr, MHLen bytes).
func GetHdr(how How, t Type) (*Mbuf, error) {
	return get(how, t, MPktHdr)
}

func get(how How, t Type, f Flags) (*Mbuf, error) {
	m, err := zalloc(mbufZone, how)
	if err != nil {
		return nil, err
	}
	m.init(t, f, fromMbuf)
	return m, nil
}

// GetCL is m_getcl(9): an mbuf with a 2 KiB cluster attached, empty, in one allocation
// from the packet zone (FreeBSD's zone_pack), whatever f says: a pair does not care
// whether its mbuf will carry a packet header (f may hold MPktHdr and MEOR). All or
// nothing: on failure nothing stays allocated.
//
// With Wait, when the packet zone has no ready pair it waits for an mbuf and a cluster
// from their own zones (as m_getjcl does), rather than waiting on the packet zone: a pair
// cannot be made while clusters are out, however many mbufs are free.
func GetCL(how How, t Type, f Flags) (*Mbuf, error) {
	m, err := packetZone.Alloc()
	if err != nil {
		if how.ctx == nil {
			return nil, err
		}
		return getWithCluster(how, t, f, extCluster)
	}
	if m.ext == nil {
		// A bare pair: its cluster was still shared when it was last freed.
		c, err := zalloc(clZones[extCluster], how)
		if err != nil {
			packetZone.Free(m) // still bare, still counted
			return nil, err
		}
		pktBare.Add(-1)
		m.ext = c
	}
	m.init(t, f, fromPacket)
	debugClusterAlloc(m.ext)
	return m, nil
}

// GetJCL is m_getjcl(9): an mbuf with a cluster of size bytes attached, empty: MCLBytes
// (the packet zone, as GetCL), MJumPageSize, MJum9Bytes, MJum16Bytes or MJum64Bytes. Any
// other size is an error wrapping EINVAL (FreeBSD panics; OpenBSD's m_clpool returns
// NULL). All or nothing.
func GetJCL(how How, t Type, f Flags, size int) (*Mbuf, error) {
	k, err := clusterKind("GetJCL", size)
	if err != nil {
		return nil, err
	}
	if k == extCluster {
		return GetCL(how, t, f)
	}
	return getWithCluster(how, t, f, k)
}

// clusterKind returns the cluster zone of exactly size bytes (m_getzone), or an error
// wrapping EINVAL naming op when there is none.
func clusterKind(op string, size int) (extType, error) {
	switch size {
	case MCLBytes:
		return extCluster, nil
	case MJumPageSize:
		return extJumboP, nil
	case MJum9Bytes:
		return extJumbo9, nil
	case MJum16Bytes:
		return extJumbo16, nil
	case MJum64Bytes:
		return extJumbo64, nil
	}
	return 0, fmt.Errorf("mbuf: %s: no %d-byte cluster zone: %w", op, size, syscall.EINVAL)
}

// Get2 is FreeBSD's m_get2(9): an empty mbuf with room for size bytes in one piece, in the
// smallest storage that holds them: its internal storage up to MHLen (MLen without a
// header, the same here), else a 2 KiB cluster (a packet-zone pair, as GetCL), else the
// smallest jumbo cluster that fits. f may hold MPktHdr and MEOR. FreeBSD's m_get2 stops at
// MJUMPAGESIZE and its m_get3 at MJUM16BYTES; here any size up to MJum64Bytes fits, and a
// larger one returns ErrTooBig (where the C routines return NULL). A negative size panics.
// All or nothing: on failure (ENOBUFS, ctx.Err()) nothing stays allocated.
func Get2(size int, how How, t Type, f Flags) (*Mbuf, error) {
	if size < 0 {
		panic("mbuf: Get2 of a negative size")
	}
	k, ok := smallestKind(size)
	if !ok {
		return nil, ErrTooBig
	}
	return getKind(how, t, f, k)
}

// ClGet is m_clget(9) (OpenBSD MCLGET): it attaches a 2 KiB cluster to m, as
// ClJGet(how, MCLBytes) does, with the same contract: on failure (ENOBUFS, ctx.Err()) m is
// unchanged, and an mbuf that already has external storage panics.
func (m *Mbuf) ClGet(how How) error {
	return m.ClJGet(how, MCLBytes)
}

// ClJGet is FreeBSD's m_cljget(9) with an mbuf (OpenBSD MCLGETL): it attaches a fresh
// cluster of size bytes — MCLBytes, MJumPageSize, MJum9Bytes, MJum16Bytes or MJum64Bytes —
// to m, which must not have external storage (FreeBSD asserts it; here it panics).
// m's data window becomes empty at the start of the cluster: whatever its internal storage
// held is dropped, as with ExtAdd. Its flags, header and tags stay. For a cluster not
// attached to any mbuf (m_cljget with a NULL mbuf) see GetClusterRef.
//
// On failure m is unchanged, as the C routines leave it without M_EXT: an error wrapping
// EINVAL for any other size (FreeBSD panics), ENOBUFS with DontWait at the memory Limit,
// or ctx.Err() with Wait.
func (m *Mbuf) ClJGet(how How, size int) error {
	debugCheck(m)
	if m.ext != nil {
		panic("mbuf: ClJGet on an mbuf with external storage")
	}
	k, err := clusterKind("ClJGet", size)
	if err != nil {
		return err
	}
	c, err := zalloc(clZones[k], how)
	if err != nil {
		return err
	}
	debugClusterAlloc(c)
	m.ext = c
	m.off, m.len = 0, 0
	return nil
}

// getWithCluster pairs an mbuf from the mbuf zone with a cluster of kind k.
//
// With Wait it never sleeps holding one half of the pair: when the other half cannot be
// had at once, it gives back what it holds, waits for the missing half, and then tries
// for the first without waiting. A cluster held while asleep keeps its slab charged, and
// two allocations each holding a cluster of a different slab can leave no room for the
// mbuf slab both wait for, for ever.
func getWithCluster(how How, t Type, f Flags, k extType) (*Mbuf, error) {
	cz := clZones[k]
	c, err := zalloc(cz, how)
	if err != nil {
		return nil, err
	}
	var m *Mbuf
	if how.ctx == nil {
		if m, err = mbufZone.Alloc(); err != nil {
			cz.Free(c)
			return nil, err
		}
	} else {
		// Neither zone has a Ctor, so TryAlloc has no error to return.
		for {
			if m, _ = mbufZone.TryAlloc(); m != nil {
				break
			}
			cz.Free(c)
			if err := pairFits(cz); err != nil {
				return nil, err // waiting would only take turns at the two halves
			}
			if m, err = mbufZone.AllocWait(how.ctx); err != nil {
				return nil, err
			}
			if c, _ = cz.TryAlloc(); c != nil {
				break
			}
			mbufZone.Free(m)
			if c, err = cz.AllocWait(how.ctx); err != nil {
				return nil, err
			}
		}
	}
	m.init(t, f, fromMbuf)
	m.ext = c
	debugClusterAlloc(c)
	return m, nil
}

// pairFits reports, as an error wrapping ENOBUFS, that a slab of cz and a slab of mbufs
// cannot be charged together under the Limit in force, so that no mbuf and cluster of cz
// can ever be had at once while it stays.
func pairFits(cz *uma.Zone[cluster]) error {
	need := cz.Keg().SlabBytes() + mbufZone.Keg().SlabBytes()
	if max := limit.Max(); max > 0 && max < need {
		return fmt.Errorf("mbuf: %s and mbuf slabs need %d bytes together, more than the memory limit %d: %w",
			cz.Name(), need, max, syscall.ENOBUFS)
	}
	return nil
}

// fitKind returns the storage for n bytes of a chain being built: internal storage below
// MinClSize, then the largest cluster not larger than n (a 2 KiB one when n is smaller).
// Building a chain this way never allocates a whole cluster more than it needs.
func fitKind(n int) extType {
	switch {
	case n < MinClSize:
		return extCaller // internal storage
	case n <= MCLBytes:
		return extCluster
	}
	for k := extJumbo64; k > extCluster; k-- {
		if extSize[k] <= n {
			return k
		}
	}
	return extCluster
}

// getKind returns an empty mbuf with storage of kind k (extCaller: internal storage).
func getKind(how How, t Type, f Flags, k extType) (*Mbuf, error) {
	switch k {
	case extCaller:
		return get(how, t, f)
	case extCluster:
		return GetCL(how, t, f)
	}
	return getWithCluster(how, t, f, k)
}

// smallestKind returns the smallest storage that holds n bytes in one mbuf, or false when
// n is more than the largest cluster.
func smallestKind(n int) (extType, bool) {
	if n <= MLen {
		return extCaller, true
	}
	for k := extCluster; k < numExt; k++ {
		if extSize[k] >= n {
			return k, true
		}
	}
	return 0, false
}

// GetM is m_getm2(9): it builds a chain of empty mbufs with room for size bytes, using
// the largest clusters that fit (and an mbuf's internal storage for a remainder under
// MinClSize), and appends it to m, returning m; with a nil m it returns the new chain.
// Of f only MPktHdr (on the new head, and only when m is nil) and MEOR (on the new tail)
// count; as in FreeBSD, m's last mbuf loses MEOR, for it no longer ends the record. All
// or nothing: on failure the partial new chain is freed, m is left as it was, and GetM
// returns nil and the error. A size of 0 or less returns m unchanged.
//
// FreeBSD uses page clusters at most (and 2 KiB ones from MINCLSIZE); the larger
// clusters here mean fewer mbufs and iovecs for a large chain.
func GetM(m *Mbuf, size int, how How, t Type, f Flags) (*Mbuf, error) {
	if size <= 0 {
		return m, nil
	}
	if m != nil {
		f &^= MPktHdr
	}
	var head, tail *Mbuf
	for rem := size; rem > 0; {
		n, err := getKind(how, t, f&MPktHdr, fitKind(rem))
		if err != nil {
			head.FreeM()
			return nil, err
		}
		f &^= MPktHdr
		rem -= len(n.storage())
		if tail == nil {
			head = n
		} else {
			tail.next = n
		}
		tail = n
	}
	tail.flags |= f & MEOR
	if m == nil {
		return head, nil
	}
	last := m.Last()
	last.flags &^= MEOR
	last.next = head
	return m, nil
}

// Free is m_free(9): it frees this one mbuf and returns its m_next. Its reference to
// external storage is dropped: the last reference gives a cluster back to its zone
// (wiping it first if Zero marked it) or caller memory to its free routine. Tags go with
// the mbuf. A packet-zone pair whose cluster is not shared goes back to the packet zone
// whole (FreeBSD's EXT_PACKET); if the cluster is still shared, the mbuf goes back alone
// and the other holder frees the cluster later.
func (m *Mbuf) Free() *Mbuf {
	n := m.next
	if m.release() == fromPacket {
		packetZone.Free(m)
	} else {
		mbufZone.Free(m)
	}
	return n
}

// release is m_free without the last step: it drops m's tags and its reference to
// external storage and reports the zone m itself goes back to.
func (m *Mbuf) release() origin {
	if m.flags&MZeroize != 0 {
		clear(m.dat[:])
	}
	debugFree(m)
	m.tags = nil
	if c := m.ext; c != nil {
		if m.origin == fromPacket && c.kind == extCluster {
			if c.unref() {
				c.scrub()
				return fromPacket // the pair stays whole
			}
		} else if c.unref() {
			c.recycle()
		}
		m.ext = nil
	}
	if m.origin == fromPacket {
		pktBare.Add(1)
	}
	return m.origin
}

// FreeMP is FreeBSD's m_freemp(9) (OpenBSD m_purge): it frees every packet of the queue
// that starts at m, each whole (FreeM), following m_nextpkt. A nil m is fine. It cannot
// fail. A List or Queue frees its packets with Purge.
func (m *Mbuf) FreeMP() {
	for m != nil {
		n := m.nextpkt
		m.nextpkt = nil
		m.FreeM()
		m = n
	}
}

// FreeM is m_freem(9): it frees the whole chain (following m_next, not m_nextpkt). A
// nil chain is fine. The mbufs go back to their zones a batch at a time, in one pinned
// section per batch rather than one per mbuf.
func (m *Mbuf) FreeM() {
	if m == nil || m.next == nil {
		if m != nil {
			m.Free()
		}
		return
	}
	var b freeBatch
	for m != nil {
		n := m.next
		b.add(m, m.release())
		m = n
	}
	b.flush()
}
