package mbuf

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

func TestSizes(t *testing.T) {
	if got := unsafe.Sizeof(Mbuf{}); got != MSize {
		t.Fatalf("sizeof(Mbuf) = %d, want MSize %d", got, MSize)
	}
	if MLen != MSize-hdrSize || MHLen > MLen || MinClSize != MHLen+1 {
		t.Fatalf("MLen %d, MHLen %d, MinClSize %d", MLen, MHLen, MinClSize)
	}
	if unsafe.Sizeof(refMbuf{}) != MSize {
		t.Fatalf("the benchmark's reference mbuf is %d bytes", unsafe.Sizeof(refMbuf{}))
	}
	if unsafe.Offsetof(Mbuf{}.dat) != hdrSize {
		t.Fatalf("internal storage at %d, want %d", unsafe.Offsetof(Mbuf{}.dat), hdrSize)
	}
}

func TestGetFree(t *testing.T) {
	before := inUse()
	m, err := Get(DontWait, MTData)
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != 0 || m.PktHdr() != nil || m.Flags() != 0 || m.Type() != MTData {
		t.Fatalf("fresh mbuf: len %d, hdr %v, flags %v, type %v", m.Len(), m.PktHdr(), m.Flags(), m.Type())
	}
	if m.TrailingSpace() != MLen || m.LeadingSpace() != 0 || !m.Writable() || len(m.Tail()) != MLen {
		t.Fatalf("fresh mbuf: trailing %d, leading %d", m.TrailingSpace(), m.LeadingSpace())
	}
	h, err := GetHdr(Wait(context.Background()), MTHeader)
	if err != nil {
		t.Fatal(err)
	}
	if h.PktHdr() == nil || h.Flags() != MPktHdr || h.TrailingSpace() != MHLen {
		t.Fatalf("header mbuf: hdr %v, flags %v, trailing %d", h.PktHdr(), h.Flags(), h.TrailingSpace())
	}
	h.Link(m)
	if h.Next() != m || h.Free() != m {
		t.Fatal("Free did not return m_next")
	}
	m.FreeM()
	var nilChain *Mbuf
	nilChain.FreeM()
	checkUsage(t, before)
}

func TestGetCLAndJCL(t *testing.T) {
	before := inUse()
	sizes := []int{MCLBytes, MJumPageSize, MJum9Bytes, MJum16Bytes, MJum64Bytes}
	var chain *Mbuf
	for _, size := range sizes {
		m, err := GetJCL(DontWait, MTData, MPktHdr|MEOR, size)
		if err != nil {
			t.Fatalf("GetJCL(%d): %v", size, err)
		}
		if m.TrailingSpace() != size || m.Flags() != MExt|MPktHdr|MEOR || !m.Writable() {
			t.Fatalf("GetJCL(%d): trailing %d, flags %v", size, m.TrailingSpace(), m.Flags())
		}
		m.demote()
		m.Link(chain)
		chain = m
	}
	if _, err := GetJCL(DontWait, MTData, 0, 3000); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("GetJCL(3000) = %v, want EINVAL", err)
	}
	m, err := GetCL(DontWait, MTData, 0)
	if err != nil {
		t.Fatal(err)
	}
	if m.PktHdr() != nil || m.TrailingSpace() != MCLBytes {
		t.Fatalf("GetCL without header: hdr %v, trailing %d", m.PktHdr(), m.TrailingSpace())
	}
	m.Cat(chain)
	m.FreeM()
	checkUsage(t, before)
}

