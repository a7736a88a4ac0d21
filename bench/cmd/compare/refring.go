package main

// This file is a copy of twoGoroutines and of the global-mutex reference ring in
// mbuf/bench_test.go (BenchmarkCopyMGlobalMutex), for the microbenchmarks: bench is a
// module of its own and cannot import a _test.go file. A change to either copy belongs in
// both.

import (
	"sync"
	"testing"

	"github.com/softnet-go/softnet/mbuf"
	"github.com/softnet-go/softnet/uma"
)

// twoGoroutines runs body b.N times in all, split between two goroutines, each on its own
// state from setup: two flows on two Ps (as mbuf's own BenchmarkCopyMShared).
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
	_         [mbuf.MSize - 80]byte
}

var (
	extrefMtx sync.Mutex // m_extref_mtx
	refZone   = func() *uma.Zone[refMbuf] {
		l, _ := uma.NewLimit(0)
		k := mustV(uma.NewKeg(l, uma.KegConfig[refMbuf]{Name: "refmbuf"}))
		return mustV(uma.NewZone(k, uma.ZoneConfig[refMbuf]{Name: "refmbuf"}))
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
	for range pieces {
		m, _ := refZone.Alloc()
		m.data, m.len = 0, pieceBytes
		// MEXTADD(m, buf, MCLBYTES, M_EXTWR, MEXTFREE_POOL, pool): a ring of one.
		m.ext = refExt{buf: make([]byte, pieceBytes), size: pieceBytes, freeFn: 0, arg: 0}
		m.ext.nextref, m.ext.prevref = m, m
		m.next, top = top, m
	}
	return top
}
