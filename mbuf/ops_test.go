package mbuf

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/softnet-go/softnet/internal/stress"
)

func TestSharedReadOnlyBothSidesSplit(t *testing.T) {
	before := inUse()
	data := pattern(3000, 9)
	m := buildChain(t, data, extJumboP)
	tail, err := m.Split(1000, DontWait) // inside the cluster: shared
	if err != nil {
		t.Fatal(err)
	}
	if m.ext != tail.ext || m.ext.ref.Load() != 2 {
		t.Fatal("Split inside a cluster did not share it")
	}
	for _, x := range []*Mbuf{m, tail} {
		if x.Writable() || x.TrailingSpace() != 0 || x.LeadingSpace() != 0 {
			t.Fatal("a split cluster is writable on one side")
		}
	}
	// A writer copies first: the other side never sees the change.
	if err := tail.CopyBack(0, []byte("XYZ"), DontWait); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "head after the tail's CopyBack", m, data[:1000])
	mustEqual(t, "tail after CopyBack", tail, append([]byte("XYZ"), data[1003:]...))
	if !tail.Writable() || !m.Writable() {
		t.Fatal("after the copy both sides should be writable (each alone on its storage)")
	}
	tail.FreeM()
	m.FreeM()
	checkUsage(t, before)
}

func TestZeroWipesBeforeReuse(t *testing.T) {
	before := inUse()
	secret := pattern(MJumPageSize, 77)
	wiped := func(b []byte) bool { // zeroes, or the mbufdebug poison
		return bytes.Count(b, []byte{0}) == len(b) || bytes.Count(b, []byte{0xdb}) == len(b)
	}

	// A shared cluster: the release that frees it wipes it, not an earlier one.
	m, err := GetJCL(DontWait, MTData, 0, MJumPageSize)
	if err != nil {
		t.Fatal(err)
	}
	m.Extend(copy(m.Tail(), secret))
	buf := m.ext.buf
	c, err := m.CopyM(0, CopyAll, DontWait)
	if err != nil {
		t.Fatal(err)
	}
	m.Zero()
	m.Free()
	if !bytes.Equal(c.Data(), secret) {
		t.Fatal("the sharer lost the data when the other side was freed")
	}
	c.Free()
	if !wiped(buf) {
		t.Fatal("a Zeroed cluster was not wiped when its last reference went")
	}

	// A packet-zone pair and internal storage.
	p, _ := GetCL(DontWait, MTData, MPktHdr)
	p.Extend(copy(p.Tail(), secret))
	pbuf := p.ext.buf
	i, _ := Get(DontWait, MTData)
	i.Extend(copy(i.Tail(), secret))
	ibuf := i.dat[:]
	p.next = i
	p.Zero()
	p.FreeM()
	if !wiped(pbuf) || !wiped(ibuf) {
		t.Fatal("a Zeroed pair or internal storage was not wiped when freed")
	}

	// The mark follows the bytes: a Pullup into a new head marks it.
	m = buildChain(t, secret[:600], extCaller)
	m.Zero()
	m, err = m.Pullup(500, DontWait)
	if err != nil {
		t.Fatal(err)
	}
	if !m.zeroMarked() {
		t.Fatal("storage that received Zeroed bytes is not marked")
	}
	m.FreeM()

	if !debugBuild {
		// Without Zero the bytes stay: the wipe above was Zero's doing.
		m, _ = GetJCL(DontWait, MTData, 0, MJumPageSize)
		m.Extend(copy(m.Tail(), secret))
		buf = m.ext.buf
		m.Free()
		if !bytes.Equal(buf, secret) {
			t.Fatal("a cluster was wiped without Zero")
		}
	}
	checkUsage(t, before)
}

