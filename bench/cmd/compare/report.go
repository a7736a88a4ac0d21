package main

import (
	"fmt"
	"strings"
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
type Comparison struct {
	Section string `json:"section"`
	Metric  string `json:"metric"`
	// HigherBetter says which way the metric is good; Ratio is oriented by it, so that
	// above 1 is always in softnet's favour: softnet ÷ peer when higher is better, peer
	// ÷ softnet when lower is.
	HigherBetter bool    `json:"higher_better"`
	Softnet      string  `json:"softnet"`
	Peer         string  `json:"peer"`
	SoftnetValue float64 `json:"softnet_value"`
	PeerValue    float64 `json:"peer_value"`
	Ratio        float64 `json:"ratio"`
	// Ceiling marks the direct path (no relay): a bound no relay can pass, not a
	// competitor.
	Ceiling bool `json:"ceiling,omitempty"`
}

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

func comparisons(res *Results) []Comparison {
	var out []Comparison
	add := func(cs []Comparison) { out = append(out, cs...) }
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
		add(cmpRows("Buffers: "+m.Group, "ns/op", false, false, ref, rows))
	}
	for _, n := range []int{1, 8} {
		var gb, cpu []cmpRow
		for _, r := range res.TCP {
			if r.Streams == n {
				sn := r.Softnet && r.Relay != nameSpliced
				gb = append(gb, cmpRow{r.Relay, sn, r.Direct, r.Gbits, r.Err == ""})
				cpu = append(cpu, cmpRow{r.Relay, sn, r.Direct, r.BytesPerCPU, r.Err == ""})
			}
		}
		sec := fmt.Sprintf("Bulk TCP, %d stream(s)", n)
		add(cmpRows(sec, "Gbit/s", true, true, nameSpliced, gb))
		add(cmpRows(sec, "bytes per relay CPU-second", true, false, nameSpliced, cpu))
	}
	rr := func(rs []RRResult, f func(RRResult) float64) []cmpRow {
		var rows []cmpRow
		for _, r := range rs {
			rows = append(rows, cmpRow{r.Relay, r.Softnet && r.Relay != nameSpliced, r.Direct, f(r), r.Err == ""})
		}
		return rows
	}
	add(cmpRows("Request/response, 1 connection", "p50 round trip (µs)", false, true, nameSpliced, rr(res.RR1, func(r RRResult) float64 { return r.P50us })))
	add(cmpRows("Request/response, 1 connection", "p99 round trip (µs)", false, true, nameSpliced, rr(res.RR1, func(r RRResult) float64 { return r.P99us })))
	add(cmpRows("Request/response, 32 connections", "requests/s", true, true, nameSpliced, rr(res.RR32, func(r RRResult) float64 { return r.PerSec })))
	add(cmpRows("Request/response, 32 connections", "relay CPU-s per million requests", false, false, nameSpliced, rr(res.RR32, func(r RRResult) float64 { return r.CPUPerM })))
	var ch, chc []cmpRow
	for _, r := range res.Churn {
		ch = append(ch, cmpRow{r.Relay, r.Softnet && r.Relay != nameSpliced, r.Direct, r.PerSec, r.Err == ""})
		chc = append(chc, cmpRow{r.Relay, r.Softnet && r.Relay != nameSpliced, r.Direct, r.CPUPerK, r.Err == ""})
	}
	add(cmpRows("Connection churn, 16 clients", "connections/s", true, true, nameSpliced, ch))
	add(cmpRows("Connection churn, 16 clients", "relay CPU-s per 1,000 connections", false, false, nameSpliced, chc))
	var f99, fb []cmpRow
	for _, r := range res.Fair {
		f99 = append(f99, cmpRow{r.Relay, r.Softnet && r.Relay != nameSpliced, r.Direct, r.InterP99, r.Err == ""})
		fb = append(fb, cmpRow{r.Relay, r.Softnet && r.Relay != nameSpliced, r.Direct, r.BulkGbit, r.Err == ""})
	}
	add(cmpRows("Fairness: interactive beside 4 bulk streams", "interactive p99 (µs)", false, true, nameSpliced, f99))
	add(cmpRows("Fairness: interactive beside 4 bulk streams", "bulk Gbit/s", true, true, nameSpliced, fb))
	var id, idc []cmpRow
	for _, r := range res.Idle {
		sn := r.Softnet && r.Relay != nameSpliced
		id = append(id, cmpRow{r.Relay, sn, false, r.PerConn, r.Err == ""})
		idc = append(idc, cmpRow{r.Relay, sn, false, r.CPUConnsPct, r.Err == "" && r.CPUConnsPct >= 0.1})
	}
	add(cmpRows("Idle connections", "RSS per connection", false, false, nameSpliced, id))
	add(cmpRows("Idle connections", fmt.Sprintf("CPU %% with %d idle connections (rows at < 0.1%% left out)", idleCPUConns(res)), false, false, nameSpliced, idc))
	if len(res.UDP) == 2 {
		var u, uc []cmpRow
		for _, r := range res.UDP {
			u = append(u, cmpRow{r.Relay, false, false, r.PerSec, r.Err == ""})
			uc = append(uc, cmpRow{r.Relay, false, false, r.PerCPU, r.Err == ""})
		}
		add(cmpRows("UDP, 1200-byte datagrams", "datagrams/s at the target", true, false, res.UDP[0].Relay, u))
		add(cmpRows("UDP, 1200-byte datagrams", "datagrams per relay CPU-second", true, false, res.UDP[0].Relay, uc))
	}
	for _, conn := range []string{"keep-alive", "close"} {
		var w, wc []cmpRow
		for _, r := range res.Wrk {
			if r.Conn == conn {
				w = append(w, cmpRow{r.Relay, r.Softnet && r.Relay != nameSpliced, r.Direct, r.PerSec, r.Err == ""})
				wc = append(wc, cmpRow{r.Relay, r.Softnet && r.Relay != nameSpliced, r.Direct, r.CPUPerReq, r.Err == ""})
			}
		}
		add(cmpRows("wrk → nginx, "+conn, "requests/s", true, true, nameSpliced, w))
		add(cmpRows("wrk → nginx, "+conn, "relay CPU µs per request", false, false, nameSpliced, wc))
	}
	for _, t := range []string{"SET", "GET"} {
		var rows []cmpRow
		for _, r := range res.Redis {
			if r.Test == t {
				rows = append(rows, cmpRow{r.Relay, r.Softnet && r.Relay != nameSpliced, r.Direct, r.PerSec, r.Err == ""})
			}
		}
		add(cmpRows("redis-benchmark -c 50, "+t, "requests/s", true, true, nameSpliced, rows))
	}
	var ig, isf []cmpRow
	for _, r := range res.Iperf {
		ig = append(ig, cmpRow{r.Relay, r.Softnet && r.Relay != nameSpliced, r.Direct, r.Gbits, r.Err == ""})
		isf = append(isf, cmpRow{r.Relay, r.Softnet && r.Relay != nameSpliced, r.Direct, r.SlowFast, r.Err == ""})
	}
	add(cmpRows("iperf3, 8 streams", "Gbit/s", true, true, nameSpliced, ig))
	add(cmpRows("iperf3, 8 streams", "slowest ÷ fastest stream", true, true, nameSpliced, isf))
	return out
}

