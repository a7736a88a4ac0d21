package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/softnet-go/softnet/netq"
	"github.com/softnet-go/softnet/socket"
)

// A Server runs relays. Apply starts, updates and stops them to match a configuration;
// Shutdown stops accepting and lets open flows finish.
type Server struct {
	log     *slog.Logger
	workers *netq.Group
	ctx     context.Context // canceled when a shutdown's grace runs out: aborts dials
	cancel  context.CancelFunc
	wg      sync.WaitGroup // every goroutine serving a flow
	sockbuf atomic.Int64   // SO_RCVBUF/SO_SNDBUF of new sockets; 0: autotuning
	budget  *socket.BufferBudget

	accessLog atomic.Bool // the relays' default: a line per flow as it ends
	version   string
	reloadOK  atomic.Bool  // the last reload's outcome (true before any)
	reloadAt  atomic.Int64 // unix seconds of the last successful reload, or of the start
	flows     atomic.Int64 // open flows of every relay, admitted against maxFlows
	maxFlows  atomic.Int64

	lookup lookupFunc    // host names of targets: at Apply, then every resolveEvery
	quit   chan struct{} // closed by Shutdown: stops the resolver and the sweeper
	bg     sync.WaitGroup

	mu        sync.Mutex
	running   map[string]runner       // by relay name
	records   map[string]*relayRecord // by relay name, kept while a stopped relay has flows
	down      bool
	resolving bool // the resolver goroutine runs
	sweeping  bool // the sweeper goroutine runs
}

// runner is a running relay, TCP or UDP.
type runner interface {
	settings() *settings
	admission() *admission
	update(*settings)
	addr() net.Addr
	stop()
	setSockBuf(n int64) error
}

// ServerOptions configure a Server.
type ServerOptions struct {
	// Log receives the relays' logs; slog.Default() if nil.
	Log *slog.Logger
	// Workers are the softnet workers the relays' sockets run on; netq.Default() if nil.
	Workers *netq.Group
	// SockBuf is the size of the kernel socket buffers (SO_RCVBUF and SO_SNDBUF) of every
	// socket the relays make, as Config.SockBuf; 0 leaves the kernel's autotuning.
	SockBuf int64
	// MaxFlows caps the open flows of every relay together, as Config.MaxFlows; 0 is
	// DefaultMaxFlows().
	MaxFlows int64
	// AccessLog is Config.AccessLog: a line per flow as it ends, for the relays that do
	// not say otherwise.
	AccessLog bool
	// Version is the daemon's version, for spliced_build_info.
	Version string
}

// NewServer returns a Server with no relays.
func NewServer(opt ServerOptions) *Server {
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{log: opt.Log, workers: opt.Workers, ctx: ctx, cancel: cancel,
		lookup: net.DefaultResolver.LookupNetIP, quit: make(chan struct{}),
		budget:  socket.NewBufferBudget(BulkSockBufBudget, 0),
		running: map[string]runner{}, records: map[string]*relayRecord{}}
	s.sockbuf.Store(opt.SockBuf)
	s.SetMaxFlows(opt.MaxFlows)
	s.accessLog.Store(opt.AccessLog)
	s.version = opt.Version
	s.reloadOK.Store(true)
	s.reloadAt.Store(time.Now().Unix())
	return s
}

// NoteReload records the outcome of a configuration reload for /metrics
// (spliced_config_reload_success, spliced_config_reload_timestamp_seconds).
func (s *Server) NoteReload(ok bool) {
	s.reloadOK.Store(ok)
	if ok {
		s.reloadAt.Store(time.Now().Unix())
	}
}

// SetAccessLog changes the relays' default for the access log (Config.AccessLog); the
// next Apply gives it to the relays that do not set their own.
func (s *Server) SetAccessLog(on bool) { s.accessLog.Store(on) }

// SetMaxFlows changes the cap on open flows over every relay (0: DefaultMaxFlows()).
// Flows open beyond a lowered cap go on; new ones wait for the count to fall below it.
func (s *Server) SetMaxFlows(n int64) {
	if n <= 0 {
		n = DefaultMaxFlows()
	}
	s.maxFlows.Store(n)
}

// MaxFlows returns the cap on open flows in force.
func (s *Server) MaxFlows() int64 { return s.maxFlows.Load() }

// SetSockBuf changes the size of the kernel socket buffers of the sockets made from now
// on (0: the kernel's autotuning, for the sockets a relay makes; the clients of a TCP
// relay that is already listening keep the last size, since Linux cannot give a sized
// buffer back to autotuning); open flows keep theirs. A reload calls it.
func (s *Server) SetSockBuf(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sockbuf.Store(n)
	for name, r := range s.running {
		if err := r.setSockBuf(n); err != nil {
			s.log.Warn("cannot size the buffers of the relay's listener", "relay", name, "err", err)
		}
	}
}

