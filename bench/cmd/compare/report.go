package main

import (
	"fmt"
	"strings"

	"github.com/softnet-go/softnet/bench/internal/schema"
)

// gvisorOK reports whether gVisor's pkg/buffer is part of this build; it is (the module
// resolved from gvisor.dev/gvisor@latest, a pseudo-version of its go branch).
func gvisorOK() bool { return true }

func adv(v float64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", v)
}

// Comparison is one of spliced's figures against one peer's in the same run.
type Comparison = schema.Comparison

// cmp compares softnet's row with every peer row of a scenario on one metric; rows of
// softnet itself (spliced with another --mode) are no peers.
type cmpRow struct {
	relay           string
	softnet, direct bool
	v               float64
	ok              bool
}

func cmpRows(section, metric string, higher, withCeiling bool, ref string, rows []cmpRow) []Comparison {
	var s *cmpRow
	for i := range rows {
		if rows[i].relay == ref && rows[i].ok {
			s = &rows[i]
		}
	}
	if s == nil || s.v <= 0 {
		return nil
	}
	var out []Comparison
	for _, r := range rows {
		if r.relay == ref || r.softnet || !r.ok || r.v <= 0 || r.direct && !withCeiling {
			continue
		}
		c := Comparison{Section: section, Metric: metric, HigherBetter: higher, Softnet: s.relay, Peer: r.relay,
			SoftnetValue: s.v, PeerValue: r.v, Ceiling: r.direct}
		if higher {
			c.Ratio = s.v / r.v
		} else {
			c.Ratio = r.v / s.v
		}
		out = append(out, c)
	}
	return out
}

// cmp is a row's cmpRow on the metric v (peer).
func (r TCPResult) cmp(v float64) cmpRow   { return r.peer(v, r.Err) }
func (r RRResult) cmp(v float64) cmpRow    { return r.peer(v, r.Err) }
func (r ChurnResult) cmp(v float64) cmpRow { return r.peer(v, r.Err) }
func (r FairResult) cmp(v float64) cmpRow  { return r.peer(v, r.Err) }
func (r IdleResult) cmp(v float64) cmpRow  { return r.peer(v, r.Err) }
func (r WrkResult) cmp(v float64) cmpRow   { return r.peer(v, r.Err) }
func (r RedisResult) cmp(v float64) cmpRow { return r.peer(v, r.Err) }
func (r IperfResult) cmp(v float64) cmpRow { return r.peer(v, r.Err) }

// The UDP rows compare the relays as they are, with none of them softnet's own.
func (r UDPResult) cmp(v float64) cmpRow { return Row{Relay: r.Relay}.peer(v, r.Err) }

// peer is the row's cmpRow on the metric v, err its error: rows of spliced with another
// --mode are softnet's own, no peers.
func (w Row) peer(v float64, err string) cmpRow {
	return cmpRow{w.Relay, w.Softnet && w.Relay != nameSpliced, w.Direct, v, err == ""}
}

// metric is the cmpRows of a scenario's rows (those keep accepts, if given) on the metric
// of.
func metric[T interface{ cmp(float64) cmpRow }](rows []T, keep func(T) bool, of func(T) float64) []cmpRow {
	var out []cmpRow
	for _, r := range rows {
		if keep == nil || keep(r) {
			out = append(out, r.cmp(of(r)))
		}
	}
	return out
}

