package socket

import (
	"net"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"github.com/softnet-go/softnet/internal/eintr"
	"github.com/softnet-go/softnet/mbuf"
	"golang.org/x/sys/unix"
)

// A UDP socket: its constructor and the application's calls here; the worker's input
// (recvmmsg) in udp_input.go, its output (sendmmsg) in udp_output.go, GSO in
// udp_gso_linux.go, and the raw sockaddrs of datagram records in sockaddr.go.

const (
	udpBatch  = 16                       // datagrams per recvmmsg / sendmmsg
	uioMaxIov = 1024                     // UIO_MAXIOV: the most iovecs one sendmsg takes
	udpIov    = 64                       // iovecs per message sent (a GSO message: one per datagram)
	udpOver   = 65536 - mbuf.MCLBytes    // overflow room behind a datagram's 2 KiB cluster
	nameLen   = unix.SizeofSockaddrInet6 // room for either family's sockaddr
)

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
	lens  [udpIov]int // the lengths of a run of GSO candidates
	over  []byte
}

func (so *Socket) udpScratch() *udpScratch {
	ws := workerState(so.w)
	if ws.udp == nil {
		ws.udp = &udpScratch{over: make([]byte, udpBatch*udpOver)}
	}
	return ws.udp
}

// mmsg is recvmmsg(2) or sendmmsg(2) (trap) of the messages of hdrs, EINTR retried: it
// returns how many messages the kernel filled or took.
func mmsg(trap uintptr, fd int, hdrs []unix.Mmsghdr, flags int) (int, error) {
	r, err := eintr.Retry(func() (uintptr, error) {
		r, _, e := unix.Syscall6(trap, uintptr(fd), uintptr(unsafe.Pointer(&hdrs[0])), uintptr(len(hdrs)), uintptr(flags), 0, 0)
		if e != 0 {
			return 0, e
		}
		return r, nil
	})
	return int(r), err
}

// ListenPacket returns a bound, unconnected UDP socket on a worker of netq.Default(), as
// net.ListenPacket does. Networks: udp, udp4, udp6. Read returns datagrams from anyone
// (ReadFromUDPAddrPort and RecvFrom also give the sender; PacketConn makes the socket a
// net.PacketConn); it may be the source of a splice, not its drain.
func ListenPacket(network, address string) (*Socket, error) {
	var lc ListenConfig
	return lc.ListenPacket(network, address)
}

// ListenPacket is the package's ListenPacket on lc's worker (or a worker of lc's group,
// round-robin).
func (lc *ListenConfig) ListenPacket(network, address string) (*Socket, error) {
	ni, ap, err := listenAddr(network, address, &udpProto)
	if err != nil {
		return nil, err
	}
	fd, err := newSysSocket(ni.family, unix.SOCK_DGRAM)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	sa := sockaddr(ni.family, ap)
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, &net.OpError{Op: "listen", Net: network, Addr: netAddr(false, sa), Err: os.NewSyscallError("bind", err)}
	}
	w := (*Dialer)(nil).worker()
	if lc != nil && lc.Worker != nil {
		w = lc.Worker
	} else if lc != nil && lc.Group != nil {
		w = lc.Group.Worker(rr.Add(1))
	}
	so, err := newSocket(fd, w, ni, 0, netip.AddrPort{}, nil)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: netAddr(false, sa), Err: err}
	}
	return so, nil
}

