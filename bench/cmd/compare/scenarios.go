package main

import (
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"time"
)

// Relay names, as the tables and the chart print them.
const (
	nameSpliced  = "spliced"
	nameHAProxy  = "haproxy"
	nameHASplice = "haproxy + option splice-auto"
	nameIOCopy   = "Go io.Copy relay"
	nameCopy     = "Go 32 KiB copy relay"
	nameSocat    = "socat"
)

// peers builds the relays of a scenario from their names: spliced at its shipped
// defaults ("spliced") or with one --mode ("spliced --mode kernel"), HAProxy in tcp mode
// (with or without option splice-auto), gorelay's two modes, socat, and the direct path.
type peers struct {
	spliced, gorelay string
	haproxy, socat   bool
}

func (p peers) spec(name string) (relaySpec, bool) {
	switch {
	case name == directSpec.name:
		return directSpec, true
	case name == nameSpliced || strings.HasPrefix(name, nameSpliced+" --mode "):
		mode, _ := strings.CutPrefix(name, nameSpliced+" --mode ")
		return relaySpec{name: name, softnet: true, tool: "spliced", start: func(l, t, _ string) *exec.Cmd {
			// What a user must give and nothing more: the shipped defaults otherwise
			// (--admin off only so that no port is taken; it serves no request here).
			args := []string{"run", "--listen", l, "--to", t, "--admin", "off"}
			if mode != name {
				args = append(args, "--mode", mode)
			}
			return exec.Command(p.spliced, args...)
		}}, true
	case name == nameIOCopy || name == nameCopy:
		mode := "iocopy"
		if name == nameCopy {
			mode = "copy"
		}
		return relaySpec{name: name, tool: "gorelay", start: func(l, t, _ string) *exec.Cmd {
			return exec.Command(p.gorelay, "-listen", l, "-to", t, "-mode", mode)
		}}, true
	case (name == nameHAProxy || name == nameHASplice) && p.haproxy:
		splice := name == nameHASplice
		return relaySpec{name: name, tool: "haproxy", start: func(l, t, dir string) *exec.Cmd {
			file := "haproxy.cfg"
			opt := ""
			if splice {
				file, opt = "haproxy-splice-auto.cfg", "    option splice-auto\n"
			}
			cfg := fmt.Sprintf(`global
    maxconn 6000
defaults
    mode tcp
    timeout connect 5s
    timeout client 5m
    timeout server 5m
    maxconn 6000
%sfrontend f
    bind %s
    default_backend b
backend b
    server s %s
`, opt, l, t)
			path := dir + "/" + file
			_ = writeFile(path, cfg)
			recordFile(file, cfg)
			return exec.Command("haproxy", "-db", "-f", path)
		}}, true
	case name == nameSocat && p.socat:
		return relaySpec{name: name, tool: "socat", start: func(l, t, _ string) *exec.Cmd {
			_, lp, _ := strings.Cut(l, ":")
			return exec.Command("socat", "TCP-LISTEN:"+lp+",fork,reuseaddr,backlog=1024,bind=127.0.0.1", "TCP:"+t)
		}}, true
	}
	return relaySpec{}, false
}

// quickNames are the relays of a -quick run: the direct path, spliced, HAProxy and one
// Go relay.
var quickNames = map[string]bool{directSpec.name: true, nameSpliced: true, nameHAProxy: true, nameIOCopy: true}

// specs returns the named relays that can run here, in order (with -quick, only those of
// quickNames).
func (p peers) specs(names ...string) []relaySpec {
	var out []relaySpec
	for _, n := range names {
		if *flagQuick && !quickNames[n] {
			continue
		}
		if s, ok := p.spec(n); ok {
			out = append(out, s)
		}
	}
	return out
}

