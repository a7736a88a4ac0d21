package socket

import (
	"sync/atomic"
	"unsafe"

	"github.com/softnet-go/softnet/mbuf"
	"golang.org/x/sys/unix"
)

// UDP GSO (UDP_SEGMENT): a run of datagrams of one size (the last may be shorter), one
// mbuf each, goes to the kernel as one message with the segment size in a control
// message, and the kernel cuts it up again: one pass through the stack for many
// datagrams.

// gsoMax is the most payload bytes of one UDP GSO message.
const gsoMax = 65000

// gsoOn is whether UDP GSO may be used; the first EIO turns it off, as wireguard-go does.
var gsoOn = func() *atomic.Bool { var b atomic.Bool; b.Store(true); return &b }()

// gsoMsgs counts the GSO messages built (for tests and statistics).
var gsoMsgs atomic.Int64

// gsoRun is the coalescing decision: of the datagrams whose lengths are lens, in queue
// order, it returns how many form one GSO message, which is at least 1 when lens is not
// empty (a datagram alone is a message without GSO). The first sets the segment size;
// each that follows must have that size, except the last, which may be shorter and ends
// the run; an empty datagram, or one larger than the first, ends it before itself; and a
// run holds at most maxSegs datagrams and maxBytes bytes.
func gsoRun(lens []int, maxSegs, maxBytes int) int {
	if len(lens) == 0 {
		return 0
	}
	size, total := lens[0], lens[0]
	k := 1
	for _, l := range lens[1:] {
		if k == maxSegs || l == 0 || l > size || total+l > maxBytes {
			break
		}
		k++
		total += l
		if l < size {
			break
		}
	}
	return k
}

// gsoCandidate reports whether record r may be part of a GSO message: no address of its
// own (the message has one destination) and its data in one mbuf (one iovec each).
func gsoCandidate(r *mbuf.Mbuf) bool {
	return r.Type() != mbuf.MTSoname && r.Next() == nil && r.Len() > 0
}

// loadGSO makes message i of s from the run of GSO candidates starting at record r,
// if gsoRun joins more than one of them: one iovec per datagram and the UDP_SEGMENT
// control message. It returns the record after the run, and false if r goes alone.
func (s *udpScratch) loadGSO(i int, r *mbuf.Mbuf) (*mbuf.Mbuf, bool) {
	lens := s.lens[:0]
	for rr := r; rr != nil && len(lens) < udpIov && gsoCandidate(rr); rr = rr.NextPkt() {
		lens = append(lens, rr.Len())
		if rr.Len() != lens[0] {
			break // the run cannot go past a datagram of another size
		}
	}
	k := gsoRun(lens, udpIov, gsoMax)
	if k < 2 {
		return nil, false
	}
	h := &s.hdrs[i].Hdr
	*h = unix.Msghdr{}
	for j := range k {
		d := r.Data()
		s.iovs[i][j] = unix.Iovec{Base: &d[0]}
		s.iovs[i][j].SetLen(len(d))
		r = r.NextPkt()
	}
	h.Iov = &s.iovs[i][0]
	h.SetIovlen(k)
	c := putSegmentSize(s.ctrl[i][:], lens[0])
	h.Control = &c[0]
	h.SetControllen(len(c))
	s.recs[i] = k
	gsoMsgs.Add(1)
	return r, true
}

// putSegmentSize encodes the UDP_SEGMENT control message (a cmsghdr and the uint16
// segment size) into b and returns it.
func putSegmentSize(b []byte, size int) []byte {
	c := b[:unix.CmsgSpace(2)]
	clear(c)
	ch := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
	ch.Level, ch.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	ch.SetLen(unix.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&c[unix.CmsgLen(0)])) = uint16(size)
	return c
}

// gsoRefused reports whether err, the error of a batch whose first message carried recs
// datagrams, is the kernel refusing GSO rather than the datagrams: EIO (no GSO on this
// path, a device without checksum offload: it goes off for the process) or EMSGSIZE (a
// segment size above the path MTU, though each datagram alone would go out, IP
// fragmenting it: the socket sends singly from then on, noGSO). Nothing was sent then,
// and the batch goes again without GSO.
func gsoRefused(err error, recs int) (refused, noGSO bool) {
	if recs < 2 {
		return false, false
	}
	switch err {
	case unix.EIO:
		gsoOn.Store(false)
		return true, false
	case unix.EMSGSIZE:
		return true, true
	}
	return false, false
}
