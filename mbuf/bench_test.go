package mbuf

import (
	"io"
	"sync"
	"syscall"
	"testing"

	"github.com/softnet-go/softnet/uma"
)

const chainBytes = 64 << 10

// clusterChain returns a 64 KiB chain of 32 full 2 KiB clusters, as reads into a socket
// buffer make it.
func clusterChain(b *testing.B) *Mbuf {
	m := buildChain(b, pattern(chainBytes, 1), extCluster)
	if count(m) != chainBytes/MCLBytes {
		b.Fatalf("%d mbufs", count(m))
	}
	return m
}

// twoGoroutines runs body b.N times in all, split between two goroutines, each with its
// own state from setup: two flows on two Ps.
func twoGoroutines[S any](b *testing.B, setup func() S, body func(S), teardown func(S)) {
	var states [2]S
	for i := range states {
		states[i] = setup()
	}
	b.SetBytes(chainBytes)
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < b.N; i += 2 {
				body(states[g])
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	for _, s := range states {
		teardown(s)
	}
}

// BenchmarkCopyMShared: two goroutines each CopyM and FreeM their own 64 KiB cluster
// chain, as two splices sharing socket-buffer data do: per cluster one new mbuf and one
// atomic add on the cluster's own descriptor, and one atomic decrement to free.
func BenchmarkCopyMShared(b *testing.B) {
	twoGoroutines(b, func() *Mbuf { return clusterChain(b) },
		func(m *Mbuf) {
			c, err := m.CopyM(0, CopyAll, DontWait)
			if err != nil {
				panic(err)
			}
			c.FreeM()
		},
		(*Mbuf).FreeM)
}

// The reference: OpenBSD's shared-cluster ring (uipc_mbuf.c, m_extref/m_extunref before
// the refcount), where sharers of a cluster are linked in a ring through their mbufs and
// every change to any ring is made under one global mutex, m_extref_mtx. Mbufs come from
// a uma zone, as ours do, so that only the sharing differs.

// refExt is OpenBSD's struct mbuf_ext: the buffer, its free routine and the ring.
type refExt struct {
	buf              []byte // ext_buf
	size             uint32 // ext_size
	freeFn           uint32 // ext_free_fn
	arg              uintptr
	nextref, prevref *refMbuf
}

// refMbuf is the part of OpenBSD's struct mbuf that m_copym and m_free touch, padded to
// MSIZE like an mbuf.
type refMbuf struct {
	next      *refMbuf
	data, len int
	ext       refExt
	_         [MSize - 80]byte
}

var (
	extrefMtx sync.Mutex // m_extref_mtx
	refZone   = func() *uma.Zone[refMbuf] {
		l, _ := uma.NewLimit(0)
		k := must(uma.NewKeg(l, uma.KegConfig[refMbuf]{Name: "refmbuf"}))
		return must(uma.NewZone(k, uma.ZoneConfig[refMbuf]{Name: "refmbuf"}))
	}()
)

// isReferenced is MCLISREFERENCED.
func (m *refMbuf) isReferenced() bool { return m.ext.nextref != m }

// extref is m_extref: link n into o's ring, under the mutex once the ring has sharers.
func extref(o, n *refMbuf) {
	refs := o.isReferenced()
	if refs {
		extrefMtx.Lock()
	}
	n.ext.nextref = o.ext.nextref
	n.ext.prevref = o
	o.ext.nextref = n
	n.ext.nextref.ext.prevref = n
	if refs {
		extrefMtx.Unlock()
	}
}

// extunref is m_extunref: unlink m from its ring under the mutex; false if m was alone
// (then the caller frees the cluster).
func extunref(m *refMbuf) bool {
	if !m.isReferenced() {
		return false
	}
	refs := false
	extrefMtx.Lock()
	if m.isReferenced() {
		m.ext.nextref.ext.prevref = m.ext.prevref
		m.ext.prevref.ext.nextref = m.ext.nextref
		refs = true
	}
	extrefMtx.Unlock()
	return refs
}

// refCopyM is m_copym(m, 0, M_COPYALL) of a chain of cluster mbufs.
func refCopyM(m *refMbuf) *refMbuf {
	var top, tail *refMbuf
	for ; m != nil; m = m.next {
		n, err := refZone.Alloc()
		if err != nil {
			panic(err)
		}
		n.next = nil
		n.data, n.len = m.data, m.len
		n.ext = m.ext // n->m_ext = m->m_ext; MCLADDREFERENCE(m, n)
		extref(m, n)
		if tail == nil {
			top = n
		} else {
			tail.next = n
		}
		tail = n
	}
	return top
}

// refFreeM is m_freem of such a chain.
func refFreeM(m *refMbuf) {
	for m != nil {
		n := m.next
		if !extunref(m) {
			m.ext.buf = nil // the last reference: pool_put of the cluster would go here
		}
		refZone.Free(m)
		m = n
	}
}

// refChain builds the reference's 64 KiB chain over 32 clusters.
func refChain() *refMbuf {
	var top *refMbuf
	for range chainBytes / MCLBytes {
		m, _ := refZone.Alloc()
		m.data, m.len = 0, MCLBytes
		// MEXTADD(m, buf, MCLBYTES, M_EXTWR, MEXTFREE_POOL, pool): a ring of one.
		m.ext = refExt{buf: make([]byte, MCLBytes), size: MCLBytes, freeFn: 0, arg: 0}
		m.ext.nextref, m.ext.prevref = m, m
		m.next, top = top, m
	}
	return top
}

// BenchmarkCopyMGlobalMutex is BenchmarkCopyMShared on the reference.
func BenchmarkCopyMGlobalMutex(b *testing.B) {
	twoGoroutines(b, refChain, func(m *refMbuf) { refFreeM(refCopyM(m)) }, func(m *refMbuf) {
		for ; m != nil; m = m.next {
			m.ext.buf = nil
		}
	})
}

// BenchmarkGetCLFreeM: an mbuf and a 2 KiB cluster from the packet zone and back.
func BenchmarkGetCLFreeM(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		m, err := GetCL(DontWait, MTData, MPktHdr)
		if err != nil {
			b.Fatal(err)
		}
		m.FreeM()
	}
}