func TestGetM(t *testing.T) {
	before := inUse()
	for _, size := range []int{1, MLen, MinClSize, MCLBytes, MCLBytes + 1, 5000, 9300, 70000, 200000} {
		m, err := GetM(nil, size, DontWait, MTData, MPktHdr|MEOR)
		if err != nil {
			t.Fatal(err)
		}
		room := 0
		for mm := m; mm != nil; mm = mm.next {
			if mm.Len() != 0 {
				t.Fatalf("GetM(%d): mbuf with data", size)
			}
			room += mm.TrailingSpace()
			if mm != m && mm.PktHdr() != nil {
				t.Fatalf("GetM(%d): header past the head", size)
			}
			if (mm.next == nil) != (mm.Flags()&MEOR != 0) {
				t.Fatalf("GetM(%d): MEOR not exactly on the tail", size)
			}
		}
		if room < size || room-size >= MCLBytes { // never a whole cluster more than needed
			t.Fatalf("GetM(%d): room %d", size, room)
		}
		if m.PktHdr() == nil {
			t.Fatalf("GetM(%d): no header on the head", size)
		}
		// Appending to an existing chain keeps its head and moves MEOR.
		n, err := GetM(m, 100, DontWait, MTData, MEOR)
		if err != nil || n != m {
			t.Fatalf("GetM append: %v, %p != %p", err, n, m)
		}
		for mm := m; mm != nil; mm = mm.next {
			if (mm.next == nil) != (mm.Flags()&MEOR != 0) {
				t.Fatalf("GetM append: MEOR not exactly on the tail")
			}
		}
		m.FreeM()
	}
	if m, err := GetM(nil, 0, DontWait, MTData, 0); m != nil || err != nil {
		t.Fatalf("GetM(0) = %v, %v", m, err)
	}
	checkUsage(t, before)
}

func TestTailExtendLengthAdj(t *testing.T) {
	before := inUse()
	data := pattern(10000, 1)
	m := buildChain(t, data, extCluster, extCaller, extJumboP)
	mustEqual(t, "built", m, data)
	m.Adj(100)
	mustEqual(t, "Adj(100)", m, data[100:])
	m.Adj(-1000)
	mustEqual(t, "Adj(-1000)", m, data[100:9000])
	m.Adj(3000) // crosses mbufs: empties some, which stay
	mustEqual(t, "Adj(3000)", m, data[3100:9000])
	m.Adj(-5900)
	mustEqual(t, "Adj(-5900)", m, nil)
	if m.next != nil {
		t.Fatal("tail trim kept mbufs past the end")
	}
	m.Adj(-1)
	m.Adj(1)
	mustEqual(t, "Adj of empty", m, nil)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("Extend past the trailing space did not panic")
			}
		}()
		m.Extend(m.TrailingSpace() + 1)
	}()
	m.FreeM()
	checkUsage(t, before)
}

func TestCatSplit(t *testing.T) {
	before := inUse()
	a, b := pattern(3000, 1), pattern(150, 2)
	m := buildChain(t, a, extCluster)
	n := buildChain(t, b, extCaller)
	m.CatPkt(n) // 150 bytes fit the last cluster's trailing space: copied, n freed
	want := append(append([]byte(nil), a...), b...)
	mustEqual(t, "CatPkt", m, want)
	if m.next.next != nil {
		t.Fatal("Cat did not copy a small mbuf into the trailing space")
	}
	for _, off := range []int{0, 1, 2048, 2049, len(want) - 1, len(want)} {
		tail, err := m.Split(off, DontWait)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "Split head", m, want[:off])
		mustEqual(t, "Split tail", tail, want[off:])
		if tail == nil || tail.PktHdr() == nil {
			t.Fatalf("Split(%d) of a packet: tail without header", off)
		}
		m.CatPkt(tail)
		mustEqual(t, "re-Cat", m, want)
	}
	if _, err := m.Split(len(want)+1, DontWait); !errors.Is(err, ErrTooShort) {
		t.Fatalf("Split past the end = %v", err)
	}
	// Without a header, a split at an mbuf boundary allocates nothing and at the end
	// returns nil.
	m.Demote()
	tail, err := m.Split(len(want), DontWait)
	if tail != nil || err != nil {
		t.Fatalf("Split at the end = %v, %v", tail, err)
	}
	tail, err = m.Split(2048, DontWait)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "plain split tail", tail, want[2048:])
	tail.FreeM()
	m.FreeM()
	checkUsage(t, before)
}

