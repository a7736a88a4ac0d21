package mbuf

import (
	"os"
	"strconv"
	"strings"
)

// Sizes, as in sys/mbuf.h. MSize is the size of one Mbuf, asserted by a test, so that the
// mbuf keg charges the Limit what an mbuf really costs.
const (
	// MSize is MSIZE: the bytes of one Mbuf, header and internal storage together.
	MSize = 256
	// MLen is MLEN: the internal storage of an mbuf without a packet header.
	MLen = MSize - hdrSize
	// MHLen is MHLEN: the internal storage of an mbuf with a packet header. The packet
	// header is a separate field here, not a union with the storage as in C (a Go union
	// of pointers and bytes is not possible), so MHLen equals MLen.
	MHLen = MLen
	// MinClSize is MINCLSIZE: the smallest amount of data worth a cluster; below it an
	// mbuf's internal storage is used.
	MinClSize = MHLen + 1

	// MCLBytes is MCLBYTES, the standard cluster: 2 KiB.
	MCLBytes = 2048
	// MJum9Bytes is MJUM9BYTES, the jumbo-frame cluster.
	MJum9Bytes = 9 * 1024
	// MJum16Bytes is MJUM16BYTES.
	MJum16Bytes = 16 * 1024
	// MJum64Bytes is OpenBSD's largest cluster (MAXMCLBYTES): 64 KiB, as a TSO/GRO super
	// packet needs. FreeBSD has no such zone; it is added here under FreeBSD's naming.
	MJum64Bytes = 64 * 1024

	// hdrSize is the bytes of an Mbuf before its internal storage.
	hdrSize = 72
)

// MJumPageSize is MJUMPAGESIZE: a page-size cluster, os.Getpagesize() (4 KiB on amd64).
var MJumPageSize = os.Getpagesize()

// Type is m_type: what an mbuf holds. The values are OpenBSD's, which keeps MT_HEADER
// distinct from MT_DATA (FreeBSD aliases the two); nothing in the package depends on the
// type, it is carried for the caller and shown by String.
type Type uint8

// Mbuf types (MT_*).
const (
	MTFree    Type = iota // MT_FREE: never seen on a live mbuf
	MTData                // MT_DATA: dynamic data
	MTHeader              // MT_HEADER: a packet header
	MTSoname              // MT_SONAME: a socket name (address)
	MTSoopts              // MT_SOOPTS: socket options
	MTFtable              // MT_FTABLE: fragment reassembly header
	MTControl             // MT_CONTROL: extra-data protocol message (ancillary data)
	MTOobData             // MT_OOBDATA: expedited (out-of-band) data
)

var typeNames = [...]string{"free", "data", "header", "soname", "soopts", "ftable", "control", "oobdata"}

// String names the type as OpenBSD's netstat -m does ("data", "header", ...).
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "type" + strconv.Itoa(int(t))
}

// Flags are m_flags. The values are FreeBSD's. MExt is never stored: Flags reports it
// when the mbuf has external storage.
type Flags uint32

// Mbuf flags (M_*).
const (
	MExt     Flags = 0x0001 // M_EXT: the data lives in a cluster or caller memory (reported, not settable)
	MPktHdr  Flags = 0x0002 // M_PKTHDR: the first mbuf of a packet, carrying a PktHdr
	MEOR     Flags = 0x0004 // M_EOR: end of record
	MRdOnly  Flags = 0x0008 // M_RDONLY: the data must not be written, whatever the refcount
	MBcast   Flags = 0x0010 // M_BCAST: sent or received as link-level broadcast
	MMcast   Flags = 0x0020 // M_MCAST: sent or received as link-level multicast
	MPromisc Flags = 0x0040 // M_PROMISC: received only because of promiscuous mode
	MVLANTag Flags = 0x0080 // M_VLANTAG: the ether VLAN tag in the header is valid
	MZeroize Flags = 0x2000 // OpenBSD M_ZEROIZE: wipe the internal storage when freed (see Zero)

	// copyFlags is M_COPYFLAGS: what moves with a packet header. MRdOnly is left out on
	// purpose: it describes the storage of the mbuf, which does not move.
	copyFlags = MPktHdr | MEOR | MBcast | MMcast | MPromisc | MVLANTag
	// userFlags are those SetFlags may change.
	userFlags = MEOR | MRdOnly | MBcast | MMcast | MPromisc | MVLANTag
)

var flagNames = []struct {
	f    Flags
	name string
}{
	{MExt, "EXT"}, {MPktHdr, "PKTHDR"}, {MEOR, "EOR"}, {MRdOnly, "RDONLY"}, {MBcast, "BCAST"},
	{MMcast, "MCAST"}, {MPromisc, "PROMISC"}, {MVLANTag, "VLANTAG"}, {MZeroize, "ZEROIZE"},
}

