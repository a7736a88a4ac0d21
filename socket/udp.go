package socket

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/softnet-go/softnet/mbuf"
	"golang.org/x/sys/unix"
)

const (
	udpBatch  = 16                       // datagrams per recvmmsg / sendmmsg
	uioMaxIov = 1024                     // UIO_MAXIOV: the most iovecs one sendmsg takes
	udpIov    = 64                       // iovecs per message sent (a GSO message: one per datagram)
	gsoMax    = 65000                    // payload bytes of one UDP GSO message
	udpOver   = 65536 - mbuf.MCLBytes    // overflow room behind a datagram's 2 KiB cluster
	nameLen   = unix.SizeofSockaddrInet6 // room for either family's sockaddr
)

// gsoOn is whether UDP GSO may be used; the first EIO turns it off, as wireguard-go does.
var gsoOn = func() *atomic.Bool { var b atomic.Bool; b.Store(true); return &b }()

// gsoMsgs counts the GSO messages built (for tests and statistics).
var gsoMsgs atomic.Int64

// udpScratch is a worker's arrays for recvmmsg and sendmmsg, and the overflow room for
// datagrams larger than a 2 KiB cluster: each message reads into its own cluster and then
// into its own slice of over, so a batch loses nothing however large its datagrams are;
// the (rare) bytes that landed in over are copied into more clusters.
type udpScratch struct {
	hdrs  [udpBatch]unix.Mmsghdr
	iovs  [udpBatch][udpIov]unix.Iovec
	names [udpBatch][nameLen]byte
	ms    [udpBatch]*mbuf.Mbuf
	recs  [udpBatch]int // records (datagrams) in each message sent
	ctrl  [udpBatch][32]byte
	over  []byte
}

func (so *Socket) udpScratch() *udpScratch {
	ws := workerState(so.w)
	if ws.udp == nil {
		ws.udp = &udpScratch{over: make([]byte, udpBatch*udpOver)}
	}
	return ws.udp
}

// ListenPacket returns a bound, unconnected UDP socket on a worker of netq.Default(), as
// net.ListenPacket does. Networks: udp, udp4, udp6. Read returns datagrams from anyone
// (ReadFromUDPAddrPort and RecvFrom also give the sender); it may be the source of a
// splice, not its drain.
func ListenPacket(network, address string) (*Socket, error) {
	var lc ListenConfig
	return lc.ListenPacket(network, address)
}

// ListenPacket is the package's ListenPacket on lc's worker (or a worker of lc's group,
// round-robin).
func (lc *ListenConfig) ListenPacket(network, address string) (*Socket, error) {
	ni, err := parseNetwork(network)
	if err == nil && ni.tcp() {
		err = net.UnknownNetworkError(network)
	}
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	aps, err := resolve(bgctx, ni, address, true)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	family := socketFamily(ni, aps[0])
	ni.family = family
	fd, err := newSysSocket(family, unix.SOCK_DGRAM)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	sa := sockaddr(family, aps[0])
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, &net.OpError{Op: "listen", Net: network, Addr: netAddr(false, sa), Err: err}
	}
	w := (*Dialer)(nil).worker()
	if lc != nil && lc.Worker != nil {
		w = lc.Worker
	} else if lc != nil && lc.Group != nil {
		w = lc.Group.Worker(rr.Add(1))
	}
	so, err := newSocket(fd, w, ni, 0, netip.AddrPort{}, nil)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	return so, nil
}

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
				a.SetNext(m)
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
	var got int
	var err error
	for {
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(so.fd), uintptr(unsafe.Pointer(&s.hdrs[0])), uintptr(n), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			err = e
		} else {
			got = int(r)
		}
		break
	}
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

