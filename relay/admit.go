package relay

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/softnet-go/softnet/internal/flowtable"
)

// Admission: before a relay spends anything on a new client — a target connect, a flow,
// a descriptor beyond the one accept gave it — the client must pass three caps, checked
// on the worker that accepted it:
//
//   - the daemon's max_flows, over every relay: descriptors are the resource a flood of
//     silent connections takes, and a reserve of them must stay for the admin endpoint,
//     target connects and logs;
//   - the relay's max_flows_per_source: flows open from one source address;
//   - the relay's new_flows_per_source: a rate of new flows from one source.
//
// A client over a cap is closed at once with a reset, counted by reason in
// spliced_flows_refused_total and logged once per spell of refusals, not once per client.
//
// The per-source counts live in a flowtable.Table, keyed by source: every worker looks
// its client's source up on every accept without a lock (an SMR read section), and
// writes — a source seen for the first time, one that has gone quiet — are rare. A
// source's open flows and rate state are atomics in its entry; the entry leaves the table
// only when the sweep finds it with no flow open and its rate bucket full, and it is
// marked dead as it leaves, so that a worker that found it just before retries on a new
// one: the counts are exact, not approximate.

// Reasons a client is refused, as spliced_flows_refused_total's reason label: the
// setting whose cap it met.
const (
	refusedMaxFlows  = "max_flows"
	refusedPerSource = "max_flows_per_source"
	refusedRate      = "new_flows_per_source"
)

// refusedReasons are the reasons counted from a relay's start, at zero until they happen.
var refusedReasons = []string{refusedMaxFlows, refusedPerSource, refusedRate}

// Defaults and bounds of the caps.
const (
	// DefaultMaxFlowsPerSource is a relay's max_flows_per_source when it sets none: like
	// nginx's worker_connections (512), enough for any one honest client host, far below
	// what one address needs to take every descriptor.
	DefaultMaxFlowsPerSource = 512
	// FlowDescriptors is what one flow holds: its client's socket and its target's.
	FlowDescriptors = 2
	// MaxMaxFlows bounds max_flows and max_flows_per_source: past it a flow needs more
	// descriptors than Linux gives a process (fs.nr_open is at most 2^30).
	MaxMaxFlows = 1 << 29
	// MinFDReserve is the least of the descriptor limit that max_flows' default keeps
	// for what is not a flow (listeners, the admin endpoint, target connects being set
	// up, logs); a tenth of the limit is kept when that is more.
	MinFDReserve = 256
	// sourcePrefix6 is how much of an IPv6 source address identifies a source: a host
	// gets a /64, and within it may pick any address, so counting each address apart
	// would make the per-source caps worth nothing against IPv6 clients.
	sourcePrefix6 = 64
	// sweepEvery is how often quiet sources leave the tables and spells of refusals end.
	sweepEvery = time.Second
	// spellQuiet ends a spell of refusals: the first refusal after this long without
	// one starts a new spell, logged again.
	spellQuiet = 10 * time.Second
)

// DefaultMaxFlows returns the daemon's max_flows when it sets none: what the process's
// descriptor limit (RLIMIT_NOFILE, which Go raises to its hard limit at start) leaves
// after a reserve — a tenth of the limit, at least MinFDReserve — at FlowDescriptors per
// flow. With the 1,024 descriptors of a default Linux login that is 384 flows; with a
// systemd unit's LimitNOFILE=65536, 29,491.
func DefaultMaxFlows() int64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 1024
	}
	return maxFlowsFor(rl.Cur)
}

// maxFlowsFor is DefaultMaxFlows for a descriptor limit of nofile.
func maxFlowsFor(nofile uint64) int64 {
	if nofile > 1<<40 {
		nofile = 1 << 40 // RLIM_INFINITY
	}
	reserve := max(nofile/10, MinFDReserve)
	if nofile <= reserve {
		return 1
	}
	return int64((nofile - reserve) / FlowDescriptors)
}