// Apply makes the running relays those of relays, which should have passed
// Config.Validate. A relay whose name, protocol and listen address are unchanged keeps
// its listener and its open flows, and new flows take its new settings; a relay that is
// gone, or listens elsewhere, stops accepting, and its open flows (TCP and UDP alike:
// they have sockets of their own) go on until they end. New relays start. Apply returns
// the relays it could not start, and leaves the others applied.
func (s *Server) Apply(relays []RelayConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errors.New("relay: server is shut down")
	}
	relays = slices.Clone(relays)
	for i := range relays {
		relays[i] = relays[i].withDefaults()
	}
	want := map[string]*RelayConfig{}
	for i := range relays {
		want[relays[i].Name] = &relays[i]
	}
	// A relay renamed in place (same protocol and listen address, new name) keeps its
	// listener, its flows and its counts, under the new name.
	for name, r := range s.running {
		old := &r.settings().cfg
		if _, ok := want[name]; ok {
			continue
		}
		for nn, n := range want {
			if _, taken := s.running[nn]; !taken && n.Protocol == old.Protocol && n.Listen == old.Listen {
				delete(s.running, name)
				s.running[nn] = r
				rec := s.records[name]
				delete(s.records, name)
				rec.stats.rename(nn)
				s.records[nn] = rec
				s.log.Info("relay renamed", "relay", nn, "was", name, "listen", old.Listen)
				break
			}
		}
	}
	for name, r := range s.running {
		old := &r.settings().cfg
		if n, ok := want[name]; !ok || n.Protocol != old.Protocol || n.Listen != old.Listen {
			r.stop()
			delete(s.running, name)
			if !ok {
				s.records[name].flows.stop() // leaves /metrics with its last flow
			}
			s.log.Info("relay stopped", "relay", name, "listen", old.Listen)
		}
	}
	var errs []error
	for i := range relays {
		cfg := relays[i]
		targets, err := newTargets(cfg.Targets, s.lookup)
		if err != nil {
			errs = append(errs, fmt.Errorf("relay %q: %w", cfg.Name, err))
			continue
		}
		st := &settings{cfg: cfg, mode: cfg.Mode.spliceMode(), targets: targets,
			log: s.log.With("relay", cfg.Name), maxPerSource: int32(max(cfg.MaxFlowsPerSource, 0)),
			accessLog: s.accessLog.Load()}
		if cfg.AccessLog != nil {
			st.accessLog = *cfg.AccessLog
		}
		if r, ok := s.running[cfg.Name]; ok {
			if cur := r.settings(); !cur.cfg.Equal(&cfg) || cur.accessLog != st.accessLog {
				r.update(st)
				s.log.Info("relay updated", "relay", cfg.Name, "listen", r.addr().String(), "targets", cfg.Targets)
			}
			continue
		}
		rec := s.records[cfg.Name]
		if rec == nil {
			rec = &relayRecord{stats: newRelayStats(cfg.Name), flows: &flowSet{}}
			s.records[cfg.Name] = rec
		}
		rec.flows.restart() // a relay stopped while it still had flows counts on
		src, err := newSources(cfg.Name)
		if err != nil {
			errs = append(errs, fmt.Errorf("relay %q: %w", cfg.Name, err))
			continue
		}
		adm := &admission{srv: s, src: src}
		var r runner
		if cfg.Protocol == "udp" {
			r, err = startUDP(s, st, rec, adm)
		} else {
			r, err = startTCP(s, st, rec, adm)
		}
		if errors.Is(err, syscall.EADDRINUSE) && !cfg.ReusePort {
			err = fmt.Errorf("%w: another socket listens there (a second spliced?); stop it, or set reuse_port = true "+
				"(--reuse-port) on both to share the address", err)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("relay %q: %w", cfg.Name, err))
			continue
		}
		s.running[cfg.Name] = r
		if cfg.Protocol != "udp" && cfg.Idle == 0 && cfg.KeepAlive == Off {
			s.log.Warn("relay has neither an idle timeout nor keepalive: a flow whose peer vanished or went silent stays open for ever",
				"relay", cfg.Name)
		}
		if hasNames(targets) && !s.resolving {
			s.resolving = true
			s.bg.Add(1)
			go s.resolve()
		}
		if !s.sweeping {
			s.sweeping = true
			s.bg.Add(1)
			go s.sweep()
		}
		s.log.Info("relay started", "relay", cfg.Name, "protocol", cfg.Protocol, "listen", r.addr().String(),
			"targets", cfg.Targets, "mode", string(cfg.Mode), "max", cfg.Max, "idle", cfg.Idle.String(), "keepalive", cfg.KeepAlive.String(),
			"max_flows_per_source", st.maxPerSource, "new_flows_per_source", cfg.NewFlowsPerSource.String())
	}
	s.pruneStats()
	return errors.Join(errs...)
}

