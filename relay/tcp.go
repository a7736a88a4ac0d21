package relay

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"time"
)

// dialTimeout bounds the connect to one target.
const dialTimeout = 5 * time.Second

// settings are what a relay applies to each new flow; a reload swaps them.
type settings struct {
	cfg RelayConfig
	eng engine
}

// tcpRelay accepts clients on one listener and relays each to a target.
type tcpRelay struct {
	srv   *Server
	ln    net.Listener
	stats *relayStats
	log   *slog.Logger
	cur   atomic.Pointer[settings]
	next  atomic.Uint64 // round-robin position among the targets
	done  chan struct{}
}

func (r *tcpRelay) settings() *settings { return r.cur.Load() }
func (r *tcpRelay) update(s *settings)  { r.cur.Store(s) }
func (r *tcpRelay) addr() net.Addr      { return r.ln.Addr() }
func (r *tcpRelay) stop()               { r.ln.Close(); <-r.done }

func startTCP(srv *Server, s *settings, st *relayStats) (*tcpRelay, error) {
	ln, err := s.eng.listen(s.cfg.Protocol, s.cfg.Listen)
	if err != nil {
		return nil, err
	}
	r := &tcpRelay{srv: srv, ln: ln, stats: st, log: srv.log.With("relay", s.cfg.Name), done: make(chan struct{})}
	r.cur.Store(s)
	go r.acceptLoop()
	return r, nil
}

func (r *tcpRelay) acceptLoop() {
	defer close(r.done)
	var delay time.Duration
	for {
		c, err := r.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors or memory: wait a little, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			r.log.Warn("accept failed", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		r.stats.accept()
		r.srv.wg.Add(1)
		go func() {
			defer r.srv.wg.Done()
			r.serve(c)
		}()
	}
}

// serve relays one client: connect to a target, send the PROXY header, splice both ways.
func (r *tcpRelay) serve(c net.Conn) {
	s := r.settings()
	t, err := r.dialTarget(s, c)
	if err != nil {
		r.stats.fail("connect")
		r.log.Warn("no target reachable; closing the client", "client", c.RemoteAddr(), "err", err)
		c.Close()
		return
	}
	if v := s.cfg.ProxyProtocol; v != ProxyNone {
		// The header is written to the target before the client's bytes are spliced
		// behind it: the owner of a drain may write to it, and what it writes before the
		// splice starts goes first.
		if _, err := t.Write(proxyHeader(v, c.RemoteAddr(), c.LocalAddr())); err != nil {
			r.stats.fail("proxy_header")
			r.log.Warn("sending the PROXY header failed", "client", c.RemoteAddr(), "target", t.RemoteAddr(), "err", err)
			c.Close()
			t.Close()
			return
		}
	}
	f := newFlow(r.stats, s.eng, c, t, false)
	if !r.stats.add(f) {
		f.close()
		return
	}
	client, target := c.RemoteAddr(), t.RemoteAddr()
	r.log.Debug("flow started", "client", client, "target", target)
	r.srv.wg.Add(1)
	f.start(s.cfg.Max, s.cfg.Idle, func() {
		r.stats.remove(f)
		r.log.Debug("flow ended", "client", client, "target", target,
			"bytes_to_target", f.moved(toTarget), "bytes_to_client", f.moved(toClient))
		r.srv.wg.Done()
	})
}

// dialTarget connects to the next target in turn; a target that refuses or does not
// answer within dialTimeout is counted and skipped.
func (r *tcpRelay) dialTarget(s *settings, near net.Conn) (net.Conn, error) {
	targets := s.cfg.Targets
	start := r.next.Add(1) - 1
	var errs []error
	for i := range targets {
		addr := targets[(start+uint64(i))%uint64(len(targets))]
		ctx, cancel := context.WithTimeout(r.srv.ctx, dialTimeout)
		t, err := s.eng.dial(ctx, s.cfg.Protocol, addr, near)
		cancel()
		if err == nil {
			return t, nil
		}
		r.stats.targetFailed(addr)
		r.log.Debug("target failed", "target", addr, "err", err)
		errs = append(errs, err)
		if r.srv.ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}
