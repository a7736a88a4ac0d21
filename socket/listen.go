package socket

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/softnet-go/softnet/netq"
	"golang.org/x/sys/unix"
)

// acceptBatch is how many connections a worker accepts for one listener per turn.
const acceptBatch = 32

// errOnAccept is Accept's error on a Listener whose connections go to OnAccept.
var errOnAccept = errors.New("socket: the listener hands its connections to OnAccept")

// A ListenConfig chooses where listening sockets run. The zero value uses netq.Default().
type ListenConfig struct {
	// Group is the set of workers: a listener opens one SO_REUSEPORT socket on each, and
	// the kernel's flow hash picks the one (and so the worker) for each connection. Nil
	// means netq.Default().
	Group *netq.Group
	// Worker, if set, is the one worker for ListenPacket (and for Listen, which then
	// opens a single socket). Nil spreads packet sockets over Group round-robin.
	Worker *netq.Worker
	// Backlog is the listen(2) backlog of each socket and the bound of the queue of
	// accepted connections waiting for Accept; 0 means 1024.
	Backlog int
	// ReadBuffer and WriteBuffer, if not 0, are SetReadBuffer and SetWriteBuffer for
	// every accepted socket at no cost per connection: they size the listening sockets'
	// kernel buffers (SO_RCVBUF, SO_SNDBUF), which Linux copies to each connection it
	// accepts, together with TCP_NODELAY, and set the accepted sockets' sockbuf marks to
	// match. Listener.SetBuffers changes them later.
	ReadBuffer, WriteBuffer int
	// KeepAliveConfig, if Enable is set, is Socket.SetKeepAliveConfig for every accepted
	// connection, at no cost per connection: it is set on the listening sockets, and
	// Linux copies it to each connection they accept.
	KeepAliveConfig net.KeepAliveConfig
	// OnAccept, if set, takes each accepted connection on the worker that accepted it,
	// in place of Accept (which then fails): the socket runs on that worker, and a relay
	// connects its target there (Dialer{Worker: so.Worker()}.ConnectFunc) and splices
	// the two when it is up — no goroutine, channel or shared lock per connection, as
	// OpenBSD runs a flow's splicing on the softnet thread that received it. OnAccept
	// owns the socket and must not block.
	OnAccept func(so *Socket)
	// OnAcceptError, if set, learns of accept(2) failures with OnAccept: running out of
	// descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) and the like. The worker
	// stops accepting on that socket for retry (5 ms, doubling to 1 s while failures
	// go on, as net/http backs off) and tries again. It runs on the worker and must not
	// block.
	OnAcceptError func(err error, retry time.Duration)
	// ReusePort lets sockets of other processes (of the same user, as Linux requires)
	// listen on the address too, SO_REUSEPORT spreading connections over all of them:
	// for zero-downtime swaps, a new daemon starting on the address before the old one
	// stops. Without it, Listen fails with EADDRINUSE when another socket already
	// listens there, rather than silently taking a share of its connections. A
	// listener's own sockets, one per worker, share the address either way.
	ReusePort bool
}

func (lc *ListenConfig) group() *netq.Group {
	if lc != nil && lc.Group != nil {
		return lc.Group
	}
	if lc != nil && lc.Worker != nil {
		return lc.Worker.Group()
	}
	return netq.Default()
}

// A Listener is a TCP listener: one SO_REUSEPORT socket per worker, each accepting on its
// own worker, so that a connection's socket stays on the worker whose socket the
// kernel's hash chose (the mbuf's flowid: the work for a flow stays on the worker that
// took it in).
type Listener struct {
	ni    netinfo
	addr  net.Addr
	socks []*lsock
	max   int

	onAccept      func(*Socket)
	onAcceptError func(error, time.Duration)

	// The sizes SetBuffers gave the listening sockets, for the sockbufs of accepted
	// sockets (0: the defaults, and the kernel's autotuning).
	rcvbuf, sndbuf atomic.Int64
	closing        atomic.Bool // closed, for the workers' OnAccept path, which takes no lock

	mu     sync.Mutex
	q      []*Socket // accepted, waiting for Accept
	err    error     // an accept error to report (EMFILE...)
	closed bool
	waitc  chan struct{}
}

// lsock is one worker's listening socket.
type lsock struct {
	l       *Listener
	fd      int
	w       *netq.Worker
	task    netq.Task
	stalled bool // guarded by l.mu: stopped accepting because the queue was full

	// With OnAccept: the back-off after an accept failure, on the worker.
	retry      netq.Timer
	retryDelay time.Duration
}

