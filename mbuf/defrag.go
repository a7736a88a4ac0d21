package mbuf

import (
	"fmt"
	"syscall"
)

// getContig returns an empty chain with room for n bytes in the fewest mbufs: one with
// the smallest storage that holds n if n is at most MJum64Bytes, else 64 KiB clusters
// and the smallest storage for the rest. n == 0 gives one empty mbuf. All or nothing.
func getContig(n int, how How, t Type, f Flags) (*Mbuf, error) {
	var head, tail *Mbuf
	for first := true; first || n > 0; first = false {
		k, _ := smallestKind(min(n, MJum64Bytes))
		m, err := getKind(how, t, f, k)
		if err != nil {
			head.FreeM()
			return nil, err
		}
		f &^= MPktHdr
		n -= len(m.storage())
		if tail == nil {
			head = m
		} else {
			tail.next = m
		}
		tail = m
	}
	return head, nil
}

// Defrag is m_defrag(9): it copies the chain into the fewest mbufs (one, for up to 64 KiB,
// like OpenBSD's; FreeBSD's uses 2 KiB clusters), moves the packet header and tags to the
// new head, frees the original and returns the copy, which is writable. A chain of one
// mbuf is returned as it is (OpenBSD; FreeBSD copies it anyway). FreeBSD returns a new
// head as here; OpenBSD keeps the head pointer and returns an errno. Unlike FreeBSD it
// also defragments chains without a packet header.
//
// On failure it returns nil and the error, and m is unchanged and still the caller's.
func (m *Mbuf) Defrag(how How) (*Mbuf, error) {
	debugCheck(m)
	if m.next == nil {
		return m, nil
	}
	total := m.Length()
	n, err := getContig(total, how, m.typ, m.flags&MPktHdr)
	if err != nil {
		return nil, err
	}
	if m.flags&MPktHdr != 0 {
		n.MovePktHdr(m)
	}
	n.fillFrom(m, 0, total)
	n.Last().setEOR(m.Last())
	m.FreeM()
	return n, nil
}

// ErrCollapse is returned, wrapping EFBIG, when Collapse cannot bring a chain down to the
// fragments asked.
var ErrCollapse = fmt.Errorf("mbuf: cannot collapse the chain to so few fragments: %w", syscall.EFBIG)

// Collapse is FreeBSD's m_collapse(9): it reduces the chain to at most maxFrags mbufs
// (DMA segments), keeping its head. First every mbuf that fits in the trailing space of
// the one before is copied there and freed (empty mbufs go too); then, while there are
// too many, adjacent pairs after the head are merged into new storage (FreeBSD merges
// into 2 KiB clusters only; here the smallest storage that holds the pair, up to 64 KiB,
// so fewer chains fail).
//
// On failure (ErrCollapse, ENOBUFS, ctx.Err()) the chain is still valid and the caller's,
// with the same bytes, but possibly already modified, as in FreeBSD.
func (m *Mbuf) Collapse(how How, maxFrags int) error {
	debugCheck(m)
	if maxFrags < 1 {
		return fmt.Errorf("mbuf: Collapse to %d fragments: %w", maxFrags, syscall.EINVAL)
	}
	frags := 0
	for mm := m; mm != nil; mm = mm.next {
		for mm.next != nil && mm.TrailingSpace() >= int(mm.next.len) {
			mm.absorb(mm.next)
			mm.next = mm.next.Free()
		}
		frags++
	}
	for frags > maxFrags {
		merged := false
		for prev := m; frags > maxFrags && prev.next != nil && prev.next.next != nil; {
			a := prev.next
			b := a.next
			k, ok := smallestKind(int(a.len + b.len))
			if !ok {
				prev = a
				continue
			}
			n, err := getKind(how, a.typ, 0, k)
			if err != nil {
				return err
			}
			n.absorb(a)
			n.absorb(b)
			n.next = b.next
			prev.next = n
			a.Free()
			b.Free()
			frags--
			merged = true
			prev = n
		}
		if !merged {
			return ErrCollapse
		}
	}
	return nil
}

// Unshare is FreeBSD's m_unshare(9): it makes every mbuf of the chain Writable and
// returns the chain, with the same head. An mbuf that is not Writable, or that keeps its
// data in internal storage, is merged into the trailing space of the mbuf before it when
// it fits there; otherwise a read-only mbuf gets a private copy of its data in the
// smallest storage that holds it (its own internal storage if the data fits), dropping
// its share of the cluster, and MRdOnly is cleared. Writable clusters stay as they are.
//
// On failure the whole chain is freed (unlike Defrag) and Unshare returns nil and the
// error (ENOBUFS, ctx.Err(), or ErrTooBig for read-only caller memory over 64 KiB).
func (m *Mbuf) Unshare(how How) (*Mbuf, error) {
	debugCheck(m)
	var prev *Mbuf
	for mm := m; mm != nil; {
		if prev != nil && (mm.ext == nil || !mm.Writable()) && prev.TrailingSpace() >= int(mm.len) {
			prev.absorb(mm)
			prev.next = mm.Free()
			mm = prev.next
			continue
		}
		if err := mm.makeWritable(how); err != nil {
			m.FreeM()
			return nil, err
		}
		prev, mm = mm, mm.next
	}
	return m, nil
}
