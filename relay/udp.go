package relay

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/softnet-go/softnet/netq"
	"github.com/softnet-go/softnet/socket"
	"golang.org/x/sys/unix"
)

// udpRelay keeps a flow per client address. The listener receives a client's first
// datagram; the relay then opens a socket bound to the listener's address and connected
// to the client (SO_REUSEPORT: the kernel delivers that client's later datagrams to the
// connected socket) and a socket connected to a target, and splices the two both ways.
// Datagrams that reach the listener before the connected socket exists are sent on by
// the relay itself.
type udpRelay struct {
	srv   *Server
	ln    *net.UDPConn
	stats *relayStats
	open  *flowSet
	adm   *admission
	cur   atomic.Pointer[settings]
	next  atomic.Uint64
	done  chan struct{}

	mu    sync.Mutex
	flows map[netip.AddrPort]*flow

	strayBuf []byte // takeStrays' buffer; newFlow runs only on readLoop's goroutine
}

func (r *udpRelay) settings() *settings   { return r.cur.Load() }
func (r *udpRelay) admission() *admission { return r.adm }
func (r *udpRelay) update(s *settings)    { r.cur.Store(s) }
func (r *udpRelay) addr() net.Addr        { return r.ln.LocalAddr() }
func (r *udpRelay) stop()                 { r.ln.Close(); <-r.done }

// setSockBuf does nothing: each UDP flow's sockets are sized when they are made.
func (r *udpRelay) setSockBuf(int64) error { return nil }

// reusePort sets SO_REUSEADDR and SO_REUSEPORT, so that a client's connected socket can
// share the listener's address.
func reusePort(_, _ string, c syscall.RawConn) error {
	var err error
	c.Control(func(fd uintptr) {
		err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
		if err == nil {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReusePort, 1)
		}
	})
	return err
}

// soReusePort is SO_REUSEPORT on Linux (package syscall does not name it).
const soReusePort = 0xf

// listenReusePort binds the listener with SO_REUSEADDR and SO_REUSEPORT. It first binds
// the address with a plain socket, which no other socket may share, and closes it:
// for port 0, that lets the kernel pick a port no reuse socket (of any process) holds,
// where a reuse socket's own pick could land on one and share its datagrams; for
// another port, unless share is set (reuse_port), it fails with EADDRINUSE when any
// socket holds the address — another daemon's listener, or the client sockets of this
// relay's flows still open on it since it last listened there.
func listenReusePort(network, addr string, share bool) (*net.UDPConn, error) {
	if _, port, err := net.SplitHostPort(addr); err == nil && (port == "0" || !share) {
		pc, err := net.ListenPacket(network, addr)
		if err != nil {
			return nil, err
		}
		addr = pc.LocalAddr().String()
		pc.Close()
	}
	lc := net.ListenConfig{Control: reusePort}
	pc, err := lc.ListenPacket(context.Background(), network, addr)
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

func startUDP(srv *Server, s *settings, rec *relayRecord, adm *admission) (*udpRelay, error) {
	ln, err := listenReusePort(s.cfg.Protocol, s.cfg.Listen, s.cfg.ReusePort)
	if err != nil {
		return nil, err
	}
	r := &udpRelay{srv: srv, ln: ln, stats: rec.stats, open: rec.flows, adm: adm,
		done: make(chan struct{}), flows: map[netip.AddrPort]*flow{}}
	r.cur.Store(s)
	go r.readLoop()
	return r, nil
}

func (r *udpRelay) readLoop() {
	defer close(r.done)
	buf := make([]byte, 64<<10)
	for {
		n, from, err := r.ln.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			r.settings().log.Debug("read failed", "err", err)
			continue
		}
		r.dispatch(from, buf[:n])
	}
}

// dispatch sends on a datagram from a client that reached the listener (or a new flow's
// socket before it was connected), making the client's flow if it has none.
func (r *udpRelay) dispatch(from netip.AddrPort, b []byte) {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	r.mu.Lock()
	f := r.flows[from]
	r.mu.Unlock()
	if f == nil {
		if f = r.newFlow(from, b); f == nil {
			r.stats.drop(errNoFlow) // counted and logged as the flow's failure too
		}
		return
	}
	r.sendOn(f, b)
}

func (r *udpRelay) sendOn(f *flow, b []byte) {
	if _, err := f.target.Load().Write(b); err == nil {
		f.extra[toTarget].Add(int64(len(b)))
	} else {
		r.stats.drop(err)
	}
}

// A stray is a datagram that reached a new flow's socket from another client.
type stray struct {
	from netip.AddrPort
	data []byte
}

