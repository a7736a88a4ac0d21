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
func FromConnOn(c net.Conn, w *netq.Worker) (*Socket, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("socket: FromConn: %T has no SyscallConn", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("socket: FromConn: %w", err)
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) {
		fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, fmt.Errorf("socket: FromConn: %w", err)
	}
	if derr != nil {
		return nil, fmt.Errorf("socket: FromConn: %w", os.NewSyscallError("fcntl", derr))
	}
	so, err := fromFd(fd, w)
	if err != nil {
		return nil, fmt.Errorf("socket: FromConn: %w", err)
	}
	c.Close()
	return so, nil
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
	if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err == nil && v != 0 {
		state = ssListening
	} else if _, err := unix.Getpeername(fd); err == nil {
		state = ssConnected
	}
	if ni.tcp() {
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	if w == nil {
		w = (*Dialer)(nil).worker()
	}
	return newSocket(fd, w, ni, state, netip.AddrPort{}, nil)
}
