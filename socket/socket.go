package socket

import (
	"context"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/softnet-go/softnet/mbuf"
	"github.com/softnet-go/softnet/netq"
	"golang.org/x/sys/unix"
)

// Socket states (so_state), in Socket.state.
const (
	ssConnected  = 1 << iota // SS_ISCONNECTED
	ssConnecting             // SS_ISCONNECTING: a non-blocking connect is in progress
	ssListening              // SO_ACCEPTCONN (a listening socket taken over by FromConn)
	ssClosed                 // Close was called: the socket is the worker's to tear down
	ssDestroyed              // the fd is closed; nothing may touch it
	ssMemWait                // input waits for memory (a goroutine is in an allocation)
	ssDoomed                 // Close ran on the worker; destroy follows when snd is flushed
)

// Default buffer sizes (the user-space sockbufs; the kernel's buffers are separate).
const (
	defaultTCPRcv = 64 << 10
	defaultTCPSnd = 64 << 10
	defaultUDPRcv = 256 << 10
	defaultUDPSnd = 64 << 10 // every datagram fits (the largest UDP payload is 65507 bytes)
	defaultSndLow = 2048     // SO_SNDLOWAT: MCLBYTES, as OpenBSD's soreserve
)

// A Socket is a user-space socket over a non-blocking TCP or UDP socket of the kernel: a
// receive and a send sockbuf of mbuf chains, filled and drained by the socket's netq
// worker, which owns it for life. It is a net.Conn: Read and Write copy in and out of the
// sockbufs (and go straight to the kernel when the sockbuf is empty and the worker is not
// using it, so that a streaming reader or writer pays one copy, as with package net);
// Recv and Send move mbuf chains without copying. A UDP Socket reads and writes one
// datagram per call. All methods are safe for concurrent use.
type Socket struct {
	fd    int
	w     *netq.Worker
	ni    netinfo
	state atomic.Uint32
	soerr atomic.Int32 // so_error: a pending errno, reported once

	rcv sockbuf // so_rcv
	snd sockbuf // so_snd

	inTask  netq.Task // soinput: read the kernel socket into rcv
	outTask netq.Task // sooutput: write snd to the kernel socket

	dl deadlines
	sp atomic.Pointer[sosplice] // the splice record, made on the first Splice
	x  atomic.Pointer[sockExtra]

	// rdlock and wrlock are sblock() for each direction: they serialize the application
	// calls that read (Read, RawConn.Read) or write (Write, SendFile, RawConn.Write), so
	// that one of them at a time may make a system call outside the sockbuf's mu with
	// sbBusy set (appio.go). The worker never takes them.
	rdlock, wrlock sync.Mutex
	// events counts the epoll events delivered to the socket: an application call that
	// made a system call outside the sockbuf lock compares it before and after, to learn
	// that the worker skipped an event while the sockbuf was busy (appio.go).
	events atomic.Uint32
	// fdrefs counts the application system calls in progress on fd outside the sockbuf
	// locks, plus fdClosing once destroy wants the fd closed: the last of them closes it.
	fdrefs atomic.Int32
	// laddr caches the local address once the kernel has assigned its port.
	laddr atomic.Pointer[netip.AddrPort]

	// raddr is the peer's address when it was known at creation (accept4 returns it,
	// connect is given it, FromConn asks getpeername), so that RemoteAddr and a
	// connected UDP socket's senders cost no getpeername; set before the socket is
	// registered and never changed.
	raddr netip.AddrPort
	// onConnect is ConnectFunc's callback: taken and called once, on the worker, by
	// writable when the connect completes or fails. Only the worker touches it after
	// newSocket.
	onConnect func(error)
}

// sockExtra holds what few sockets need, made on first use so that an idle socket stays
// small: the context cancelled by Close (for waits on memory) and a cluster kept from a
// memory wait for the next input.
type sockExtra struct {
	mu      sync.Mutex
	ctx     context.Context
	cancel  context.CancelFunc
	reserve *mbuf.Mbuf // a cluster won by a memory wait, for the next input

	linger      int        // SetLinger's seconds, lingerDefault (-1) for the default
	lingerSet   bool       // SetLinger was called
	lingerArmed bool       // lingerTimer was set up and armed by a closing drain
	lingerTimer netq.Timer // ends a closing drain: lingerExpired
}

// sockHandler is the Socket's netq.Handler, kept off the exported method set.
type sockHandler Socket

func (h *sockHandler) Ready(events uint32) { (*Socket)(h).ready(events) }