func (ls *lsock) Ready(uint32) {
	if ls.l.onAccept != nil {
		ls.acceptTo()
		return
	}
	ls.accept()
}

// Listen announces on a local TCP address, as net.Listen does, with one socket per
// worker of netq.Default(). Networks: tcp, tcp4, tcp6.
func Listen(network, address string) (*Listener, error) {
	var lc ListenConfig
	return lc.Listen(network, address)
}

// Listen announces on a local TCP address with lc's workers.
func (lc *ListenConfig) Listen(network, address string) (*Listener, error) {
	ni, ap, err := listenAddr(network, address, &tcpProto)
	if err != nil {
		return nil, err
	}
	backlog := 1024
	if lc != nil && lc.Backlog > 0 {
		backlog = lc.Backlog
	}
	workers := lc.group().Workers()
	if lc != nil && lc.Worker != nil {
		workers = []*netq.Worker{lc.Worker}
	}
	family := ni.family
	l := &Listener{ni: ni, max: backlog}
	if lc != nil {
		l.onAccept, l.onAcceptError = lc.OnAccept, lc.OnAcceptError
	}
	sa := sockaddr(family, ap)
	if (lc == nil || !lc.ReusePort) && ap.Port() != 0 {
		if err := probeBind(family, sa); err != nil {
			return nil, &net.OpError{Op: "listen", Net: network, Addr: netAddr(true, sa), Err: err}
		}
	}
	for i, w := range workers {
		fd, err := newSysSocket(family, unix.SOCK_STREAM)
		if err == nil {
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			// Inherited by every accepted connection: no setsockopt per connection.
			unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
			if len(workers) > 1 {
				err = os.NewSyscallError("setsockopt", unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1))
				if errnoOf(err) == 0 {
					err = nil
				}
			}
			if err == nil {
				if e := unix.Bind(fd, sa); e != nil {
					err = os.NewSyscallError("bind", e)
				}
			}
			if err == nil {
				if e := unix.Listen(fd, backlog); e != nil {
					err = os.NewSyscallError("listen", e)
				}
			}
			if err != nil {
				unix.Close(fd)
			}
		}
		if err != nil {
			l.Close()
			return nil, &net.OpError{Op: "listen", Net: network, Addr: netAddr(true, sa), Err: err}
		}
		if i == 0 { // the port 0 resolves now; the other sockets join it
			lsa, _ := unix.Getsockname(fd)
			l.addr = netAddr(true, lsa)
			if p, ok := addrPort(lsa); ok {
				sa = sockaddr(family, netipPort(ap, p.Port()))
			}
		}
		if lc != nil && lc.KeepAliveConfig.Enable {
			if err := setKeepAlive(fd, lc.KeepAliveConfig); err != nil {
				unix.Close(fd)
				l.Close()
				return nil, &net.OpError{Op: "listen", Net: network, Addr: l.addr, Err: err}
			}
		}
		if lc != nil && (lc.ReadBuffer != 0 || lc.WriteBuffer != 0) {
			if err := setBuffers(fd, lc.ReadBuffer, lc.WriteBuffer); err != nil {
				unix.Close(fd)
				l.Close()
				return nil, &net.OpError{Op: "listen", Net: network, Addr: l.addr, Err: err}
			}
		}
		ls := &lsock{l: l, fd: fd, w: w}
		if l.onAccept != nil {
			ls.task.Init(ls.acceptTo)
			w.InitTimer(&ls.retry, ls.acceptTo)
		} else {
			ls.task.Init(ls.accept)
		}
		l.socks = append(l.socks, ls)
		if err := w.Register(fd, unix.EPOLLIN, ls); err != nil {
			l.Close()
			return nil, &net.OpError{Op: "listen", Net: network, Addr: l.addr, Err: err}
		}
	}
	if lc != nil {
		l.rcvbuf.Store(int64(max(lc.ReadBuffer, 0)))
		l.sndbuf.Store(int64(max(lc.WriteBuffer, 0)))
	}
	return l, nil
}

