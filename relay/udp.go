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
	log   *slog.Logger
	cur   atomic.Pointer[settings]
	next  atomic.Uint64
	done  chan struct{}

	mu    sync.Mutex
	flows map[netip.AddrPort]*flow
}

func (r *udpRelay) settings() *settings { return r.cur.Load() }
func (r *udpRelay) update(s *settings)  { r.cur.Store(s) }
func (r *udpRelay) addr() net.Addr      { return r.ln.LocalAddr() }
func (r *udpRelay) stop()               { r.ln.Close(); <-r.done }

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

// listenReusePort binds the listener with SO_REUSEADDR and SO_REUSEPORT. For port 0 it
// first lets the kernel pick a port with a plain bind, which no other socket may share:
// when a socket with the reuse options binds port 0, the kernel may pick a port that
// another reuse socket (of any process) holds, and the two would share its datagrams.
func listenReusePort(network, addr string) (*net.UDPConn, error) {
	if _, port, err := net.SplitHostPort(addr); err == nil && port == "0" {
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

func startUDP(srv *Server, s *settings, st *relayStats) (*udpRelay, error) {
	ln, err := listenReusePort(s.cfg.Protocol, s.cfg.Listen)
	if err != nil {
		return nil, err
	}
	r := &udpRelay{srv: srv, ln: ln, stats: st, log: srv.log.With("relay", s.cfg.Name),
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
			r.log.Debug("read failed", "err", err)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		r.mu.Lock()
		f := r.flows[from]
		r.mu.Unlock()
		if f == nil {
			f = r.newFlow(from)
			if f == nil {
				r.stats.drop(errNoFlow) // counted and logged as the flow's failure too
				continue
			}
		}
		if _, err := f.target.Write(buf[:n]); err == nil {
			f.extra[toTarget].Add(int64(n))
		} else {
			r.stats.drop(err)
		}
	}
}

// newFlow opens the client's connected socket and a socket connected to the next target,
// and starts splicing.
func (r *udpRelay) newFlow(client netip.AddrPort) *flow {
	s := r.settings()
	r.stats.accept()
	d := net.Dialer{LocalAddr: r.ln.LocalAddr(), Control: reusePort}
	cc, err := d.Dial(s.cfg.Protocol, client.String())
	if err != nil {
		r.stats.fail("client_socket")
		r.log.Warn("cannot open a socket for the client", "client", client, "err", err)
		return nil
	}
	c, err := s.eng.fromConn(cc.(*net.UDPConn))
	if err != nil {
		cc.Close()
		r.stats.fail("client_socket")
		r.log.Warn("cannot take over the client's socket", "client", client, "err", err)
		return nil
	}
	targets := s.cfg.Targets
	addr := targets[(r.next.Add(1)-1)%uint64(len(targets))]
	ctx, cancel := context.WithTimeout(r.srv.ctx, dialTimeout)
	t, err := s.eng.dial(ctx, s.cfg.Protocol, addr, c)
	cancel()
	if err != nil {
		c.Close()
		r.stats.targetFailed(addr)
		r.stats.fail("connect")
		r.log.Warn("cannot open a socket to the target", "target", addr, "err", err)
		return nil
	}
	f := newFlow(r.stats, s.eng, c, t, true)
	// Forget the client before its socket closes, so that its next datagram starts a
	// new flow rather than reaching a closed one.
	f.forget = func() {
		r.mu.Lock()
		if r.flows[client] == f {
			delete(r.flows, client)
		}
		r.mu.Unlock()
	}
	if !r.stats.add(f) {
		f.close()
		return nil
	}
	r.mu.Lock()
	r.flows[client] = f
	r.mu.Unlock()
	r.log.Debug("flow started", "client", client, "target", addr)
	r.srv.wg.Add(1)
	f.start(s.cfg.Max, s.cfg.Idle, func() {
		r.stats.remove(f)
		r.log.Debug("flow ended", "client", client, "target", addr,
			"bytes_to_target", f.moved(toTarget), "bytes_to_client", f.moved(toClient))
		r.srv.wg.Done()
	})
	return f
}