var sink []byte

// BenchmarkMake2K: the Go heap's 2 KiB buffer, left to the collector.
func BenchmarkMake2K(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sink = make([]byte, MCLBytes)
	}
}

var pool2K = sync.Pool{New: func() any { return new([MCLBytes]byte) }}

// BenchmarkSyncPool2K: sync.Pool's Get and Put of a 2 KiB buffer (the baseline the
// allocator's zones must match).
func BenchmarkSyncPool2K(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		pool2K.Put(pool2K.Get())
	}
}

// Chain operations: each must allocate nothing on the Go heap.

func BenchmarkCopyMFreeM(b *testing.B) {
	m := clusterChain(b)
	defer m.FreeM()
	b.SetBytes(chainBytes)
	b.ReportAllocs()
	for b.Loop() {
		c, _ := m.CopyM(0, CopyAll, DontWait)
		c.FreeM()
	}
}

func BenchmarkSplitCatPkt(b *testing.B) {
	m := clusterChain(b)
	defer m.FreeM()
	b.ReportAllocs()
	for b.Loop() {
		tail, err := m.Split(chainBytes/2+100, DontWait) // inside a cluster: shared
		if err != nil {
			b.Fatal(err)
		}
		m.CatPkt(tail)
	}
}

func BenchmarkPrependAdj(b *testing.B) {
	m := clusterChain(b)
	defer m.FreeM()
	b.ReportAllocs()
	for b.Loop() {
		h, err := m.Prepend(40, DontWait) // the head has no leading space: a new mbuf
		if err != nil {
			b.Fatal(err)
		}
		h.Adj(40)
		m = h.Free() // drop the emptied header mbuf; the header moves back
		m.MovePktHdr(h)
	}
}

func BenchmarkPullupShared(b *testing.B) {
	m := buildChain(b, pattern(chainBytes, 2), extCaller, extCluster)
	defer m.FreeM()
	b.ReportAllocs()
	for b.Loop() {
		c, _ := m.CopyM(0, CopyAll, DontWait)
		c, err := c.Pullup(1000, DontWait) // spans the internal head and a shared cluster
		if err != nil {
			b.Fatal(err)
		}
		c.FreeM()
	}
}

func BenchmarkAppendBuffers(b *testing.B) {
	m := clusterChain(b)
	defer m.FreeM()
	bufs := make([][]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		bufs = m.AppendBuffers(bufs[:0])
	}
}

func BenchmarkWriteAll(b *testing.B) {
	m := clusterChain(b)
	defer m.FreeM()
	b.SetBytes(chainBytes)
	b.ReportAllocs()
	for b.Loop() {
		m.WriteAll(io.Discard)
	}
}

func BenchmarkGetMFreeM(b *testing.B) {
	b.SetBytes(chainBytes)
	b.ReportAllocs()
	for b.Loop() {
		m, err := GetM(nil, chainBytes, DontWait, MTData, MPktHdr)
		if err != nil {
			b.Fatal(err)
		}
		m.FreeM()
	}
}

// BenchmarkWriteFdReadFd moves 64 KiB through a socketpair: one writev of a cluster
// chain, then readv into fresh clusters until it is all back.
func BenchmarkWriteFdReadFd(b *testing.B) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer syscall.Close(fds[0])
	defer syscall.Close(fds[1])
	syscall.SetsockoptInt(fds[0], syscall.SOL_SOCKET, syscall.SO_SNDBUF, 1<<20)
	syscall.SetsockoptInt(fds[1], syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1<<20)
	m := clusterChain(b)
	defer m.FreeM()
	b.SetBytes(chainBytes)
	b.ReportAllocs()
	for b.Loop() {
		n, err := m.WriteFd(fds[0])
		if err != nil {
			b.Fatal(err)
		}
		for n > 0 {
			r, k, err := ReadFd(fds[1], n, DontWait)
			if err != nil {
				b.Fatal(err)
			}
			r.FreeM()
			n -= k
		}
	}
}
