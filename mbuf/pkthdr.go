package mbuf

// PktHdr is struct pkthdr: what the first mbuf of a packet (MPktHdr) knows about the
// whole packet. Tags hang off the mbuf, not this struct (see TagPrepend), so assigning a
// PktHdr never loses or duplicates them.
type PktHdr struct {
	Len       int       // total bytes of the packet (the chain), kept by the operations
	FlowID    uint32    // flowid: the flow hash that chose the worker (RSS)
	RcvIf     uint32    // index of the receiving interface (a socket, for softnet)
	CsumFlags CsumFlags // csum_flags: checksum work done or wanted
	CsumData  uint32    // csum_data
}

// CsumFlags are pkthdr csum_flags. The values are FreeBSD's.
type CsumFlags uint32

// Checksum flags (CSUM_*).
const (
	CsumIP        CsumFlags = 0x00000001 // CSUM_IP: the IP header checksum is to be computed
	CsumIPUDP     CsumFlags = 0x00000002 // CSUM_IP_UDP
	CsumIPTCP     CsumFlags = 0x00000004 // CSUM_IP_TCP
	CsumL3Calc    CsumFlags = 0x01000000 // CSUM_L3_CALC: the L3 checksum was checked
	CsumL3Valid   CsumFlags = 0x02000000 // CSUM_L3_VALID: and was right
	CsumL4Calc    CsumFlags = 0x04000000 // CSUM_L4_CALC
	CsumL4Valid   CsumFlags = 0x08000000 // CSUM_L4_VALID
	CsumDataValid CsumFlags = 0x00000400 // CSUM_DATA_VALID
)

// PktHdr returns m's packet header, or nil if m has no MPktHdr. The pointer aliases the
// mbuf: it is valid while m is, and while m keeps its header.
func (m *Mbuf) PktHdr() *PktHdr {
	if m.flags&MPktHdr == 0 {
		return nil
	}
	return &m.hdr
}

// FixHdr is m_fixhdr(9) (OpenBSD m_calchdrlen): it sets the packet header's length to
// the bytes in the chain and returns it. m must have a packet header.
func (m *Mbuf) FixHdr() int {
	n := m.Length()
	m.mustHdr("FixHdr").Len = n
	return n
}

func (m *Mbuf) mustHdr(op string) *PktHdr {
	if m.flags&MPktHdr == 0 {
		panic("mbuf: " + op + " of an mbuf without a packet header")
	}
	return &m.hdr
}

// MovePktHdr is m_move_pkthdr(9) / M_MOVE_PKTHDR: to takes from's packet header, its tags
// and the flags that go with it (M_COPYFLAGS); from keeps its data but loses MPktHdr and
// its tags. to keeps its own storage and MRdOnly, and must not have a header of its own
// with tags (they would be dropped).
func (to *Mbuf) MovePktHdr(from *Mbuf) {
	debugCheck(to)
	debugCheck(from)
	from.mustHdr("MovePktHdr")
	to.flags = from.flags&copyFlags | to.flags&(MRdOnly|MZeroize)
	to.hdr = from.hdr
	to.tags = from.tags
	from.flags &^= MPktHdr
	from.tags = nil
}

// DupPktHdr is m_dup_pkthdr(9): to gets a copy of from's packet header, flags and tags
// (each tag copied deeply); to's own tags, if any, are dropped first. It cannot fail:
// tags live on the Go heap (see Tag), so the inverted return conventions of FreeBSD
// (1 on success) and OpenBSD (0 on success) have no counterpart here.
func (to *Mbuf) DupPktHdr(from *Mbuf) {
	debugCheck(to)
	debugCheck(from)
	from.mustHdr("DupPktHdr")
	to.flags = from.flags&copyFlags | to.flags&(MRdOnly|MZeroize)
	to.hdr = from.hdr
	to.tags = nil
	to.TagCopyChain(from)
}

// demote is m_demote_pkthdr: m stops being the head of a packet.
func (m *Mbuf) demote() {
	m.flags &^= MPktHdr
	m.tags = nil
}

// demoteAll is m_demote(m, 1, 0) keeping the end of the record: every mbuf of the chain
// loses its packet header, tags and every flag but MRdOnly and MZeroize (they describe
// its storage), and the last one gets MEOR if any of them had it.
func (m *Mbuf) demoteAll() {
	var eor Flags
	for {
		m.demote()
		eor |= m.flags & MEOR
		m.flags &= MRdOnly | MZeroize
		if m.next == nil {
			break
		}
		m = m.next
	}
	m.flags |= eor
}

// adjHdrLen adds d to the header length if m has a header.
func (m *Mbuf) adjHdrLen(d int) {
	if m.flags&MPktHdr != 0 {
		m.hdr.Len += d
	}
}

// Demote is FreeBSD's m_demote(m, 1, 0) for the chain: every mbuf loses MPktHdr and its
// tags, as when a packet's bytes join a stream socket buffer (sbappendstream). The data
// is untouched and nothing is freed.
func (m *Mbuf) Demote() {
	for ; m != nil; m = m.next {
		m.demote()
	}
}