// TestExactlyOnceRelease shares caller buffers among goroutines that copy, split and free
// them in random order: every buffer's free routine must run exactly once, after the last
// reference, and the clusters must all come back.
func TestExactlyOnceRelease(t *testing.T) {
	before := inUse()
	const buffers, workers, copies = 32, 8, 16
	var freed [buffers]atomic.Int32
	var srcs []*Mbuf
	for i := range buffers {
		m, err := GetHdr(DontWait, MTData)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.ExtAdd(pattern(4096, byte(i)), func([]byte) { freed[i].Add(1) }, 0, DontWait); err != nil {
			t.Fatal(err)
		}
		// and a cluster, whose release is counted by the zone
		c, _ := GetJCL(DontWait, MTData, 0, MJum9Bytes)
		c.Extend(1000)
		m.next = c
		m.FixHdr()
		srcs = append(srcs, m)
	}
	work := make([][]*Mbuf, workers)
	for _, m := range srcs {
		for w := range workers {
			for range copies / workers {
				c, err := m.CopyM(0, CopyAll, DontWait)
				if err != nil {
					t.Fatal(err)
				}
				work[w] = append(work[w], c)
			}
		}
	}
	for _, m := range srcs {
		m.FreeM()
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			chains := work[w]
			rng.Shuffle(len(chains), func(i, j int) { chains[i], chains[j] = chains[j], chains[i] })
			for _, c := range chains {
				if !bytes.Equal(c.Data(), pattern(4096, c.Data()[0])) {
					t.Error("a shared buffer changed under its sharers")
				}
				// more sharing of our own copy: a split and a copy, freed in some order
				tail, err := c.Split(1+rng.IntN(4000), DontWait)
				if err != nil {
					t.Error(err)
					c.FreeM()
					continue
				}
				cc, err := c.CopyM(0, CopyAll, DontWait)
				if err != nil {
					t.Error(err)
				}
				all := []*Mbuf{c, tail, cc}
				rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
				for _, x := range all {
					x.FreeM()
				}
			}
		}()
	}
	wg.Wait()
	for i := range buffers {
		if n := freed[i].Load(); n != 1 {
			t.Fatalf("buffer %d freed %d times", i, n)
		}
	}
	checkUsage(t, before)
}