// pruneStats forgets the counts of stopped relays whose last flow has ended, so that a
// relay removed from the configuration leaves /metrics. Called with s.mu held.
func (s *Server) pruneStats() {
	for name, rec := range s.records {
		if _, ok := s.running[name]; !ok && rec.flows.retire() {
			delete(s.records, name)
		}
	}
}

// sweep runs every sweepEvery until Shutdown: it removes quiet sources from the running
// relays' tables, ends their spells of refusals, and prunes stopped relays' counts.
func (s *Server) sweep() {
	defer s.bg.Done()
	tick := time.NewTicker(sweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-s.quit:
			return
		case now := <-tick.C:
			s.mu.Lock()
			for _, r := range s.running {
				a := r.admission()
				a.src.sweep(now.UnixNano())
				a.refs.end(r.settings().log, now)
			}
			s.pruneStats()
			s.mu.Unlock()
		}
	}
}

// Addr returns the address a running relay listens on (with the port chosen, for port
// 0), or nil if no relay of that name runs.
func (s *Server) Addr(name string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.running[name]; ok {
		return r.addr()
	}
	return nil
}

// Draining reports whether Shutdown has begun: no relay accepts, open flows finish.
func (s *Server) Draining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down
}

// Listening returns the number of relays running (listening).
func (s *Server) Listening() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.running)
}

// ActiveFlows returns the number of open flows of every relay, running or stopped.
func (s *Server) ActiveFlows() int {
	n := 0
	for _, rec := range s.allRecords() {
		n += rec.flows.open()
	}
	return n
}

// A relayRecord is what a relay name keeps across reloads, and while a stopped relay
// still has flows: its counts and its open flows.
type relayRecord struct {
	stats *relayStats
	flows *flowSet
}

// allRecords returns the records of every relay, running or stopped, by name.
func (s *Server) allRecords() []*relayRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.records))
	for name := range s.records {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]*relayRecord, len(names))
	for i, name := range names {
		out[i] = s.records[name]
	}
	return out
}

// StopAccepting is Shutdown's first step: every relay stops accepting (its listeners
// are closed when it returns) and /healthz turns to draining; open flows go on. It may
// be called before Shutdown, and again.
func (s *Server) StopAccepting() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.down {
		close(s.quit)
	}
	s.down = true
	for name, r := range s.running {
		r.stop() // after this, no flow is added to s.wg
		delete(s.running, name)
	}
}

// Shutdown stops every relay accepting, then waits for open flows to finish until ctx
// ends; then it resets the flows still open (both sockets, SO_LINGER 0: their peers
// see a reset, not a FIN that would pass for a complete stream) and waits for them to
// wind up, which is prompt. It returns ctx's error if flows had to be reset.
func (s *Server) Shutdown(ctx context.Context) error {
	s.StopAccepting()
	s.bg.Wait()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	defer s.cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.cancel() // abort connects in progress
	n := 0
	for _, rec := range s.allRecords() {
		fs := rec.flows.shut()
		for _, f := range fs {
			f.resetOnWorker()
		}
		n += len(fs)
	}
	s.log.Warn("grace period over; reset the open flows", "flows", n)
	<-done
	return ctx.Err()
}

// resolve looks the host names of the running relays' targets up again every
// resolveEvery, until Shutdown. A name that does not resolve keeps its last answer, and
// is logged once until it resolves again.
func (s *Server) resolve() {
	defer s.bg.Done()
	tick := time.NewTicker(resolveEvery)
	defer tick.Stop()
	failing := map[string]bool{}
	for {
		select {
		case <-s.quit:
			return
		case <-tick.C:
		}
		s.mu.Lock()
		var ts []*target
		for _, r := range s.running {
			ts = append(ts, r.settings().targets...)
		}
		s.mu.Unlock()
		for _, t := range ts {
			err := t.resolve(s.lookup)
			switch {
			case err != nil && !failing[t.name]:
				failing[t.name] = true
				s.log.Warn("target does not resolve; keeping its last addresses", "target", t.name, "err", err)
			case err == nil && failing[t.name]:
				delete(failing, t.name)
				s.log.Info("target resolves again", "target", t.name)
			}
		}
	}
}