// takeStrays empties the queue of a client's socket just connected. Between its bind
// and its connect it was an unconnected member of the listener's SO_REUSEPORT group, so
// the kernel may have queued other clients' datagrams on it; splicing them would send
// them on as this client's. It returns this client's datagrams and the others'.
func takeStrays(c *net.UDPConn, client netip.AddrPort, buf []byte) (own [][]byte, others []stray) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, nil
	}
	// A non-blocking recvfrom on the raw fd: package net's reads check the deadline
	// before they try the system call, so a past deadline would read nothing.
	rc.Read(func(fd uintptr) bool {
		for {
			n, sa, err := unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
			if err != nil {
				return true // EAGAIN: the queue is empty
			}
			d := append([]byte(nil), buf[:n]...)
			if from := addrPortOf(sa); from == client {
				own = append(own, d)
			} else if from.IsValid() {
				others = append(others, stray{from, d})
			}
		}
	})
	return own, others
}

// addrPortOf converts a recvfrom source to an unmapped netip.AddrPort.
func addrPortOf(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	}
	return netip.AddrPort{}
}

// newFlow opens the client's connected socket and a socket connected to the next target,
// and starts splicing.
func (r *udpRelay) newFlow(client netip.AddrPort, first []byte) *flow {
	s := r.settings()
	r.stats.accept()
	src, ok := r.adm.admit(s, r.stats, client.Addr())
	if !ok {
		return nil
	}
	made := false
	defer func() {
		if !made {
			r.adm.release(src)
		}
	}()
	d := net.Dialer{LocalAddr: r.ln.LocalAddr(), Control: reusePort}
	cc, err := d.Dial(s.cfg.Protocol, client.String())
	if err != nil {
		r.stats.fail("client_socket")
		s.log.Warn("cannot open a socket for the client", "client", client.String(), "err", err)
		return nil
	}
	if r.strayBuf == nil {
		r.strayBuf = make([]byte, 64<<10)
	}
	own, others := takeStrays(cc.(*net.UDPConn), client, r.strayBuf)
	defer func() {
		for _, st := range others {
			r.dispatch(st.from, st.data)
		}
	}()
	workers := r.srv.workers
	if workers == nil {
		workers = netq.Default()
	}
	c, err := socket.FromConnOn(cc, workers.Worker(uint32(r.next.Load())))
	if err == nil {
		if err = setSockBuf(c, r.srv.sockbuf.Load(), true); err != nil {
			c.Close()
		}
	} else {
		cc.Close()
	}
	if err != nil {
		r.stats.fail("client_socket")
		s.log.Warn("cannot take over the client's socket", "client", client.String(), "err", err)
		return nil
	}
	tg := s.targets[(r.next.Add(1)-1)%uint64(len(s.targets))]
	addr := tg.name
	ctx, cancel := context.WithTimeout(r.srv.ctx, s.cfg.ConnectTimeout)
	td := socket.Dialer{Worker: c.Worker()}
	t, err := td.DialContext(ctx, s.cfg.Protocol, tg.addr().String())
	cancel()
	if err == nil {
		if err = setSockBuf(t, r.srv.sockbuf.Load(), true); err != nil {
			t.Close()
		}
	}
	if err != nil {
		c.Close()
		r.stats.targetFailed(addr)
		r.stats.fail("connect")
		s.log.Warn("cannot open a socket to the target", "target", addr, "err", err)
		return nil
	}
	f := &flow{stats: r.stats, udp: true, client: c}
	f.target.Store(t)
	f.pending.Store(1)
	// Forget the client before its socket closes, so that its next datagram starts a
	// new flow rather than reaching a closed one.
	f.forget = func() {
		r.mu.Lock()
		if r.flows[client] == f {
			delete(r.flows, client)
		}
		r.mu.Unlock()
	}
	if !r.open.add(f) {
		f.close()
		return nil
	}
	r.mu.Lock()
	r.flows[client] = f
	r.mu.Unlock()
	// In order: the datagram that made the flow, then those that reached its socket
	// before it was connected, then (spliced) the rest.
	r.sendOn(f, first)
	for _, d := range own {
		r.sendOn(f, d)
	}
	if s.log.Enabled(r.srv.ctx, slog.LevelDebug) {
		s.log.Debug("flow started", "client", client.String(), "target", addr)
	}
	r.srv.wg.Add(1)
	made = true
	if s.accessLog {
		f.begun = time.Now()
	}
	f.done = func() {
		r.open.remove(f)
		r.adm.release(src)
		if s.accessLog {
			f.logAccess(s, t.RemoteAddr().String())
		}
		r.srv.wg.Done()
	}
	f.start(s.mode, s.cfg.Max, s.cfg.Idle, r.srv.budget)
	return f
}
