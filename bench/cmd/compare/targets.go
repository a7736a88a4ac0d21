package main

import (
	"fmt"
	"strings"
)

// The targets spliced is built to reach, checked against one run's rows (each row the
// median of its rounds). Every goal is stated in place, in the target's own row: what is
// measured, against which row of the same run, and the bound.

func (t Target) shown() string {
	if t.NotRun {
		return "–"
	}
	switch t.Unit {
	case "B":
		return fmt.Sprintf("%.0f B", t.Value)
	case "mallocs":
		return fmt.Sprintf("%.4f", t.Value)
	case "µs":
		return fmt.Sprintf("%.1f µs", t.Value)
	case "%":
		return fmt.Sprintf("%.2f%%", t.Value)
	case "retransmits":
		return fmt.Sprintf("%.0f", t.Value)
	}
	return fmt.Sprintf("%.2f%s", t.Value, t.Unit)
}

func (t Target) verdict() string {
	switch {
	case t.NotRun:
		return "not run"
	case t.Met:
		return "met"
	}
	return "**missed**"
}

// idleCPUConns is how many idle relayed connections the idle CPU figure was taken with.
func idleCPUConns(res *Results) int {
	for _, r := range res.Idle {
		if r.CPUConns > 0 {
			return r.CPUConns
		}
	}
	return min(1000, *flagIdle)
}

// thousands writes n with a comma between thousands, as the tables' text does (1,000).
func thousands(n int) string {
	if n < 1000 {
		return fmt.Sprint(n)
	}
	return thousands(n/1000) + fmt.Sprintf(",%03d", n%1000)
}

func findMicro(res *Results, group, implPrefix string) *MicroResult {
	for i := range res.Micro {
		if res.Micro[i].Group == group && strings.HasPrefix(res.Micro[i].Impl, implPrefix) {
			return &res.Micro[i]
		}
	}
	return nil
}

// pick finds relay's row among rows, of those that match says is the right one (the
// stream count, the wrk connection mode, the redis test); key gives a row's relay and
// error. Without a usable row, why says what is missing: no such row, or its error.
func pick[T any](rows []T, relay string, key func(T) (name, err string), match func(T) bool) (*T, string) {
	why := "no " + relay + " row"
	for i := range rows {
		name, err := key(rows[i])
		if name != relay || match != nil && !match(rows[i]) {
			continue
		}
		if err != "" {
			why = relay + ": " + err
			continue
		}
		return &rows[i], ""
	}
	return nil, why
}

func keyTCP(r TCPResult) (string, string)     { return r.Relay, r.Err }
func keyRR(r RRResult) (string, string)       { return r.Relay, r.Err }
func keyChurn(r ChurnResult) (string, string) { return r.Relay, r.Err }
func keyFair(r FairResult) (string, string)   { return r.Relay, r.Err }
func keyIdle(r IdleResult) (string, string)   { return r.Relay, r.Err }
func keyWrk(r WrkResult) (string, string)     { return r.Relay, r.Err }
func keyRedis(r RedisResult) (string, string) { return r.Relay, r.Err }
func keyIperf(r IperfResult) (string, string) { return r.Relay, r.Err }

// targetList builds the table: add a checked target, or notRun one whose rows this run
// does not have (whys, the non-empty ones, say which).
type targetList []Target

func (ts *targetList) add(target, goal string, v float64, unit string, met bool, note string) {
	*ts = append(*ts, Target{Target: target, Goal: goal, Value: v, Unit: unit, Met: met, Note: note})
}

func (ts *targetList) notRun(target, goal string, whys ...string) {
	var ws []string
	for _, w := range whys {
		if w != "" {
			ws = append(ws, w)
		}
	}
	*ts = append(*ts, Target{Target: target, Goal: goal, NotRun: true, Note: "not measured: " + strings.Join(ws, "; ")})
}

// ratio is a target on a ÷ b: at most (le) or at least bound. A reference that reads 0
// (a CPU figure below the clock tick, a latency no higher than the direct path's) leaves
// no ratio to check, and the row says so.
func (ts *targetList) ratio(target string, a, b float64, le bool, bound float64, ref, note string) {
	goal := ratioGoal(le, bound, ref)
	if b <= 0 {
		ts.notRun(target, goal, fmt.Sprintf("%s reads %.3g, no ratio (%s)", ref, b, note))
		return
	}
	v := a / b
	met := v >= bound
	if le {
		met = v <= bound
	}
	ts.add(target, goal, v, "×", met, note)
}