// listenAddr is the start of Listen and ListenPacket: the network, which must be one of
// protocol pr's, and the local address to bind, resolved, with the socket family it
// takes (ni.family). Errors come as Listen returns them.
func listenAddr(network, address string, pr *protosw) (netinfo, netip.AddrPort, error) {
	ni, err := parseNetwork(network)
	if err == nil && ni.proto() != pr {
		err = net.UnknownNetworkError(network)
	}
	if err != nil {
		return ni, netip.AddrPort{}, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	aps, err := resolve(bgctx, ni, address, true)
	if err != nil {
		return ni, netip.AddrPort{}, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	ni.family = socketFamily(ni, aps[0])
	return ni, aps[0], nil
}

// setBuffers sets SO_RCVBUF and SO_SNDBUF of fd to the sizes that are not 0.
func setBuffers(fd, rcv, snd int) error {
	if rcv < 0 || snd < 0 {
		return syscall.EINVAL
	}
	if rcv > 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcv); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	if snd > 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, snd); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	return nil
}

// SetBuffers is ListenConfig's ReadBuffer and WriteBuffer for the connections accepted
// from now on; open ones keep theirs. A size of 0 leaves that buffer as it is: Linux
// cannot give a socket whose buffer was sized back to autotuning.
func (l *Listener) SetBuffers(read, write int) error {
	for _, ls := range l.socks {
		if err := setBuffers(ls.fd, read, write); err != nil {
			return &net.OpError{Op: "set", Net: l.ni.name, Addr: l.addr, Err: err}
		}
	}
	if read > 0 {
		l.rcvbuf.Store(int64(read))
	}
	if write > 0 {
		l.sndbuf.Store(int64(write))
	}
	return nil
}

// accept runs on the listening socket's worker: it accepts up to acceptBatch
// connections (accept4, non-blocking) into sockets of this worker and queues them for
// Accept. It stops while the queue is full; Accept queues it again.
func (ls *lsock) accept() {
	l := ls.l
	for range acceptBatch {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return
		}
		if len(l.q) >= l.max || l.err != nil {
			ls.stalled = true
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		fd, sa, err := sysAccept(ls.fd)
		if err != nil {
			switch err {
			case unix.EAGAIN:
				return
			case unix.ECONNABORTED: // reset while queued: take the next
				continue
			}
			l.mu.Lock()
			l.err = os.NewSyscallError("accept4", err)
			ls.stalled = true
			l.wakeup()
			l.mu.Unlock()
			return
		}
		so, err := ls.newConn(fd, sa)
		l.mu.Lock()
		if err != nil {
			l.err = err
		} else if l.closed {
			l.mu.Unlock()
			so.Close()
			return
		} else {
			l.q = append(l.q, so)
		}
		l.wakeup()
		l.mu.Unlock()
	}
	ls.w.Add(&ls.task) // more may be waiting: yield to other flows, then go on
}

// newConn makes the socket of an accepted connection, on ls's worker. TCP_NODELAY and
// the kernel buffers' sizes it has from the listening socket; its sockbufs get the
// marks that go with them.
func (ls *lsock) newConn(fd int, sa unix.Sockaddr) (*Socket, error) {
	raddr, _ := addrPort(sa)
	so, err := newSocket(fd, ls.w, ls.l.ni, ssConnected, raddr, nil)
	if err != nil {
		return nil, err
	}
	if n := int(ls.l.rcvbuf.Load()); n > 0 {
		so.rcv.mu.Lock()
		so.rcv.reserve(n, so.rcv.lowat)
		so.rcv.flags |= sbSized
		so.rcv.mu.Unlock()
	}
	if n := int(ls.l.sndbuf.Load()); n > 0 {
		so.snd.mu.Lock()
		so.snd.reserve(n, defaultSndLow)
		so.snd.flags |= sbSized
		so.snd.mu.Unlock()
	}
	return so, nil
}

// acceptTo is accept for a Listener with OnAccept: on the listening socket's worker, it
// accepts up to acceptBatch connections and hands each to OnAccept there. A failure
// other than EAGAIN is reported to OnAcceptError and retried after a back-off, on the
// worker's timer; the back-off resets once a connection is accepted. Its loop is
// accept's: the two part only at what becomes of a connection and of a failure.
func (ls *lsock) acceptTo() {
	l := ls.l
	for range acceptBatch {
		if l.isClosed() {
			return
		}
		fd, sa, err := sysAccept(ls.fd)
		if err != nil {
			switch err {
			case unix.EAGAIN:
				return
			case unix.ECONNABORTED: // reset while queued: take the next
				continue
			}
			ls.retryDelay = min(max(2*ls.retryDelay, 5*time.Millisecond), time.Second)
			if l.onAcceptError != nil {
				l.onAcceptError(os.NewSyscallError("accept4", err), ls.retryDelay)
			}
			ls.retry.Reset(ls.retryDelay)
			return
		}
		ls.retryDelay = 0
		so, err := ls.newConn(fd, sa)
		if err != nil {
			// Registration failed (the fd is closed): the worker is closing, or epoll
			// is out of memory; the client sees a reset.
			if l.onAcceptError != nil {
				l.onAcceptError(err, 0)
			}
			continue
		}
		l.onAccept(so)
	}
	ls.w.Add(&ls.task) // more may be waiting: yield to other flows, then go on
}