func TestCopyMSharesReadOnly(t *testing.T) {
	before := inUse()
	data := pattern(5000, 3)
	m := buildChain(t, data, extCluster, extJumboP)
	m.PktHdr().FlowID = 42
	m.TagPrepend(TagGet(7, 4))
	c, err := m.CopyM(0, CopyAll, DontWait)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "copy", c, data)
	if c.PktHdr().FlowID != 42 || c.TagFind(7, nil) == nil || c.TagFirst() == m.TagFirst() {
		t.Fatal("CopyM(0, CopyAll) did not copy the header and its tags")
	}
	for _, x := range []*Mbuf{m, c} {
		for mm := x; mm != nil; mm = mm.next {
			if mm.Writable() || mm.LeadingSpace() != 0 || mm.TrailingSpace() != 0 || mm.Tail() != nil {
				t.Fatal("a shared cluster is writable")
			}
		}
	}
	if m.ext != c.ext || m.ext.ref.Load() != 2 {
		t.Fatal("CopyM did not share the cluster")
	}
	// Freeing one side makes the other writable again.
	c.FreeM()
	for mm := m; mm != nil; mm = mm.next {
		if !mm.Writable() {
			t.Fatal("the survivor is still read-only")
		}
	}
	// A middle copy, and a copy of internal storage keeps its offset.
	c, err = m.CopyM(100, 3000, DontWait)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "middle copy", c, data[100:3100])
	if c.PktHdr() != nil {
		t.Fatal("a copy from offset 100 has a header")
	}
	c.FreeM()
	if c, err := m.CopyM(len(data), CopyAll, DontWait); c != nil || err != nil {
		t.Fatalf("CopyM at the end = %v, %v", c, err)
	}
	m.FreeM()
	checkUsage(t, before)
}

func TestAppendBuffersWriteAll(t *testing.T) {
	before := inUse()
	data := pattern(7000, 4)
	m := buildChain(t, data, extCaller, extCluster, extJumboP)
	m.next.Adj(m.next.Len()) // an empty mbuf in the middle is skipped
	want := append(append([]byte(nil), data[:MLen]...), data[MLen+MCLBytes:]...)
	bufs := m.AppendBuffers(make([][]byte, 0, 8))
	nonEmpty := 0
	for mm := m; mm != nil; mm = mm.next {
		if mm.Len() > 0 {
			nonEmpty++
		}
	}
	if len(bufs) != nonEmpty || !bytes.Equal(bytes.Join(bufs, nil), want) {
		t.Fatalf("AppendBuffers: %d buffers for %d non-empty mbufs", len(bufs), nonEmpty)
	}
	var got bytes.Buffer
	if n, err := m.WriteAll(&got); err != nil || n != int64(len(want)) || !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("WriteAll: %d, %v", n, err)
	}
	// Through a TCP connection: one writev.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan []byte)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- nil
			return
		}
		b, _ := io.ReadAll(c)
		c.Close()
		done <- b
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if n, err := m.WriteAll(conn); err != nil || n != int64(len(want)) {
		t.Fatalf("WriteAll(TCPConn): %d, %v", n, err)
	}
	conn.Close()
	if b := <-done; !bytes.Equal(b, want) {
		t.Fatalf("peer read %d bytes", len(b))
	}
	m.FreeM()
	checkUsage(t, before)
}

func socketpair(t testing.TB) (int, int) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fds[0]); syscall.Close(fds[1]) })
	return fds[0], fds[1]
}

func TestReadFdWriteFd(t *testing.T) {
	before := inUse()
	a, b := socketpair(t)
	if m, n, err := ReadFd(a, 4096, DontWait); m != nil || n != 0 || err != syscall.EAGAIN {
		t.Fatalf("ReadFd with nothing = %v, %d, %v", m, n, err)
	}
	data := pattern(20000, 5)
	m := buildChain(t, data, extCluster, extCaller, extJumbo9)
	w, err := m.WriteFd(b)
	if err != nil || w != len(data) {
		t.Fatalf("WriteFd = %d, %v", w, err)
	}
	m.FreeM()
	var got []byte
	for _, max := range []int{100, 5000, 1 << 20} {
		m, n, err := ReadFd(a, max, DontWait)
		if err != nil {
			t.Fatalf("ReadFd(%d): %v", max, err)
		}
		if n > max || m.PktHdr().Len != n || m.Length() != n {
			t.Fatalf("ReadFd(%d) = %d bytes, header %d, chain %d", max, n, m.PktHdr().Len, m.Length())
		}
		for mm := m; mm != nil; mm = mm.next {
			if mm.Len() == 0 {
				t.Fatal("ReadFd kept an mbuf the read did not reach")
			}
		}
		got = append(got, bytesOf(m)...)
		m.FreeM()
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, want %d", len(got), len(data))
	}
	syscall.Shutdown(b, syscall.SHUT_WR)
	if m, n, err := ReadFd(a, 4096, DontWait); m != nil || n != 0 || err != io.EOF {
		t.Fatalf("ReadFd at EOF = %v, %d, %v", m, n, err)
	}
	checkUsage(t, before)
}