func comparisons(res *Results) []Comparison {
	var out []Comparison
	// vs compares spliced's row of a scenario with every peer's on one metric.
	vs := func(section, name string, higher, withCeiling bool, rows []cmpRow) {
		out = append(out, cmpRows(section, name, higher, withCeiling, nameSpliced, rows)...)
	}
	groups := map[string]bool{}
	for _, m := range res.Micro {
		if groups[m.Group] {
			continue
		}
		groups[m.Group] = true
		var rows []cmpRow
		ref := ""
		for _, x := range res.Micro {
			if x.Group == m.Group {
				if x.Softnet && ref == "" {
					ref = x.Impl
				}
				rows = append(rows, cmpRow{x.Impl, x.Softnet && x.Impl != ref, false, x.NsOp, x.NsOp > 0})
			}
		}
		out = append(out, cmpRows("Buffers: "+m.Group, "ns/op", false, false, ref, rows)...)
	}
	for _, n := range []int{1, 8} {
		streams := func(r TCPResult) bool { return r.Streams == n }
		sec := fmt.Sprintf("Bulk TCP, %d stream(s)", n)
		vs(sec, "Gbit/s", true, true, metric(res.TCP, streams, func(r TCPResult) float64 { return r.Gbits }))
		vs(sec, "bytes per relay CPU-second", true, false, metric(res.TCP, streams, func(r TCPResult) float64 { return r.BytesPerCPU }))
	}
	p50 := func(r RRResult) float64 { return r.P50us }
	p99 := func(r RRResult) float64 { return r.P99us }
	vs("Request/response, 1 connection", "p50 round trip (µs)", false, true, metric(res.RR1, nil, p50))
	vs("Request/response, 1 connection", "p99 round trip (µs)", false, true, metric(res.RR1, nil, p99))
	vs("Request/response, 32 connections", "requests/s", true, true, metric(res.RR32, nil, func(r RRResult) float64 { return r.PerSec }))
	vs("Request/response, 32 connections", "relay CPU-s per million requests", false, false, metric(res.RR32, nil, func(r RRResult) float64 { return r.CPUPerM }))
	vs("Connection churn, 16 clients", "connections/s", true, true, metric(res.Churn, nil, func(r ChurnResult) float64 { return r.PerSec }))
	vs("Connection churn, 16 clients", "relay CPU-s per 1,000 connections", false, false, metric(res.Churn, nil, func(r ChurnResult) float64 { return r.CPUPerK }))
	vs("Fairness: interactive beside 4 bulk streams", "interactive p99 (µs)", false, true, metric(res.Fair, nil, func(r FairResult) float64 { return r.InterP99 }))
	vs("Fairness: interactive beside 4 bulk streams", "bulk Gbit/s", true, true, metric(res.Fair, nil, func(r FairResult) float64 { return r.BulkGbit }))
	vs("Idle connections", "RSS per connection", false, false, metric(res.Idle, nil, func(r IdleResult) float64 { return r.PerConn }))
	// A CPU figure under 0.1% is below the measurement's resolution.
	vs("Idle connections", fmt.Sprintf("CPU %% with %d idle connections (rows at < 0.1%% left out)", idleCPUConns(res)), false, false,
		metric(res.Idle, func(r IdleResult) bool { return r.CPUConnsPct >= 0.1 }, func(r IdleResult) float64 { return r.CPUConnsPct }))
	if len(res.UDP) == 2 {
		// spliced --udp is the reference here.
		ref := res.UDP[0].Relay
		out = append(out, cmpRows("UDP, 1200-byte datagrams", "datagrams/s at the target", true, false, ref, metric(res.UDP, nil, func(r UDPResult) float64 { return r.PerSec }))...)
		out = append(out, cmpRows("UDP, 1200-byte datagrams", "datagrams per relay CPU-second", true, false, ref, metric(res.UDP, nil, func(r UDPResult) float64 { return r.PerCPU }))...)
	}
	for _, conn := range []string{"keep-alive", "close"} {
		mode := func(r WrkResult) bool { return r.Conn == conn }
		vs("wrk → nginx, "+conn, "requests/s", true, true, metric(res.Wrk, mode, func(r WrkResult) float64 { return r.PerSec }))
		vs("wrk → nginx, "+conn, "relay CPU µs per request", false, false, metric(res.Wrk, mode, func(r WrkResult) float64 { return r.CPUPerReq }))
	}
	for _, t := range []string{"SET", "GET"} {
		vs("redis-benchmark -c 50, "+t, "requests/s", true, true, metric(res.Redis, func(r RedisResult) bool { return r.Test == t }, func(r RedisResult) float64 { return r.PerSec }))
	}
	vs("iperf3, 8 streams", "Gbit/s", true, true, metric(res.Iperf, nil, func(r IperfResult) float64 { return r.Gbits }))
	vs("iperf3, 8 streams", "slowest ÷ fastest stream", true, true, metric(res.Iperf, nil, func(r IperfResult) float64 { return r.SlowFast }))
	return out
}

