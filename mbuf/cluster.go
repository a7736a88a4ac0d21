package mbuf

import (
	"sync/atomic"

	"github.com/softnet-go/softnet/uma"
)

// extType is m_ext.ext_type: what kind of external storage a descriptor stands for, and
// so which zone it belongs to.
type extType uint8

const (
	extCaller  extType = iota // caller memory attached by ExtAdd (FreeBSD EXT_NET_DRV, OpenBSD MEXTADD)
	extCluster                // EXT_CLUSTER: 2 KiB
	extJumboP                 // EXT_JUMBOP: a page
	extJumbo9                 // EXT_JUMBO9
	extJumbo16                // EXT_JUMBO16
	extJumbo64                // 64 KiB (OpenBSD's mcl64k)
	numExt
)

var extNames = [numExt]string{"ext", "cluster", "jumbop", "jumbo9", "jumbo16", "jumbo64"}

// A cluster is the descriptor of external storage, and the item of a cluster keg: it is
// carved from the slab together with its buffer, so the reference count lives with the
// cluster (UMA_ZONE_REFCNT's idea) and sharing needs no allocation, no lock and no
// leader mbuf that must outlive its sharers (unlike FreeBSD's EXT_FLAG_EMBREF).
//
// A descriptor in a zone cache always has ref == 1 and zero == false, so a fresh cluster
// needs no initialising store.
type cluster struct {
	ref    atomic.Int32 // mbufs pointing at the buffer
	zero   atomic.Bool  // wipe before reuse (Zero); set once, cleared only when wiped
	kind   extType
	rdonly bool   // caller memory attached read-only
	buf    []byte // the whole buffer: a slab-carved cluster, or the caller's memory
	zone   *uma.Zone[cluster]
	free   func([]byte) // ExtAdd's free routine; nil for clusters
	_      [8]byte      // one descriptor per cache line: unrelated counts do not false-share
}

// share takes one more reference for a new mbuf (mb_dupcl): one atomic add.
func (c *cluster) share() { c.ref.Add(1) }

// unref drops one reference and reports whether it was the last, exactly once per
// cluster life. Reading a count of 1 is a race-free fast path: the count is never below
// the number of mbufs holding the cluster, and only a holder can share it, so a holder
// that reads 1 is the only holder and nobody can raise the count under it. The
// read-then-cmpset race of the FreeBSD commit log needs two holders that both read 2 and
// both decide from that read; here a holder that reads anything but 1 decides from its
// own atomic decrement, whose result no other holder can see.
func (c *cluster) unref() bool {
	if c.ref.Load() == 1 {
		return true
	}
	n := c.ref.Add(-1)
	if n > 0 {
		return false
	}
	if n < 0 {
		panic("mbuf: cluster reference count below zero")
	}
	c.ref.Store(1) // the value a cached descriptor holds
	return true
}

// writable reports whether the buffer may be written: one reference and not attached
// read-only.
func (c *cluster) writable() bool { return !c.rdonly && c.ref.Load() == 1 }

// scrub runs when the last reference is gone and the buffer is about to be reused: it
// wipes the buffer if Zero marked it (and the buffer is ours to write).
func (c *cluster) scrub() {
	if c.zero.Load() {
		if !c.rdonly {
			clear(c.buf)
		}
		c.zero.Store(false)
	}
	debugClusterFree(c)
}

// recycle gives a cluster whose last reference is gone back: to its zone, or, for caller
// memory, to the caller's free routine (the descriptor goes back to its own zone).
func (c *cluster) recycle() {
	c.scrub()
	if c.kind != extCaller {
		c.zone.Free(c)
		return
	}
	buf, free := c.buf, c.free
	c.buf, c.free, c.rdonly = nil, nil, false
	c.zone.Free(c)
	if free != nil {
		free(buf)
	}
}

// release drops one reference and recycles the cluster if it was the last.
func (c *cluster) release() {
	if c.unref() {
		c.recycle()
	}
}

// ExtAdd is m_extadd(9) / OpenBSD MEXTADD: it attaches caller memory buf to m as external
// storage, with the data window covering all of buf (m_len = len(buf); Adj trims it).
// free, if not nil, is called once with buf when the last mbuf referring to it is freed
// (OpenBSD's mextfree_register, without its table of four). f may hold MRdOnly: the
// buffer is then never written through any mbuf, as OpenBSD treats an external buffer
// without M_EXTWR and FreeBSD one added with M_RDONLY; otherwise it is writable while
// unshared.
//
// The descriptor comes from the "mbuf_ext_refcnt" zone (FreeBSD's old zone_ext_refcnt),
// so unlike the C routine ExtAdd can fail: with DontWait at the memory Limit it returns an
// error wrapping ENOBUFS, leaves m as it was and does not call free. m must not already
// have external storage; whatever its internal storage held is dropped.
func (m *Mbuf) ExtAdd(buf []byte, free func(buf []byte), f Flags, how How) error {
	debugCheck(m)
	if m.ext != nil {
		panic("mbuf: ExtAdd on an mbuf with external storage")
	}
	c, err := callerExt(buf, free, f, how)
	if err != nil {
		return err
	}
	m.ext = c
	m.off, m.len = 0, int32(len(buf))
	return nil
}

// callerExt returns a descriptor from the "mbuf_ext_refcnt" zone for caller memory buf,
// with one reference.
func callerExt(buf []byte, free func(buf []byte), f Flags, how How) (*cluster, error) {
	c, err := zalloc(clZones[extCaller], how)
	if err != nil {
		return nil, err
	}
	c.buf, c.free, c.rdonly = buf, free, f&MRdOnly != 0
	debugClusterAlloc(c)
	return c, nil
}

