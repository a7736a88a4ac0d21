package mbuf

import (
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/softnet-go/softnet/internal/stress"
)

// TestGet2: the smallest storage that holds the size, in one piece; ErrTooBig past the
// largest cluster; nothing kept on failure.
func TestGet2(t *testing.T) {
	defer stress.SetFailureRate(0)
	before := inUse()
	for _, c := range []struct {
		size, room int
	}{
		{0, MLen}, {1, MLen}, {MHLen, MLen}, {MHLen + 1, MCLBytes}, {MCLBytes, MCLBytes},
		{MCLBytes + 1, MJumPageSize}, {MJumPageSize, MJumPageSize}, {MJumPageSize + 1, MJum9Bytes},
		{MJum9Bytes + 1, MJum16Bytes}, {MJum16Bytes + 1, MJum64Bytes}, {MJum64Bytes, MJum64Bytes},
	} {
		m, err := Get2(c.size, DontWait, MTHeader, MPktHdr|MEOR)
		if err != nil {
			t.Fatalf("Get2(%d): %v", c.size, err)
		}
		if m.TrailingSpace() != c.room || m.Len() != 0 || m.Flags()&^MExt != MPktHdr|MEOR || m.Type() != MTHeader || !m.Writable() {
			t.Fatalf("Get2(%d): room %d (want %d), flags %v", c.size, m.TrailingSpace(), c.room, m.Flags())
		}
		// The storage holds size bytes, a model of them comes back.
		b := pattern(c.size, 27)
		m.Extend(copy(m.Tail(), b))
		m.FixHdr()
		mustEqual(t, "Get2", m, b)
		m.FreeM()
	}
	if m, err := Get2(MJum64Bytes+1, DontWait, MTData, 0); m != nil || !errors.Is(err, ErrTooBig) {
		t.Fatalf("Get2 past 64 KiB = %v, %v", m, err)
	}
	if !panicked(func() { Get2(-1, DontWait, MTData, 0) }) {
		t.Fatal("Get2(-1) did not panic")
	}
	stress.SetFailureRate(1)
	for _, size := range []int{1, MCLBytes, MJum9Bytes} {
		if m, err := Get2(size, DontWait, MTData, 0); m != nil || !errors.Is(err, syscall.ENOBUFS) {
			t.Fatalf("Get2(%d) under injected failure = %v, %v", size, m, err)
		}
	}
	stress.SetFailureRate(0)
	checkUsage(t, before)
}

// TestClGet: a cluster attached to an existing mbuf, which keeps its header and flags;
// on failure the mbuf is unchanged.
func TestClGet(t *testing.T) {
	defer stress.SetFailureRate(0)
	before := inUse()
	for _, size := range []int{MCLBytes, MJumPageSize, MJum9Bytes, MJum16Bytes, MJum64Bytes} {
		m, err := GetHdr(DontWait, MTData)
		if err != nil {
			t.Fatal(err)
		}
		m.SetFlags(MBcast, 0)
		if size == MCLBytes {
			err = m.ClGet(DontWait)
		} else {
			err = m.ClJGet(DontWait, size)
		}
		if err != nil {
			t.Fatalf("ClJGet(%d): %v", size, err)
		}
		if m.TrailingSpace() != size || m.LeadingSpace() != 0 || m.Flags() != MExt|MPktHdr|MBcast {
			t.Fatalf("ClJGet(%d): room %d, flags %v", size, m.TrailingSpace(), m.Flags())
		}
		b := pattern(size, 28)
		m.Extend(copy(m.Tail(), b))
		m.FixHdr()
		mustEqual(t, "ClJGet", m, b)
		if !panicked(func() { m.ClGet(DontWait) }) {
			t.Fatal("ClGet on an mbuf with a cluster did not panic")
		}
		m.FreeM()
	}
	// Failures leave the mbuf, data and all, as it was.
	m, _ := Get(DontWait, MTData)
	m.Extend(copy(m.Tail(), "internal"))
	if err := m.ClJGet(DontWait, 3000); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("ClJGet(3000) = %v, want EINVAL", err)
	}
	stress.SetFailureRate(1)
	err := m.ClGet(DontWait)
	stress.SetFailureRate(0)
	if !errors.Is(err, syscall.ENOBUFS) || m.ext != nil {
		t.Fatalf("ClGet under injected failure = %v, ext %v", err, m.ext != nil)
	}
	mustEqual(t, "ClGet failures", m, []byte("internal"))
	m.FreeM()

	// A packet-zone mbuf that Unshare moved to its own storage takes a cluster again, and
	// goes back to the packet zone whole.
	p, _ := GetCL(DontWait, MTData, 0)
	p.Extend(copy(p.Tail(), "pair"))
	c, _ := p.CopyM(0, CopyAll, DontWait)
	p, _ = p.Unshare(DontWait)
	if p.ext != nil {
		t.Fatal("Unshare of 4 bytes kept a cluster")
	}
	c.FreeM()
	p.Adj(p.Len())
	if err := p.ClGet(DontWait); err != nil {
		t.Fatal(err)
	}
	p.FreeM()
	checkUsage(t, before)
}