// ratioGoal is the goal of a ratio target: at most (le) or at least bound times ref.
func ratioGoal(le bool, bound float64, ref string) string {
	if le {
		return fmt.Sprintf("≤ %.1f× %s", bound, ref)
	}
	return fmt.Sprintf("≥ %.1f× %s", bound, ref)
}

// figure is one figure of a scenario's rows that a ratio target bounds: what it is, the
// bound (at most, le, or at least), how a row gives it, and the note's format of the two
// figures.
type figure[T any] struct {
	what  string
	le    bool
	bound float64
	of    func(*T) float64
	note  string
}

// fig is a figure, with T inferred from of.
func fig[T any](what string, le bool, bound float64, of func(*T) float64, note string) figure[T] {
	return figure[T]{what, le, bound, of, note}
}

// versusHAProxy adds a ratio target per figure, "<pre>spliced <what> vs HAProxy's", on
// spliced's row of rows against HAProxy's (the rows match accepts); it is not run when
// this run lacks either row.
func versusHAProxy[T any](ts *targetList, rows []T, key func(T) (string, string), match func(T) bool, pre string, figs ...figure[T]) {
	s, whyS := pick(rows, nameSpliced, key, match)
	ha, whyHA := pick(rows, nameHAProxy, key, match)
	for _, f := range figs {
		t := pre + "spliced " + f.what + " vs HAProxy's"
		if s == nil || ha == nil {
			ts.notRun(t, ratioGoal(f.le, f.bound, "HAProxy's"), whyS, whyHA)
			continue
		}
		a, b := f.of(s), f.of(ha)
		ts.ratio(t, a, b, f.le, f.bound, "HAProxy's", fmt.Sprintf(f.note, a, b))
	}
}

// skippedWhy is the run's own word on why a tool's rows are missing, if it has one.
func skippedWhy(res *Results, tool string) string {
	for _, s := range res.Skipped {
		if strings.Contains(s, tool) {
			return s
		}
	}
	return tool + " was not part of this run (-only or -skip)"
}

