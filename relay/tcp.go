package relay

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
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
	short shortage // running out of descriptors (or memory) to accept or connect with
}

// A shortage is a spell of accept failures (typically EMFILE, ENFILE, ENOBUFS, ENOMEM:
// out of descriptors or memory), and of target connects that fail for the same want. It
// is logged once when it starts and once when it is over, with the count of failures in
// between, rather than once a failure: a flood of clients must not become a flood of log
// lines. It is over when a client accepted after the last failure gets its flow set up.
// Spells that start within shortageLogEvery of the last one logged are not logged (a
// relay living at its descriptor limit would otherwise log every flow that ends); the
// next one logged says how many were not.
type shortage struct {
	seq      atomic.Uint64 // failures ever: a flow set up with no failure since its accept ends a spell
	active   atomic.Bool   // on, for ok's fast path
	mu       sync.Mutex
	on       bool
	logged   bool // this spell's start was logged
	since    time.Time
	failures int64 // in this spell
	warned   time.Time
	unlogged int64 // spells not logged since the last one logged
}

// shortageLogEvery is the least time between two logged spells of a shortage.
const shortageLogEvery = 10 * time.Second

// fail counts a failure of op and logs it if it starts a shortage.
func (s *shortage) fail(log *slog.Logger, op string, err error, retry time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq.Add(1)
	s.failures++
	if s.on {
		return
	}
	now := time.Now()
	s.on, s.since = true, now
	s.active.Store(true)
	s.logged = s.warned.IsZero() || now.Sub(s.warned) >= shortageLogEvery
	if !s.logged {
		s.unlogged++
		return
	}
	s.warned = now
	log.Warn("accept failing: backing off (logged once until it recovers)",
		"op", op, "err", err, "retry_in", retry, "spells_not_logged", s.unlogged)
	s.unlogged = 0
}

// ok ends a shortage, if one is on and no failure came since the flow being set up was
// accepted (seq is s.seq then).
func (s *shortage) ok(log *slog.Logger, seq uint64) {
	if !s.active.Load() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.on || s.seq.Load() != seq {
		return
	}
	if s.logged {
		log.Info("accepting again", "failures", s.failures,
			"after", time.Since(s.since).Round(time.Millisecond))
	}
	s.on, s.failures = false, 0
	s.active.Store(false)
}

// isShortage reports whether err means the process ran out of descriptors or memory.
func isShortage(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
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
			// Out of descriptors or memory: wait a little, as net/http does, and say
			// so once for the whole spell, not once a failure.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			r.short.fail(r.log, "accept", err, delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		seq := r.short.seq.Load()
		r.stats.accept()
		r.srv.wg.Add(1)
		go func() {
			defer r.srv.wg.Done()
			r.serve(c, seq)
		}()
	}
}

// serve relays one client: connect to a target, send the PROXY header, splice both ways.
// seq is r.short's failure count when c was accepted.
func (r *tcpRelay) serve(c net.Conn, seq uint64) {
	s := r.settings()
	t, err := r.dialTarget(s, c)
	if err != nil {
		r.stats.fail("connect")
		if isShortage(err) {
			// No descriptor for the target: part of a shortage, logged once for all.
			r.short.fail(r.log, "connect", err, 0)
			r.log.Debug("no descriptor to connect to a target; closing the client", "client", c.RemoteAddr(), "err", err)
		} else {
			r.log.Warn("no target reachable; closing the client", "client", c.RemoteAddr(), "err", err)
		}
		c.Close()
		return
	}
	r.short.ok(r.log, seq)
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