// String formats the flags as m_print's %b does: "<PKTHDR,EOR>".
func (f Flags) String() string {
	var b strings.Builder
	b.WriteByte('<')
	for _, n := range flagNames {
		if f&n.f != 0 {
			if b.Len() > 1 {
				b.WriteByte(',')
			}
			b.WriteString(n.name)
			f &^= n.f
		}
	}
	if f != 0 {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.WriteString("0x" + strconv.FormatUint(uint64(f), 16))
	}
	b.WriteByte('>')
	return b.String()
}

// origin records which zone an Mbuf came from, so that Free returns it there.
type origin uint8

const (
	fromMbuf   origin = iota // zone "mbuf"
	fromPacket               // zone "mbuf_packet" (mbuf+cluster pairs)
)

// An Mbuf is struct mbuf: a data window into its own internal storage or into external
// storage (a cluster, or caller memory from ExtAdd), linked to the next mbuf of its chain
// (Next) and, for the first mbuf of a packet, to the next packet of a queue (NextPkt).
//
// Every Mbuf has exactly one owner, which frees it (Free, FreeM) or hands it on; an
// Mbuf is not safe for concurrent use. Clusters are what is shared: CopyM, Split and
// friends give several mbufs the same cluster, counted in the cluster's descriptor, and
// while a cluster is shared every mbuf on it is read-only.
type Mbuf struct {
	next    *Mbuf
	nextpkt *Mbuf
	ext     *cluster // external storage; nil when the data lives in dat
	tags    *Tag     // packet tags, newest first; only with MPktHdr
	off     int32    // m_data, as an offset into the storage
	len     int32    // m_len
	flags   Flags
	typ     Type
	origin  origin
	_       [2]byte
	hdr     PktHdr // valid only with MPktHdr
	dat     [MLen]byte
}

// storage returns the buffer the data window lies in.
func (m *Mbuf) storage() []byte {
	if m.ext != nil {
		return m.ext.buf
	}
	return m.dat[:]
}

// Data returns the data window, mtod(m) for m_len bytes. The slice aliases the mbuf's
// storage: callers may write it only while Writable reports true, and must not keep it
// after the mbuf is freed.
func (m *Mbuf) Data() []byte {
	debugCheck(m)
	if m.ext != nil {
		return m.ext.buf[m.off : m.off+m.len : m.off+m.len]
	}
	return m.dat[m.off : m.off+m.len : m.off+m.len]
}

// Len returns m_len: the bytes in this mbuf's data window.
func (m *Mbuf) Len() int { return int(m.len) }

// Type returns m_type.
func (m *Mbuf) Type() Type { return m.typ }

// SetType sets m_type.
func (m *Mbuf) SetType(t Type) { m.typ = t }

// Flags returns m_flags, with MExt when the mbuf has external storage.
func (m *Mbuf) Flags() Flags {
	if m.ext != nil {
		return m.flags | MExt
	}
	return m.flags
}

// SetFlags sets the flags in set and then clears those in clear. Only MEOR, MRdOnly,
// MBcast, MMcast, MPromisc and MVLANTag can be changed this way; MPktHdr comes and goes
// with GetHdr, MovePktHdr and CatPkt, MExt with the storage, MZeroize with Zero (one way).
func (m *Mbuf) SetFlags(set, clear Flags) {
	m.flags = m.flags | set&userFlags
	m.flags &^= clear & userFlags
}

// Next returns m_next, the next mbuf of the chain.
func (m *Mbuf) Next() *Mbuf { return m.next }

// NextPkt returns m_nextpkt, the next packet (chain) of a queue.
func (m *Mbuf) NextPkt() *Mbuf { return m.nextpkt }

// Link is the m_last(m)->m_next = n of sbappendaddr(9), and of m_cat(9) when it cannot
// copy: it links chain n behind the last mbuf of chain m as it is. Unlike Cat nothing is
// copied or freed and no flag or packet header changes, so every mbuf keeps its type and
// its place: an MTSoname mbuf stays in front of the datagram it names, and n may keep a
// packet header of its own, as a socket buffer record does (operations on m as a packet
// count n's bytes but ignore n's header). The header length of m, if any, is the
// caller's (FixHdr). A nil n is a no-op. It cannot fail; it panics if n is already part of
// m, which would make the chain a loop. n must not be used on its own afterwards.
func (m *Mbuf) Link(n *Mbuf) {
	debugCheck(m)
	linkLast(m, n, func(x *Mbuf) **Mbuf { return &x.next }, "Link of a chain to itself")
}