func TestFailurePaths(t *testing.T) {
	defer stress.SetFailureRate(0)
	data := pattern(6000, 11)
	type result struct {
		chain *Mbuf // what the caller still owns (nil: freed)
		err   error
	}
	cases := []struct {
		name  string
		op    func(m *Mbuf) result
		keeps bool // the input chain survives unchanged, still the caller's
	}{
		{"Split", func(m *Mbuf) result { _, err := m.Split(100, DontWait); return result{m, err} }, true},
		{"CopyM", func(m *Mbuf) result { _, err := m.CopyM(10, 3000, DontWait); return result{m, err} }, true},
		{"CopyPacket", func(m *Mbuf) result { _, err := m.CopyPacket(DontWait); return result{m, err} }, true},
		{"Dup", func(m *Mbuf) result { _, err := m.Dup(DontWait); return result{m, err} }, true},
		{"Defrag", func(m *Mbuf) result { n, err := m.Defrag(DontWait); return result{m, nilIfErr(n, err)} }, true},
		{"Append", func(m *Mbuf) result { return result{m, m.Append(pattern(5000, 1), DontWait)} }, true},
		{"CopyBack", func(m *Mbuf) result { return result{m, m.CopyBack(5000, pattern(5000, 1), DontWait)} }, true},
		{"MakeSpace", func(m *Mbuf) result { _, _, err := m.MakeSpace(100, 50, DontWait); return result{m, err} }, true},
		{"Fragment", func(m *Mbuf) result { n, err := m.Fragment(DontWait, 500); return result{n, err} }, true},
		{"Collapse", func(m *Mbuf) result { return result{m, m.Collapse(DontWait, 2)} }, true},
		{"Pullup", func(m *Mbuf) result { n, err := m.Pullup(3000, DontWait); return result{n, err} }, false},
		{"Pulldown", func(m *Mbuf) result { _, _, err := m.Pulldown(100, 3000, DontWait); return result{nil, err} }, false},
		{"Prepend", func(m *Mbuf) result { n, err := m.Prepend(64, DontWait); return result{n, err} }, false},
		{"Unshare", func(m *Mbuf) result { n, err := m.Unshare(DontWait); return result{n, err} }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := inUse()
			m := buildChain(t, data, extCaller, extCluster, extCaller, extJumboP)
			shared, err := m.CopyM(0, CopyAll, DontWait) // read-only clusters, for Unshare and CopyBack
			if err != nil {
				t.Fatal(err)
			}
			stress.SetFailureRate(1)
			res := c.op(m)
			stress.SetFailureRate(0)
			if !errors.Is(res.err, syscall.ENOBUFS) {
				t.Fatalf("%s under injected failure = %v, want ENOBUFS", c.name, res.err)
			}
			if c.keeps {
				if res.chain != m {
					t.Fatalf("%s did not leave the caller its chain", c.name)
				}
				mustEqual(t, c.name+" leaves the chain", m, data)
				m.FreeM()
			} else if res.chain != nil {
				t.Fatalf("%s returned a chain on failure", c.name)
			}
			mustEqual(t, c.name+" leaves the sharer", shared, data)
			shared.FreeM()
			checkUsage(t, before)
		})
	}
	t.Run("allocators", func(t *testing.T) {
		before := inUse()
		stress.SetFailureRate(1)
		var errs []error
		for _, f := range []func() (*Mbuf, error){
			func() (*Mbuf, error) { return Get(DontWait, MTData) },
			func() (*Mbuf, error) { return GetHdr(DontWait, MTData) },
			func() (*Mbuf, error) { return GetCL(DontWait, MTData, MPktHdr) },
			func() (*Mbuf, error) { return GetJCL(DontWait, MTData, 0, MJum16Bytes) },
			func() (*Mbuf, error) { return GetM(nil, 100000, DontWait, MTData, MPktHdr) },
			func() (*Mbuf, error) { return DevGet(data, 2, DontWait) },
		} {
			m, err := f()
			if m != nil {
				t.Fatal("an allocator returned an mbuf under injected failure")
			}
			errs = append(errs, err)
		}
		stress.SetFailureRate(0)
		for _, err := range errs {
			if !errors.Is(err, syscall.ENOBUFS) {
				t.Fatalf("allocator error %v, want ENOBUFS", err)
			}
		}
		// GetM appending to a chain leaves it; ExtAdd leaves m and does not free.
		m := buildChain(t, data[:100], extCaller)
		stress.SetFailureRate(1)
		n, err := GetM(m, 50000, DontWait, MTData, 0)
		stress.SetFailureRate(0)
		if n != nil || !errors.Is(err, syscall.ENOBUFS) {
			t.Fatalf("GetM append = %v, %v", n, err)
		}
		mustEqual(t, "GetM leaves m", m, data[:100])
		called := false
		stress.SetFailureRate(1)
		err = m.ExtAdd(make([]byte, 10), func([]byte) { called = true }, 0, DontWait)
		stress.SetFailureRate(0)
		if !errors.Is(err, syscall.ENOBUFS) || called || m.ext != nil {
			t.Fatalf("ExtAdd = %v, free called %v", err, called)
		}
		m.FreeM()
		checkUsage(t, before)
	})
	t.Run("ReadFd", func(t *testing.T) {
		before := inUse()
		a, b := socketpair(t)
		syscall.Write(b, data)
		stress.SetFailureRate(1)
		m, n, err := ReadFd(a, 5000, DontWait)
		stress.SetFailureRate(0)
		if m != nil || n != 0 || !errors.Is(err, syscall.ENOBUFS) {
			t.Fatalf("ReadFd = %v, %d, %v", m, n, err)
		}
		m, n, err = ReadFd(a, 100000, DontWait) // nothing was consumed
		if err != nil || n != len(data) {
			t.Fatalf("ReadFd after the failure = %d, %v", n, err)
		}
		mustEqual(t, "ReadFd", m, data)
		m.FreeM()
		checkUsage(t, before)
	})
	t.Run("Wait ignores injection", func(t *testing.T) {
		before := inUse()
		stress.SetFailureRate(1)
		m, err := GetCL(Wait(t.Context()), MTData, MPktHdr)
		stress.SetFailureRate(0)
		if err != nil {
			t.Fatal(err)
		}
		m.Free()
		checkUsage(t, before)
	})
}

