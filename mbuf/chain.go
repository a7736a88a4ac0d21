package mbuf

import (
	"fmt"
	"syscall"
)

// ErrTooShort is returned, wrapping syscall.EINVAL, by operations asked for bytes past
// the end of a chain where the C routine returns NULL (m_split, m_pullup, m_pulldown,
// m_makespace).
var ErrTooShort = fmt.Errorf("mbuf: chain shorter than requested: %w", syscall.EINVAL)

// ErrTooBig is returned, wrapping syscall.EFBIG, when contiguous storage larger than the
// largest cluster (MJum64Bytes) is asked of Pullup, Pulldown, Prepend, MakeSpace, or of
// a copy-first write (CopyBack, Unshare) to read-only caller memory larger than that.
var ErrTooBig = fmt.Errorf("mbuf: more than %d contiguous bytes: %w", MJum64Bytes, syscall.EFBIG)

// Adj is m_adj(9): it trims n bytes from the head of the chain if n ≥ 0, or -n bytes from
// its tail if n < 0, and fixes the packet header's length. Trimming more than the chain
// holds empties it. Head trimming leaves emptied mbufs in the chain with their data
// offset moved past what was trimmed (OpenBSD: the trimmed bytes become leading space);
// tail trimming frees the mbufs past the new end (FreeBSD; OpenBSD keeps them empty),
// so their clusters go back at once. It cannot fail; a nil chain is a no-op.
func (m *Mbuf) Adj(n int) {
	if m == nil {
		return
	}
	debugCheck(m)
	if n >= 0 {
		rem := n
		for mm := m; mm != nil && rem > 0; mm = mm.next {
			k := min(rem, int(mm.len))
			mm.off += int32(k)
			mm.len -= int32(k)
			rem -= k
		}
		m.adjHdrLen(-(n - rem))
		return
	}
	keep := max(m.Length()+n, 0)
	if m.flags&MPktHdr != 0 {
		m.hdr.Len = keep
	}
	for mm := m; mm != nil; mm = mm.next {
		if int(mm.len) >= keep {
			mm.len = int32(keep)
			mm.next.FreeM()
			mm.next = nil
			return
		}
		keep -= int(mm.len)
	}
}

// Cat is m_cat(9): it appends chain n to chain m. While the next mbuf of n fits in the
// trailing space of m's last mbuf (which must be writable), its bytes are copied there and
// it is freed; the rest of n is linked on. Packet headers are not touched: n should not
// have one (CatPkt joins two packets). n must not be used afterwards.
func (m *Mbuf) Cat(n *Mbuf) {
	debugCheck(m)
	last := m.Last()
	for n != nil {
		if last.TrailingSpace() < int(n.len) {
			last.next = n
			return
		}
		last.absorb(n)
		n = n.Free()
	}
}

// appendBytes copies b into the trailing space, which must hold it.
func (m *Mbuf) appendBytes(b []byte) {
	s := m.storage()
	copy(s[m.off+m.len:], b)
	m.len += int32(len(b))
}

// absorb copies n's data into m's trailing space, which must hold it, with its Zero
// mark and its MEOR: n can then be freed.
func (m *Mbuf) absorb(n *Mbuf) {
	m.appendBytes(n.Data())
	if n.len > 0 && n.zeroMarked() {
		m.markZero()
	}
	m.setEOR(n)
}

// CatPkt is FreeBSD's m_catpkt(9): it appends packet n to packet m, adding n's length to
// m's header, and then does Cat. Both must have packet headers. OpenBSD has no such
// routine.
//
// n is demoted as m_catpkt does with m_demote(n, 1, 0): every mbuf of n loses its packet
// header, its tags and its flags but those of its storage (MRdOnly, and the Zero mark);
// n's MBcast, MMcast, MPromisc and MVLANTag go, m's head keeps its own. MEOR, the end of a
// record, goes where the record now ends, as m_getm2 and sbcompress move M_EOR: the last
// mbuf of the joined packet carries it if any mbuf of n did, and no other mbuf does (m's
// own MEOR is cleared, m no longer ends anything). FreeBSD's m_demote drops n's M_EOR
// outright and leaves m's in the middle of the chain.
func (m *Mbuf) CatPkt(n *Mbuf) {
	m.mustHdr("CatPkt").Len += n.mustHdr("CatPkt").Len
	n.demoteAll()
	last := m
	for {
		last.flags &^= MEOR
		if last.next == nil {
			break
		}
		last = last.next
	}
	last.Cat(n)
}