// table writes one table of the report: its heading and column header, then a line per
// row, then an empty line; nothing without rows. A row that failed (by failed, if given:
// its label and error) gets an error line of cols cells.
func table[T any](b *strings.Builder, rows []T, heading, header string, cols int, failed func(T) (label, err string), line func(T) string) {
	if len(rows) == 0 {
		return
	}
	b.WriteString(heading + header)
	for _, r := range rows {
		label, err := "", ""
		if failed != nil {
			label, err = failed(r)
		}
		if err != "" {
			fmt.Fprintf(b, "| %s | error: %s |%s\n", label, err, strings.Repeat(" |", cols-2))
			continue
		}
		b.WriteString(line(r))
	}
	b.WriteString("\n")
}

// cpuCell is a relay CPU figure in f, or "–" for the direct path (no relay).
func cpuCell(direct bool, v float64, f string) string {
	if direct {
		return "–"
	}
	return fmt.Sprintf(f, v)
}

func markdown(res *Results) string {
	var b strings.Builder
	p := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	m := res.Machine
	p("Run of %s at commit %s: %s, %s cores, %s, Linux %s, %s.\n\n", m["date"], m["commit"], m["cpu"], m["nproc"], m["memory"], m["kernel"], m["go"])
	rounds := res.Config["rounds"]
	table(&b, res.Micro, "### Buffers: allocation and chains (64 KiB = 32 × 2 KiB)\n\n"+
		"\"softnet advantage\" is this row's ns/op ÷ softnet's in the same group: above 1, softnet is faster.\n\n",
		"| operation | implementation | ns/op | allocs/op | B/op | softnet advantage |\n|---|---|---:|---:|---:|---:|\n", 0,
		nil,
		func(m MicroResult) string {
			name := m.Impl
			if m.Note != "" {
				name += " (" + m.Note + ")"
			}
			return fmt.Sprintf("| %s | %s | %.1f | %d | %d | %s |\n", m.Group, name, m.NsOp, m.AllocsOp, m.BytesOp, adv(m.Advantage))
		})
	table(&b, res.TCP, fmt.Sprintf("### Bulk TCP streams (128 KiB writes; each row the median of %v interleaved runs of %.1f s)\n\n", rounds, res.Config["relay_seconds"])+
		"\"spliced ÷ row\": spliced's figure (shipped defaults) ÷ this row's at the same stream count: above 1, spliced is better.\n\n",
		"| relay | streams | Gbit/s | GB per relay-CPU-s | relay CPU (s) | spliced ÷ row, Gbit/s | spliced ÷ row, per CPU-s |\n|---|---:|---:|---:|---:|---:|---:|\n", 6,
		func(r TCPResult) (string, string) { return fmt.Sprintf("%s | %d", r.Relay, r.Streams), r.Err },
		func(r TCPResult) string {
			cpu, per := "–", "–"
			if r.RelayCPU > 0 {
				cpu, per = fmt.Sprintf("%.2f", r.RelayCPU), fmt.Sprintf("%.2f", r.BytesPerCPU/1e9)
			}
			name := r.Relay
			if r.Direct {
				name += ", ceiling"
			}
			return fmt.Sprintf("| %s | %d | %.2f | %s | %s | %s | %s |\n", name, r.Streams, r.Gbits, per, cpu, adv(r.AdvGbit), adv(r.AdvCPU))
		})
	table(&b, res.RR1, fmt.Sprintf("### Request/response, 1 connection (64-byte request, 64-byte echo, one at a time; median of %v interleaved runs of %.1f s)\n\n", rounds, res.Config["rr1_seconds"]),
		"| relay | round trips/s | p50 (µs) | p99 (µs) | added p50 over direct (µs) | relay CPU (s) |\n|---|---:|---:|---:|---:|---:|\n", 6, keyRR,
		func(r RRResult) string {
			return fmt.Sprintf("| %s | %.0f | %.1f | %.1f | %s | %s |\n", r.Relay, r.PerSec, r.P50us, r.P99us, cpuCell(r.Direct, r.AddedP50us, "%+.1f"), cpuCell(r.Direct, r.RelayCPU, "%.2f"))
		})
	table(&b, res.RR32, fmt.Sprintf("### Request/response, 32 connections (64 bytes each way, each connection one request at a time; median of %v runs of %.1f s)\n\n", rounds, res.Config["rr_seconds"]),
		"| relay | requests/s | p50 (µs) | p99 (µs) | relay CPU (s) | relay CPU-s per million requests |\n|---|---:|---:|---:|---:|---:|\n", 6, keyRR,
		func(r RRResult) string {
			return fmt.Sprintf("| %s | %.0f | %.1f | %.1f | %s | %s |\n", r.Relay, r.PerSec, r.P50us, r.P99us, cpuCell(r.Direct, r.RelayCPU, "%.2f"), cpuCell(r.Direct, r.CPUPerM, "%.2f"))
		})
	table(&b, res.Churn, fmt.Sprintf("### Connection churn, 16 clients (connect, 64-byte echo, normal close; median of %v runs of %.1f s)\n\n", rounds, res.Config["rr_seconds"]),
		"| relay | connections/s | failed | relay CPU (s) | relay CPU-s per 1,000 connections |\n|---|---:|---:|---:|---:|\n", 5, keyChurn,
		func(r ChurnResult) string {
			return fmt.Sprintf("| %s | %.0f | %d | %s | %s |\n", r.Relay, r.PerSec, r.Failed, cpuCell(r.Direct, r.RelayCPU, "%.2f"), cpuCell(r.Direct, r.CPUPerK, "%.3f"))
		})
	table(&b, res.Fair, fmt.Sprintf("### Fairness: 1 interactive connection beside 4 bulk streams through the same relay (median of %v runs of %.1f s, by interactive p99)\n\n", rounds, res.Config["rr_seconds"]),
		"| relay | interactive p50 (µs) | interactive p99 (µs) | interactive requests/s | bulk Gbit/s | bulk alone, Gbit/s | bulk ÷ bulk alone | relay CPU (s) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n", 8, keyFair,
		func(r FairResult) string {
			return fmt.Sprintf("| %s | %.1f | %.1f | %.0f | %.2f | %.2f | %.2f | %s |\n", r.Relay, r.InterP50, r.InterP99, r.InterRate, r.BulkGbit, r.BulkOnlyGbit, r.BulkRatio, cpuCell(r.Direct, r.RelayCPU, "%.2f"))
		})
	if len(res.Idle) > 0 {
		p("### Idle relayed TCP connections (%v; VmRSS as ps shows it, 2 s after the burst, no forced GC)\n\n", res.Config["idle_conns"])
		p("| relay | RSS before | RSS after | RSS per connection | relay fds per connection | row ÷ spliced, RSS | CPU, no connection | CPU, %d idle connections |\n|---|---:|---:|---:|---:|---:|---:|---:|\n", idleCPUConns(res))
		for _, r := range res.Idle {
			if r.Err != "" {
				p("| %s | error: %s | | | %.1f | | %.2f%% | |\n", r.Relay, r.Err, r.FDsPerConn, r.CPUIdlePct)
				continue
			}
			p("| %s | %.1f MiB | %.1f MiB | %.2f KiB | %.1f | %s | %.2f%% | %.2f%% |\n", r.Relay, float64(r.RSSBefore)/(1<<20), float64(r.RSSAfter)/(1<<20), r.PerConn/1024, r.FDsPerConn, adv(r.AdvPerConn), r.CPUIdlePct, r.CPUConnsPct)
		}
		p("\nCPU is %% of one core over %.1f s.\n\n", res.Config["idle_cpu_seconds"])
	}
	table(&b, res.UDP, "### UDP relay, 1200-byte datagrams, one flow\n\n",
		"| relay | datagrams/s at the target | per relay-CPU-s | loss | softnet advantage, per CPU-s | softnet advantage, rate |\n|---|---:|---:|---:|---:|---:|\n", 6,
		func(r UDPResult) (string, string) { return r.Relay, r.Err },
		func(r UDPResult) string {
			return fmt.Sprintf("| %s | %.0fk | %.0fk | %.1f%% | %s | %s |\n", r.Relay, r.PerSec/1e3, r.PerCPU/1e3, r.LossPct, adv(r.AdvPerCPU), adv(r.AdvPerSec))
		})
	table(&b, res.Wrk, fmt.Sprintf("### wrk → nginx, a 128-byte static file (1 thread, 32 connections; median of %v runs of %.0f s)\n\n", rounds, res.Config["tool_seconds"]),
		"| relay | connection | requests/s | p50 (µs) | p99 (µs) | errors | relay CPU µs per request |\n|---|---|---:|---:|---:|---:|---:|\n", 7,
		func(r WrkResult) (string, string) { return r.Relay + " | " + r.Conn, r.Err },
		func(r WrkResult) string {
			return fmt.Sprintf("| %s | %s | %.0f | %.0f | %.0f | %d | %s |\n", r.Relay, r.Conn, r.PerSec, r.P50us, r.P99us, r.Errors, cpuCell(r.Direct, r.CPUPerReq, "%.2f"))
		})
	table(&b, res.Redis, fmt.Sprintf("### redis-benchmark -c 50 -t get,set → redis-server (%v requests per test; median of %v runs)\n\n", res.Config["redis_requests"], rounds),
		"| relay | test | requests/s | p50 (ms) | p99 (ms) | relay CPU µs per request |\n|---|---|---:|---:|---:|---:|\n", 6,
		func(r RedisResult) (string, string) { return r.Relay + " | " + r.Test, r.Err },
		func(r RedisResult) string {
			return fmt.Sprintf("| %s | %s | %.0f | %.3f | %.3f | %s |\n", r.Relay, r.Test, r.PerSec, r.P50ms, r.P99ms, cpuCell(r.Direct, r.CPUPerReq, "%.2f"))
		})
	table(&b, res.Iperf, fmt.Sprintf("### iperf3, 8 parallel streams (median of %v runs of %.0f s)\n\n", rounds, res.Config["iperf_seconds"]),
		"| relay | Gbit/s | TCP retransmits (client → relay hop) | slowest ÷ fastest stream | GB per relay-CPU-s |\n|---|---:|---:|---:|---:|\n", 5, keyIperf,
		func(r IperfResult) string {
			return fmt.Sprintf("| %s | %.2f | %d | %.2f | %s |\n", r.Relay, r.Gbits, r.Retransmits, r.SlowFast, cpuCell(r.Direct, r.PerCPU/1e9, "%.2f"))
		})
	table(&b, res.Targets, "### Targets\n\n"+
		"What spliced is built to reach, each checked against this run's rows (the medians above); a target whose rows this run lacks says so.\n\n",
		"| target | goal | this run | met | detail |\n|---|---|---:|---|---|\n", 0,
		nil,
		func(t Target) string {
			return fmt.Sprintf("| %s | %s | %s | %s | %s |\n", t.Target, t.Goal, t.shown(), t.verdict(), t.Note)
		})
	if len(res.Configs) > 0 {
		p("### The peers' exact configuration\n\n")
		p("As run (ports are picked per run); also in `bench/results/configs/`.\n\n")
		for _, c := range res.Configs {
			p("`%s`:\n\n```\n%s```\n\n", c.Name, c.Text)
		}
	}
	if len(res.Skipped) > 0 {
		p("Not included: %s\n\n", strings.Join(res.Skipped, "; "))
	}
	p("Whole run: %.0f s.\n", res.Seconds)
	return b.String()
}