func nilIfErr(_ *Mbuf, err error) error { return err }

// TestStatsExact follows the zone counts through every allocation and free.
func TestStatsExact(t *testing.T) {
	before := inUse()
	want := before
	check := func(what string) {
		t.Helper()
		if got := inUse(); got != want {
			t.Fatalf("%s: usage %+v, want %+v", what, got, want)
		}
	}
	m, _ := Get(DontWait, MTData)
	want.mbufs++
	check("Get")
	p, _ := GetCL(DontWait, MTData, MPktHdr)
	want.mbufs++
	want.clusters[extCluster]++
	check("GetCL")
	j, _ := GetJCL(DontWait, MTData, 0, MJum9Bytes)
	want.mbufs++
	want.clusters[extJumbo9]++
	check("GetJCL")
	p.Extend(100)
	c, _ := p.CopyM(0, CopyAll, DontWait)
	want.mbufs++
	check("CopyM shares, one mbuf more")
	p.Free() // its cluster stays with c: the pair goes back bare
	want.mbufs--
	check("Free of a shared pair")
	c.Free()
	want.mbufs--
	want.clusters[extCluster]--
	check("Free of the last sharer")
	q, _ := GetCL(DontWait, MTData, 0) // perhaps the bare pair: it gets a cluster
	want.mbufs++
	want.clusters[extCluster]++
	check("GetCL after a bare pair")
	var called int
	if err := m.ExtAdd(make([]byte, 100), func([]byte) { called++ }, 0, DontWait); err != nil {
		t.Fatal(err)
	}
	want.clusters[extCaller]++
	check("ExtAdd")
	m.Free()
	want.mbufs--
	want.clusters[extCaller]--
	check("Free of ExtAdd memory")
	j.Free()
	q.Free()
	want.mbufs -= 2
	want.clusters[extJumbo9]--
	want.clusters[extCluster]--
	check("the rest")
	if called != 1 || want != before {
		t.Fatalf("free routine called %d times", called)
	}
}

func TestPullupPulldown(t *testing.T) {
	before := inUse()
	data := pattern(8000, 12)
	for _, n := range []int{1, 100, MLen, MLen + 1, 2000, 2100, 7999, 8000} {
		m := buildChain(t, data, extCaller, extCaller, extCluster)
		m, err := m.Pullup(n, DontWait)
		if err != nil {
			t.Fatalf("Pullup(%d): %v", n, err)
		}
		if m.Len() < n {
			t.Fatalf("Pullup(%d): head holds %d", n, m.Len())
		}
		mustEqual(t, "Pullup", m, data)
		m.FreeM()
	}
	m := buildChain(t, data, extCluster)
	if m, err := m.Pullup(8001, DontWait); m != nil || !errors.Is(err, ErrTooShort) {
		t.Fatalf("Pullup past the end = %v, %v", m, err)
	}
	for _, r := range [][2]int{{0, 10}, {100, 200}, {2040, 20}, {183, 3000}, {5000, 3000}, {7999, 1}, {8000, 0}} {
		m := buildChain(t, data, extCaller, extCluster, extJumboP)
		mm, o, err := m.Pulldown(r[0], r[1], DontWait)
		if err != nil {
			t.Fatalf("Pulldown(%v): %v", r, err)
		}
		if o+r[1] > mm.Len() || !bytes.Equal(mm.Data()[o:o+r[1]], data[r[0]:r[0]+r[1]]) {
			t.Fatalf("Pulldown(%v): not contiguous", r)
		}
		mustEqual(t, "Pulldown", m, data)
		m.FreeM()
	}
	m = buildChain(t, data, extCluster)
	if _, _, err := m.Pulldown(7000, 1001, DontWait); !errors.Is(err, ErrTooShort) {
		t.Fatalf("Pulldown past the end = %v", err)
	}
	checkUsage(t, before)
}

