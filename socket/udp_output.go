package socket

import (
	"github.com/softnet-go/softnet/internal/eintr"
	"github.com/softnet-go/softnet/mbuf"
	"golang.org/x/sys/unix"
)

// udpOutput is udp_output's part: on the worker, one sendmmsg of up to udpBatch messages
// from the send sockbuf's records (a GSO message carries a run of them). What the kernel
// does not take waits for EPOLLOUT; a datagram the kernel refuses with an error other
// than EAGAIN is dropped and its error kept.
func (so *Socket) udpOutput() {
	sb := &so.snd
	sb.mu.Lock()
	if sb.flags&sbBusy != 0 {
		sb.mu.Unlock()
		return
	}
	if sb.mb == nil {
		so.outputDone()
		return
	}
	var s *udpScratch
	var local udpScratch
	if so.w.OnWorker() {
		s = so.udpScratch()
	} else {
		s = &local
	}
	n := s.loadBatch(sb.mb, gsoOn.Load() && sb.flags&sbNoGSO == 0)
	sb.flags |= sbBusy
	sb.mu.Unlock()

	var sent int
	var err error
	if n == 0 {
		sent, err = sendFlat(so.fd, sb.mb)
	} else {
		sent, err = mmsg(unix.SYS_SENDMMSG, so.fd, s.hdrs[:n], unix.MSG_NOSIGNAL)
	}
	s.clearBatch(n)
	refused, noGSO := gsoRefused(err, s.recs[0])
	if refused {
		sent, err = 0, nil
	}

	sb.mu.Lock()
	sb.flags &^= sbBusy
	if noGSO {
		sb.flags |= sbNoGSO
	}
	so.udpSent(s, sent, err)
	so.sowwakeup()
	so.outputDone()
}

// loadBatch makes up to udpBatch messages in s from the records of the send sockbuf,
// from r on: a GSO message for a run of equal datagrams when gso is allowed, else one
// message per datagram. It returns the number of messages; 0 means the first record has
// more segments than a message takes, and goes alone (sendFlat). so.snd.mu is held.
func (s *udpScratch) loadBatch(r *mbuf.Mbuf, gso bool) int {
	s.recs[0] = 1
	n := 0
	for r != nil && n < udpBatch {
		if gso {
			if next, ok := s.loadGSO(n, r); ok {
				n++
				r = next
				continue
			}
		}
		if !s.loadRecord(n, r) {
			break // more segments than udpIov: it goes alone, flattened, next
		}
		n++
		r = r.NextPkt()
	}
	return n
}

// loadRecord makes message i of s from record r alone: its address, if it has one, and
// one iovec per data mbuf. It reports false if r has more than udpIov of them.
func (s *udpScratch) loadRecord(i int, r *mbuf.Mbuf) bool {
	h := &s.hdrs[i].Hdr
	*h = unix.Msghdr{}
	s.recs[i] = 1
	m := r
	if m.Type() == mbuf.MTSoname {
		d := m.Data()
		h.Name = &d[0]
		h.Namelen = uint32(len(d))
		m = m.Next()
	}
	k := 0
	for ; m != nil; m = m.Next() {
		d := m.Data()
		if len(d) == 0 {
			continue
		}
		if k == udpIov {
			return false
		}
		s.iovs[i][k] = unix.Iovec{Base: &d[0]}
		s.iovs[i][k].SetLen(len(d))
		k++
	}
	if k > 0 {
		h.Iov = &s.iovs[i][0]
	}
	h.SetIovlen(k)
	return true
}

// clearBatch drops the references the first n messages of s hold to the sockbuf's data.
func (s *udpScratch) clearBatch(n int) {
	for i := range n {
		s.hdrs[i].Hdr = unix.Msghdr{}
		clear(s.iovs[i][:])
	}
}

// udpSent accounts for a sendmmsg that sent the first sent messages of s: their records
// leave the send sockbuf. On an error other than EAGAIN the error is kept (so_error) and
// the datagrams of the message the kernel refused are dropped. Output goes on while
// records are left, unless the kernel is full (EPOLLOUT brings it back). so.snd.mu is
// held.
func (so *Socket) udpSent(s *udpScratch, sent int, err error) {
	sb := &so.snd
	for i := range sent {
		for range s.recs[i] {
			sb.takeRecord().FreeM()
		}
	}
	switch {
	case err == nil:
	case err == unix.EAGAIN:
		return
	default:
		if e := errnoOf(err); e != 0 {
			so.soerr.CompareAndSwap(0, int32(e))
		}
		for range max(1, s.recs[0]) {
			if sb.mb != nil {
				sb.takeRecord().FreeM()
			}
		}
	}
	if sb.mb != nil {
		so.w.Add(&so.outTask)
	}
}

// sendFlat sends one record whose chain has too many segments for one message.
func sendFlat(fd int, r *mbuf.Mbuf) (int, error) {
	var to unix.Sockaddr
	m := r
	if m.Type() == mbuf.MTSoname {
		to = rawToSockaddr(m.Data())
		m = m.Next()
	}
	bufs := m.AppendBuffers(nil)
	if len(bufs) > uioMaxIov {
		// More segments than one sendmsg takes (UIO_MAXIOV): copy them into one
		// buffer, or the kernel refuses the datagram with EMSGSIZE. Only a chain
		// fragmented past reason (m_fragment) gets here.
		var flat []byte
		for _, b := range bufs {
			flat = append(flat, b...)
		}
		bufs = [][]byte{flat}
	}
	_, err := eintr.Retry(func() (int, error) {
		return unix.SendmsgBuffers(fd, bufs, nil, to, unix.MSG_NOSIGNAL)
	})
	if err != nil {
		return 0, err
	}
	return 1, nil
}
