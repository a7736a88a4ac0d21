package mbuf

// Pullup is m_pullup(9): it makes the first n bytes of the chain contiguous in its first
// mbuf, for reading a header through Data, and returns the (perhaps new) head. If the
// head already holds n bytes it is returned at once. Otherwise, if the head is Writable
// and its storage can hold n bytes, the bytes are pulled into it (its data moved to the
// start of the storage if need be); if not, a new head with storage for n bytes is put in
// front and takes the packet header. As in OpenBSD that new head may have a cluster, so
// n may be up to MJum64Bytes (FreeBSD's m_pullup fails above MHLEN, which would refuse a
// TLS ClientHello); mbufs emptied by the pull are freed.
//
// On failure the whole chain is freed and Pullup returns nil and the error: ErrTooShort
// if the chain holds fewer than n bytes, ErrTooBig over MJum64Bytes, ENOBUFS or
// ctx.Err() when no mbuf can be had.
func (m *Mbuf) Pullup(n int, how How) (*Mbuf, error) {
	debugCheck(m)
	if n <= int(m.len) {
		return m, nil
	}
	if n > MJum64Bytes {
		m.FreeM()
		return nil, ErrTooBig
	}
	if m.Length() < n {
		m.FreeM()
		return nil, ErrTooShort
	}
	dst := m
	if s := m.storage(); m.Writable() && len(s) >= n {
		if int(m.off)+n > len(s) {
			copy(s, s[m.off:m.off+m.len])
			m.off = 0
		}
	} else {
		k, _ := smallestKind(n)
		h, err := getKind(how, m.typ, 0, k)
		if err != nil {
			m.FreeM()
			return nil, err
		}
		if m.flags&MPktHdr != 0 {
			h.MovePktHdr(m)
		}
		h.next = m
		dst = h
	}
	dst.pullIn(n - int(dst.len))
	return dst, nil
}

// pullIn moves k bytes from the front of the mbufs after m to the end of m, whose
// trailing space must hold them and whose successors must have them; successors it
// empties are freed.
func (m *Mbuf) pullIn(k int) {
	for k > 0 {
		src := m.next
		c := min(k, int(src.len))
		m.appendBytes(src.Data()[:c])
		if c > 0 && src.zeroMarked() {
			m.markZero()
		}
		src.off += int32(c)
		src.len -= int32(c)
		k -= c
		if src.len == 0 {
			m.flags |= src.flags & MEOR
			m.next = src.Free()
		}
	}
}

// Pulldown is m_pulldown(9): it makes the n bytes at offset off contiguous in some mbuf
// of the chain and returns that mbuf and the offset of the bytes in it, never moving the
// bytes before off: in place if one mbuf already holds them; else into the trailing space
// of the mbuf where they start, if it is Writable and has room; else by moving their
// first part into the leading space of the next mbuf; else into a new mbuf inserted after
// the one where they start (a cluster when n is more than MLen, up to MJum64Bytes as in
// OpenBSD; FreeBSD stops at MCLBYTES). The packet header's length is unchanged.
//
// On failure the whole chain is freed and Pulldown returns nil, 0 and the error
// (ErrTooShort, ErrTooBig, ENOBUFS or ctx.Err()).
func (m *Mbuf) Pulldown(off, n int, how How) (*Mbuf, int, error) {
	debugCheck(m)
	if off < 0 || n < 0 {
		panic("mbuf: Pulldown with a negative offset or length")
	}
	if n > MJum64Bytes {
		m.FreeM()
		return nil, 0, ErrTooBig
	}
	mm, o := m.seek(off)
	if mm == nil {
		if n == 0 && o == 0 {
			return m.Last(), int(m.Last().len), nil
		}
		m.FreeM()
		return nil, 0, ErrTooShort
	}
	if o+n <= int(mm.len) {
		return mm, o, nil
	}
	if mm.Length()-o < n {
		m.FreeM()
		return nil, 0, ErrTooShort
	}
	hlen := int(mm.len) - o // the part in mm
	tlen := n - hlen        // the part after it
	if mm.TrailingSpace() >= tlen {
		mm.pullIn(tlen)
		return mm, o, nil
	}
	if nx := mm.next; int(nx.len) >= tlen && nx.LeadingSpace() >= hlen {
		nx.off -= int32(hlen)
		nx.len += int32(hlen)
		copy(nx.Data(), mm.Data()[o:])
		if mm.zeroMarked() {
			nx.markZero()
		}
		mm.len -= int32(hlen)
		return nx, 0, nil
	}
	k, _ := smallestKind(n)
	nm, err := getKind(how, mm.typ, 0, k)
	if err != nil {
		m.FreeM()
		return nil, 0, err
	}
	nm.appendBytes(mm.Data()[o:])
	if mm.zeroMarked() {
		nm.markZero()
	}
	mm.len -= int32(hlen)
	nm.next = mm.next
	mm.next = nm
	nm.pullIn(tlen)
	return nm, 0, nil
}