// udpOutput is udp_output's part: on the worker, one sendmmsg of up to udpBatch records
// from the send sockbuf. What the kernel does not take waits for EPOLLOUT; a datagram the
// kernel refuses with an error other than EAGAIN is dropped and its error kept.
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
	n := 0
	gso := gsoOn.Load() && sb.flags&sbNoGSO == 0
	for r := sb.mb; r != nil && n < udpBatch; {
		h := &s.hdrs[n].Hdr
		*h = unix.Msghdr{}
		s.recs[n] = 1
		m := r
		if m.Type() == mbuf.MTSoname {
			d := m.Data()
			h.Name = &d[0]
			h.Namelen = uint32(len(d))
			m = m.Next()
		}
		k := 0
		for ; m != nil && k < udpIov; m = m.Next() {
			if d := m.Data(); len(d) > 0 {
				s.iovs[n][k] = unix.Iovec{Base: &d[0], Len: uint64(len(d))}
				k++
			}
		}
		if m != nil {
			break // more segments than udpIov: send it alone, flattened, below
		}
		next := r.NextPkt()
		if gso && k == 1 && h.Name == nil {
			// UDP GSO (UDP_SEGMENT): the datagrams that follow with the same size (the
			// last may be shorter), one mbuf each, go in this one message, and the
			// kernel cuts it up again: one pass through the stack for many datagrams.
			size := int(s.iovs[n][0].Len)
			total := size
			for rr := next; rr != nil && k < udpIov && rr.Type() != mbuf.MTSoname && rr.Next() == nil; rr = rr.NextPkt() {
				l := rr.Len()
				if l == 0 || l > size || total+l > gsoMax {
					break
				}
				d := rr.Data()
				s.iovs[n][k] = unix.Iovec{Base: &d[0], Len: uint64(l)}
				k++
				total += l
				s.recs[n]++
				next = rr.NextPkt()
				if l < size {
					break
				}
			}
			if s.recs[n] > 1 {
				c := s.ctrl[n][:unix.CmsgSpace(2)]
				clear(c)
				ch := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
				ch.Level, ch.Type = unix.SOL_UDP, unix.UDP_SEGMENT
				ch.SetLen(unix.CmsgLen(2))
				*(*uint16)(unsafe.Pointer(&c[unix.CmsgLen(0)])) = uint16(size)
				h.Control = &c[0]
				h.SetControllen(len(c))
				gsoMsgs.Add(1)
			}
		}
		if k > 0 {
			h.Iov = &s.iovs[n][0]
		}
		h.Iovlen = uint64(k)
		n++
		r = next
	}
	sb.flags |= sbBusy
	sb.mu.Unlock()

	var sent int
	var err error
	if n == 0 {
		sent, err = sendFlat(so.fd, sb.mb)
	} else {
		for {
			r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(so.fd), uintptr(unsafe.Pointer(&s.hdrs[0])), uintptr(n), unix.MSG_NOSIGNAL, 0, 0)
			if e == unix.EINTR {
				continue
			}
			if e != 0 {
				err = e
			} else {
				sent = int(r)
			}
			break
		}
	}
	for i := range n {
		s.hdrs[i].Hdr = unix.Msghdr{}
		clear(s.iovs[i][:])
	}

	if err == unix.EIO && n > 0 && s.recs[0] > 1 {
		gsoOn.Store(false) // no GSO here (a device without checksum offload): go without
		err = nil
		sent = 0
	}
	noGSO := false
	if err == unix.EMSGSIZE && n > 0 && s.recs[0] > 1 {
		// A segment size above the path MTU: the kernel refuses the whole GSO message,
		// though each datagram alone would go out (IP fragments it). Ending the splice
		// with EMSGSIZE would lose datagrams that fit; send this socket's singly instead.
		noGSO = true
		err = nil
		sent = 0
	}
	sb.mu.Lock()
	sb.flags &^= sbBusy
	if noGSO {
		sb.flags |= sbNoGSO
	}
	for i := range sent {
		for range s.recs[i] {
			sb.takeRecord().FreeM()
		}
	}
	switch {
	case err == nil:
		if sb.mb != nil {
			so.w.Add(&so.outTask)
		}
	case err == unix.EAGAIN:
	default:
		if e := errnoOf(err); e != 0 {
			so.soerr.CompareAndSwap(0, int32(e))
		}
		for range max(1, s.recs[0]) {
			if sb.mb != nil {
				sb.takeRecord().FreeM()
			}
		}
		if sb.mb != nil {
			so.w.Add(&so.outTask)
		}
	}
	so.sowwakeup()
	so.outputDone()
}