// Append is FreeBSD's m_append(9): it copies b to the end of the chain, filling the last
// mbuf's trailing space and then appending new mbufs (the largest clusters that fit, an
// mbuf's own storage for the rest, where the C routine uses plain mbufs only), and adds
// the bytes to the packet header's length.
//
// Unlike the C routine, which may stop part-way and keep what it appended, it allocates
// everything it needs before it copies anything: on failure the chain is unchanged and
// the error (ENOBUFS, or ctx.Err() with Wait) is returned.
func (m *Mbuf) Append(b []byte, how How) error {
	debugCheck(m)
	last := m.Last()
	if rest := len(b) - last.TrailingSpace(); rest > 0 {
		if _, err := GetM(last, rest, how, last.typ, last.flags&MEOR); err != nil {
			return err
		}
	}
	m.adjHdrLen(len(b))
	for mm := last; len(b) > 0; mm = mm.next {
		k := min(len(b), mm.TrailingSpace())
		mm.appendBytes(b[:k])
		b = b[k:]
	}
	return nil
}

// GetPtr is m_getptr(9): the mbuf holding byte loc of the chain and loc's offset in it.
// For loc equal to the chain's length it returns the last mbuf and its length; for loc
// past the end or negative, nil. Empty mbufs are skipped.
func (m *Mbuf) GetPtr(loc int) (*Mbuf, int) {
	if loc < 0 {
		return nil, 0
	}
	for ; m != nil; m = m.next {
		if int(m.len) > loc {
			return m, loc
		}
		loc -= int(m.len)
		if m.next == nil && loc == 0 {
			return m, int(m.len)
		}
	}
	return nil, 0
}

// Apply is m_apply(9): it calls f on each contiguous piece of the n bytes from off, in
// order, and stops at the first error, which it returns. It panics if off is negative or
// past the end of the chain, or the chain is shorter than off+n, even when n is 0 (the C
// routines assert). f must not keep the slices.
func (m *Mbuf) Apply(off, n int, f func([]byte) error) error {
	mm, o := m.seek(off)
	if mm == nil && o > 0 {
		panic("mbuf: Apply offset past the end of the chain")
	}
	for n > 0 {
		if mm == nil {
			panic("mbuf: Apply past the end of the chain")
		}
		k := min(n, int(mm.len)-o)
		if k > 0 {
			if err := f(mm.Data()[o : o+k]); err != nil {
				return err
			}
		}
		n -= k
		o = 0
		mm = mm.next
	}
	return nil
}

// seek returns the first mbuf whose data reaches past off and off's offset in it (so a
// position exactly at an mbuf boundary is the start of the next non-empty mbuf), or
// nil and the excess when the chain ends at or before off. It panics if off is negative.
func (m *Mbuf) seek(off int) (*Mbuf, int) {
	if off < 0 {
		panic("mbuf: negative offset")
	}
	for m != nil && off >= int(m.len) {
		off -= int(m.len)
		m = m.next
	}
	return m, off
}

// CopyData is m_copydata(9): it copies len(dst) bytes from offset off of the chain into
// dst. It panics if off is negative or past the end of the chain, or the chain is shorter
// than off+len(dst), even when dst is empty, as both C routines assert.
func (m *Mbuf) CopyData(off int, dst []byte) {
	debugCheck(m)
	copyOut(dst, m, off)
}

