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
// tag names a run's result and records its error; show is its log line.
func interleave[T any](specs []relaySpec, target func() (string, func()), tmp string, run func(rp *relayProc) (T, error),
	tag func(r *T, s relaySpec, err error), show func(T) string) [][]T {
	out := make([][]T, len(specs))
	rounds := max(*flagRounds, 1)
	for round := 1; round <= rounds; round++ {
		if rounds > 1 {
			logf("  round %d of %d", round, rounds)
		}
		for i, s := range specs {
			var r T
			addr, done := target()
			rp, err := startRelay(s, addr, "tcp", tmp)
			if err == nil {
				r, err = run(rp)
				rp.stop()
			}
			done()
			tag(&r, s, err)
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

// fixed is a target that is the same for every run.
func fixed(addr string) func() (string, func()) {
	return func() (string, func()) { return addr, func() {} }
}

// median returns the run whose key is the median of the runs without an error (the
// first run when all failed), and every good run's key.
func median[T any](rs []T, failed func(T) bool, key func(T) float64) (T, []float64) {
	var ok []T
	for _, r := range rs {
		if !failed(r) {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return rs[0], nil
	}
	sort.SliceStable(ok, func(i, j int) bool { return key(ok[i]) < key(ok[j]) })
	var samples []float64
	for _, r := range rs {
		if !failed(r) {
			samples = append(samples, key(r))
		}
	}
	return ok[len(ok)/2], samples
}

func runRRAll(p peers, conns int, tmp string) []RRResult {
	srv := newMuxServer()
	defer srv.close()
	names := []string{directSpec.name, nameSpliced, nameHAProxy, nameIOCopy, nameCopy, nameSocat}
	specs := p.specs(names...)
	runs := interleave(specs, fixed(srv.addr()), tmp, func(rp *relayProc) (RRResult, error) {
		defer srv.closeConns()
		dur := *flagRRDur
		if conns == 1 {
			dur = *flagRR1Dur
		}
		return measureRR(rp, conns, *flagRRWarm, dur)
	}, func(r *RRResult, s relaySpec, err error) {
		r.Relay, r.Softnet, r.Direct, r.Conns = s.name, s.softnet, s.direct, conns
		if err != nil {
			r.Err = err.Error()
		}
	}, func(r RRResult) string {
		return fmt.Sprintf("%8.0f req/s  p50 %6.1f µs  p99 %7.1f µs  relay CPU %.2f s", r.PerSec, r.P50us, r.P99us, r.RelayCPU)
	})
	var out []RRResult
	for _, rs := range runs {
		var m RRResult
		if conns == 1 {
			m, m.Samples = median(rs, func(r RRResult) bool { return r.Err != "" }, func(r RRResult) float64 { return r.P50us })
		} else {
			m, m.Samples = median(rs, func(r RRResult) bool { return r.Err != "" }, func(r RRResult) float64 { return r.PerSec })
		}
		out = append(out, m)
	}
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
	runs := interleave(specs, target, tmp, func(rp *relayProc) (ChurnResult, error) {
		return measureChurn(rp, clients, *flagRRWarm, *flagRRDur)
	}, func(r *ChurnResult, s relaySpec, err error) {
		r.Relay, r.Softnet, r.Direct, r.Clients = s.name, s.softnet, s.direct, clients
		if err != nil {
			r.Err = err.Error()
		}
	}, func(r ChurnResult) string {
		return fmt.Sprintf("%8.0f conn/s  %d failed  relay CPU %.2f s", r.PerSec, r.Failed, r.RelayCPU)
	})
	var out []ChurnResult
	for _, rs := range runs {
		m, s := median(rs, func(r ChurnResult) bool { return r.Err != "" }, func(r ChurnResult) float64 { return r.PerSec })
		m.Samples = s
		out = append(out, m)
	}
	return out
}

func runFairAll(p peers, bulk int, tmp string) []FairResult {
	srv := newMuxServer()
	defer srv.close()
	specs := p.specs(directSpec.name, nameSpliced, nameHAProxy, nameIOCopy, nameCopy)
	runs := interleave(specs, fixed(srv.addr()), tmp, func(rp *relayProc) (FairResult, error) {
		defer srv.closeConns()
		return measureFair(srv, rp, bulk, *flagWarm, *flagRRDur)
	}, func(r *FairResult, s relaySpec, err error) {
		r.Relay, r.Softnet, r.Direct, r.Bulk = s.name, s.softnet, s.direct, bulk
		if err != nil {
			r.Err = err.Error()
		}
	}, func(r FairResult) string {
		return fmt.Sprintf("interactive p50 %6.1f µs p99 %7.1f µs %6.0f req/s; bulk %5.2f Gbit/s (alone %5.2f)", r.InterP50, r.InterP99, r.InterRate, r.BulkGbit, r.BulkOnlyGbit)
	})
	var out []FairResult
	for _, rs := range runs {
		m, s := median(rs, func(r FairResult) bool { return r.Err != "" }, func(r FairResult) float64 { return r.InterP99 })
		m.Samples = s
		out = append(out, m)
	}
	return out
}

// thirdPartySpecs are the relays the third-party clients run through.
func thirdPartySpecs(p peers) []relaySpec {
	return p.specs(directSpec.name, nameSpliced, nameHAProxy, nameIOCopy, nameCopy)
}

func runWrkAll(p peers, tmp string) ([]WrkResult, error) {
	ng, err := startNginx(tmp)
	if err != nil {
		return nil, err
	}
	defer ng.stop()
	runs := interleave(thirdPartySpecs(p), fixed(ng.addr), tmp, func(rp *relayProc) ([]WrkResult, error) {
		var rs []WrkResult
		for _, close := range []bool{false, true} {
			r, err := runWrk(rp.listen, rp.pid(), close, *flagToolDur)
			if err != nil {
				r.Err = err.Error()
			}
			rs = append(rs, r)
			time.Sleep(200 * time.Millisecond)
		}
		return rs, nil
	}, func(rs *[]WrkResult, s relaySpec, err error) {
		if err != nil {
			*rs = []WrkResult{{Conn: "keep-alive", Err: err.Error()}, {Conn: "close", Err: err.Error()}}
		}
		for i := range *rs {
			(*rs)[i].Relay, (*rs)[i].Softnet, (*rs)[i].Direct = s.name, s.softnet, s.direct
		}
	}, func(rs []WrkResult) string {
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
	var out []WrkResult
	for _, conn := range []string{"keep-alive", "close"} {
		for _, rs := range runs {
			var these []WrkResult
			for _, r := range rs {
				for _, w := range r {
					if w.Conn == conn {
						these = append(these, w)
					}
				}
			}
			if len(these) == 0 {
				continue
			}
			m, s := median(these, func(r WrkResult) bool { return r.Err != "" }, func(r WrkResult) float64 { return r.PerSec })
			m.Samples = s
			out = append(out, m)
		}
	}
	return out, nil
}

func runRedisAll(p peers, tmp string) ([]RedisResult, error) {
	rd, err := startRedis(tmp)
	if err != nil {
		return nil, err
	}
	defer rd.stop()
	n := *flagRedisN
	runs := interleave(thirdPartySpecs(p), fixed(rd.addr), tmp, func(rp *relayProc) ([]RedisResult, error) {
		return runRedis(rp.listen, rp.pid(), n)
	}, func(rs *[]RedisResult, s relaySpec, err error) {
		if err != nil {
			*rs = []RedisResult{{Test: "SET", Err: err.Error()}, {Test: "GET", Err: err.Error()}}
		}
		for i := range *rs {
			(*rs)[i].Relay, (*rs)[i].Softnet, (*rs)[i].Direct = s.name, s.softnet, s.direct
		}
	}, func(rs []RedisResult) string {
		var b []string
		for _, r := range rs {
			b = append(b, fmt.Sprintf("%s %7.0f req/s", r.Test, r.PerSec))
		}
		if len(rs) > 0 {
			b = append(b, fmt.Sprintf("%.1f µs relay CPU/req", rs[0].CPUPerReq))
		}
		return strings.Join(b, "; ")
	})
	var out []RedisResult
	for _, test := range []string{"SET", "GET"} {
		for _, rs := range runs {
			var these []RedisResult
			for _, r := range rs {
				for _, x := range r {
					if x.Test == test {
						these = append(these, x)
					}
				}
			}
			if len(these) == 0 {
				continue
			}
			m, s := median(these, func(r RedisResult) bool { return r.Err != "" }, func(r RedisResult) float64 { return r.PerSec })
			m.Samples = s
			out = append(out, m)
		}
	}
	return out, nil
}

func runIperfAll(p peers, tmp string) ([]IperfResult, error) {
	ip, err := startIperf(tmp)
	if err != nil {
		return nil, err
	}
	defer ip.stop()
	secs := max(1, int(flagIperfDur.Round(time.Second)/time.Second))
	runs := interleave(thirdPartySpecs(p), fixed(ip.addr), tmp, func(rp *relayProc) (IperfResult, error) {
		r, err := runIperf(rp.listen, rp.pid(), 8, secs)
		time.Sleep(200 * time.Millisecond) // the server is ready for the next test
		return r, err
	}, func(r *IperfResult, s relaySpec, err error) {
		r.Relay, r.Softnet, r.Direct, r.Streams = s.name, s.softnet, s.direct, 8
		if err != nil {
			r.Err = err.Error()
		}
	}, func(r IperfResult) string {
		return fmt.Sprintf("%6.2f Gbit/s  %d retransmits  slowest/fastest %.2f  relay CPU %.2f s", r.Gbits, r.Retransmits, r.SlowFast, r.RelayCPU)
	})
	var out []IperfResult
	for _, rs := range runs {
		m, s := median(rs, func(r IperfResult) bool { return r.Err != "" }, func(r IperfResult) float64 { return r.Gbits })
		m.Samples = s
		out = append(out, m)
	}
	return out, nil
}