// sendFlat sends one record whose chain has too many segments for one message.
func sendFlat(fd int, r *mbuf.Mbuf) (int, error) {
	var to unix.Sockaddr
	m := r
	if m.Type() == mbuf.MTSoname {
		to = rawToSockaddr(m.Data())
		m = m.Next()
	}
	bufs := appendBuffers(nil, m)
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
	for {
		_, err := unix.SendmsgBuffers(fd, bufs, nil, to, unix.MSG_NOSIGNAL)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		return 1, nil
	}
}

// readDatagram is soreceive() of one datagram into b (truncated to len(b)), with the
// sender's address when from is set.
func (so *Socket) readDatagram(b []byte, from bool) (int, netip.AddrPort, error) {
	sb := &so.rcv
	sb.mu.Lock()
	for {
		if sb.flags&sbClosed != 0 {
			sb.mu.Unlock()
			return 0, netip.AddrPort{}, so.opError("read", net.ErrClosed)
		}
		if sb.flags&sbSplice == 0 {
			if sb.mb != nil {
				r := sb.takeRecord()
				so.resumeInputLocked()
				sb.mu.Unlock()
				var ap netip.AddrPort
				m := r
				if m.Type() == mbuf.MTSoname {
					ap = rawToAddrPort(m.Data())
					m = m.Next()
				} else if from {
					ap = so.peer()
				}
				n := copyOut(b, m)
				r.FreeM()
				return n, ap, nil
			}
			if e := so.takeError(); e != 0 {
				sb.mu.Unlock()
				return 0, netip.AddrPort{}, so.opError("read", e)
			}
			if sb.flags&sbCantMore != 0 {
				sb.mu.Unlock()
				return 0, netip.AddrPort{}, so.opError("read", net.ErrClosed)
			}
			if sb.flags&sbBusy == 0 {
				n, ap, err := sysRecvfrom(so.fd, b)
				if err == nil {
					sb.mu.Unlock()
					return n, ap, nil
				}
				if err != unix.EAGAIN {
					sb.mu.Unlock()
					return 0, netip.AddrPort{}, so.opError("read", err)
				}
				sb.flags |= sbWantIO
			}
		}
		d := so.dl.rd.Load()
		if d.expired() {
			sb.mu.Unlock()
			return 0, netip.AddrPort{}, so.opError("read", errTimeout)
		}
		sb.wait(d)
	}
}

// peer returns the connected peer's address.
func (so *Socket) peer() netip.AddrPort {
	if sa, err := unix.Getpeername(so.fd); err == nil {
		ap, _ := addrPort(sa)
		return ap
	}
	return netip.AddrPort{}
}

// ReadFromUDPAddrPort reads one datagram into b and returns the sender, as
// net.UDPConn.ReadFromUDPAddrPort does.
func (so *Socket) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	if so.ni.tcp() {
		return 0, netip.AddrPort{}, so.opError("read", syscall.EOPNOTSUPP)
	}
	return so.readDatagram(b, true)
}

// WriteToUDPAddrPort sends b as one datagram to addr, as net.UDPConn.WriteToUDPAddrPort
// does (on an unconnected socket).
func (so *Socket) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if so.ni.tcp() {
		return 0, so.opError("write", syscall.EOPNOTSUPP)
	}
	return so.writeDatagram(b, &addr)
}

// RecvFrom is Recv for a UDP socket that also returns the sender.
func (so *Socket) RecvFrom() (*mbuf.Mbuf, netip.AddrPort, error) {
	if so.ni.tcp() {
		return nil, netip.AddrPort{}, so.opError("read", syscall.EOPNOTSUPP)
	}
	return so.recvDatagram()
}