func markdown(res *Results) string {
	var b strings.Builder
	p := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	m := res.Machine
	p("Run of %s at commit %s: %s, %s cores, %s, Linux %s, %s.\n\n", m["date"], m["commit"], m["cpu"], m["nproc"], m["memory"], m["kernel"], m["go"])
	rounds := res.Config["rounds"]
	if len(res.Micro) > 0 {
		p("### Buffers: allocation and chains (64 KiB = 32 × 2 KiB)\n\n")
		p("\"softnet advantage\" is this row's ns/op ÷ softnet's in the same group: above 1, softnet is faster.\n\n")
		p("| operation | implementation | ns/op | allocs/op | B/op | softnet advantage |\n|---|---|---:|---:|---:|---:|\n")
		for _, m := range res.Micro {
			name := m.Impl
			if m.Note != "" {
				name += " (" + m.Note + ")"
			}
			p("| %s | %s | %.1f | %d | %d | %s |\n", m.Group, name, m.NsOp, m.AllocsOp, m.BytesOp, adv(m.Advantage))
		}
		p("\n")
	}
	errRow := func(relay, err string, cols int) {
		p("| %s | error: %s |%s\n", relay, err, strings.Repeat(" |", cols-2))
	}
	if len(res.TCP) > 0 {
		p("### Bulk TCP streams (128 KiB writes; each row the median of %v interleaved runs of %.1f s)\n\n", rounds, res.Config["relay_seconds"])
		p("\"spliced ÷ row\": spliced's figure (shipped defaults) ÷ this row's at the same stream count: above 1, spliced is better.\n\n")
		p("| relay | streams | Gbit/s | GB per relay-CPU-s | relay CPU (s) | spliced ÷ row, Gbit/s | spliced ÷ row, per CPU-s |\n|---|---:|---:|---:|---:|---:|---:|\n")
		for _, r := range res.TCP {
			if r.Err != "" {
				errRow(fmt.Sprintf("%s | %d", r.Relay, r.Streams), r.Err, 6)
				continue
			}
			cpu, per := "–", "–"
			if r.RelayCPU > 0 {
				cpu, per = fmt.Sprintf("%.2f", r.RelayCPU), fmt.Sprintf("%.2f", r.BytesPerCPU/1e9)
			}
			name := r.Relay
			if r.Direct {
				name += ", ceiling"
			}
			p("| %s | %d | %.2f | %s | %s | %s | %s |\n", name, r.Streams, r.Gbits, per, cpu, adv(r.AdvGbit), adv(r.AdvCPU))
		}
		p("\n")
	}
	cpuCell := func(direct bool, v float64, f string) string {
		if direct {
			return "–"
		}
		return fmt.Sprintf(f, v)
	}
	if len(res.RR1) > 0 {
		p("### Request/response, 1 connection (64-byte request, 64-byte echo, one at a time; median of %v interleaved runs of %.1f s)\n\n", rounds, res.Config["rr1_seconds"])
		p("| relay | round trips/s | p50 (µs) | p99 (µs) | added p50 over direct (µs) | relay CPU (s) |\n|---|---:|---:|---:|---:|---:|\n")
		for _, r := range res.RR1 {
			if r.Err != "" {
				errRow(r.Relay, r.Err, 6)
				continue
			}
			p("| %s | %.0f | %.1f | %.1f | %s | %s |\n", r.Relay, r.PerSec, r.P50us, r.P99us, cpuCell(r.Direct, r.AddedP50us, "%+.1f"), cpuCell(r.Direct, r.RelayCPU, "%.2f"))
		}
		p("\n")
	}
	if len(res.RR32) > 0 {
		p("### Request/response, 32 connections (64 bytes each way, each connection one request at a time; median of %v runs of %.1f s)\n\n", rounds, res.Config["rr_seconds"])
		p("| relay | requests/s | p50 (µs) | p99 (µs) | relay CPU (s) | relay CPU-s per million requests |\n|---|---:|---:|---:|---:|---:|\n")
		for _, r := range res.RR32 {
			if r.Err != "" {
				errRow(r.Relay, r.Err, 6)
				continue
			}
			p("| %s | %.0f | %.1f | %.1f | %s | %s |\n", r.Relay, r.PerSec, r.P50us, r.P99us, cpuCell(r.Direct, r.RelayCPU, "%.2f"), cpuCell(r.Direct, r.CPUPerM, "%.2f"))
		}
		p("\n")
	}
	if len(res.Churn) > 0 {
		p("### Connection churn, 16 clients (connect, 64-byte echo, normal close; median of %v runs of %.1f s)\n\n", rounds, res.Config["rr_seconds"])
		p("| relay | connections/s | failed | relay CPU (s) | relay CPU-s per 1,000 connections |\n|---|---:|---:|---:|---:|\n")
		for _, r := range res.Churn {
			if r.Err != "" {
				errRow(r.Relay, r.Err, 5)
				continue
			}
			p("| %s | %.0f | %d | %s | %s |\n", r.Relay, r.PerSec, r.Failed, cpuCell(r.Direct, r.RelayCPU, "%.2f"), cpuCell(r.Direct, r.CPUPerK, "%.3f"))
		}
		p("\n")
	}
	if len(res.Fair) > 0 {
		p("### Fairness: 1 interactive connection beside 4 bulk streams through the same relay (median of %v runs of %.1f s, by interactive p99)\n\n", rounds, res.Config["rr_seconds"])
		p("| relay | interactive p50 (µs) | interactive p99 (µs) | interactive requests/s | bulk Gbit/s | bulk alone, Gbit/s | bulk ÷ bulk alone | relay CPU (s) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, r := range res.Fair {
			if r.Err != "" {
				errRow(r.Relay, r.Err, 8)
				continue
			}
			p("| %s | %.1f | %.1f | %.0f | %.2f | %.2f | %.2f | %s |\n", r.Relay, r.InterP50, r.InterP99, r.InterRate, r.BulkGbit, r.BulkOnlyGbit, r.BulkRatio, cpuCell(r.Direct, r.RelayCPU, "%.2f"))
		}
		p("\n")
	}
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
	if len(res.UDP) > 0 {
		p("### UDP relay, 1200-byte datagrams, one flow\n\n")
		p("| relay | datagrams/s at the target | per relay-CPU-s | loss | softnet advantage, per CPU-s | softnet advantage, rate |\n|---|---:|---:|---:|---:|---:|\n")
		for _, r := range res.UDP {
			if r.Err != "" {
				errRow(r.Relay, r.Err, 6)
				continue
			}
			p("| %s | %.0fk | %.0fk | %.1f%% | %s | %s |\n", r.Relay, r.PerSec/1e3, r.PerCPU/1e3, r.LossPct, adv(r.AdvPerCPU), adv(r.AdvPerSec))
		}
		p("\n")
	}
	if len(res.Wrk) > 0 {
		p("### wrk → nginx, a 128-byte static file (1 thread, 32 connections; median of %v runs of %.0f s)\n\n", rounds, res.Config["tool_seconds"])
		p("| relay | connection | requests/s | p50 (µs) | p99 (µs) | errors | relay CPU µs per request |\n|---|---|---:|---:|---:|---:|---:|\n")
		for _, r := range res.Wrk {
			if r.Err != "" {
				errRow(r.Relay+" | "+r.Conn, r.Err, 7)
				continue
			}
			p("| %s | %s | %.0f | %.0f | %.0f | %d | %s |\n", r.Relay, r.Conn, r.PerSec, r.P50us, r.P99us, r.Errors, cpuCell(r.Direct, r.CPUPerReq, "%.2f"))
		}
		p("\n")
	}
	if len(res.Redis) > 0 {
		p("### redis-benchmark -c 50 -t get,set → redis-server (%v requests per test; median of %v runs)\n\n", res.Config["redis_requests"], rounds)
		p("| relay | test | requests/s | p50 (ms) | p99 (ms) | relay CPU µs per request |\n|---|---|---:|---:|---:|---:|\n")
		for _, r := range res.Redis {
			if r.Err != "" {
				errRow(r.Relay+" | "+r.Test, r.Err, 6)
				continue
			}
			p("| %s | %s | %.0f | %.3f | %.3f | %s |\n", r.Relay, r.Test, r.PerSec, r.P50ms, r.P99ms, cpuCell(r.Direct, r.CPUPerReq, "%.2f"))
		}
		p("\n")
	}
	if len(res.Iperf) > 0 {
		p("### iperf3, 8 parallel streams (median of %v runs of %.0f s)\n\n", rounds, res.Config["iperf_seconds"])
		p("| relay | Gbit/s | TCP retransmits (client → relay hop) | slowest ÷ fastest stream | GB per relay-CPU-s |\n|---|---:|---:|---:|---:|\n")
		for _, r := range res.Iperf {
			if r.Err != "" {
				errRow(r.Relay, r.Err, 5)
				continue
			}
			p("| %s | %.2f | %d | %.2f | %s |\n", r.Relay, r.Gbits, r.Retransmits, r.SlowFast, cpuCell(r.Direct, r.PerCPU/1e9, "%.2f"))
		}
		p("\n")
	}
	if len(res.Targets) > 0 {
		p("### Targets\n\n")
		p("What spliced is built to reach, each checked against this run's rows (the medians above); a target whose rows this run lacks says so.\n\n")
		p("| target | goal | this run | met | detail |\n|---|---|---:|---|---|\n")
		for _, t := range res.Targets {
			p("| %s | %s | %s | %s | %s |\n", t.Target, t.Goal, t.shown(), t.verdict(), t.Note)
		}
		p("\n")
	}
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