// interleave runs every spec once per round, round-robin within the round, each run with
// a relay process of its own started for it, and returns each spec's runs in spec order.
// A run whose relay did not start is blank; every run's row is named after its relay and
// keeps its error (ran); show is its log line.
func interleave[T any, P interface {
	*T
	ran(relaySpec, error)
}](specs []relaySpec, target func() (string, func()), tmp string, blank T, run func(rp *relayProc) (T, error), show func(T) string) [][]T {
	out := make([][]T, len(specs))
	rounds := max(*flagRounds, 1)
	for round := 1; round <= rounds; round++ {
		if rounds > 1 {
			logf("  round %d of %d", round, rounds)
		}
		for i, s := range specs {
			r := blank
			addr, done := target()
			rp, err := startRelay(s, addr, "tcp", tmp)
			if err == nil {
				r, err = run(rp)
				rp.stop()
			}
			done()
			P(&r).ran(s, err)
			if err != nil {
				logf("  %-30s error: %v", s.name, err)
			} else {
				logf("  %-30s %s", s.name, show(r))
			}
			out[i] = append(out[i], r)
			time.Sleep(100 * time.Millisecond)
		}
	}
	return out
}

// ran names a row after the relay it ran through, and records the run's error if it has
// one.
func (r *TCPResult) ran(s relaySpec, err error)   { r.Row, r.Err = s.row(), errOr(r.Err, err) }
func (r *RRResult) ran(s relaySpec, err error)    { r.Row, r.Err = s.row(), errOr(r.Err, err) }
func (r *ChurnResult) ran(s relaySpec, err error) { r.Row, r.Err = s.row(), errOr(r.Err, err) }
func (r *FairResult) ran(s relaySpec, err error)  { r.Row, r.Err = s.row(), errOr(r.Err, err) }
func (r *WrkResult) ran(s relaySpec, err error)   { r.Row, r.Err = s.row(), errOr(r.Err, err) }
func (r *RedisResult) ran(s relaySpec, err error) { r.Row, r.Err = s.row(), errOr(r.Err, err) }
func (r *IperfResult) ran(s relaySpec, err error) { r.Row, r.Err = s.row(), errOr(r.Err, err) }

// errOr is err's text, or was when err is nil.
func errOr(was string, err error) string {
	if err != nil {
		return err.Error()
	}
	return was
}

// wrkRun and redisRun are one relay's run of a tool that gives a row per variant (wrk's
// connection modes, redis-benchmark's tests).
type (
	wrkRun   []WrkResult
	redisRun []RedisResult
)

func (rs *wrkRun) ran(s relaySpec, err error) {
	ranEach((*[]WrkResult)(rs), s, err, WrkResult{Conn: "keep-alive"}, WrkResult{Conn: "close"})
}

func (rs *redisRun) ran(s relaySpec, err error) {
	ranEach((*[]RedisResult)(rs), s, err, RedisResult{Test: "SET"}, RedisResult{Test: "GET"})
}

// ranEach is ran of every row of a run; a failed run's rows are failed, one per variant.
func ranEach[T any, P interface {
	*T
	ran(relaySpec, error)
}](rs *[]T, s relaySpec, err error, failed ...T) {
	if err != nil {
		*rs = failed
	}
	for i := range *rs {
		P(&(*rs)[i]).ran(s, err)
	}
}

// fixed is a target that is the same for every run.
func fixed(addr string) func() (string, func()) {
	return func() (string, func()) { return addr, func() {} }
}

