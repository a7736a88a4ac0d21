package socket

import (
	"os"
	"syscall"
	"unsafe"

	"github.com/softnet-go/softnet/internal/eintr"
	"github.com/softnet-go/softnet/mbuf"
	"golang.org/x/sys/unix"
)

// newSysSocket creates a non-blocking, close-on-exec socket with the options package net
// sets by default: SO_REUSEADDR and TCP_NODELAY for TCP, IPV6_V6ONLY off for AF_INET6
// (dual stack, so a v4 address can be reached through it), SO_BROADCAST for UDP.
func newSysSocket(family, sotype int) (int, error) {
	fd, err := unix.Socket(family, sotype|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if family == unix.AF_INET6 {
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
	}
	if sotype == unix.SOCK_STREAM {
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	} else {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1)
	}
	return fd, nil
}

// errnoOf returns the syscall.Errno inside err, or 0.
func errnoOf(err error) syscall.Errno {
	for err != nil {
		if e, ok := err.(syscall.Errno); ok {
			return e
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return 0
		}
		err = u.Unwrap()
	}
	return 0
}

// sysRead is read(2), EINTR retried; n is never negative.
func sysRead(fd int, b []byte) (int, error) {
	n, err := eintr.Retry(func() (int, error) { return unix.Read(fd, b) })
	return max(n, 0), err
}

// sysSend is send(2) with MSG_NOSIGNAL (a reset peer gives EPIPE, not SIGPIPE), EINTR
// retried.
func sysSend(fd int, b []byte, flags int) (int, error) {
	p := bufPtr(b)
	n, err := eintr.Retry(func() (uintptr, error) {
		n, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(p), uintptr(len(b)),
			uintptr(flags|unix.MSG_NOSIGNAL), 0, 0)
		if e != 0 {
			return 0, e
		}
		return n, nil
	})
	return int(n), err
}

// bufPtr is the address to pass for b: its first byte, or a byte of our own when b is
// empty (a zero-length send or receive still needs a valid pointer).
func bufPtr(b []byte) unsafe.Pointer {
	if len(b) > 0 {
		return unsafe.Pointer(&b[0])
	}
	return unsafe.Pointer(&zeroByte)
}

var zeroByte byte

// An iovec is the vector of one sendmsg(2), filled in place from an mbuf chain so that
// a write allocates nothing (unix.SendmsgBuffers makes its vector on the heap per call).
// It is large (maxIov entries): keep it in the caller's frame.
//
// mbuf.WriteFd fills the same kind of vector for writev(2), which the socket cannot
// use: writev raises SIGPIPE when the peer has reset (sendmsg's MSG_NOSIGNAL does not),
// and WriteFd has no byte bound, where output writes at most netq.Budget per pass.
type iovec struct {
	iov [maxIov]unix.Iovec
	cnt int // entries in use
	n   int // their bytes
}

// load fills v with the data windows of chain m, from its head: at most maxIov of them,
// and no more once max bytes are in (the last window may pass max).
func (v *iovec) load(m *mbuf.Mbuf, max int) {
	for ; m != nil && v.cnt < len(v.iov) && v.n < max; m = m.Next() {
		v.add(m.Data())
	}
}

// add appends window d, if it is not empty and v has room.
func (v *iovec) add(d []byte) {
	if len(d) == 0 || v.cnt == len(v.iov) {
		return
	}
	v.iov[v.cnt].Base = &d[0]
	v.iov[v.cnt].SetLen(len(d))
	v.cnt++
	v.n += len(d)
}

// sendmsg writes the vector to fd with sendmsg(2) and MSG_NOSIGNAL, EINTR retried, and
// returns the bytes the kernel took. It allocates nothing.
func (v *iovec) sendmsg(fd int) (int, error) {
	msg := unix.Msghdr{Iov: &v.iov[0]}
	msg.SetIovlen(v.cnt)
	n, err := eintr.Retry(func() (uintptr, error) {
		n, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), unix.MSG_NOSIGNAL)
		if e != 0 {
			return 0, e
		}
		return n, nil
	})
	return int(n), err
}

// sysWritev is sendmsg(2) of the non-empty buffers of bufs (at most maxIov of them),
// with MSG_NOSIGNAL, EINTR retried: SendFile's header. A caller with a chain fills an
// iovec from it (load) instead.
func sysWritev(fd int, bufs [][]byte) (int, error) {
	var v iovec
	for _, b := range bufs {
		v.add(b)
	}
	return v.sendmsg(fd)
}

// sysAccept is accept4(2) of a non-blocking, close-on-exec socket, EINTR retried.
func sysAccept(fd int) (int, unix.Sockaddr, error) {
	var sa unix.Sockaddr
	nfd, err := eintr.Retry(func() (int, error) {
		nfd, s, err := unix.Accept4(fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		sa = s
		return nfd, err
	})
	return nfd, sa, err
}

// sockError reads and clears SO_ERROR.
func sockError(fd int) syscall.Errno {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return errnoOf(err)
	}
	return syscall.Errno(v)
}