func targets(res *Results) []Target {
	var ts targetList

	// Buffers: softnet's zone allocator and mbuf sharing against the Go alternatives.
	if z, p := findMicro(res, "alloc 2 KiB", "softnet uma"), findMicro(res, "alloc 2 KiB", "sync.Pool"); z != nil && p != nil {
		v := z.NsOp / p.NsOp
		ts.add("Allocator: zone alloc+free time vs sync.Pool Get+Put", "≤ 1.0×, 0 allocs/op", v, "×",
			v <= 1.0 && z.AllocsOp == 0, fmt.Sprintf("%.2f vs %.2f ns, %d allocs/op", z.NsOp, p.NsOp, z.AllocsOp))
	}
	if z, zp := findMicro(res, "alloc 2 KiB", "softnet uma"), findMicro(res, "alloc 2 KiB, 2 goroutines", "softnet uma"); z != nil && zp != nil {
		v := z.NsOp / zp.NsOp
		ts.add("Allocator: throughput on two Ps vs one (per-P caches, no shared lock)", "≥ 1.8×", v, "×", v >= 1.8,
			fmt.Sprintf("%.2f ns/op serial, %.2f ns/op with RunParallel on 2 Ps", z.NsOp, zp.NsOp))
	}
	if s, r := findMicro(res, "share 64 KiB, 2 goroutines", "softnet"), findMicro(res, "share 64 KiB, 2 goroutines", "global-mutex"); s != nil && r != nil {
		v := r.NsOp / s.NsOp
		ts.add("Sharing: CopyM+FreeM 64 KiB, 2 goroutines, speed-up over a global-mutex reference", "≥ 1.5×", v, "×", v >= 1.5,
			fmt.Sprintf("%.0f vs %.0f ns/op", s.NsOp, r.NsOp))
	}

	// Bulk TCP: bytes moved per second of the relay's CPU, against the plain Go relays.
	if len(res.TCP) > 0 {
		for _, n := range []int{1, 8} {
			streams := func(r TCPResult) bool { return r.Streams == n }
			sp, whyS := pick(res.TCP, nameSpliced, keyTCP, streams)
			k, whyK := pick(res.TCP, nameSpliced+" --mode kernel", keyTCP, streams)
			u, whyU := pick(res.TCP, nameSpliced+" --mode user", keyTCP, streams)
			io, whyIO := pick(res.TCP, nameIOCopy, keyTCP, streams)
			c, whyC := pick(res.TCP, nameCopy, keyTCP, streams)
			pre := "Bulk TCP, 1 stream: "
			if n > 1 {
				pre = fmt.Sprintf("Bulk TCP, %d streams: ", n)
			}
			// Bytes per relay CPU-second: each path of spliced against a Go relay.
			for _, v := range []struct {
				what       string
				a, b       *TCPResult
				bound      float64
				ref        string
				whyA, whyB string
			}{
				{"spliced --mode kernel, bytes per relay CPU-second vs the io.Copy relay", k, io, 1.0, "io.Copy's", whyK, whyIO},
				{"spliced --mode user, bytes per relay CPU-second vs the 32 KiB copy relay", u, c, 1.1, "the copy relay's", whyU, whyC},
				{"spliced at its defaults (--mode auto), bytes per relay CPU-second vs the io.Copy relay", sp, io, 1.0, "io.Copy's", whyS, whyIO},
			} {
				if v.a == nil || v.b == nil {
					ts.notRun(pre+v.what, ratioGoal(false, v.bound, v.ref), v.whyA, v.whyB)
					continue
				}
				ts.ratio(pre+v.what, v.a.BytesPerCPU, v.b.BytesPerCPU, false, v.bound, v.ref,
					fmt.Sprintf("%.2f vs %.2f GB per relay-CPU-s (%.2f vs %.2f Gbit/s)", v.a.BytesPerCPU/1e9, v.b.BytesPerCPU/1e9, v.a.Gbits, v.b.Gbits))
			}
			// Wall clock: each forced path against the faster of the two Go relays.
			for _, m := range []struct {
				mode string
				r    *TCPResult
				why  string
			}{{"kernel", k, whyK}, {"user", u, whyU}} {
				t := pre + "spliced --mode " + m.mode + ", Gbit/s vs the faster of the io.Copy and copy relays"
				if m.r != nil && io != nil && c != nil {
					ts.ratio(t, m.r.Gbits, max(io.Gbits, c.Gbits), false, 1.0, "the faster one's",
						fmt.Sprintf("%.2f vs %.2f (io.Copy) / %.2f (copy) Gbit/s", m.r.Gbits, io.Gbits, c.Gbits))
				} else {
					ts.notRun(t, "≥ 1.0× the faster one's", m.why, whyIO, whyC)
				}
			}
		}
	}

	// Request/response, one connection: the round-trip latency a relay adds to the
	// direct path's, 64-byte messages one at a time.
	if len(res.RR1) > 0 {
		s, whyS := pick(res.RR1, nameSpliced, keyRR, nil)
		d, whyD := pick(res.RR1, directSpec.name, keyRR, nil)
		io, whyIO := pick(res.RR1, nameIOCopy, keyRR, nil)
		ha, whyHA := pick(res.RR1, nameHAProxy, keyRR, nil)
		pre := "Request/response 64 B, 1 connection: "
		// The latency a relay adds to the direct path's p50: spliced's against a peer's.
		for _, v := range []struct {
			peer, ref string
			r         *RRResult
			why       string
			bound     float64
		}{{"the io.Copy relay's", "io.Copy's", io, whyIO, 1.0}, {"HAProxy's", "HAProxy's", ha, whyHA, 0.5}} {
			t := pre + "spliced's added p50 round trip over direct vs " + v.peer
			if s == nil || d == nil || v.r == nil {
				ts.notRun(t, ratioGoal(true, v.bound, v.ref), whyS, whyD, v.why)
				continue
			}
			ts.ratio(t, s.P50us-d.P50us, v.r.P50us-d.P50us, true, v.bound, v.ref,
				fmt.Sprintf("+%.1f vs +%.1f µs (p50 %.1f vs %.1f µs, direct %.1f µs)", s.P50us-d.P50us, v.r.P50us-d.P50us, s.P50us, v.r.P50us, d.P50us))
		}
		t := pre + "spliced's p99 round trip vs the io.Copy relay's"
		if s != nil && io != nil {
			ts.ratio(t, s.P99us, io.P99us, true, 1.0, "io.Copy's", fmt.Sprintf("%.1f vs %.1f µs", s.P99us, io.P99us))
		} else {
			ts.notRun(t, "≤ 1.0× io.Copy's", whyS, whyIO)
		}
	}

	// Request/response, 32 connections: throughput, and the relay's CPU for it.
	if len(res.RR32) > 0 {
		versusHAProxy(&ts, res.RR32, keyRR, nil, "Request/response 64 B, 32 connections: ",
			fig("requests/s", false, 1.0, func(r *RRResult) float64 { return r.PerSec }, "%.0f vs %.0f requests/s"),
			fig("relay CPU per million requests", true, 1.0, func(r *RRResult) float64 { return r.CPUPerM }, "%.2f vs %.2f relay CPU-s per million requests"))
	}

	// Connection churn: connect, one 64-byte echo, close, from 16 clients.
	if len(res.Churn) > 0 {
		versusHAProxy(&ts, res.Churn, keyChurn, nil, "Connection churn, 16 clients: ",
			fig("relay CPU per 1,000 connections", true, 0.8, func(r *ChurnResult) float64 { return r.CPUPerK }, "%.3f vs %.3f relay CPU-s per 1,000 connections"),
			fig("connections/s", false, 1.0, func(r *ChurnResult) float64 { return r.PerSec }, "%.0f vs %.0f connections/s"))
	}

	// Fairness: one interactive connection (64-byte request/response) beside 4 bulk
	// streams through the same relay.
	if len(res.Fair) > 0 {
		s, whyS := pick(res.Fair, nameSpliced, keyFair, nil)
		pre := "Fairness, 1 interactive connection beside 4 bulk streams: "
		if s != nil {
			ts.add(pre+"spliced interactive p50 round trip", "≤ 300 µs", s.InterP50, "µs", s.InterP50 <= 300,
				fmt.Sprintf("p50 %.1f µs, p99 %.1f µs", s.InterP50, s.InterP99))
		} else {
			ts.notRun(pre+"spliced interactive p50 round trip", "≤ 300 µs", whyS)
		}
		versusHAProxy(&ts, res.Fair, keyFair, nil, pre,
			fig("interactive requests/s", false, 10, func(r *FairResult) float64 { return r.InterRate }, "%.0f vs %.0f interactive requests/s"))
		if s != nil {
			ts.ratio(pre+"spliced bulk Gbit/s vs its own bulk-only run", s.BulkGbit, s.BulkOnlyGbit, false, 0.9, "bulk alone",
				fmt.Sprintf("%.2f Gbit/s beside the interactive connection, %.2f alone", s.BulkGbit, s.BulkOnlyGbit))
		} else {
			ts.notRun(pre+"spliced bulk Gbit/s vs its own bulk-only run", "≥ 0.9× bulk alone", whyS)
		}
	}

	// Idle relayed connections: memory per connection and CPU while nothing moves.
	if len(res.Idle) > 0 {
		for _, r := range res.Idle {
			if !r.Softnet {
				continue
			}
			t := "Idle: " + r.Relay + " RSS per idle relayed connection"
			if r.Err != "" {
				ts.notRun(t, "≤ 2 KiB (2048 B)", r.Relay+": "+r.Err)
				continue
			}
			ts.add(t, "≤ 2 KiB (2048 B)", r.PerConn, "B", r.PerConn <= 2048,
				fmt.Sprintf("VmRSS %.1f → %.1f MiB over %d connections, 2 s after the burst, no forced GC", float64(r.RSSBefore)/(1<<20), float64(r.RSSAfter)/(1<<20), r.Conns))
		}
		// The CPU with no connection is taken before any connection is opened, so a
		// row whose connections then failed still has it.
		s, whyS := pick(res.Idle, nameSpliced, func(r IdleResult) (string, string) { return r.Relay, "" }, nil)
		tick := func(r *IdleResult) string {
			return fmt.Sprintf("relay CPU over %.1f s (one clock tick is %.2f%% of it)", r.CPUSeconds, 100/clkTck/r.CPUSeconds)
		}
		if s != nil && s.CPUSeconds > 0 {
			ts.add("Idle: spliced CPU with no connection", "< 0.5% of a core", s.CPUIdlePct, "%", s.CPUIdlePct < 0.5, tick(s))
		} else {
			ts.notRun("Idle: spliced CPU with no connection", "< 0.5% of a core", whyS)
		}
		t := "Idle: spliced CPU with " + thousands(idleCPUConns(res)) + " idle relayed connections"
		if s, whyS := pick(res.Idle, nameSpliced, keyIdle, nil); s != nil {
			ts.add(t, "< 0.5% of a core", s.CPUConnsPct, "%", s.CPUConnsPct < 0.5, tick(s))
		} else {
			ts.notRun(t, "< 0.5% of a core", whyS)
		}
	}

	if len(res.UDP) == 2 && res.UDP[0].Err == "" && res.UDP[1].Err == "" {
		ts.ratio("UDP relay, 1200-byte datagrams: datagrams per relay CPU-second vs a ReadFrom/WriteTo Go relay", res.UDP[0].PerCPU, res.UDP[1].PerCPU, false, 2, "the Go relay's",
			fmt.Sprintf("%.0fk vs %.0fk per CPU-s", res.UDP[0].PerCPU/1e3, res.UDP[1].PerCPU/1e3))
	}
	if res.GC != nil {
		// One allocation per chunk would read 1.0 here; the resolution is the scrape's
		// own count, which varies by a few hundred, over the thousands of chunks moved.
		ts.add("GC: relay heap allocations per moved 64 KiB (user path)", "0 (< 0.1 at this resolution)", res.GC.MallocsPer64K, "mallocs", res.GC.MallocsPer64K < 0.1,
			fmt.Sprintf("%.0f mallocs counted in the relay while it moved %d MiB on one warmed-up connection, less %.0f for the /metrics scrape itself (which varies by a few hundred); %.0f GC cycles in the window", res.GC.Raw, res.GC.Bytes>>20, res.GC.Scrape, res.GC.GCCycles))
	}

	// Third-party clients and servers, through spliced and through HAProxy.
	for _, conn := range []string{"keep-alive", "close"} {
		pre := "wrk → nginx, keep-alive: "
		if conn == "close" {
			pre = "wrk → nginx, Connection: close: "
		}
		if len(res.Wrk) == 0 {
			ts.notRun(pre+"spliced requests/s vs HAProxy's", "≥ 1.0× HAProxy's", skippedWhy(res, "wrk"))
			ts.notRun(pre+"spliced relay CPU per request vs HAProxy's", "≤ 1.0× HAProxy's", skippedWhy(res, "wrk"))
			continue
		}
		versusHAProxy(&ts, res.Wrk, keyWrk, func(r WrkResult) bool { return r.Conn == conn }, pre,
			fig("requests/s", false, 1.0, func(r *WrkResult) float64 { return r.PerSec }, "%.0f vs %.0f requests/s"),
			fig("relay CPU per request", true, 1.0, func(r *WrkResult) float64 { return r.CPUPerReq }, "%.1f vs %.1f relay CPU µs per request"))
	}
	for _, test := range []string{"SET", "GET"} {
		pre := "redis-benchmark -c 50, " + test + ": "
		if len(res.Redis) == 0 {
			ts.notRun(pre+"spliced requests/s vs HAProxy's", "≥ 1.0× HAProxy's", skippedWhy(res, "redis"))
			continue
		}
		versusHAProxy(&ts, res.Redis, keyRedis, func(r RedisResult) bool { return r.Test == test }, pre,
			fig("requests/s", false, 1.0, func(r *RedisResult) float64 { return r.PerSec }, "%.0f vs %.0f requests/s"))
	}
	t := "iperf3, 8 streams: TCP retransmits through spliced vs through HAProxy"
	if len(res.Iperf) == 0 {
		ts.notRun(t, "≤ HAProxy's", skippedWhy(res, "iperf3"))
	} else if s, whyS := pick(res.Iperf, nameSpliced, keyIperf, nil); s == nil {
		ts.notRun(t, "≤ HAProxy's", whyS)
	} else if ha, whyHA := pick(res.Iperf, nameHAProxy, keyIperf, nil); ha == nil {
		ts.notRun(t, "≤ HAProxy's", whyHA)
	} else {
		ts.add(t, fmt.Sprintf("≤ HAProxy's (%d)", ha.Retransmits), float64(s.Retransmits), "retransmits", s.Retransmits <= ha.Retransmits,
			fmt.Sprintf("%d vs %d retransmits on the client → relay hop, %.2f vs %.2f Gbit/s", s.Retransmits, ha.Retransmits, s.Gbits, ha.Gbits))
	}
	return ts
}