// A Rate is a number of events per period: new_flows_per_source's "100/s".
type Rate struct {
	N   int64
	Per time.Duration
}

// ParseRate parses "N/PERIOD": N a positive count and PERIOD s, m, h or a Go duration
// (10s, 1m30s); "" and "0" are no rate (the zero Rate). At most N events fit in any
// one PERIOD, and N may come at once.
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return Rate{}, nil
	}
	num, per, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, errors.New(`want COUNT/PERIOD, such as "100/s", "600/m" or "10/5s"`)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n <= 0 {
		return Rate{}, fmt.Errorf("count %q is not a positive number", num)
	}
	var d time.Duration
	switch per = strings.TrimSpace(per); per {
	case "s", "sec":
		d = time.Second
	case "m", "min":
		d = time.Minute
	case "h":
		d = time.Hour
	default:
		if d, err = time.ParseDuration(per); err != nil || d <= 0 {
			return Rate{}, fmt.Errorf("period %q: want s, m, h or a duration such as 10s", per)
		}
	}
	if d < time.Millisecond || d > 24*time.Hour || d/time.Duration(n) <= 0 {
		return Rate{}, errors.New("want a period from 1ms to 24h and at most one event a nanosecond")
	}
	return Rate{N: n, Per: d}, nil
}

// String returns r as ParseRate reads it.
func (r Rate) String() string {
	if r.N == 0 {
		return "0"
	}
	switch r.Per {
	case time.Second:
		return fmt.Sprintf("%d/s", r.N)
	case time.Minute:
		return fmt.Sprintf("%d/m", r.N)
	case time.Hour:
		return fmt.Sprintf("%d/h", r.N)
	}
	return fmt.Sprintf("%d/%s", r.N, r.Per)
}

// A source is one client address's (or IPv6 /64's) state in a relay's sources table.
type source struct {
	flows atomic.Int32 // open flows; -1 once the sweep removed the entry
	// tat is the rate's theoretical arrival time (unix nanoseconds) of the generic cell
	// rate algorithm (ATM's GCRA, the leaky bucket as a meter): a new flow is allowed
	// when tat − now ≤ Per − Per/N, and moves tat Per/N later.
	tat atomic.Int64
}

// take counts a new flow against rate r at now, and reports whether it fits.
func (s *source) take(r Rate, now int64) bool {
	step := int64(r.Per) / r.N
	for {
		tat := s.tat.Load()
		t := max(tat, now)
		if t-now > int64(r.Per)-step {
			return false
		}
		if s.tat.CompareAndSwap(tat, t+step) {
			return true
		}
	}
}

// sources is a relay's per-source table.
type sources struct {
	t *flowtable.Table[source]
}

func newSources(name string) (*sources, error) {
	t, err := flowtable.New[source]("sources/"+name, nil, 0)
	if err != nil {
		return nil, err
	}
	return &sources{t: t}, nil
}

// sourceKey returns the key of a client's source: its address without port or zone,
// IPv4-mapped addresses as IPv4, IPv6 addresses cut to their /64.
func sourceKey(client netip.Addr) netip.AddrPort {
	a := client.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(sourcePrefix6)
		a = p.Addr()
	}
	return netip.AddrPortFrom(a, 0)
}

// admit counts a new flow from client against the per-source caps of s: at most maxOpen
// open (0: no cap), and rate (zero: none). It returns the client's source, to give the
// flow back with release, or the reason it is refused. At the memory limit the table
// cannot grow; a new source is then admitted uncounted (nil), since refusing every new
// client address would be worse than not capping them.
func (ss *sources) admit(client netip.Addr, maxOpen int32, rate Rate) (*source, string) {
	key := sourceKey(client)
	for {
		s, ok := ss.t.Lookup(key)
		if !ok {
			var err error
			if s, _, err = ss.t.LoadOrInsert(key, &source{}); err != nil {
				return nil, ""
			}
		}
		n := s.flows.Load()
		if n < 0 {
			continue // swept just now: a new entry takes its place
		}
		if maxOpen > 0 && n >= maxOpen {
			return nil, refusedPerSource
		}
		if !s.flows.CompareAndSwap(n, n+1) {
			continue
		}
		if rate.N > 0 && !s.take(rate, time.Now().UnixNano()) {
			s.flows.Add(-1)
			return nil, refusedRate
		}
		return s, ""
	}
}