// newSocket wraps fd, registers it on w and returns the socket. raddr is the peer's
// address if known (else the zero AddrPort: RemoteAddr asks the kernel); onConnect, if
// set, is ConnectFunc's callback for a connecting socket. On error fd is closed.
func newSocket(fd int, w *netq.Worker, ni netinfo, state uint32, raddr netip.AddrPort, onConnect func(error)) (*Socket, error) {
	so := &Socket{fd: fd, w: w, ni: ni, raddr: raddr, onConnect: onConnect}
	so.state.Store(state)
	if ni.tcp() {
		so.rcv.reserve(defaultTCPRcv, 1)
		so.snd.reserve(defaultTCPSnd, defaultSndLow)
	} else {
		so.rcv.reserve(defaultUDPRcv, 1)
		so.snd.reserve(defaultUDPSnd, defaultSndLow)
	}
	so.inTask.Init(so.input)
	so.outTask.Init(so.output)
	ev := uint32(unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP)
	if state&ssListening != 0 {
		ev = 0
	}
	if err := w.Register(fd, ev, (*sockHandler)(so)); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return so, nil
}

// Worker returns the netq worker that owns the socket: its input, output and splice
// work all run there. Dial a splice's other end on it (Dialer.Worker) to keep both ends
// of a relay on one worker.
func (so *Socket) Worker() *netq.Worker { return so.w }

// ready is the socket's handler: the worker calls it when epoll reports the fd.
func (so *Socket) ready(ev uint32) {
	if so.state.Load()&ssDestroyed != 0 {
		return
	}
	if ev&unix.EPOLLERR != 0 && so.state.Load()&ssConnecting == 0 {
		if e := sockError(so.fd); e != 0 {
			so.setError(e)
		}
	}
	// Counted after SO_ERROR is taken: an application call that sees the event and
	// tries again sees the error too, not the EOF that read(2) gives once it is taken.
	so.events.Add(1)
	if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		so.writable(ev)
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			// The FIN may have come with the data of this same edge: a short read
			// then does not mean there is nothing more to see.
			so.rcv.mu.Lock()
			so.rcv.flags |= sbRdHup
			so.rcv.mu.Unlock()
		}
		so.input()
	}
}

// setError is soerror: it records a pending error (the first one wins until it is
// reported) and wakes every reader, writer and splice of the socket.
func (so *Socket) setError(e syscall.Errno) {
	so.soerr.CompareAndSwap(0, int32(e))
	so.rcv.mu.Lock()
	so.sorwakeup()
	so.rcv.mu.Unlock()
	so.snd.mu.Lock()
	so.sowwakeup()
	so.snd.mu.Unlock()
}

// takeError returns and clears the pending error (getsockopt SO_ERROR).
func (so *Socket) takeError() syscall.Errno {
	if so.soerr.Load() == 0 {
		return 0
	}
	return syscall.Errno(so.soerr.Swap(0))
}

// opError wraps an error as package net does, so that errors.Is(err, syscall.ECONNRESET)
// and net.Error's Timeout work. Its addresses are the cached ones: no system call.
func (so *Socket) opError(op string, err error) error {
	if err == nil {
		return nil
	}
	if e, ok := err.(syscall.Errno); ok {
		err = os.NewSyscallError(op, e)
	}
	return &net.OpError{Op: op, Net: so.ni.name, Source: so.localAddr(), Addr: so.RemoteAddr(), Err: err}
}

// LocalAddr returns the local address (getsockname, asked once the port is known and
// then cached), or nil once closed.
func (so *Socket) LocalAddr() net.Addr {
	if so.state.Load()&ssDestroyed != 0 {
		return nil
	}
	return so.localAddr()
}

// RemoteAddrPort returns the peer's address as RemoteAddr does, as a netip.AddrPort
// (the zero AddrPort if there is none): no allocation, for a caller that keys on it.
func (so *Socket) RemoteAddrPort() netip.AddrPort { return so.peer() }

// RemoteAddr returns the peer's address, or nil if there is none. For an accepted,
// dialled or taken-over connected socket it is the address accept, connect or
// getpeername had when the socket was made, with no system call.
func (so *Socket) RemoteAddr() net.Addr {
	ap := so.peer()
	if !ap.IsValid() {
		return nil
	}
	return so.proto().netAddr(ap)
}