// recvDatagram takes one record off the receive sockbuf (the worker fills it).
func (so *Socket) recvDatagram() (*mbuf.Mbuf, netip.AddrPort, error) {
	sb := &so.rcv
	sb.mu.Lock()
	for {
		if sb.flags&sbClosed != 0 {
			sb.mu.Unlock()
			return nil, netip.AddrPort{}, so.opError("read", net.ErrClosed)
		}
		if sb.flags&sbSplice == 0 {
			if sb.mb != nil {
				r := sb.takeRecord()
				so.resumeInputLocked()
				sb.mu.Unlock()
				var ap netip.AddrPort
				if r.Type() == mbuf.MTSoname {
					ap = rawToAddrPort(r.Data())
					r = r.Free()
				} else {
					ap = so.peer()
				}
				return r, ap, nil
			}
			if e := so.takeError(); e != 0 {
				sb.mu.Unlock()
				return nil, netip.AddrPort{}, so.opError("read", e)
			}
			if sb.flags&sbCantMore != 0 {
				sb.mu.Unlock()
				return nil, netip.AddrPort{}, so.opError("read", net.ErrClosed)
			}
			sb.flags &^= sbWantIO
			so.w.Add(&so.inTask)
		}
		d := so.dl.rd.Load()
		if d.expired() {
			sb.mu.Unlock()
			return nil, netip.AddrPort{}, so.opError("read", errTimeout)
		}
		sb.wait(d)
	}
}

// writeDatagram is sosend() of one datagram: straight to the kernel when nothing is
// queued, else (or when the kernel is full) as a record in the send sockbuf.
func (so *Socket) writeDatagram(b []byte, to *netip.AddrPort) (int, error) {
	sb := &so.snd
	sb.mu.Lock()
	if len(b) > sb.hiwat {
		sb.mu.Unlock()
		return 0, so.opError("write", syscall.EMSGSIZE)
	}
	var sa unix.Sockaddr
	if to != nil {
		sa = sockaddr(so.ni.family, *to)
	}
	for {
		if err := so.sendCheckTo(to); err != nil {
			sb.mu.Unlock()
			return 0, so.opError("write", err)
		}
		if sb.mb == nil && sb.flags&sbBusy == 0 {
			err := sysSendto(so.fd, b, sa)
			if err == nil {
				sb.mu.Unlock()
				return len(b), nil
			}
			if err != unix.EAGAIN {
				sb.mu.Unlock()
				return 0, so.opError("write", err)
			}
		}
		if sb.space() >= len(b)+mbuf.MSize {
			m, err := datagram(b, to, so.ni.family)
			if err != nil {
				sb.mu.Unlock()
				return 0, so.opError("write", err)
			}
			sb.appendRecord(m)
			sb.mu.Unlock()
			so.kick()
			return len(b), nil
		}
		d := so.dl.wr.Load()
		if d.expired() {
			sb.mu.Unlock()
			return 0, so.opError("write", errTimeout)
		}
		sb.wait(d)
	}
}

// sendCheckTo is sendCheck for a datagram with an optional destination.
func (so *Socket) sendCheckTo(to *netip.AddrPort) error {
	if to != nil && so.state.Load()&ssConnected == 0 {
		if so.snd.flags&sbClosed != 0 {
			return net.ErrClosed
		}
		if e := so.takeError(); e != 0 {
			return e
		}
		return nil
	}
	if to != nil {
		return syscall.EISCONN
	}
	return so.sendCheck()
}

// datagram copies b into a new record (behind an MT_SONAME mbuf if to is set).
func datagram(b []byte, to *netip.AddrPort, family int) (*mbuf.Mbuf, error) {
	m, err := mbuf.GetHdr(mbuf.DontWait, mbuf.MTData)
	if err != nil {
		return nil, err
	}
	if err := m.Append(b, mbuf.DontWait); err != nil {
		m.FreeM()
		return nil, err
	}
	m.PktHdr().Len = len(b)
	if to == nil {
		return m, nil
	}
	a, err := mbuf.Get(mbuf.DontWait, mbuf.MTSoname)
	if err != nil {
		m.FreeM()
		return nil, err
	}
	k := putRawSockaddr(a.Tail(), family, *to)
	a.Extend(k)
	a.SetNext(m)
	return a, nil
}