func TestFromReader(t *testing.T) {
	before := inUse()
	data := pattern(9000, 6)
	m, n, err := FromReader(bytes.NewReader(data), 1<<20, DontWait)
	if err != nil || n != len(data) {
		t.Fatalf("FromReader = %d, %v", n, err)
	}
	mustEqual(t, "FromReader", m, data)
	m.FreeM()
	m, n, err = FromReader(bytes.NewReader(data), 100, DontWait)
	if err != nil || n != 100 {
		t.Fatalf("FromReader(max 100) = %d, %v", n, err)
	}
	mustEqual(t, "FromReader(100)", m, data[:100])
	m.FreeM()
	if m, n, err := FromReader(strings.NewReader(""), 10, DontWait); m != nil || n != 0 || err != io.EOF {
		t.Fatalf("FromReader at EOF = %v, %d, %v", m, n, err)
	}
	checkUsage(t, before)
}

func TestWaitContext(t *testing.T) {
	before := inUse()
	l := Limit()
	var held *Mbuf
	hold := func(m *Mbuf, err error) error {
		if err == nil {
			m.next = held
			held = m
		}
		return err
	}
	for range 4 {
		if err := hold(GetJCL(DontWait, MTData, 0, MJum64Bytes)); err != nil {
			t.Fatal(err)
		}
	}
	// No new slab from now on: take what is cached (waiting allocations drain the other
	// Ps' caches too), until an allocation has to wait and times out.
	if err := l.SetMax(l.Used()); err != nil {
		t.Fatal(err)
	}
	defer l.SetMax(0)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err := hold(GetJCL(Wait(ctx), MTData, 0, MJum64Bytes))
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatalf("GetJCL(Wait) at the limit = %v, want the context's error", err)
		}
	}
	// A cluster may still turn up in some P's cache (one that reached the timed-out
	// waiter as it gave up goes back to a cache): take those, then the limit holds.
	for i := 0; ; i++ {
		err := hold(GetJCL(DontWait, MTData, 0, MJum64Bytes))
		if errors.Is(err, syscall.ENOBUFS) {
			break
		}
		if err != nil || i == 16 {
			t.Fatalf("GetJCL(DontWait) at the limit = %v after %d successes, want ENOBUFS", err, i)
		}
	}
	// Freeing wakes a waiter.
	got := make(chan error, 1)
	go func() {
		m, err := GetJCL(Wait(context.Background()), MTData, 0, MJum64Bytes)
		if err == nil {
			m.Free()
		}
		got <- err
	}()
	time.Sleep(10 * time.Millisecond)
	held.FreeM()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	checkUsage(t, before)
}

func TestReport(t *testing.T) {
	var b strings.Builder
	Report(&b)
	for _, want := range []string{
		"mbufs in use (current/cache/total)\n",
		"mbuf clusters in use (current/cache/total/max)\n",
		"mbuf+clusters out of packet secondary zone in use (current/cache)\n",
		"k (page size) jumbo clusters in use (current/cache/total/max)\n",
		"9k jumbo clusters in use",
		"16k jumbo clusters in use",
		"64k jumbo clusters in use",
		"bytes allocated to network (current/cache/total)\n",
		"requests for mbufs denied (mbufs/clusters/mbuf+clusters)\n",
		"requests for mbufs delayed (mbufs/clusters/mbuf+clusters)\n",
		"requests for jumbo clusters delayed",
		"requests for jumbo clusters denied",
	} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("report lacks %q:\n%s", want, b.String())
		}
	}
}