// SetDeadline sets the read and write deadlines, as net.Conn says.
func (so *Socket) SetDeadline(t time.Time) error {
	if err := so.SetReadDeadline(t); err != nil {
		return err
	}
	return so.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline for Read and Recv, including calls already blocked.
// The zero time removes it.
func (so *Socket) SetReadDeadline(t time.Time) error {
	if so.state.Load()&ssClosed != 0 {
		return so.opError("set", net.ErrClosed)
	}
	if d := so.dl.get(&so.dl.rd, !t.IsZero()); d != nil {
		d.set(t)
		so.rcv.mu.Lock()
		so.rcv.wakeup() // waiters that started without a deadline pick it up
		so.rcv.mu.Unlock()
	}
	return nil
}

// SetWriteDeadline sets the deadline for Write, Send and SendFile, including calls
// already blocked. The zero time removes it.
func (so *Socket) SetWriteDeadline(t time.Time) error {
	if so.state.Load()&ssClosed != 0 {
		return so.opError("set", net.ErrClosed)
	}
	if d := so.dl.get(&so.dl.wr, !t.IsZero()); d != nil {
		d.set(t)
		so.snd.mu.Lock()
		so.snd.wakeup()
		so.snd.mu.Unlock()
	}
	return nil
}

// SetReadBuffer sets the receive sockbuf's high-water mark to n bytes and passes the same
// size to the kernel socket (SO_RCVBUF), as net.TCPConn does.
func (so *Socket) SetReadBuffer(n int) error {
	if n <= 0 {
		return so.opError("set", syscall.EINVAL)
	}
	if so.state.Load()&ssClosed != 0 {
		return so.opError("set", net.ErrClosed)
	}
	so.rcv.mu.Lock()
	so.rcv.reserve(n, so.rcv.lowat)
	so.rcv.flags |= sbSized
	so.resumeInputLocked()
	so.rcv.mu.Unlock()
	if err := unix.SetsockoptInt(so.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, n); err != nil {
		return so.opError("setsockopt", err)
	}
	return nil
}

// SetWriteBuffer sets the send sockbuf's high-water mark to n bytes (the send low-water
// mark stays 2048 bytes, or n if smaller) and passes the same size to the kernel socket
// (SO_SNDBUF), as net.TCPConn does.
func (so *Socket) SetWriteBuffer(n int) error {
	if n <= 0 {
		return so.opError("set", syscall.EINVAL)
	}
	if so.state.Load()&ssClosed != 0 {
		return so.opError("set", net.ErrClosed)
	}
	so.snd.mu.Lock()
	so.snd.reserve(n, defaultSndLow)
	so.snd.flags |= sbSized
	so.sowwakeup()
	so.snd.mu.Unlock()
	if err := unix.SetsockoptInt(so.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, n); err != nil {
		return so.opError("setsockopt", err)
	}
	return nil
}

// CloseWrite is soshutdown(SHUT_WR): it shuts down the sending side once the send sockbuf
// has been written, so the peer reads everything written before it, then EOF. Later
// writes fail with EPIPE.
func (so *Socket) CloseWrite() error {
	if so.state.Load()&ssClosed != 0 {
		return so.opError("close", net.ErrClosed)
	}
	if !so.ni.tcp() {
		return so.opError("close", syscall.EOPNOTSUPP)
	}
	so.snd.mu.Lock()
	defer so.snd.mu.Unlock()
	if so.snd.flags&sbCantMore != 0 {
		return nil
	}
	so.snd.flags |= sbCantMore
	so.sowwakeup()
	if so.snd.cc == 0 && so.snd.flags&sbBusy == 0 {
		unix.Shutdown(so.fd, unix.SHUT_WR)
		return nil
	}
	so.snd.flags |= sbShutPending
	so.w.Add(&so.outTask)
	return nil
}

// CloseRead shuts down the receiving side: soshutdown(SHUT_RD). Data queued is dropped
// and reads return EOF.
func (so *Socket) CloseRead() error {
	if so.state.Load()&ssClosed != 0 {
		return so.opError("close", net.ErrClosed)
	}
	so.rcv.mu.Lock()
	defer so.rcv.mu.Unlock()
	so.rcv.flags |= sbCantMore
	unix.Shutdown(so.fd, unix.SHUT_RD)
	if so.rcv.flags&sbSplice == 0 {
		so.rcv.flush()
	}
	so.sorwakeup()
	return nil
}

// Close is soclose(): it closes the socket at once for its users (blocked calls return
// net.ErrClosed), dissolves its splices, frees its receive buffer, and closes the fd. Data
// already in the send sockbuf is still written, as the kernel sends what a closed socket
// had queued; the fd closes when that is done (or fails). Called from a goroutine that is
// not a netq worker, Close returns after the worker has done this, so that the fd is
// closed when it returns unless sent data is pending (or a Read or Write of another
// goroutine is in a system call on it at that moment: the fd closes when that returns).
func (so *Socket) Close() error {
	for {
		s := so.state.Load()
		if s&ssClosed != 0 {
			return so.opError("close", net.ErrClosed)
		}
		if so.state.CompareAndSwap(s, s|ssClosed) {
			break
		}
	}
	for _, sb := range []*sockbuf{&so.rcv, &so.snd} {
		sb.mu.Lock()
		sb.flags |= sbClosed
		sb.wakeup()
		sb.mu.Unlock()
	}
	if x := so.x.Load(); x != nil {
		x.mu.Lock()
		if x.cancel != nil {
			x.cancel()
		}
		x.mu.Unlock()
	}
	runOn(so.w, so.doomed)
	return nil
}

// doomed runs on the worker after Close: it dissolves splices, drops the receive side,
// and destroys the socket unless the send sockbuf still has data for the kernel.
func (so *Socket) doomed() {
	for {
		s := so.state.Load()
		if s&(ssDoomed|ssDestroyed) != 0 {
			return
		}
		if so.state.CompareAndSwap(s, s|ssDoomed) {
			break
		}
	}
	so.unspliceAll()
	so.rcv.mu.Lock()
	so.rcv.flags |= sbCantMore
	so.rcv.flush()
	so.rcv.mu.Unlock()
	if x := so.x.Load(); x != nil {
		x.mu.Lock()
		if x.reserve != nil {
			x.reserve.FreeM()
			x.reserve = nil
		}
		x.mu.Unlock()
	}
	linger := so.lingerTime()
	if linger == 0 {
		so.abort() // SO_LINGER 0: discard and reset
		return
	}
	so.snd.mu.Lock()
	pending := so.snd.cc > 0 && so.state.Load()&ssConnected != 0 && so.soerr.Load() == 0
	if !pending {
		so.snd.flush()
	}
	so.snd.mu.Unlock()
	if pending {
		so.lingerStart(linger)
		so.output() // destroys the socket when the buffer is written
		return
	}
	so.destroy()
}

// destroy is sofree(): it unregisters and closes the fd and frees what is left. It runs
// once, on the worker (or anywhere after the group closed).
func (so *Socket) destroy() {
	for {
		s := so.state.Load()
		if s&ssDestroyed != 0 {
			return
		}
		if so.state.CompareAndSwap(s, s|ssDestroyed|ssDoomed) {
			break
		}
	}
	so.w.Unregister(so.fd)
	so.w.Del(&so.inTask)
	so.w.Del(&so.outTask)
	so.lingerStop()
	if sp := so.sp.Load(); sp != nil {
		sp.release(so)
	}
	so.rcv.mu.Lock()
	so.rcv.flush()
	so.rcv.mu.Unlock()
	so.snd.mu.Lock()
	so.snd.flush()
	so.snd.mu.Unlock()
	so.closeFd()
}

// ctx returns a context cancelled by Close, for waits on memory.
func (so *Socket) ctx() context.Context {
	x := so.extra()
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ctx == nil {
		x.ctx, x.cancel = context.WithCancel(context.Background())
		if so.state.Load()&ssClosed != 0 {
			x.cancel()
		}
	}
	return x.ctx
}

func (so *Socket) extra() *sockExtra {
	if x := so.x.Load(); x != nil {
		return x
	}
	so.x.CompareAndSwap(nil, &sockExtra{})
	return so.x.Load()
}

// sorwakeup wakes the readers of the socket, or, while it is the source of a running
// splice, queues the splice task instead (sorwakeup with SB_SPLICE). so.rcv.mu is held.
func (so *Socket) sorwakeup() {
	if so.rcv.flags&sbSplice != 0 {
		if sp := so.sp.Load(); sp != nil {
			sp.queue()
		}
		return
	}
	so.rcv.wakeup()
}

// sowwakeup wakes the writers of the socket, or, while it is the drain of a running
// splice, queues the source's splice task as well (sowwakeup with SB_SPLICE): the owner
// may still write to a drain. so.snd.mu is held.
func (so *Socket) sowwakeup() {
	if so.snd.flags&sbSplice != 0 {
		if sp := so.sp.Load(); sp != nil && sp.soback != nil {
			sp.soback.sp.Load().queue()
		}
	}
	so.snd.wakeup()
}

// resumeInputLocked queues the input task if input stopped because rcv was full and
// there is room again. so.rcv.mu is held.
func (so *Socket) resumeInputLocked() {
	if so.rcv.flags&sbStalled != 0 && so.rcv.space() > 0 {
		so.rcv.flags &^= sbStalled
		so.w.Add(&so.inTask)
	}
}
