package socket

import (
	"errors"
	"syscall"

	"github.com/softnet-go/softnet/mbuf"
	"golang.org/x/sys/unix"
)

// udpInput is udp_input's part of the socket: on the worker, one recvmmsg of up to
// udpBatch datagrams into packet-zone clusters, each datagram a record (a pkthdr chain,
// behind an MT_SONAME mbuf holding the sender when the socket is unconnected:
// sbappendaddr), bounded by the receive sockbuf's space; then sorwakeup.
func (so *Socket) udpInput() {
	sb := &so.rcv
	sb.mu.Lock()
	if sb.flags&(sbCantMore|sbBusy) != 0 {
		sb.mu.Unlock()
		return
	}
	if sb.flags&sbSplice == 0 && sb.flags&sbWantIO != 0 && sb.mb == nil {
		sb.flags &^= sbWantIO
		sb.wakeup()
		sb.mu.Unlock()
		return
	}
	space := sb.space()
	if space <= 0 {
		sb.flags |= sbStalled
		sb.mu.Unlock()
		return
	}
	n := max(1, min(udpBatch, space/(mbuf.MCLBytes+mbuf.MSize)))
	sb.flags |= sbBusy
	sb.mu.Unlock()

	s := so.udpScratch()
	got, n, err := so.recvBatch(s, n) // n shrinks when memory ran short for the batch
	connected := so.state.Load()&ssConnected != 0

	sb.mu.Lock()
	sb.flags &^= sbBusy
	// A splice drops the sender (the drain's peer is the destination): keep none.
	connected = connected || sb.flags&sbSplice != 0
	for i := range got {
		m := s.ms[i]
		s.ms[i] = nil
		if m == nil {
			continue
		}
		if !connected {
			if a, err := mbuf.Get(mbuf.DontWait, mbuf.MTSoname); err == nil {
				k := copy(a.Tail(), s.names[i][:s.hdrs[i].Hdr.Namelen])
				a.Extend(k)
				a.Link(m)
				m = a
			}
		}
		sb.appendRecord(m)
	}
	switch {
	case err == nil:
		if got == n {
			so.w.Add(&so.inTask)
		}
	case err == unix.EAGAIN:
	case errors.Is(err, syscall.ENOBUFS):
		if got == 0 {
			so.waitMemory()
		}
	default:
		// An ICMP error on a connected socket (ECONNREFUSED...): so_error, as udp_ctlinput.
		if e := errnoOf(err); e != 0 {
			so.soerr.CompareAndSwap(0, int32(e))
		}
		so.w.Add(&so.inTask)
	}
	so.sorwakeup()
	sb.mu.Unlock()
}

// recvBatch reads up to n datagrams with one recvmmsg into s.ms (pkthdr chains). It
// returns how many it read and the batch it tried, fewer than n when there were not
// clusters for all: a full batch means more may be waiting, and the caller must not
// take a short one for an empty queue (edge-triggered epoll would not tell it again).
func (so *Socket) recvBatch(s *udpScratch, n int) (int, int, error) {
	for i := range n {
		m, err := mbuf.GetCL(mbuf.DontWait, mbuf.MTData, mbuf.MPktHdr)
		if err != nil {
			if i == 0 {
				return 0, 0, err
			}
			n = i
			break
		}
		s.ms[i] = m
		t := m.Tail()
		over := s.over[i*udpOver : (i+1)*udpOver]
		s.iovs[i][0] = unix.Iovec{Base: &t[0], Len: uint64(len(t))}
		s.iovs[i][1] = unix.Iovec{Base: &over[0], Len: uint64(len(over))}
		h := &s.hdrs[i].Hdr
		*h = unix.Msghdr{Name: &s.names[i][0], Namelen: nameLen, Iov: &s.iovs[i][0], Iovlen: 2}
		s.hdrs[i].Len = 0
	}
	got, err := mmsg(unix.SYS_RECVMMSG, so.fd, s.hdrs[:n], 0)
	for i := range n {
		m := s.ms[i]
		if i >= got {
			m.FreeM()
			s.ms[i] = nil
			continue
		}
		k := int(s.hdrs[i].Len)
		first := min(k, len(m.Tail()))
		m.Extend(first)
		if rest := k - first; rest > 0 {
			over := s.over[i*udpOver : i*udpOver+rest]
			if err := m.Append(over, mbuf.DontWait); err != nil {
				m.FreeM() // no memory for the rest: drop the datagram, as a full socket would
				s.ms[i] = nil
				continue
			}
		}
		m.PktHdr().Len = k
	}
	return got, n, err
}
