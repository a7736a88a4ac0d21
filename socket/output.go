package socket

import (
	"os"
	"syscall"

	"github.com/softnet-go/softnet/netq"
	"golang.org/x/sys/unix"
)

// maxIov bounds the iovecs of one sendmsg (an iovec).
const maxIov = 256

// writable runs on the worker when the kernel socket becomes writable (EPOLLOUT), has
// failed, or finished connecting (ev is the epoll event): it completes a non-blocking
// connect and runs output.
func (so *Socket) writable(ev uint32) {
	if s := so.state.Load(); s&ssConnecting != 0 {
		// Linux reports no EPOLLOUT while a TCP socket is in SYN_SENT: the event means
		// the connect is over. Without EPOLLERR or EPOLLHUP it succeeded; otherwise
		// SO_ERROR says how it failed.
		var e syscall.Errno
		if ev&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			if e = sockError(so.fd); e == 0 {
				e = syscall.ECONNREFUSED // hung up with no error recorded
			}
		}
		// ssConnected goes on before ssConnecting goes off, so that no reader finds
		// the socket neither connected nor connecting (ENOTCONN).
		if e == 0 {
			so.state.Or(ssConnected)
		}
		so.state.And(^uint32(ssConnecting))
		if e != 0 {
			so.soerr.CompareAndSwap(0, int32(e))
			so.rcv.mu.Lock()
			so.rcv.flags |= sbCantMore
			so.sorwakeup()
			so.rcv.mu.Unlock()
			so.snd.mu.Lock()
			so.snd.flags |= sbCantMore
			so.snd.flush()
			so.sowwakeup()
			so.snd.mu.Unlock()
			so.connected(os.NewSyscallError("connect", e))
			return
		}
		so.rcv.mu.Lock()
		so.sorwakeup() // a splice from this socket may now go on
		so.rcv.mu.Unlock()
		so.snd.mu.Lock()
		so.sowwakeup() // and one into it
		so.snd.mu.Unlock()
		so.connected(nil)
	}
	so.output()
}

// connected runs ConnectFunc's callback, once, unless the socket was closed first. It
// runs on the worker.
func (so *Socket) connected(err error) {
	fn := so.onConnect
	if fn == nil {
		return
	}
	so.onConnect = nil
	if so.state.Load()&ssClosed != 0 {
		return
	}
	fn(err)
}

// output is the socket's output routine (the protocol's output behind sosend): it runs
// on the worker once the socket is connected and hands over to the protocol's
// (protosw.output), which writes the send sockbuf to the kernel socket, drops what the
// kernel took (sbdrop), and calls sowwakeup. When the kernel is full it waits for
// EPOLLOUT; with more to write it yields by queueing its task. A deferred CloseWrite
// (shutdown) and the destruction of a closed socket happen there once the buffer is
// empty (outputDone).
func (so *Socket) output() {
	st := so.state.Load()
	if st&ssDestroyed != 0 {
		return
	}
	if st&ssConnected == 0 {
		return // connecting: writable() calls us when it is done
	}
	so.proto().output(so)
}

// tcpOutput is TCP's output routine (tcp_output's part of sosend): one sendmsg of the
// send sockbuf's head, at most netq.Budget bytes in at most maxIov windows.
func (so *Socket) tcpOutput() {
	sb := &so.snd
	sb.mu.Lock()
	if sb.flags&sbBusy != 0 {
		if sb.flags&sbSendfile != 0 {
			sb.wakeup() // the kernel has room: SendFile goes on
		}
		sb.mu.Unlock()
		return
	}
	if sb.cc == 0 {
		if sb.flags&sbSplice != 0 {
			so.sowwakeup() // the kernel path writes the drain itself: tell it there is room
		}
		so.outputDone()
		return
	}
	var v iovec // the windows stay put: sbBusy keeps the chain's head ours
	v.load(sb.mb, netq.Budget)
	sb.flags |= sbBusy
	sb.mu.Unlock()

	n, err := v.sendmsg(so.fd)

	sb.mu.Lock()
	sb.flags &^= sbBusy
	if n > 0 {
		sb.dropStream(n)
	}
	switch {
	case err == nil:
		if sb.cc > 0 {
			so.w.Add(&so.outTask)
		}
	case err == unix.EAGAIN:
	default:
		so.outputError(errnoOf(err))
	}
	if n > 0 || err != nil && err != unix.EAGAIN {
		// Room was made, or the socket failed: writers and a splice into it see it.
		// A sendmsg that took nothing changed nothing, and waking a splice for it would
		// have the splice kick output again at once: a busy loop while the peer
		// stalls. EPOLLOUT brings output back when the kernel has room.
		so.sowwakeup()
	}
	so.outputDone()
}

// outputError records a failed write: the error is kept for the next call (so_error),
// nothing more can be sent, and what was queued is dropped. so.snd.mu is held.
func (so *Socket) outputError(e syscall.Errno) {
	if e == 0 {
		e = syscall.EIO
	}
	so.soerr.CompareAndSwap(0, int32(e))
	so.snd.flags |= sbCantMore
	so.snd.flush()
	so.w.Add(&so.inTask) // let input see the reset, and wake readers
}

// outputDone finishes an output pass with the send sockbuf empty or not: a CloseWrite
// waiting for the data goes out, and a closed socket whose data is written is destroyed.
// It releases so.snd.mu.
func (so *Socket) outputDone() {
	sb := &so.snd
	empty := sb.cc == 0 && sb.flags&sbBusy == 0
	if empty && sb.flags&sbShutPending != 0 {
		sb.flags &^= sbShutPending
		unix.Shutdown(so.fd, unix.SHUT_WR)
	}
	if empty {
		sb.wakeup() // SendFile and writers waiting for the kernel
	}
	doomed := so.state.Load()&ssDoomed != 0 && empty
	sb.mu.Unlock()
	if doomed {
		so.destroy()
	}
}