// release gives back a flow admit counted; s may be nil.
func (s *source) release() {
	if s != nil {
		s.flows.Add(-1)
	}
}

// sweep removes the sources with no open flow whose rate bucket is full again (tat
// passed), marking each dead as it goes so that no admit counts on it after. It returns
// how many are left.
func (ss *sources) sweep(now int64) int {
	ss.t.Expire(func(_ netip.AddrPort, s *source) bool {
		return s.tat.Load() <= now && s.flows.CompareAndSwap(0, -1)
	})
	return ss.t.Len()
}

// A spell is a run of refusals for one reason, logged when it starts and when it ends
// (after spellQuiet without one), with the count in between.
type spell struct {
	since, last time.Time
	n           int64
}

// refusals are a relay's spells of refusals, by reason.
type refusals struct {
	mu     sync.Mutex
	spells map[string]*spell
}

// refuse counts one refusal for why, and logs it if it starts a spell.
func (rs *refusals) refuse(log *slog.Logger, why string, client netip.Addr, limit string) {
	now := time.Now()
	rs.mu.Lock()
	defer rs.mu.Unlock()
	sp := rs.spells[why]
	if sp != nil {
		sp.n++
		sp.last = now
		return
	}
	if rs.spells == nil {
		rs.spells = map[string]*spell{}
	}
	rs.spells[why] = &spell{since: now, last: now, n: 1}
	log.Warn("refusing new clients over a cap (logged once until the refusals stop)",
		"reason", why, "limit", limit, "first_client", client.String())
}

// end logs and closes the spells quiet since before now − spellQuiet.
func (rs *refusals) end(log *slog.Logger, now time.Time) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for why, sp := range rs.spells {
		if now.Sub(sp.last) >= spellQuiet {
			log.Info("no longer refusing new clients", "reason", why, "refused", sp.n,
				"for", sp.last.Sub(sp.since).Round(time.Millisecond))
			delete(rs.spells, why)
		}
	}
}

// An admission is what a relay checks new clients against; each relay has one, kept
// across reloads with its listener.
type admission struct {
	srv  *Server
	src  *sources
	refs refusals
}

// admit checks a new client of relay settings s against the daemon's max_flows and the
// relay's per-source caps. It returns the source to release when the flow ends, and
// ok; or, refused, counts and logs the refusal and returns false: the caller closes the
// client at once.
func (a *admission) admit(s *settings, stats *relayStats, client netip.Addr) (*source, bool) {
	srv := a.srv
	if n := srv.flows.Add(1); n > srv.maxFlows.Load() {
		srv.flows.Add(-1)
		a.refused(s, stats, refusedMaxFlows, client, strconv.FormatInt(srv.maxFlows.Load(), 10))
		return nil, false
	}
	src, why := a.src.admit(client, s.maxPerSource, s.cfg.NewFlowsPerSource)
	if why != "" {
		srv.flows.Add(-1)
		limit := strconv.Itoa(int(s.maxPerSource))
		if why == refusedRate {
			limit = s.cfg.NewFlowsPerSource.String()
		}
		a.refused(s, stats, why, client, limit)
		return nil, false
	}
	return src, true
}

// release gives back a flow admit let in.
func (a *admission) release(src *source) {
	src.release()
	a.srv.flows.Add(-1)
}

func (a *admission) refused(s *settings, stats *relayStats, why string, client netip.Addr, limit string) {
	stats.refuse(why)
	a.refs.refuse(s.log, why, client, limit)
}