// sendDatagram is Send for UDP: chain m is one datagram.
func (so *Socket) sendDatagram(m *mbuf.Mbuf, to *netip.AddrPort) (int, error) {
	n := m.Length()
	sb := &so.snd
	sb.mu.Lock()
	if n > sb.hiwat {
		sb.mu.Unlock()
		m.FreeM()
		return 0, so.opError("write", syscall.EMSGSIZE)
	}
	for {
		if err := so.sendCheckTo(to); err != nil {
			sb.mu.Unlock()
			m.FreeM()
			return 0, so.opError("write", err)
		}
		if sb.space() >= n+mbuf.MSize {
			if m.Flags()&mbuf.MPktHdr == 0 {
				h, err := mbuf.GetHdr(mbuf.DontWait, mbuf.MTData)
				if err != nil {
					sb.mu.Unlock()
					m.FreeM()
					return 0, so.opError("write", err)
				}
				h.SetNext(m)
				m = h
			}
			m.PktHdr().Len = n
			if to != nil {
				a, err := mbuf.Get(mbuf.DontWait, mbuf.MTSoname)
				if err != nil {
					sb.mu.Unlock()
					m.FreeM()
					return 0, so.opError("write", err)
				}
				a.Extend(putRawSockaddr(a.Tail(), so.ni.family, *to))
				a.SetNext(m)
				m = a
			}
			sb.appendRecord(m)
			sb.mu.Unlock()
			so.kick()
			return n, nil
		}
		d := so.dl.wr.Load()
		if d.expired() {
			sb.mu.Unlock()
			m.FreeM()
			return 0, so.opError("write", errTimeout)
		}
		sb.wait(d)
	}
}

// sysRecvfrom is recvfrom(2) without allocating the sender's address.
func sysRecvfrom(fd int, b []byte) (int, netip.AddrPort, error) {
	var name [nameLen]byte
	namelen := uint32(nameLen)
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	} else {
		p = unsafe.Pointer(&zeroByte)
	}
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(p), uintptr(len(b)), 0,
			uintptr(unsafe.Pointer(&name[0])), uintptr(unsafe.Pointer(&namelen)))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, netip.AddrPort{}, e
		}
		return int(n), rawToAddrPort(name[:namelen]), nil
	}
}

// sysSendto is sendto(2) with MSG_NOSIGNAL (to may be nil on a connected socket).
func sysSendto(fd int, b []byte, to unix.Sockaddr) error {
	if to == nil {
		_, err := sysSend(fd, b, 0)
		return err
	}
	for {
		err := unix.Sendto(fd, b, unix.MSG_NOSIGNAL, to)
		if err != unix.EINTR {
			return err
		}
	}
}

// rawToAddrPort decodes a raw sockaddr_in or sockaddr_in6.
func rawToAddrPort(b []byte) netip.AddrPort {
	if len(b) < 2 {
		return netip.AddrPort{}
	}
	family := int(*(*uint16)(unsafe.Pointer(&b[0])))
	switch {
	case family == unix.AF_INET && len(b) >= unix.SizeofSockaddrInet4:
		port := binary.BigEndian.Uint16(b[2:4])
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port)
	case family == unix.AF_INET6 && len(b) >= unix.SizeofSockaddrInet6:
		port := binary.BigEndian.Uint16(b[2:4])
		ip := netip.AddrFrom16([16]byte(b[8:24]))
		return netip.AddrPortFrom(ip.Unmap(), port)
	}
	return netip.AddrPort{}
}

// rawToSockaddr decodes a raw sockaddr for unix.Sendto.
func rawToSockaddr(b []byte) unix.Sockaddr {
	ap := rawToAddrPort(b)
	family := unix.AF_INET6
	if len(b) >= 2 && int(*(*uint16)(unsafe.Pointer(&b[0]))) == unix.AF_INET {
		family = unix.AF_INET
	}
	return sockaddr(family, ap)
}

// putRawSockaddr encodes ap as a raw sockaddr for a socket of the family into b and
// returns its length.
func putRawSockaddr(b []byte, family int, ap netip.AddrPort) int {
	clear(b[:nameLen])
	if family == unix.AF_INET {
		*(*uint16)(unsafe.Pointer(&b[0])) = unix.AF_INET
		binary.BigEndian.PutUint16(b[2:4], ap.Port())
		a := ap.Addr().Unmap().As4()
		copy(b[4:8], a[:])
		return unix.SizeofSockaddrInet4
	}
	*(*uint16)(unsafe.Pointer(&b[0])) = unix.AF_INET6
	binary.BigEndian.PutUint16(b[2:4], ap.Port())
	a := ap.Addr().As16()
	copy(b[8:24], a[:])
	return unix.SizeofSockaddrInet6
}
