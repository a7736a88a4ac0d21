package relay

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/softnet-go/softnet/mbuf"
	"github.com/softnet-go/softnet/netq"
	"github.com/softnet-go/softnet/socket"
)

// settings are what a relay applies to each new flow; a reload swaps them.
type settings struct {
	cfg          RelayConfig
	mode         socket.SpliceMode
	targets      []*target    // cfg.Targets, resolved
	log          *slog.Logger // the server's, with the relay's name
	accessLog    bool         // a line per flow at its end
	maxPerSource int32        // cfg.MaxFlowsPerSource in force; 0: no cap
}

// tcpRelay accepts clients on one listener — a SO_REUSEPORT socket per worker — and
// sets each flow up on the worker that accepted it: it connects to a target there
// (non-blocking, bounded by connect_timeout, moving on to the next target on a refusal
// or a timeout), queues the PROXY header, and splices both ways once the target is up.
// No goroutine, channel or shared lock is taken per connection.
type tcpRelay struct {
	srv   *Server
	ln    *socket.Listener
	stats *relayStats
	flows *flowSet
	adm   *admission
	cur   atomic.Pointer[settings]
	next  atomic.Uint64 // round-robin position among the targets
	short shortage      // running out of descriptors (or memory) to accept or connect with
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

func (r *tcpRelay) settings() *settings   { return r.cur.Load() }
func (r *tcpRelay) admission() *admission { return r.adm }
func (r *tcpRelay) update(s *settings) {
	if old := r.cur.Swap(s); old.cfg.KeepAlive != s.cfg.KeepAlive {
		if err := r.ln.SetKeepAliveConfig(keepAliveConfig(s.cfg.KeepAlive)); err != nil {
			s.log.Warn("cannot set keepalive on the relay's listener", "err", err)
		}
	}
}
func (r *tcpRelay) addr() net.Addr { return r.ln.Addr() }
func (r *tcpRelay) stop()          { r.ln.Close() }

// setSockBuf sizes the kernel buffers of the clients accepted from now on.
func (r *tcpRelay) setSockBuf(n int64) error { return r.ln.SetBuffers(int(n), int(n)) }

func startTCP(srv *Server, s *settings, rec *relayRecord, adm *admission) (*tcpRelay, error) {
	r := &tcpRelay{srv: srv, stats: rec.stats, flows: rec.flows, adm: adm}
	r.cur.Store(s)
	n := int(srv.sockbuf.Load()) // accepted sockets inherit the listener's buffer sizes
	lc := socket.ListenConfig{Group: srv.workers, ReadBuffer: n, WriteBuffer: n, KeepAliveConfig: keepAliveConfig(s.cfg.KeepAlive),
		OnAccept: r.accepted, OnAcceptError: r.acceptFailed, ReusePort: s.cfg.ReusePort}
	ln, err := lc.Listen(s.cfg.Protocol, s.cfg.Listen)
	if err != nil {
		return nil, err
	}
	r.ln = ln
	return r, nil
}

// acceptFailed logs an accept failure (out of descriptors or memory) once per spell.
func (r *tcpRelay) acceptFailed(err error, retry time.Duration) {
	r.short.fail(r.settings().log, "accept", err, retry)
}

// A setup is a TCP flow's connect to a target, on the client's worker: the targets are
// tried in turn from the relay's round-robin position, each of their addresses in
// order, each attempt bounded by connect_timeout.
type setup struct {
	r     *tcpRelay
	s     *settings
	f     *flow
	first uint64         // round-robin position of the first target tried
	try   int            // targets tried before the current one
	next  int            // index of the current target's next address to try
	ap    netip.AddrPort // the address being tried
	seq   uint64         // r.short's failure count at accept
	timer netq.Timer
	err   error // the last attempt's error
}

// accepted runs on the worker that accepted c: it makes the flow and starts its connect.
func (r *tcpRelay) accepted(c *socket.Socket) {
	s := r.settings()
	src, ok := r.adm.admit(s, r.stats, c.RemoteAddrPort().Addr())
	if !ok {
		// Over a cap: closed with a reset, before a flow or a target costs anything.
		c.SetLinger(0)
		c.Close()
		return
	}
	f := &flow{stats: r.stats, client: c}
	if s.accessLog {
		f.begun = time.Now()
	}
	f.pending.Store(1) // the setup
	su := &setup{r: r, s: s, f: f, first: r.next.Add(1) - 1, seq: r.short.seq.Load()}
	c.Worker().InitTimer(&su.timer, su.timedOut)
	f.setup = su
	f.done = func() {
		r.flows.remove(f)
		r.adm.release(src)
		if s.accessLog {
			target := "-"
			if t := f.target.Load(); t != nil {
				target = t.RemoteAddr().String()
			}
			f.logAccess(s, target)
		}
		r.srv.wg.Done()
	}
	r.srv.wg.Add(1)
	r.stats.accept()
	if !r.flows.add(f) {
		f.close() // the server is shutting down
		return
	}
	su.connect()
}

// current returns the target being tried.
func (su *setup) current() *target {
	ts := su.s.targets
	return ts[(su.first+uint64(su.try))%uint64(len(ts))]
}

// connect starts connecting to the next address to try; an attempt that fails at once
// moves on at once. With none left, the flow fails.
func (su *setup) connect() {
	for su.try < len(su.s.targets) {
		t := su.current()
		addrs := *t.addrs.Load()
		if su.next >= len(addrs) {
			su.try++
			su.next = 0
			continue
		}
		su.ap = addrs[su.next]
		su.next++
		d := socket.Dialer{Worker: su.f.client.Worker()}
		so, err := d.ConnectFunc(su.s.cfg.Protocol, su.ap, su.connected)
		if err != nil {
			su.failed(err)
			continue
		}
		su.f.target.Store(so)
		su.timer.Reset(su.s.cfg.ConnectTimeout)
		return
	}
	su.giveUp()
}

// failed counts a failed attempt on the current target.
func (su *setup) failed(err error) {
	su.err = err
	if isShortage(err) {
		// No descriptor for the target: part of a shortage, logged once for all.
		su.r.short.fail(su.s.log, "connect", err, 0)
	}
	t := su.current()
	su.r.stats.targetFailed(t.name)
	su.s.log.Debug("target failed", "target", t.name, "address", su.ap.String(), "err", err)
}

// abandon closes the socket of the attempt in progress, with a reset.
func (su *setup) abandon() {
	if so := su.f.target.Swap(nil); so != nil {
		so.SetLinger(0)
		so.Close() // its callback will not run
	}
}

// connected is ConnectFunc's callback, on the worker.
func (su *setup) connected(err error) {
	if su.f.setup != su {
		return // the flow was closed meanwhile
	}
	su.timer.Stop()
	if err != nil {
		su.abandon()
		su.failed(err)
		su.connect()
		return
	}
	su.established()
}

// timedOut is the connect timer: the target did not answer within connect_timeout.
func (su *setup) timedOut() {
	if su.f.setup != su || su.f.target.Load() == nil {
		return
	}
	su.abandon()
	su.failed(syscall.ETIMEDOUT)
	su.connect()
}

// giveUp fails the flow: no target could be reached.
func (su *setup) giveUp() {
	r, f := su.r, su.f
	f.setup = nil
	r.stats.fail("connect")
	if f.cause == "" {
		f.cause = reason(su.err)
	}
	if isShortage(su.err) {
		su.s.log.Debug("no descriptor to connect to a target; closing the client", "client", f.client.RemoteAddr().String(), "err", su.err)
	} else {
		su.s.log.Warn("no target reachable; closing the client", "client", f.client.RemoteAddr().String(), "err", su.err)
	}
	f.close()
	f.release()
}

// established starts the flow once its target is connected: the PROXY header first,
// then both splices.
func (su *setup) established() {
	r, s, f := su.r, su.s, su.f
	f.setup = nil
	r.short.ok(s.log, su.seq)
	t := f.target.Load()
	if err := setSockBuf(t, r.srv.sockbuf.Load(), false); err != nil {
		r.stats.fail("connect")
		f.abort = true
		f.close()
		f.release()
		return
	}
	if s.cfg.KeepAlive > 0 {
		// The client has it from the listener; the target socket is set here.
		if err := t.SetKeepAliveConfig(keepAliveConfig(s.cfg.KeepAlive)); err != nil {
			s.log.Debug("cannot set keepalive on the target socket", "target", su.ap.String(), "err", err)
		}
	}
	if v := s.cfg.ProxyProtocol; v != ProxyNone {
		// The header goes into the target's send sockbuf before the client's bytes are
		// spliced behind it: the owner of a drain may write to it, and what it queues
		// before the splice starts goes first. The sockbuf is empty, so Send does not
		// wait.
		if err := sendBytes(t, proxyHeader(v, f.client.RemoteAddr(), f.client.LocalAddr())); err != nil {
			r.stats.fail("proxy_header")
			s.log.Warn("sending the PROXY header failed", "client", f.client.RemoteAddr().String(), "target", su.ap.String(), "err", err)
			f.abort = true
			f.close()
			f.release()
			return
		}
	}
	if s.log.Enabled(r.srv.ctx, slog.LevelDebug) {
		s.log.Debug("flow started", "client", f.client.RemoteAddr().String(), "target", su.ap.String())
	}
	f.start(s.mode, s.cfg.Max, s.cfg.Idle, r.srv.budget)
}

// sendBytes queues b on so's send sockbuf, in an mbuf chain.
func sendBytes(so *socket.Socket, b []byte) error {
	m, err := mbuf.Get(mbuf.DontWait, mbuf.MTData)
	if err != nil {
		return err
	}
	if err := m.Append(b, mbuf.DontWait); err != nil {
		m.FreeM()
		return err
	}
	return so.Send(m)
}
