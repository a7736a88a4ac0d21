package socket

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"github.com/softnet-go/softnet/netq"
	"golang.org/x/sys/unix"
)

// FromConn takes over the descriptor of a *net.TCPConn or *net.UDPConn (or any net.Conn
// whose SyscallConn gives a TCP or UDP socket, listening and unconnected ones included)
// and returns a Socket on a worker of netq.Default(). It takes ownership: the descriptor
// is duplicated, c is closed, and the Socket owns the copy; the caller must not use c
// again. Data the kernel holds for the socket stays there for the Socket to read. A
// listening socket can only be closed (splicing it fails with EOPNOTSUPP).
func FromConn(c net.Conn) (*Socket, error) {
	return FromConnOn(c, nil)
}

// FromConnOn is FromConn onto worker w (nil: a worker of netq.Default(), round-robin).
// Its errors are *net.OpError (Op "fromconn"), as the other constructors'.
func FromConnOn(c net.Conn, w *netq.Worker) (*Socket, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, fromConnError(c, fmt.Errorf("%T has no SyscallConn", c))
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, fromConnError(c, err)
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) {
		fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, fromConnError(c, err)
	}
	if derr != nil {
		return nil, fromConnError(c, os.NewSyscallError("fcntl", derr))
	}
	so, err := fromFd(fd, w)
	if err != nil {
		return nil, fromConnError(c, err)
	}
	c.Close()
	return so, nil
}

// fromConnError is FromConn's error about c, as package net reports one about a
// connection: a *net.OpError with c's network and addresses.
func fromConnError(c net.Conn, err error) error {
	e := &net.OpError{Op: "fromconn", Err: err}
	if c != nil {
		e.Source, e.Addr = c.LocalAddr(), c.RemoteAddr()
	}
	if e.Source != nil {
		e.Net = e.Source.Network()
	}
	return e
}

// fromFd wraps a socket fd, finding out its type and state from the kernel. On error
// fd is closed.
func fromFd(fd int, w *netq.Worker) (*Socket, error) {
	fail := func(call string, err error) (*Socket, error) {
		unix.Close(fd)
		return nil, os.NewSyscallError(call, err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return fail("fcntl", err)
	}
	sotype, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return fail("getsockopt", err)
	}
	domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return fail("getsockopt", err)
	}
	var ni netinfo
	switch {
	case sotype == unix.SOCK_STREAM && domain == unix.AF_INET:
		ni = netinfo{"tcp4", sotype, domain}
	case sotype == unix.SOCK_STREAM && domain == unix.AF_INET6:
		ni = netinfo{"tcp6", sotype, domain}
	case sotype == unix.SOCK_DGRAM && domain == unix.AF_INET:
		ni = netinfo{"udp4", sotype, domain}
	case sotype == unix.SOCK_DGRAM && domain == unix.AF_INET6:
		ni = netinfo{"udp6", sotype, domain}
	default:
		return fail("socket", syscall.EPROTONOSUPPORT)
	}
	var state uint32
	var raddr netip.AddrPort // cached for RemoteAddr and a UDP socket's senders
	if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err == nil && v != 0 {
		state = ssListening
	} else if sa, err := unix.Getpeername(fd); err == nil {
		state = ssConnected
		raddr, _ = addrPort(sa)
	}
	if ni.tcp() {
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	if w == nil {
		w = (*Dialer)(nil).worker()
	}
	return newSocket(fd, w, ni, state, raddr, nil)
}