// An ExtRef is a reference to external storage held outside any mbuf: caller memory from
// NewExtRef, FreeBSD's EXT_EXTREF storage with the reference count its m_extaddref(9)
// takes from the caller, or a cluster from GetClusterRef, what m_cljget(9) returns when
// given no mbuf. ExtAddRef attaches windows of the storage to mbufs, each mbuf taking a
// reference of its own on the one count in the storage's descriptor, and Release drops the
// holder's. The last reference to go, the holder's or an mbuf's, gives the storage back: a
// cluster to its zone, caller memory to its free routine, exactly once. So a driver can
// read several frames into one large cluster and hand each out in an mbuf of its own.
//
// While the holder keeps its reference every mbuf on the storage is read-only, as a
// shared cluster is; once it has released, an mbuf left alone there is writable (unless
// the storage was added with MRdOnly). The holder may write the storage through Bytes
// before attaching it; once mbufs hold it, writing is a data race with their readers.
// An ExtRef is not safe for concurrent use; the mbufs on its storage are independent of
// it and may be freed on any goroutine.
type ExtRef struct {
	c *cluster // nil once released
}

// NewExtRef is the caller's half of m_extaddref(9): it takes a descriptor for caller memory
// buf, as ExtAdd does, holding one reference for the caller, for ExtAddRef to attach to
// mbufs. free, if not nil, is called once with buf when the last reference is dropped; f
// may hold MRdOnly, and the buffer is then never written through any mbuf.
//
// The descriptor comes from the "mbuf_ext_refcnt" zone, so unlike the C routine NewExtRef
// can fail: with DontWait at the memory Limit it returns an error wrapping ENOBUFS (with
// Wait, ctx.Err()), and does not call free.
func NewExtRef(buf []byte, free func(buf []byte), f Flags, how How) (*ExtRef, error) {
	c, err := callerExt(buf, free, f, how)
	if err != nil {
		return nil, err
	}
	return &ExtRef{c: c}, nil
}

// GetClusterRef is FreeBSD's m_cljget(9) with a NULL mbuf: a fresh cluster of size bytes
// (MCLBytes, MJumPageSize, MJum9Bytes, MJum16Bytes or MJum64Bytes) not attached to any
// mbuf, held by the returned ExtRef, to fill through Bytes and hand out with ExtAddRef
// (the part m_cljset(9) and m_extaddref play in C). On failure nothing is allocated: an
// error wrapping EINVAL for any other size, ENOBUFS with DontWait at the memory Limit,
// ctx.Err() with Wait.
func GetClusterRef(how How, size int) (*ExtRef, error) {
	k, err := clusterKind("GetClusterRef", size)
	if err != nil {
		return nil, err
	}
	c, err := zalloc(clZones[k], how)
	if err != nil {
		return nil, err
	}
	debugClusterAlloc(c)
	return &ExtRef{c: c}, nil
}

// ref returns the descriptor, panicking if the holder has released it.
func (r *ExtRef) ref(op string) *cluster {
	if r.c == nil {
		panic("mbuf: " + op + " of a released ExtRef")
	}
	return r.c
}

// Bytes returns the whole storage (m_ext.ext_buf for ext_size bytes). It panics after
// Release.
func (r *ExtRef) Bytes() []byte { return r.ref("Bytes").buf }

// Release drops the holder's reference (the caller's ext_cnt share of m_extaddref(9)): the
// storage goes back now if no mbuf holds it, else when the last mbuf on it is freed. The
// ExtRef must not be used afterwards; a second Release panics.
func (r *ExtRef) Release() {
	c := r.ref("Release")
	r.c = nil
	c.release()
}

// ExtAddRef is FreeBSD's m_extaddref(9): it attaches the n bytes of r's storage from
// offset off to m as external storage, taking one more reference on r's count (one
// atomic add, no allocation), so it cannot fail. Several mbufs may hold windows of the
// same storage, overlapping or not. m must not already have external storage, r must not
// be released, and off and n must lie inside the storage; it panics otherwise. Whatever
// m's internal storage held is dropped, as with ExtAdd; its flags, header and tags stay.
func (m *Mbuf) ExtAddRef(r *ExtRef, off, n int) {
	debugCheck(m)
	c := r.ref("ExtAddRef")
	if m.ext != nil {
		panic("mbuf: ExtAddRef on an mbuf with external storage")
	}
	if off < 0 || n < 0 || off+n > len(c.buf) {
		panic("mbuf: ExtAddRef window outside the storage")
	}
	c.share()
	m.ext = c
	m.off, m.len = int32(off), int32(n)
}

// Zero is OpenBSD's m_zero: it marks the storage of every mbuf of the chain to be wiped
// before it is reused, for buffers that held secrets. The mark is one way: a cluster is
// wiped by exactly the release that frees it, whoever shares it then (OpenBSD passes
// M_ZEROIZE round the reference ring instead), and internal storage when its mbuf is
// freed. Data that operations later copy out of marked storage carries the mark to its
// new storage. Nothing is wiped at once, so the chain stays usable; caller memory
// attached read-only is not written.
func (m *Mbuf) Zero() {
	for ; m != nil; m = m.next {
		debugCheck(m)
		m.markZero()
	}
}

func (m *Mbuf) markZero() {
	if m.ext != nil {
		m.ext.zero.Store(true)
	} else {
		m.flags |= MZeroize
	}
}

// zeroMarked reports whether m's storage is marked by Zero.
func (m *Mbuf) zeroMarked() bool {
	return m.flags&MZeroize != 0 || (m.ext != nil && m.ext.zero.Load())
}
