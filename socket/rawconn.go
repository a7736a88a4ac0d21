package socket

import (
	"net"
	"syscall"
)

// SyscallConn returns a syscall.RawConn for the kernel socket, as net.TCPConn's does:
// for options this package does not set (Control), or reads and writes of its own
// (Read, Write: recvmsg with control messages, say), coordinated with the worker. The
// RawConn's Read and Write are the socket's readers and writers: they hold its sblock
// (one application call per direction at a time), mark the sockbuf busy while f runs
// (the worker then leaves the kernel socket's direction alone), and when f asks to wait
// they sleep until the worker sees the socket ready (epoll), the deadline passes or the
// socket closes, as internal/poll's waitRead and waitWrite do.
//
// f sees the kernel socket only. Bytes the worker has already read into the receive
// sockbuf (it reads whenever data arrive and no reader waits on the kernel) are not
// there for f: take them with Read or Recv. RawConn.Write waits until the send sockbuf
// is empty, so what f writes follows what Write and Send queued.
func (so *Socket) SyscallConn() (syscall.RawConn, error) {
	if so.state.Load()&ssClosed != 0 {
		return nil, so.opError("syscallconn", net.ErrClosed)
	}
	return (*rawConn)(so), nil
}

// rawConn is SyscallConn's RawConn: the Socket itself, under another method set.
type rawConn Socket

// Control calls f with the socket's descriptor, which stays open until f returns (Close
// meanwhile defers the close(2)).
func (c *rawConn) Control(f func(fd uintptr)) error {
	so := (*Socket)(c)
	sb := &so.snd
	sb.mu.Lock()
	if sb.flags&sbClosed != 0 || !so.holdFd() {
		sb.mu.Unlock()
		return so.opError("raw-control", net.ErrClosed)
	}
	sb.mu.Unlock()
	defer so.releaseFd()
	f(uintptr(so.fd))
	return nil
}

// Read calls f with the descriptor until f returns true, waiting for the socket to be
// readable between calls. It waits, as Read does, while the socket is the source of a
// splice or the worker is reading it.
func (c *rawConn) Read(f func(fd uintptr) (done bool)) error {
	so := (*Socket)(c)
	so.rdlock.Lock()
	defer so.rdlock.Unlock()
	return so.rawIO(&so.rcv, f, "raw-read")
}

// Write calls f with the descriptor until f returns true, waiting for the socket to be
// writable between calls, and for the send sockbuf to be empty first.
func (c *rawConn) Write(f func(fd uintptr) (done bool)) error {
	so := (*Socket)(c)
	so.wrlock.Lock()
	defer so.wrlock.Unlock()
	return so.rawIO(&so.snd, f, "raw-write")
}

// rawIO is RawConn's Read (sb is rcv) and Write (snd): f is called with the sockbuf busy
// and no lock held, until it returns true. Between calls it waits for an epoll event of
// the socket (input or output wakes the sockbuf: a reader marks itself waiting on the
// kernel, sbWantIO; output wakes writers when the send sockbuf is empty), unless one came
// during f.
func (so *Socket) rawIO(sb *sockbuf, f func(fd uintptr) bool, op string) error {
	dl := &so.dl.rd
	if sb == &so.snd {
		dl = &so.dl.wr
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	for {
		if sb.flags&sbClosed != 0 {
			return so.opError(op, net.ErrClosed)
		}
		if dl.Load().expired() {
			return so.opError(op, errTimeout) // before f, as internal/poll's prepareRead
		}
		var ev uint32
		// Free for f: not busy, and as Read and Write go to the kernel: a source of a
		// splice gets nothing, a send sockbuf goes out before what f writes.
		free := sb.flags&sbBusy == 0
		if sb == &so.rcv {
			free = free && sb.flags&sbSplice == 0
		} else {
			free = free && sb.mb == nil
		}
		if free {
			var ok bool
			if ev, ok = so.beginIO(sb); !ok {
				return so.opError(op, net.ErrClosed)
			}
			done := f(uintptr(so.fd))
			missed := so.endIO(sb, ev)
			if done {
				return nil
			}
			if missed {
				continue // an event came during f: try again
			}
			if sb == &so.rcv {
				sb.flags |= sbWantIO
			}
		} else {
			if sb == &so.snd && sb.mb != nil {
				so.w.Add(&so.outTask) // output drains it, and wakes us when it is empty
			}
			ev = so.events.Load()
		}
		if err := so.waitIO(sb, ev, dl.Load()); err != nil {
			return so.opError(op, err)
		}
	}
}
