package mbuf

// CopyAll is M_COPYALL: as the length of CopyM, everything from the offset to the end.
const CopyAll = -1

// CopyM is m_copym(9): a copy of n bytes of the chain from offset off (n == CopyAll: to
// the end). Clusters are shared, not copied: each costs one new mbuf and one atomic add,
// and from then on both the copy and the original are read-only where they share a
// cluster (LeadingSpace and TrailingSpace report 0 and writers copy first), until one
// side is freed. Bytes in an mbuf's internal storage are copied, at the same offset, so
// a copy keeps the original's leading space (OpenBSD; FreeBSD moves them to the front).
// If off is 0 and m has a packet header, the copy gets a copy of it, tags included, with
// length n (or the whole packet's for CopyAll).
//
// A length of 0, or CopyAll at the end of the chain, gives a nil chain and no error. On
// failure the partial copy is freed and m is untouched. It panics if off or off+n lies
// past the end of the chain, as the C routines assert.
func (m *Mbuf) CopyM(off, n int, how How) (*Mbuf, error) {
	debugCheck(m)
	if off < 0 || n < CopyAll {
		panic("mbuf: CopyM with a negative offset or length")
	}
	copyHdr := off == 0 && m.flags&MPktHdr != 0
	head := m
	mm := m
	for off > 0 {
		if mm == nil {
			panic("mbuf: CopyM offset past the end of the chain")
		}
		if off < int(mm.len) {
			break
		}
		off -= int(mm.len)
		mm = mm.next
	}
	ab := allocBatch{how: how, want: countRange(mm, off, n)}
	defer ab.close()
	var top, tail *Mbuf
	for n != 0 {
		if mm == nil {
			if n != CopyAll {
				panic("mbuf: CopyM length past the end of the chain")
			}
			break
		}
		f := Flags(0)
		if copyHdr {
			f = MPktHdr
		}
		c, err := ab.get(mm.typ, f)
		if err != nil {
			top.FreeM()
			return nil, err
		}
		if copyHdr {
			c.DupPktHdr(head)
			if n != CopyAll {
				c.hdr.Len = n
			}
			copyHdr = false
		}
		k := int(mm.len) - off
		if n != CopyAll {
			k = min(k, n)
			n -= k
		}
		c.shareFrom(mm, off, k)
		if tail == nil {
			top = c
		} else {
			tail.next = c
		}
		tail = c
		off = 0
		mm = mm.next
	}
	return top, nil
}

// countRange returns how many mbufs from mm on hold the n bytes (CopyAll: all) from
// offset off of mm: how many CopyM makes.
func countRange(mm *Mbuf, off, n int) int {
	cnt := 0
	for ; mm != nil && n != 0; mm = mm.next {
		if n != CopyAll {
			n -= min(n, int(mm.len)-off)
		}
		off = 0
		cnt++
	}
	return cnt
}

// shareFrom makes the fresh, internal mbuf c hold k bytes of m from offset off: sharing
// m's cluster (one atomic add) or copying from m's internal storage to the same place.
// A sharer takes MRdOnly with the cluster, as FreeBSD's mb_dupcl copies M_RDONLY and
// OpenBSD's m_extref its inverse, M_EXTWR: storage that must not be written stays so on
// every mbuf that comes to point at it, however many of them are freed first. A copy of
// internal storage is c's own and writable.
func (c *Mbuf) shareFrom(m *Mbuf, off, k int) {
	c.off = m.off + int32(off)
	c.len = int32(k)
	if m.ext != nil {
		m.ext.share()
		c.ext = m.ext
		c.flags |= m.flags & MRdOnly
		return
	}
	copy(c.dat[c.off:c.off+c.len], m.dat[c.off:])
	if m.flags&MZeroize != 0 {
		c.flags |= MZeroize
	}
}

// CopyPacket is FreeBSD's m_copypacket(9): CopyM(0, CopyAll) of a packet, header and
// tags included, clusters shared. m must have a packet header. Same failure behaviour.
func (m *Mbuf) CopyPacket(how How) (*Mbuf, error) {
	m.mustHdr("CopyPacket")
	return m.CopyM(0, CopyAll, how)
}