// isClosed reports whether Close has begun, without l.mu: every worker's acceptTo asks
// it for every connection, and l.mu is shared by all of them.
func (l *Listener) isClosed() bool { return l.closing.Load() }

func (l *Listener) wakeup() {
	if l.waitc != nil {
		close(l.waitc)
		l.waitc = nil
	}
}

// Accept waits for and returns the next connection. The socket runs on the worker that
// accepted it.
func (l *Listener) Accept() (*Socket, error) {
	if l.onAccept != nil {
		return nil, &net.OpError{Op: "accept", Net: l.ni.name, Addr: l.addr, Err: errOnAccept}
	}
	l.mu.Lock()
	for {
		if l.closed {
			l.mu.Unlock()
			return nil, &net.OpError{Op: "accept", Net: l.ni.name, Addr: l.addr, Err: net.ErrClosed}
		}
		if len(l.q) > 0 {
			so := l.q[0]
			l.q[0] = nil
			l.q = l.q[1:]
			if len(l.q) == 0 {
				l.q = nil
			}
			l.restartLocked()
			l.mu.Unlock()
			return so, nil
		}
		if err := l.err; err != nil {
			l.err = nil
			l.restartLocked()
			l.mu.Unlock()
			return nil, &net.OpError{Op: "accept", Net: l.ni.name, Addr: l.addr, Err: err}
		}
		if l.waitc == nil {
			l.waitc = make(chan struct{})
		}
		c := l.waitc
		l.mu.Unlock()
		<-c
		l.mu.Lock()
	}
}

// restartLocked queues the accept task of every socket that stopped. l.mu is held.
func (l *Listener) restartLocked() {
	for _, ls := range l.socks {
		if ls.stalled {
			ls.stalled = false
			ls.w.Add(&ls.task)
		}
	}
}

// Addr returns the listener's address.
func (l *Listener) Addr() net.Addr { return l.addr }

// Close stops listening: it closes every listening socket and the connections accepted
// but not yet returned by Accept, and makes blocked Accept calls return net.ErrClosed.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return &net.OpError{Op: "close", Net: l.ni.name, Addr: l.addr, Err: net.ErrClosed}
	}
	l.closed = true
	l.closing.Store(true)
	q := l.q
	l.q = nil
	l.wakeup()
	l.mu.Unlock()
	for _, ls := range l.socks {
		runOn(ls.w, func() {
			ls.w.Unregister(ls.fd)
			ls.w.Del(&ls.task)
			if l.onAccept != nil {
				ls.retry.Stop()
			}
			unix.Close(ls.fd)
		})
	}
	for _, so := range q {
		so.Close()
	}
	return nil
}

// runOn runs fn on worker w, after the tasks already queued there, and waits for it
// unless the caller is itself on a worker (then fn runs later). If w's group is closed,
// fn runs at once on the caller.
func runOn(w *netq.Worker, fn func()) {
	var once sync.Once
	f := func() { once.Do(fn) }
	if !w.Add(netq.NewTask(f)) {
		f()
		return
	}
	if err := w.Sync(bgctx); err == netq.ErrClosed {
		f()
	}
}

// probeBind fails with EADDRINUSE if a socket already listens on sa: it binds a socket
// of its own without SO_REUSEPORT (which no other listener's SO_REUSEPORT lets in),
// with SO_REUSEADDR (so that connections of a listener gone, in TIME_WAIT, do not count),
// and closes it. A socket that starts listening between the probe and the bind that
// follows it is not seen.
func probeBind(family int, sa unix.Sockaddr) error {
	fd, err := newSysSocket(family, unix.SOCK_STREAM)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(fd, sa); err != nil {
		return os.NewSyscallError("bind", err)
	}
	return nil
}