// copyOut is CopyData reporting whether any storage it read from was marked by Zero, so
// that the copy's storage can be marked too.
func copyOut(dst []byte, m *Mbuf, off int) (zero bool) {
	mm, o := m.seek(off)
	if mm == nil && o > 0 {
		panic("mbuf: CopyData offset past the end of the chain")
	}
	for len(dst) > 0 {
		if mm == nil {
			panic("mbuf: CopyData past the end of the chain")
		}
		k := copy(dst, mm.Data()[o:])
		zero = zero || (k > 0 && mm.zeroMarked())
		dst = dst[k:]
		o = 0
		mm = mm.next
	}
	return zero
}

// CopyBack is m_copyback(9): it writes b at offset off of the chain, growing the chain
// (trailing space first, then new mbufs, the largest clusters that fit) when b reaches
// past its end, and zero-filling any gap between the old end and off. The packet header's
// length becomes the chain's length if that grew.
//
// Unlike both C routines, it does not write into shared storage: an mbuf that is not
// Writable is first given a private copy of its data (NetBSD's m_copyback_cow), so a
// CopyM or Split sharer never sees the change. And unlike them it does not stop part-way:
// every copy and every new mbuf is obtained before any byte is written, so on failure
// (ENOBUFS, ctx.Err(), or ErrTooBig for read-only caller memory over 64 KiB) the chain's
// bytes are unchanged, though some of its mbufs may already have private copies.
func (m *Mbuf) CopyBack(off int, b []byte, how How) error {
	debugCheck(m)
	if off < 0 {
		panic("mbuf: CopyBack at a negative offset")
	}
	total := m.Length()
	end := off + len(b)
	// Private copies of the existing bytes about to be written.
	if off < total && len(b) > 0 {
		mm, o := m.seek(off)
		for rem := min(end, total) - off; rem > 0; mm, o = mm.next, 0 {
			if k := int(mm.len) - o; k > 0 {
				if err := mm.makeWritable(how); err != nil {
					return err
				}
				rem -= k
			}
		}
	}
	// Room for what lies past the end.
	last := m.Last()
	if grow := end - total - last.TrailingSpace(); end > total && grow > 0 {
		if _, err := GetM(last, grow, how, last.typ, last.flags&MEOR); err != nil {
			return err
		}
	}
	if end > total {
		m.adjHdrLenTo(end)
		zeros := max(off-total, 0)
		for mm := last; end > total; mm = mm.next {
			k := min(end-total, mm.TrailingSpace())
			tail := mm.Tail()[:k]
			z := min(k, zeros)
			clear(tail[:z])
			mm.len += int32(k)
			total += k
			zeros -= z
		}
	}
	mm, o := m.seek(off)
	for len(b) > 0 {
		k := copy(mm.Data()[o:], b)
		b = b[k:]
		mm, o = mm.next, 0
	}
	return nil
}

// adjHdrLenTo raises the header length to n if m has a header with less.
func (m *Mbuf) adjHdrLenTo(n int) {
	if m.flags&MPktHdr != 0 && m.hdr.Len < n {
		m.hdr.Len = n
	}
}

// makeWritable gives m a private copy of its data window if it is not Writable: the
// smallest storage that holds it (its own internal storage if it fits), the data at the
// same offset where possible. The old storage reference is dropped. MRdOnly is cleared:
// the new storage is m's own. On failure m is unchanged.
func (m *Mbuf) makeWritable(how How) error {
	if m.Writable() {
		return nil
	}
	if m.ext == nil { // internal storage marked MRdOnly: it is m's own anyway
		m.flags &^= MRdOnly
		return nil
	}
	n := int(m.len)
	k, ok := smallestKind(n)
	if !ok {
		return ErrTooBig
	}
	old := m.ext
	var dst []byte
	var c *cluster
	if k == extCaller {
		dst = m.dat[:]
	} else {
		var err error
		if c, err = zalloc(clZones[k], how); err != nil {
			return err
		}
		debugClusterAlloc(c)
		dst = c.buf
	}
	off := min(int(m.off), len(dst)-n)
	copy(dst[off:], m.Data())
	if old.zero.Load() {
		if c != nil {
			c.zero.Store(true)
		} else {
			m.flags |= MZeroize
		}
	}
	m.ext = c
	m.off = int32(off)
	m.flags &^= MRdOnly
	old.release()
	return nil
}