// Prepend is M_PREPEND(9) (OpenBSD m_prepend): it opens n bytes in front of the chain's
// data, for the caller to fill with a header, and returns the (perhaps new) head. It uses
// the head's leading space when it is Writable and has room; otherwise a new head takes
// the packet header, with the n bytes at the end of its storage (M_ALIGN) so that later
// prepends find room. As in both systems' macro, the packet header's length grows by n.
// Unlike the C routines, n may exceed MHLen (a cluster is used, up to MJum64Bytes).
// The bytes opened are not initialised.
//
// On failure the whole chain is freed and Prepend returns nil and the error.
func (m *Mbuf) Prepend(n int, how How) (*Mbuf, error) {
	debugCheck(m)
	if n < 0 {
		panic("mbuf: Prepend of a negative length")
	}
	if m.LeadingSpace() >= n {
		m.off -= int32(n)
		m.len += int32(n)
		m.adjHdrLen(n)
		return m, nil
	}
	k, ok := smallestKind(n)
	if !ok {
		m.FreeM()
		return nil, ErrTooBig
	}
	h, err := getKind(how, m.typ, 0, k)
	if err != nil {
		m.FreeM()
		return nil, err
	}
	if m.flags&MPktHdr != 0 {
		h.MovePktHdr(m)
	}
	h.Align(n)
	h.len = int32(n)
	h.next = m
	h.adjHdrLen(n)
	return h, nil
}

// MakeSpace is OpenBSD's m_makespace(9): it opens hlen bytes at offset skip of the chain,
// moving what follows, and returns the mbuf and offset where the space starts, for the
// caller to fill (an IPsec header, say). The packet header's length grows by hlen. The
// bytes are opened in place when the mbuf holding offset skip is Writable and has room
// before its data (the bytes before skip move down) or after it (the bytes after skip
// move up); otherwise a new mbuf holds the space, and the rest of that mbuf follows it in
// another new mbuf that shares its cluster (or copies from internal storage). It never
// prepends: with skip 0 the space goes into the first mbuf that holds data. hlen may be
// up to MJum64Bytes (OpenBSD: under MHLEN). The bytes opened are not initialised.
//
// On failure (ErrTooShort past the end, ErrTooBig, ENOBUFS, ctx.Err()) the chain is
// unchanged and still the caller's; OpenBSD's may already be modified.
func (m *Mbuf) MakeSpace(skip, hlen int, how How) (*Mbuf, int, error) {
	debugCheck(m)
	if skip < 0 || hlen < 0 {
		panic("mbuf: MakeSpace with a negative offset or length")
	}
	mm, s := m, skip
	for mm != nil && s > int(mm.len) {
		s -= int(mm.len)
		mm = mm.next
	}
	if mm == nil {
		return nil, 0, ErrTooShort
	}
	if hlen == 0 {
		return mm, s, nil
	}
	remain := int(mm.len) - s
	st := mm.storage()
	switch {
	case mm.LeadingSpace() >= hlen && (s < remain || mm.TrailingSpace() < hlen):
		copy(st[int(mm.off)-hlen:], st[mm.off:int(mm.off)+s])
		mm.off -= int32(hlen)
		mm.len += int32(hlen)
		m.adjHdrLen(hlen)
		return mm, s, nil
	case mm.TrailingSpace() >= hlen:
		at := int(mm.off) + s
		copy(st[at+hlen:], st[at:mm.off+mm.len])
		mm.len += int32(hlen)
		m.adjHdrLen(hlen)
		return mm, s, nil
	}
	k, ok := smallestKind(hlen)
	if !ok {
		return nil, 0, ErrTooBig
	}
	h, err := getKind(how, mm.typ, 0, k)
	if err != nil {
		return nil, 0, err
	}
	after := mm.next
	if remain > 0 {
		r, err := get(how, mm.typ, 0)
		if err != nil {
			h.Free()
			return nil, 0, err
		}
		r.shareFrom(mm, s, remain)
		r.setEOR(mm)
		r.next = after
		after = r
		mm.len = int32(s)
	}
	h.len = int32(hlen)
	h.next = after
	mm.next = h
	m.adjHdrLen(hlen)
	return h, 0, nil
}

// setEOR moves MEOR from src to m (when m is not nil): the end of a record goes where
// its last byte went.
func (m *Mbuf) setEOR(src *Mbuf) {
	if m != nil && src.flags&MEOR != 0 {
		src.flags &^= MEOR
		m.flags |= MEOR
	}
}