// TestExtRef: m_extaddref over caller memory: windows in several mbufs, the holder's
// reference, read-only while shared, and one free call after the last reference, whoever
// drops it.
func TestExtRef(t *testing.T) {
	defer stress.SetFailureRate(0)
	before := inUse()
	buf := pattern(3000, 29)
	freed := 0
	r, err := NewExtRef(buf, func(b []byte) {
		if &b[0] != &buf[0] {
			t.Error("free called with another buffer")
		}
		freed++
	}, 0, DontWait)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Bytes()) != len(buf) {
		t.Fatal("Bytes")
	}
	a, _ := GetHdr(DontWait, MTData)
	b, _ := Get(DontWait, MTData)
	a.ExtAddRef(r, 0, 1000)
	b.ExtAddRef(r, 1000, 2000)
	a.Link(b)
	a.FixHdr()
	mustEqual(t, "ExtAddRef", a, buf)
	mustReadOnly(t, "an ExtAddRef mbuf while the holder keeps its reference", b)
	for _, f := range []func(){
		func() { b.ExtAddRef(r, 0, 1) }, // already has external storage
		func() { c, _ := Get(DontWait, MTData); defer c.Free(); c.ExtAddRef(r, 2000, 1001) },
		func() { c, _ := Get(DontWait, MTData); defer c.Free(); c.ExtAddRef(r, -1, 1) },
	} {
		if !panicked(f) {
			t.Fatal("a bad ExtAddRef did not panic")
		}
	}
	r.Release()
	if !panicked(func() { r.Release() }) || !panicked(func() { r.Bytes() }) {
		t.Fatal("use after Release did not panic")
	}
	if freed != 0 {
		t.Fatal("freed while mbufs hold the storage")
	}
	mustReadOnly(t, "one of two mbufs on the storage", a)
	a.Unlink()
	a.Free()
	if !b.Writable() || b.LeadingSpace() != 1000 || freed != 0 {
		t.Fatalf("the last mbuf on the storage: writable %v, leading %d", b.Writable(), b.LeadingSpace())
	}
	b.Free()
	if freed != 1 {
		t.Fatalf("free called %d times, want 1", freed)
	}

	// Released last, by the holder; read-only storage is never writable.
	freed = 0
	r, _ = NewExtRef(buf, func([]byte) { freed++ }, MRdOnly, DontWait)
	a, _ = Get(DontWait, MTData)
	a.ExtAddRef(r, 10, 10)
	a.Free()
	if freed != 0 {
		t.Fatal("freed while the holder keeps its reference")
	}
	a, _ = Get(DontWait, MTData)
	a.ExtAddRef(r, 0, 0)
	r.Release()
	mustReadOnly(t, "read-only storage", a)
	a.Free()
	if freed != 1 {
		t.Fatalf("free called %d times, want 1", freed)
	}

	// On failure NewExtRef allocates nothing and does not call free.
	stress.SetFailureRate(1)
	r, err = NewExtRef(buf, func([]byte) { t.Error("free called for a failed NewExtRef") }, 0, DontWait)
	stress.SetFailureRate(0)
	if r != nil || !errors.Is(err, syscall.ENOBUFS) {
		t.Fatalf("NewExtRef under injected failure = %v, %v", r, err)
	}
	checkUsage(t, before)
}

// TestGetClusterRef: a cluster read into once and handed out in several mbufs (a driver
// packing frames), freed concurrently: back to its zone exactly once.
func TestGetClusterRef(t *testing.T) {
	defer stress.SetFailureRate(0)
	before := inUse()
	if _, err := GetClusterRef(DontWait, 3000); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("GetClusterRef(3000) = %v", err)
	}
	stress.SetFailureRate(1)
	if r, err := GetClusterRef(DontWait, MJum9Bytes); r != nil || !errors.Is(err, syscall.ENOBUFS) {
		t.Fatalf("GetClusterRef under injected failure = %v, %v", r, err)
	}
	stress.SetFailureRate(0)
	for round := range 20 {
		r, err := GetClusterRef(DontWait, MJum9Bytes)
		if err != nil {
			t.Fatal(err)
		}
		frames := [][]byte{pattern(1500, 1), pattern(60, 2), pattern(7000, 3)}
		var ms []*Mbuf
		off := 0
		for _, f := range frames {
			copy(r.Bytes()[off:], f)
			m, err := GetHdr(DontWait, MTData)
			if err != nil {
				t.Fatal(err)
			}
			m.ExtAddRef(r, off, len(f))
			m.FixHdr()
			mustEqual(t, "a frame", m, f)
			ms = append(ms, m)
			off += len(f)
		}
		if round%2 == 0 {
			r.Release()
		}
		var wg sync.WaitGroup
		var bad atomic.Bool
		for i, m := range ms {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if len(m.Data()) != len(frames[i]) {
					bad.Store(true)
				}
				m.FreeM()
			}()
		}
		wg.Wait()
		if round%2 == 1 {
			r.Release()
		}
		if bad.Load() {
			t.Fatal("a frame changed")
		}
	}
	checkUsage(t, before)
}