// median returns the run whose by is the median of the runs without an error (the first
// run when all failed), and every good run's by.
func median[T any](rs []T, key func(T) (relay, err string), by func(T) float64) (T, []float64) {
	failed := func(r T) bool { _, err := key(r); return err != "" }
	var ok []T
	for _, r := range rs {
		if !failed(r) {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return rs[0], nil
	}
	sort.SliceStable(ok, func(i, j int) bool { return by(ok[i]) < by(ok[j]) })
	var samples []float64
	for _, r := range rs {
		if !failed(r) {
			samples = append(samples, by(r))
		}
	}
	return ok[len(ok)/2], samples
}

// medians is every spec's median run (median), in spec order, with its samples set.
func medians[T any](runs [][]T, key func(T) (relay, err string), by func(T) float64, samples func(*T) *[]float64) []T {
	var out []T
	for _, rs := range runs {
		m, s := median(rs, key, by)
		*samples(&m) = s
		out = append(out, m)
	}
	return out
}

// byVariant regroups the runs of a tool with a row per variant: for each variant in turn,
// each spec's rows of it (variant says a row's).
func byVariant[T any, S ~[]T](runs [][]S, variants []string, variant func(T) string) [][]T {
	var out [][]T
	for _, v := range variants {
		for _, rs := range runs {
			var these []T
			for _, r := range rs {
				for _, x := range r {
					if variant(x) == v {
						these = append(these, x)
					}
				}
			}
			if len(these) > 0 {
				out = append(out, these)
			}
		}
	}
	return out
}

func runRRAll(p peers, conns int, tmp string) []RRResult {
	srv := newMuxServer()
	defer srv.close()
	names := []string{directSpec.name, nameSpliced, nameHAProxy, nameIOCopy, nameCopy, nameSocat}
	specs := p.specs(names...)
	runs := interleave(specs, fixed(srv.addr()), tmp, RRResult{Conns: conns}, func(rp *relayProc) (RRResult, error) {
		defer srv.closeConns()
		dur := *flagRRDur
		if conns == 1 {
			dur = *flagRR1Dur
		}
		return measureRR(rp, conns, *flagRRWarm, dur)
	}, func(r RRResult) string {
		return fmt.Sprintf("%8.0f req/s  p50 %6.1f µs  p99 %7.1f µs  relay CPU %.2f s", r.PerSec, r.P50us, r.P99us, r.RelayCPU)
	})
	// One connection is about latency, 32 about throughput.
	by := func(r RRResult) float64 { return r.PerSec }
	if conns == 1 {
		by = func(r RRResult) float64 { return r.P50us }
	}
	out := medians(runs, keyRR, by, func(r *RRResult) *[]float64 { return &r.Samples })
	if len(out) > 0 && out[0].Direct && out[0].Err == "" {
		for i := range out {
			if out[i].Err == "" {
				out[i].AddedP50us = out[i].P50us - out[0].P50us
			}
		}
	}
	return out
}

func runChurnAll(p peers, clients int, tmp string) []ChurnResult {
	// Each run gets a target of its own on a new port, so that the TIME_WAIT sockets an
	// earlier run left towards the target (the relays close their target side first)
	// do not slow the next run's connects.
	specs := p.specs(directSpec.name, nameSpliced, nameHAProxy, nameIOCopy, nameCopy)
	var srv *muxServer
	target := func() (string, func()) {
		srv = newMuxServer()
		return srv.addr(), srv.close
	}
	runs := interleave(specs, target, tmp, ChurnResult{Clients: clients}, func(rp *relayProc) (ChurnResult, error) {
		return measureChurn(rp, clients, *flagRRWarm, *flagRRDur)
	}, func(r ChurnResult) string {
		return fmt.Sprintf("%8.0f conn/s  %d failed  relay CPU %.2f s", r.PerSec, r.Failed, r.RelayCPU)
	})
	return medians(runs, keyChurn, func(r ChurnResult) float64 { return r.PerSec }, func(r *ChurnResult) *[]float64 { return &r.Samples })
}

func runFairAll(p peers, bulk int, tmp string) []FairResult {
	srv := newMuxServer()
	defer srv.close()
	specs := p.specs(directSpec.name, nameSpliced, nameHAProxy, nameIOCopy, nameCopy)
	runs := interleave(specs, fixed(srv.addr()), tmp, FairResult{Bulk: bulk}, func(rp *relayProc) (FairResult, error) {
		defer srv.closeConns()
		return measureFair(srv, rp, bulk, *flagWarm, *flagRRDur)
	}, func(r FairResult) string {
		return fmt.Sprintf("interactive p50 %6.1f µs p99 %7.1f µs %6.0f req/s; bulk %5.2f Gbit/s (alone %5.2f)", r.InterP50, r.InterP99, r.InterRate, r.BulkGbit, r.BulkOnlyGbit)
	})
	return medians(runs, keyFair, func(r FairResult) float64 { return r.InterP99 }, func(r *FairResult) *[]float64 { return &r.Samples })
}

// thirdParty starts a third-party server (start) and interleaves runs of its client
// through the direct path, spliced, HAProxy and the Go relays, as interleave; no runs if
// the server does not start.
func thirdParty[T any, P interface {
	*T
	ran(relaySpec, error)
}](p peers, tmp string, start func(dir string) (*server, error), blank T, run func(rp *relayProc) (T, error), show func(T) string) ([][]T, error) {
	srv, err := start(tmp)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	specs := p.specs(directSpec.name, nameSpliced, nameHAProxy, nameIOCopy, nameCopy)
	return interleave[T, P](specs, fixed(srv.addr), tmp, blank, run, show), nil
}

func runWrkAll(p peers, tmp string) ([]WrkResult, error) {
	runs, err := thirdParty(p, tmp, startNginx, nil, func(rp *relayProc) (wrkRun, error) {
		var rs wrkRun
		for _, close := range []bool{false, true} {
			r, err := runWrk(rp.listen, rp.pid(), close, *flagToolDur)
			if err != nil {
				r.Err = err.Error()
			}
			rs = append(rs, r)
			time.Sleep(200 * time.Millisecond)
		}
		return rs, nil
	}, func(rs wrkRun) string {
		var b []string
		for _, r := range rs {
			if r.Err != "" {
				b = append(b, r.Conn+": "+r.Err)
			} else {
				b = append(b, fmt.Sprintf("%s %7.0f req/s (%d errors) %.1f µs relay CPU/req", r.Conn, r.PerSec, r.Errors, r.CPUPerReq))
			}
		}
		return strings.Join(b, "; ")
	})
	modes := byVariant(runs, []string{"keep-alive", "close"}, func(r WrkResult) string { return r.Conn })
	return medians(modes, keyWrk, func(r WrkResult) float64 { return r.PerSec }, func(r *WrkResult) *[]float64 { return &r.Samples }), err
}

func runRedisAll(p peers, tmp string) ([]RedisResult, error) {
	n := *flagRedisN
	runs, err := thirdParty(p, tmp, startRedis, nil, func(rp *relayProc) (redisRun, error) {
		return runRedis(rp.listen, rp.pid(), n)
	}, func(rs redisRun) string {
		var b []string
		for _, r := range rs {
			b = append(b, fmt.Sprintf("%s %7.0f req/s", r.Test, r.PerSec))
		}
		if len(rs) > 0 {
			b = append(b, fmt.Sprintf("%.1f µs relay CPU/req", rs[0].CPUPerReq))
		}
		return strings.Join(b, "; ")
	})
	tests := byVariant(runs, []string{"SET", "GET"}, func(r RedisResult) string { return r.Test })
	return medians(tests, keyRedis, func(r RedisResult) float64 { return r.PerSec }, func(r *RedisResult) *[]float64 { return &r.Samples }), err
}

func runIperfAll(p peers, tmp string) ([]IperfResult, error) {
	secs := max(1, int(flagIperfDur.Round(time.Second)/time.Second))
	runs, err := thirdParty(p, tmp, startIperf, IperfResult{Streams: 8}, func(rp *relayProc) (IperfResult, error) {
		r, err := runIperf(rp.listen, rp.pid(), 8, secs)
		time.Sleep(200 * time.Millisecond) // the server is ready for the next test
		return r, err
	}, func(r IperfResult) string {
		return fmt.Sprintf("%6.2f Gbit/s  %d retransmits  slowest/fastest %.2f  relay CPU %.2f s", r.Gbits, r.Retransmits, r.SlowFast, r.RelayCPU)
	})
	return medians(runs, keyIperf, func(r IperfResult) float64 { return r.Gbits }, func(r *IperfResult) *[]float64 { return &r.Samples }), err
}
