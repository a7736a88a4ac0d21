package mbuf

import (
	"bytes"
	"testing"
)

// TestCopyDataPastTheEnd: an offset past the end panics even for no bytes, as
// m_copydata's and m_apply's KASSERTs do; the end itself is a valid offset for none.
func TestCopyDataPastTheEnd(t *testing.T) {
	before := inUse()
	data := pattern(3000, 23)
	m := buildChain(t, data, extCaller, extCluster)
	m.Last().next, _ = Get(DontWait, MTData) // an empty mbuf at the end changes nothing
	n := len(data)
	nop := func([]byte) error { return nil }
	for _, c := range []struct {
		off, len int
		panics   bool
	}{
		{0, n, false}, {n, 0, false}, {n - 1, 1, false}, {MLen, 0, false},
		{n + 1, 0, true}, {n, 1, true}, {n - 1, 2, true}, {0, n + 1, true}, {5000, 0, true}, {-1, 0, true},
	} {
		dst := make([]byte, c.len)
		if got := panicked(func() { m.CopyData(c.off, dst) }); got != c.panics {
			t.Errorf("CopyData(%d, %d bytes) of %d: panicked %v, want %v", c.off, c.len, n, got, c.panics)
		} else if !got && !bytes.Equal(dst, data[c.off:c.off+c.len]) {
			t.Errorf("CopyData(%d, %d bytes): wrong bytes", c.off, c.len)
		}
		if got := panicked(func() { m.Apply(c.off, c.len, nop) }); got != c.panics {
			t.Errorf("Apply(%d, %d) of %d: panicked %v, want %v", c.off, c.len, n, got, c.panics)
		}
	}
	var empty *Mbuf
	if panicked(func() { empty.CopyData(0, nil) }) || !panicked(func() { empty.CopyData(1, nil) }) {
		t.Error("CopyData of a nil chain")
	}
	m.FreeM()
	checkUsage(t, before)
}

// eorAt returns the indexes of the mbufs of the chain that carry MEOR.
func eorAt(m *Mbuf) []int {
	var at []int
	for i := 0; m != nil; i, m = i+1, m.next {
		if m.flags&MEOR != 0 {
			at = append(at, i)
		}
	}
	return at
}

// TestCatPktFlags: m_catpkt demotes the appended packet (m_demote(n, 1, 0): its header,
// tags and packet flags go, its storage flags stay), and the end of the record moves to
// the end of the joined packet.
func TestCatPktFlags(t *testing.T) {
	before := inUse()
	a, b := pattern(3000, 24), pattern(2500, 25)
	mk := func(data []byte, f Flags) *Mbuf {
		m := buildChain(t, data, extCluster, extCaller)
		m.SetFlags(f, 0)
		return m
	}

	// n ends a record (MEOR on its head, where sosend puts it): the joined packet does,
	// on its last mbuf only; m's MEOR, on its last mbuf, goes.
	m := mk(a, MBcast)
	m.Last().SetFlags(MEOR, 0)
	n := mk(b, MMcast|MPromisc|MVLANTag|MEOR)
	n.TagPrepend(TagGet(7, 4))
	n.next.SetFlags(MRdOnly, 0)
	n.next.Zero()
	m.CatPkt(n)
	mustEqual(t, "CatPkt", m, append(append([]byte(nil), a...), b...))
	if at := eorAt(m); len(at) != 1 || at[0] != count(m)-1 {
		t.Fatalf("CatPkt: MEOR on mbufs %v of %d", at, count(m))
	}
	if m.Flags() != MExt|MPktHdr|MBcast {
		t.Fatalf("CatPkt: head flags %v", m.Flags())
	}
	for mm := m.next; mm != nil; mm = mm.next {
		if f := mm.flags &^ (MEOR | MRdOnly | MZeroize); f != 0 {
			t.Fatalf("CatPkt: flags %v left on an mbuf past the head", f)
		}
	}
	if n.PktHdr() != nil || n.tags != nil || n.next.flags&(MRdOnly|MZeroize) != MRdOnly|MZeroize {
		t.Fatalf("CatPkt: n keeps a header or lost its storage flags: %v, %v", n.Flags(), n.next.Flags())
	}
	if m.TagFirst() != nil {
		t.Fatal("CatPkt: n's tag moved to m")
	}
	m.FreeM()

	// n does not end a record: neither does the joined packet.
	m = mk(a, MEOR)
	m.Last().SetFlags(MEOR, 0)
	m.CatPkt(mk(b, 0))
	if at := eorAt(m); len(at) != 0 {
		t.Fatalf("CatPkt of a packet without MEOR: MEOR on mbufs %v", at)
	}
	m.FreeM()

	// n fits in m's trailing space and is copied there: MEOR goes with its bytes.
	m = mk(a[:100], 0)
	n = mk(b[:50], 0)
	n.SetFlags(MEOR, 0)
	m.CatPkt(n) // n is freed
	if count(m) != 1 || m.flags&MEOR == 0 || m.PktHdr().Len != 150 {
		t.Fatalf("CatPkt into the trailing space: %d mbufs, flags %v", count(m), m.Flags())
	}
	m.FreeM()
	checkUsage(t, before)
}

// TestLinkUnlink: Link joins chains as they are, with no copy and no flag or header
// change; Unlink cuts the first mbuf off.
func TestLinkUnlink(t *testing.T) {
	before := inUse()
	a, err := Get(DontWait, MTSoname)
	if err != nil {
		t.Fatal(err)
	}
	a.Extend(copy(a.Tail(), "name"))
	p := buildChain(t, pattern(100, 26), extCaller)
	p.SetFlags(MEOR, 0)
	a.Link(p)
	if a.next != p || a.Len() != 4 || p.PktHdr() == nil || p.flags&MEOR == 0 || a.Length() != 104 {
		t.Fatal("Link copied or changed what it linked")
	}
	a.Link(nil) // a no-op
	if !panicked(func() { a.Link(p) }) || !panicked(func() { a.Link(a) }) {
		t.Fatal("Link into a loop did not panic")
	}
	if rest := a.Unlink(); rest != p || a.next != nil {
		t.Fatal("Unlink")
	}
	if a.Unlink() != nil {
		t.Fatal("Unlink of a lone mbuf")
	}
	a.Free()
	p.FreeM()
	checkUsage(t, before)
}

// TestLinkPktFreeMP: LinkPkt queues packets by hand, UnlinkPkt takes the first off, and
// FreeMP frees every packet of the queue.
func TestLinkPktFreeMP(t *testing.T) {
	before := inUse()
	var q *Mbuf
	for i := range 5 {
		m := buildChain(t, pattern(1000*i, byte(i)), extCluster, extCaller)
		if q == nil {
			q = m
		} else {
			q.LinkPkt(m)
		}
	}
	if !panicked(func() { q.LinkPkt(q.nextpkt) }) {
		t.Fatal("LinkPkt of a queued packet did not panic")
	}
	n, i := 0, 0
	for m := q; m != nil; m, i = m.nextpkt, i+1 {
		mustEqual(t, "a queued packet", m, pattern(1000*i, byte(i)))
		n++
	}
	if n != 5 {
		t.Fatalf("%d packets queued, want 5", n)
	}
	first := q
	q = q.UnlinkPkt()
	if first.nextpkt != nil || q == nil {
		t.Fatal("UnlinkPkt")
	}
	first.FreeMP() // one packet
	q.FreeMP()
	var none *Mbuf
	none.FreeMP()
	checkUsage(t, before)
}