// Dup is FreeBSD's m_dup(9): a deep, writable copy of the chain, with a copy of its
// packet header and tags if it has one, in the fewest mbufs the largest fitting clusters
// give (a chain of up to 64 KiB fits in one). An empty packet gives one empty header mbuf.
// FreeBSD requires a packet header; here any chain can be duplicated (an empty one
// without a header gives nil). OpenBSD's m_dup_pkt, which adds leading space, is Dup
// followed by Prepend. On failure the partial copy is freed and m is untouched.
func (m *Mbuf) Dup(how How) (*Mbuf, error) {
	debugCheck(m)
	total := m.Length()
	f := m.flags & MPktHdr
	if total == 0 {
		if f == 0 {
			return nil, nil
		}
		n, err := get(how, m.typ, f)
		if err != nil {
			return nil, err
		}
		n.DupPktHdr(m)
		return n, nil
	}
	top, err := GetM(nil, total, how, m.typ, f)
	if err != nil {
		return nil, err
	}
	if f != 0 {
		top.DupPktHdr(m)
	}
	top.fillFrom(m, 0, total)
	return top, nil
}

// fillFrom copies n bytes of src from offset off into the empty mbufs of the chain top,
// filling each one's storage from its start, and marks storage that received bytes from
// storage marked by Zero.
func (top *Mbuf) fillFrom(src *Mbuf, off, n int) {
	for mm := top; n > 0; mm = mm.next {
		k := min(n, len(mm.storage())-int(mm.off))
		if copyOut(mm.storage()[mm.off:int(mm.off)+k], src, off) {
			mm.markZero()
		}
		mm.len = int32(k)
		off += k
		n -= k
	}
}

// Split is m_split(9): it cuts the chain after its first len0 bytes and returns the rest.
// A cut inside a cluster shares it (one new mbuf, one atomic add); a cut inside internal
// storage copies the remainder to a new mbuf. With a packet header, the rest gets a new
// header mbuf with the flow id and receive interface, both lengths are set, and — as in
// FreeBSD; OpenBSD copies them — tags stay with the head: the split is on the hot path of
// a splice and copying tags would allocate. A cut exactly at the end returns an empty
// header mbuf with a packet header, nil without one (m_next). A cut at an mbuf boundary
// of a chain without header allocates nothing.
//
// A len0 past the end returns ErrTooShort. On failure the chain is untouched (FreeBSD may
// already have changed the header length).
func (m0 *Mbuf) Split(len0 int, how How) (*Mbuf, error) {
	debugCheck(m0)
	if len0 < 0 {
		panic("mbuf: Split at a negative offset")
	}
	m, l := m0, len0
	for m != nil && l > int(m.len) {
		l -= int(m.len)
		m = m.next
	}
	if m == nil {
		return nil, ErrTooShort
	}
	remain := int(m.len) - l
	hdr := m0.flags & MPktHdr
	if hdr == 0 && remain == 0 {
		n := m.next
		m.next = nil
		return n, nil
	}
	n, err := get(how, m.typ, hdr)
	if err != nil {
		return nil, err
	}
	if hdr != 0 {
		n.hdr.FlowID, n.hdr.RcvIf = m0.hdr.FlowID, m0.hdr.RcvIf
		n.hdr.Len = m0.hdr.Len - len0
		m0.hdr.Len = len0
	}
	if remain > 0 {
		n.shareFrom(m, l, remain)
		m.len = int32(l)
		n.setEOR(m) // the end of the record went with the bytes
	}
	n.next = m.next
	m.next = nil
	return n, nil
}

// DevGet is m_devget(9): a new packet (MPktHdr, MTData) holding a copy of b, its first
// mbuf's data starting off bytes into its storage (ETHER_ALIGN's 2, so that the IP header
// after a 14-byte Ethernet header is aligned); off must be in [0, MHLen]. It uses the
// largest clusters that fit. An empty b gives nil. On failure the partial chain is freed.
func DevGet(b []byte, off int, how How) (*Mbuf, error) {
	if off < 0 || off > MHLen {
		panic("mbuf: DevGet offset out of [0, MHLen]")
	}
	if len(b) == 0 {
		return nil, nil
	}
	m, err := getKind(how, MTData, MPktHdr, fitKind(len(b)+off))
	if err != nil {
		return nil, err
	}
	m.off = int32(off)
	if rest := len(b) - (len(m.storage()) - off); rest > 0 {
		if _, err := GetM(m, rest, how, MTData, 0); err != nil {
			m.Free()
			return nil, err
		}
	}
	m.hdr.Len = len(b)
	for mm := m; len(b) > 0; mm = mm.next {
		k := copy(mm.Tail(), b)
		mm.len = int32(k)
		b = b[k:]
	}
	return m, nil
}