// readDatagram is soreceive() of one datagram into b (truncated to len(b)), with its
// sender (a connected socket's peer, cached: no system call). With nothing queued and
// the worker not reading, it reads the kernel socket directly, outside the lock.
func (so *Socket) readDatagram(b []byte) (int, netip.AddrPort, error) {
	so.rdlock.Lock()
	defer so.rdlock.Unlock()
	sb := &so.rcv
	sb.mu.Lock()
	for {
		if sb.flags&sbClosed != 0 {
			sb.mu.Unlock()
			return 0, netip.AddrPort{}, so.opError("read", net.ErrClosed)
		}
		d := so.dl.rd.Load()
		if d.expired() {
			sb.mu.Unlock()
			return 0, netip.AddrPort{}, so.opError("read", errTimeout)
		}
		if sb.flags&sbSplice == 0 {
			if sb.mb != nil {
				r := sb.takeRecord()
				so.resumeInputLocked()
				sb.mu.Unlock()
				ap, m := so.recordSender(r)
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
				ev, ok := so.beginIO(sb)
				if !ok {
					sb.mu.Unlock()
					return 0, netip.AddrPort{}, so.opError("read", net.ErrClosed)
				}
				n, ap, err := sysRecvfrom(so.fd, b)
				missed := so.endIO(sb, ev)
				if err == nil {
					sb.mu.Unlock()
					return n, ap, nil
				}
				if err != unix.EAGAIN {
					sb.mu.Unlock()
					return 0, netip.AddrPort{}, so.opError("read", err)
				}
				if missed {
					continue // an event came during the read: try again
				}
				sb.flags |= sbWantIO
			}
		}
		sb.wait(so.dl.rd.Load()) // again: it may have been made while the lock was released
	}
}

// ReadFromUDPAddrPort reads one datagram into b and returns the sender, as
// net.UDPConn.ReadFromUDPAddrPort does.
func (so *Socket) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	if so.proto().flags&prAddr == 0 {
		return 0, netip.AddrPort{}, so.opError("read", syscall.EOPNOTSUPP)
	}
	return so.readDatagram(b)
}

// WriteToUDPAddrPort sends b as one datagram to addr, as net.UDPConn.WriteToUDPAddrPort
// does (on an unconnected socket).
func (so *Socket) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if so.proto().flags&prAddr == 0 {
		return 0, so.opError("write", syscall.EOPNOTSUPP)
	}
	return so.writeDatagram(b, &addr)
}

// RecvFrom is Recv for a UDP socket that also returns the sender.
func (so *Socket) RecvFrom() (*mbuf.Mbuf, netip.AddrPort, error) {
	if so.proto().flags&prAddr == 0 {
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
				ap, m := so.recordSender(r)
				if m != r {
					r.Free() // the MT_SONAME mbuf
				}
				return m, ap, nil
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
// queued (outside the lock), else (or when the kernel is full) as a record in the send
// sockbuf.
func (so *Socket) writeDatagram(b []byte, to *netip.AddrPort) (int, error) {
	so.wrlock.Lock()
	defer so.wrlock.Unlock()
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
		d := so.dl.wr.Load()
		if d.expired() {
			sb.mu.Unlock()
			return 0, so.opError("write", errTimeout)
		}
		if sb.mb == nil && sb.flags&sbBusy == 0 {
			ev, ok := so.beginIO(sb)
			if !ok {
				sb.mu.Unlock()
				return 0, so.opError("write", net.ErrClosed)
			}
			err := sysSendto(so.fd, b, sa)
			so.endIO(sb, ev) // on EAGAIN the datagram is queued: no retry
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
		sb.wait(so.dl.wr.Load()) // again: it may have been made while the lock was released
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
	a.Link(m)
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
				h.Link(m)
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
				a.Link(m)
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

// sysRecvfrom is recvfrom(2) without allocating the sender's address, EINTR retried.
func sysRecvfrom(fd int, b []byte) (int, netip.AddrPort, error) {
	var name [nameLen]byte
	namelen := uint32(nameLen)
	p := bufPtr(b)
	n, err := eintr.Retry(func() (uintptr, error) {
		n, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(p), uintptr(len(b)), 0,
			uintptr(unsafe.Pointer(&name[0])), uintptr(unsafe.Pointer(&namelen)))
		if e != 0 {
			return 0, e
		}
		return n, nil
	})
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	return int(n), rawToAddrPort(name[:namelen]), nil
}

// sysSendto is sendto(2) with MSG_NOSIGNAL (to may be nil on a connected socket), EINTR
// retried.
func sysSendto(fd int, b []byte, to unix.Sockaddr) error {
	if to == nil {
		_, err := sysSend(fd, b, 0)
		return err
	}
	_, err := eintr.Retry(func() (struct{}, error) {
		return struct{}{}, unix.Sendto(fd, b, unix.MSG_NOSIGNAL, to)
	})
	return err
}