func TestPrependMakeSpace(t *testing.T) {
	before := inUse()
	data := pattern(3000, 13)
	m := buildChain(t, data, extCluster)
	m.Adj(16)
	m, err := m.Prepend(14, DontWait) // fits the leading space
	if err != nil {
		t.Fatal(err)
	}
	copy(m.Data(), data[2:16])
	mustEqual(t, "Prepend in place", m, data[2:])
	c, _ := m.CopyM(0, CopyAll, DontWait) // now read-only: the next prepend needs a new head
	h, err := m.Prepend(2, DontWait)
	if err != nil {
		t.Fatal(err)
	}
	if h == m || h.PktHdr() == nil || m.PktHdr() != nil || h.LeadingSpace() == 0 {
		t.Fatal("Prepend on a read-only head did not put a new head with room in front")
	}
	copy(h.Data(), data[:2])
	mustEqual(t, "Prepend new head", h, data)
	c.FreeM()
	// MakeSpace in place, and across a shared cluster.
	mm, o, err := h.MakeSpace(1000, 8, DontWait)
	if err != nil {
		t.Fatal(err)
	}
	copy(mm.Data()[o:o+8], "ABCDEFGH")
	want := append(append(append([]byte(nil), data[:1000]...), "ABCDEFGH"...), data[1000:]...)
	mustEqual(t, "MakeSpace", h, want)
	c, _ = h.CopyM(0, CopyAll, DontWait)
	mm, o, err = h.MakeSpace(2500, 4, DontWait)
	if err != nil || o != 0 {
		t.Fatal(err)
	}
	copy(mm.Data(), "WXYZ")
	want2 := append(append(append([]byte(nil), want[:2500]...), "WXYZ"...), want[2500:]...)
	mustEqual(t, "MakeSpace in a shared cluster", h, want2)
	mustEqual(t, "the sharer", c, want)
	c.FreeM()
	h.FreeM()
	checkUsage(t, before)
}

func TestDefragCollapseUnshareFragment(t *testing.T) {
	before := inUse()
	data := pattern(30000, 14)
	m := buildChain(t, data, extCaller)
	m.TagPrepend(TagGet(5, 1))
	m, err := m.Defrag(DontWait)
	if err != nil || m.next != nil || m.TagFind(5, nil) == nil {
		t.Fatalf("Defrag: %v, next %v", err, m.next)
	}
	mustEqual(t, "Defrag", m, data)
	m, err = m.Fragment(DontWait, 1000)
	if err != nil || count(m) != 30 || m.TagFind(5, nil) == nil {
		t.Fatalf("Fragment: %v, %d fragments", err, count(m))
	}
	mustEqual(t, "Fragment", m, data)
	if err := m.Collapse(DontWait, 4); err != nil || count(m) > 4 {
		t.Fatalf("Collapse: %v, %d fragments", err, count(m))
	}
	mustEqual(t, "Collapse", m, data)
	for _, mode := range []int{FragRandomOnce, FragRandomEach} {
		m, err = m.Fragment(DontWait, mode)
		if err != nil || count(m) < 30000/255 {
			t.Fatalf("Fragment(%d): %v, %d fragments", mode, err, count(m))
		}
		mustEqual(t, "Fragment random", m, data)
	}
	if err := m.Collapse(DontWait, 1); !errors.Is(err, ErrCollapse) {
		t.Fatalf("Collapse to one fragment of a 30000-byte packet = %v", err)
	}
	mustEqual(t, "Collapse failed", m, data)
	c, _ := m.CopyM(0, CopyAll, DontWait)
	m, err = m.Unshare(DontWait)
	if err != nil {
		t.Fatal(err)
	}
	for mm := m; mm != nil; mm = mm.next {
		if !mm.Writable() {
			t.Fatal("Unshare left a read-only mbuf")
		}
	}
	mustEqual(t, "Unshare", m, data)
	mustEqual(t, "the sharer", c, data)
	c.FreeM()
	m.FreeM()
	checkUsage(t, before)
}