// linkLast points the last link that next selects (m_next or m_nextpkt) along the list
// from m at n, and panics with msg if n is on the list already.
func linkLast(m, n *Mbuf, next func(*Mbuf) **Mbuf, msg string) {
	for {
		if m == n {
			panic("mbuf: " + msg)
		}
		p := next(m)
		if *p == nil {
			*p = n
			return
		}
		m = *p
	}
}

// Unlink is the step of sbdrop(9) and soreceive(9) that takes the first mbuf off a chain
// (sb_mb = m->m_next; m->m_next = NULL): it cuts m from the mbufs after it and returns
// them, nil if there are none. Nothing is copied or freed; the packet header, if m has
// one, stays on m with its length unchanged (FixHdr). It cannot fail.
func (m *Mbuf) Unlink() *Mbuf {
	debugCheck(m)
	n := m.next
	m.next = nil
	return n
}

// LinkPkt is sbappendrecord(9)'s sb_lastrecord->m_nextpkt = m0 without a List: it links
// packet n, with any packets linked after it by NextPkt, behind the last packet of m's
// queue. A nil n is a no-op. It cannot fail; it panics if n is already on m's queue. A List
// keeps the tail and the count for this; LinkPkt is for queues kept by hand, as a socket
// buffer's records are.
func (m *Mbuf) LinkPkt(n *Mbuf) {
	debugCheck(m)
	linkLast(m, n, func(x *Mbuf) **Mbuf { return &x.nextpkt }, "LinkPkt of a packet to its own queue")
}

// UnlinkPkt is the step of sbdroprecord(9) and ml_dequeue(9) that takes the first packet
// off a queue (m->m_nextpkt = NULL after reading it): it cuts packet m from the packets
// after it and returns them, nil if there are none. Nothing is freed. It cannot fail.
func (m *Mbuf) UnlinkPkt() *Mbuf {
	debugCheck(m)
	n := m.nextpkt
	m.nextpkt = nil
	return n
}

// Last is m_last(9): the last mbuf of the chain.
func (m *Mbuf) Last() *Mbuf {
	for m.next != nil {
		m = m.next
	}
	return m
}

// Length is m_length(m, NULL): the bytes in the chain.
func (m *Mbuf) Length() int {
	n := 0
	for ; m != nil; m = m.next {
		n += int(m.len)
	}
	return n
}

// Writable is M_WRITABLE: the data may be written in place. It is false for MRdOnly
// mbufs, for caller memory attached read-only, and for a cluster shared with another
// mbuf; it becomes true again once every other sharer has freed its mbuf.
func (m *Mbuf) Writable() bool {
	if m.flags&MRdOnly != 0 {
		return false
	}
	return m.ext == nil || m.ext.writable()
}

// LeadingSpace is M_LEADINGSPACE: the bytes free before the data window, 0 if the mbuf is
// not Writable.
func (m *Mbuf) LeadingSpace() int {
	if !m.Writable() {
		return 0
	}
	return int(m.off)
}

// TrailingSpace is M_TRAILINGSPACE: the bytes free after the data window, 0 if the mbuf
// is not Writable.
func (m *Mbuf) TrailingSpace() int {
	if !m.Writable() {
		return 0
	}
	return len(m.storage()) - int(m.off+m.len)
}

// Tail returns the trailing space as a slice (len == TrailingSpace()): where a read can
// land straight in the mbuf's storage before Extend accounts for it. It is empty when
// the mbuf is not Writable.
func (m *Mbuf) Tail() []byte {
	debugCheck(m)
	if !m.Writable() {
		return nil
	}
	s := m.storage()
	return s[m.off+m.len:]
}

// Extend grows m_len by n bytes into the trailing space, after data was written to Tail.
// It changes only this mbuf: the packet header length, if any, is the caller's (or use
// FixHdr). It panics if n is negative or more than TrailingSpace.
func (m *Mbuf) Extend(n int) {
	debugCheck(m)
	if n < 0 || n > m.TrailingSpace() {
		panic("mbuf: Extend past the trailing space")
	}
	m.len += int32(n)
}

// Align is M_ALIGN/MH_ALIGN (m_align): it places an empty data window so that n bytes
// end exactly at the end of the storage, leaving the rest as leading space for later
// prepends. The mbuf must be empty and writable, and n must fit.
func (m *Mbuf) Align(n int) {
	s := len(m.storage())
	if m.len != 0 || n < 0 || n > s || !m.Writable() {
		panic("mbuf: Align of a non-empty, read-only or too small mbuf")
	}
	m.off = int32((s - n) &^ 7) // keep the data long-aligned, as M_ALIGN does
}