func TestTags(t *testing.T) {
	before := inUse()
	m, _ := GetHdr(DontWait, MTData)
	a, b, c := NewTag(1, 10, 4), TagGet(20, 0), NewTag(0, 10|MTagPersistent, 2)
	m.TagPrepend(a)
	m.TagPrepend(b)
	m.TagPrepend(c)
	if m.TagFirst() != c || c.Next() != b || m.TagFind(20, nil) != b || m.TagLocate(1, 10, nil) != a ||
		m.TagFind(10, nil) != nil || m.TagLocate(1, 10, a) != nil || TagGet(1, -1) != nil {
		t.Fatal("tag lookup")
	}
	n, _ := GetHdr(DontWait, MTData)
	n.TagCopyChain(m)
	if n.TagFirst() == c || n.TagFirst().Type != c.Type || n.TagFirst().Next().Next().Cookie != 1 {
		t.Fatal("TagCopyChain")
	}
	m.TagDelete(b)
	if m.TagFind(20, nil) != nil || c.Next() != a {
		t.Fatal("TagDelete")
	}
	n.TagDeleteNonPersistent()
	if n.TagFirst() == nil || n.TagFirst().Next() != nil {
		t.Fatal("TagDeleteNonPersistent")
	}
	m.TagDeleteChain(a)
	if c.Next() != nil {
		t.Fatal("TagDeleteChain(a)")
	}
	m.TagDeleteChain(nil)
	if m.TagFirst() != nil {
		t.Fatal("TagDeleteChain(nil)")
	}
	// MovePktHdr takes the header and the tags; DupPktHdr copies them.
	m.TagPrepend(TagGet(3, 0))
	m.PktHdr().FlowID = 9
	x, _ := Get(DontWait, MTData)
	x.MovePktHdr(m)
	if m.PktHdr() != nil || x.PktHdr().FlowID != 9 || x.TagFind(3, nil) == nil {
		t.Fatal("MovePktHdr")
	}
	y, _ := Get(DontWait, MTData)
	y.DupPktHdr(x)
	if y.TagFind(3, nil) == x.TagFind(3, nil) || y.TagFind(3, nil) == nil {
		t.Fatal("DupPktHdr")
	}
	for _, z := range []*Mbuf{m, n, x, y} {
		z.Free()
	}
	checkUsage(t, before)
}

func TestGetPtrApplyCopyData(t *testing.T) {
	before := inUse()
	data := pattern(5000, 15)
	m := buildChain(t, data, extCaller, extCluster)
	if mm, o := m.GetPtr(5000); mm != m.Last() || o != mm.Len() {
		t.Fatal("GetPtr at the end")
	}
	if mm, _ := m.GetPtr(5001); mm != nil {
		t.Fatal("GetPtr past the end")
	}
	if mm, o := m.GetPtr(MLen); mm != m.next || o != 0 {
		t.Fatal("GetPtr at an mbuf boundary")
	}
	stop := errors.New("stop")
	calls := 0
	if err := m.Apply(10, 4000, func(b []byte) error { calls++; return stop }); err != stop || calls != 1 {
		t.Fatal("Apply did not stop at the first error")
	}
	got := make([]byte, 3000)
	m.CopyData(1000, got)
	if !bytes.Equal(got, data[1000:4000]) {
		t.Fatal("CopyData")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("CopyData past the end did not panic")
			}
		}()
		m.CopyData(4000, got[:1001])
	}()
	m.FreeM()
	checkUsage(t, before)
}

func TestStringAndFlags(t *testing.T) {
	before := inUse()
	m := buildChain(t, pattern(3000, 16), extCluster)
	m.SetFlags(MEOR|MBcast|MPktHdr, 0) // MPktHdr is not SetFlags's to change
	m.SetFlags(0, MBcast)
	m.TagPrepend(TagGet(1, 2))
	s := m.String()
	for _, want := range []string{"<EXT,PKTHDR,EOR>", "type data", "ext cluster 2048 ref 1", "pkthdr len 3000", "tag 0/1[2]"} {
		if !strings.Contains(s, want) {
			t.Fatalf("String lacks %q:\n%s", want, s)
		}
	}
	if Flags(0x10000).String() != "<0x10000>" || Type(42).String() != "type42" {
		t.Fatal("unknown flags or type")
	}
	m.FreeM()
	checkUsage(t, before)
}

func TestDevGetAndDup(t *testing.T) {
	before := inUse()
	data := pattern(20000, 17)
	m, err := DevGet(data, 2, DontWait)
	if err != nil || m.off != 2 || m.PktHdr().Len != len(data) {
		t.Fatalf("DevGet: %v", err)
	}
	mustEqual(t, "DevGet", m, data)
	d, err := m.Dup(DontWait)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "Dup", d, data)
	if d.ext == m.ext {
		t.Fatal("Dup shared a cluster")
	}
	m.FreeM()
	d.FreeM()
	e, _ := GetHdr(DontWait, MTData)
	d, err = e.Dup(DontWait)
	if err != nil || d == nil || d.PktHdr() == nil || d.Len() != 0 {
		t.Fatal("Dup of an empty packet")
	}
	d.Free()
	e.Free()
	if m, err := DevGet(nil, 0, DontWait); m != nil || err != nil {
		t.Fatal("DevGet of nothing")
	}
	checkUsage(t, before)
}

// TestFromReaderErrors: a reader's error comes back with what was read.
func TestFromReaderErrors(t *testing.T) {
	before := inUse()
	boom := errors.New("boom")
	m, n, err := FromReader(io.MultiReader(strings.NewReader("abc"), errReader{boom}), 100, DontWait)
	if n != 3 || err != nil || m == nil {
		t.Fatalf("FromReader short read = %d, %v", n, err)
	}
	m.FreeM()
	m, n, err = FromReader(errReader{boom}, 100, DontWait)
	if m != nil || n != 0 || err != boom {
		t.Fatalf("FromReader error = %v, %d, %v", m, n, err)
	}
	checkUsage(t, before)
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// TestTooBig: contiguous storage past the largest cluster cannot be had.
func TestTooBig(t *testing.T) {
	before := inUse()
	big := pattern(100000, 18)
	ro := func() *Mbuf {
		m, _ := GetHdr(DontWait, MTData)
		if err := m.ExtAdd(big, nil, MRdOnly, DontWait); err != nil {
			t.Fatal(err)
		}
		m.FixHdr()
		return m
	}
	m := ro()
	if err := m.CopyBack(10, []byte("x"), DontWait); !errors.Is(err, ErrTooBig) || !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("CopyBack into 100 KB of read-only memory = %v", err)
	}
	mustEqual(t, "CopyBack left", m, big)
	if n, err := m.Unshare(DontWait); n != nil || !errors.Is(err, ErrTooBig) {
		t.Fatalf("Unshare of 100 KB of read-only memory = %v, %v", n, err)
	}
	if n, err := buildChain(t, big, extCaller, extCluster).Pullup(MJum64Bytes+1, DontWait); n != nil || !errors.Is(err, ErrTooBig) {
		t.Fatalf("Pullup(64 KiB + 1) = %v, %v", n, err)
	}
	if n, err := ro().Prepend(MJum64Bytes+1, DontWait); n != nil || !errors.Is(err, ErrTooBig) {
		t.Fatalf("Prepend(64 KiB + 1) = %v, %v", n, err)
	}
	m = ro()
	if _, _, err := m.MakeSpace(10, MJum64Bytes+1, DontWait); !errors.Is(err, ErrTooBig) {
		t.Fatalf("MakeSpace(64 KiB + 1) = %v", err)
	}
	mustEqual(t, "MakeSpace left", m, big)
	m.FreeM()
	checkUsage(t, before)
}
