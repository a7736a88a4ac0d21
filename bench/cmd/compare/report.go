package main

import (
	"fmt"
	"strings"
)

// gvisorOK reports whether gVisor's pkg/buffer is part of this build; it is (the module
// resolved from gvisor.dev/gvisor@latest, a pseudo-version of its go branch).
func gvisorOK() bool { return true }

func findMicro(res *Results, group, implPrefix string) *MicroResult {
	for i := range res.Micro {
		if res.Micro[i].Group == group && strings.HasPrefix(res.Micro[i].Impl, implPrefix) {
			return &res.Micro[i]
		}
	}
	return nil
}

func findTCP(res *Results, relay string, streams int) *TCPResult {
	for i := range res.TCP {
		if res.TCP[i].Relay == relay && res.TCP[i].Streams == streams && res.TCP[i].Err == "" {
			return &res.TCP[i]
		}
	}
	return nil
}

func targets(res *Results) []Target {
	var ts []Target
	add := func(t Target) { ts = append(ts, t) }
	if z, p := findMicro(res, "alloc 2 KiB", "softnet uma"), findMicro(res, "alloc 2 KiB", "sync.Pool"); z != nil && p != nil {
		v := z.NsOp / p.NsOp
		add(Target{Target: "Allocator: zone alloc+free time vs sync.Pool Get+Put", Goal: "≤ 1.0×, 0 allocs/op", Value: v, Unit: "×",
			Met: v <= 1.0 && z.AllocsOp == 0, Note: fmt.Sprintf("%.2f vs %.2f ns, %d allocs/op", z.NsOp, p.NsOp, z.AllocsOp)})
	}
	if z, zp := findMicro(res, "alloc 2 KiB", "softnet uma"), findMicro(res, "alloc 2 KiB, 2 goroutines", "softnet uma"); z != nil && zp != nil {
		v := z.NsOp / zp.NsOp
		add(Target{Target: "Allocator: two Ps scale", Goal: "≥ 1.8×", Value: v, Unit: "×", Met: v >= 1.8,
			Note: fmt.Sprintf("%.2f ns/op serial, %.2f ns/op with RunParallel on 2 Ps", z.NsOp, zp.NsOp)})
	}
	if s, r := findMicro(res, "share 64 KiB, 2 goroutines", "softnet"), findMicro(res, "share 64 KiB, 2 goroutines", "global-mutex"); s != nil && r != nil {
		v := r.NsOp / s.NsOp
		add(Target{Target: "Sharing: CopyM+FreeM 64 KiB, 2 goroutines, vs global-mutex reference", Goal: "≥ 1.5×", Value: v, Unit: "×", Met: v >= 1.5,
			Note: fmt.Sprintf("%.0f vs %.0f ns/op", s.NsOp, r.NsOp)})
	}
	for _, n := range []int{1, 8} {
		u, c := findTCP(res, "spliced user", n), findTCP(res, "spliced copy", n)
		k, io := findTCP(res, "spliced kernel", n), findTCP(res, "spliced iocopy", n)
		if u != nil && c != nil {
			v := u.BytesPerCPU / c.BytesPerCPU
			add(Target{Target: fmt.Sprintf("TCP relay, %d stream(s): user path bytes/relay-CPU-s vs 32 KiB copy relay", n), Goal: "≥ 1.3×", Value: v, Unit: "×", Met: v >= 1.3,
				Note: fmt.Sprintf("%.2f vs %.2f GB/CPU-s", u.BytesPerCPU/1e9, c.BytesPerCPU/1e9)})
		}
		if k != nil && io != nil {
			v := k.BytesPerCPU / io.BytesPerCPU
			add(Target{Target: fmt.Sprintf("TCP relay, %d stream(s): kernel path bytes/relay-CPU-s vs io.Copy relay", n), Goal: "≥ 1.0×", Value: v, Unit: "×", Met: v >= 1.0,
				Note: fmt.Sprintf("%.2f vs %.2f GB/CPU-s", k.BytesPerCPU/1e9, io.BytesPerCPU/1e9)})
		}
		if k != nil && io != nil && c != nil {
			best := max(io.Gbits, c.Gbits)
			v := k.Gbits / best
			add(Target{Target: fmt.Sprintf("TCP relay, %d stream(s): kernel path wall-clock Gbit/s vs the better of io.Copy and copy", n), Goal: "≥ 1.0×", Value: v, Unit: "×", Met: v >= 1.0,
				Note: fmt.Sprintf("%.2f vs %.2f / %.2f Gbit/s", k.Gbits, io.Gbits, c.Gbits)})
		}
		if u != nil && io != nil && c != nil {
			best := max(io.Gbits, c.Gbits)
			v := u.Gbits / best
			add(Target{Target: fmt.Sprintf("TCP relay, %d stream(s): user path wall-clock Gbit/s vs the better of io.Copy and copy", n), Goal: "≥ 1.0×", Value: v, Unit: "×", Met: v >= 1.0,
				Note: fmt.Sprintf("%.2f vs %.2f / %.2f Gbit/s", u.Gbits, io.Gbits, c.Gbits)})
		}
	}
	for _, r := range res.Idle {
		if r.Softnet && r.Err == "" {
			add(Target{Target: "Idle cost: " + r.Relay + " RSS per idle relayed connection", Goal: "≤ 2048 B", Value: r.PerConn, Unit: "B", Met: r.PerConn <= 2048,
				Note: fmt.Sprintf("%.0f B once 1 KiB has crossed each connection", r.Touched)})
		}
	}
	if len(res.UDP) == 2 && res.UDP[0].Err == "" && res.UDP[1].Err == "" {
		v := res.UDP[0].PerCPU / res.UDP[1].PerCPU
		add(Target{Target: "UDP relay: datagrams per relay-CPU-s vs ReadFrom/WriteTo Go relay", Goal: "≥ 2×", Value: v, Unit: "×", Met: v >= 2,
			Note: fmt.Sprintf("%.0fk vs %.0fk per CPU-s", res.UDP[0].PerCPU/1e3, res.UDP[1].PerCPU/1e3)})
	}
	if res.GC != nil {
		// One allocation per chunk would read 1.0 here; the resolution is the scrape's
		// own count, which varies by a few hundred, over the thousands of chunks moved.
		add(Target{Target: "GC: relay heap allocations per moved 64 KiB (user path)", Goal: "0 (< 0.1 at this resolution)", Value: res.GC.MallocsPer64K, Unit: "mallocs", Met: res.GC.MallocsPer64K < 0.1,
			Note: fmt.Sprintf("%.0f mallocs counted in the relay while it moved %d MiB on one warmed-up connection, less %.0f for the /metrics scrape itself (which varies by a few hundred); %.0f GC cycles in the window", res.GC.Raw, res.GC.Bytes>>20, res.GC.Scrape, res.GC.GCCycles)})
	}
	return ts
}

func yn(b bool) string {
	if b {
		return "met"
	}
	return "**missed**"
}

func adv(v float64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", v)
}

func markdown(res *Results) string {
	var b strings.Builder
	p := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
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
	if len(res.TCP) > 0 {
		p("### TCP relays on loopback (relay as its own process; each row the median of %v runs of %.0f s, interleaved)\n\n", res.Config["tcp_rounds"], res.Config["relay_seconds"])
		p("\"auto ÷ row\": spliced auto's figure ÷ this row's at the same stream count: above 1, spliced auto is better.\n\n")
		p("| relay | streams | Gbit/s | GB per relay-CPU-s | relay CPU (s) | auto ÷ row, Gbit/s | auto ÷ row, per CPU-s |\n|---|---:|---:|---:|---:|---:|---:|\n")
		for _, r := range res.TCP {
			if r.Err != "" {
				p("| %s | %d | error: %s | | | | |\n", r.Relay, r.Streams, r.Err)
				continue
			}
			cpu, per := "–", "–"
			if r.RelayCPU > 0 {
				cpu, per = fmt.Sprintf("%.2f", r.RelayCPU), fmt.Sprintf("%.2f", r.BytesPerCPU/1e9)
			}
			p("| %s | %d | %.2f | %s | %s | %s | %s |\n", r.Relay, r.Streams, r.Gbits, per, cpu, adv(r.AdvGbit), adv(r.AdvCPU))
		}
		p("\n")
	}
	if len(res.UDP) > 0 {
		p("### UDP relay, 1200-byte datagrams, one flow\n\n")
		p("| relay | datagrams/s at the target | per relay-CPU-s | loss | softnet advantage, per CPU-s | softnet advantage, rate |\n|---|---:|---:|---:|---:|---:|\n")
		for _, r := range res.UDP {
			if r.Err != "" {
				p("| %s | error: %s | | | | |\n", r.Relay, r.Err)
				continue
			}
			p("| %s | %.0fk | %.0fk | %.1f%% | %s | %s |\n", r.Relay, r.PerSec/1e3, r.PerCPU/1e3, r.LossPct, adv(r.AdvPerCPU), adv(r.AdvPerSec))
		}
		p("\n")
	}
	if len(res.Idle) > 0 {
		p("### Idle relayed TCP connections (%d; client and target sockets together)\n\n", res.Config["idle_conns"])
		p("| relay | RSS before | RSS after | RSS per connection | after 1 KiB sent through each | relay fds per connection | row ÷ spliced kernel |\n|---|---:|---:|---:|---:|---:|---:|\n")
		for _, r := range res.Idle {
			if r.Err != "" {
				p("| %s | error: %s | | | | %.1f | |\n", r.Relay, r.Err, r.FDsPerConn)
				continue
			}
			p("| %s | %.1f MiB | %.1f MiB | %.2f KiB | %.2f KiB | %.1f | %s |\n", r.Relay, float64(r.RSSBefore)/(1<<20), float64(r.RSSAfter)/(1<<20), r.PerConn/1024, r.Touched/1024, r.FDsPerConn, adv(r.AdvPerConn))
		}
		p("\n")
	}
	if len(res.Targets) > 0 {
		p("### DESIGN §6 targets\n\n| target | goal | this run | | detail |\n|---|---|---:|---|---|\n")
		for _, t := range res.Targets {
			val := fmt.Sprintf("%.2f%s", t.Value, t.Unit)
			if t.Unit == "B" {
				val = fmt.Sprintf("%.0f B", t.Value)
			} else if t.Unit == "mallocs" {
				val = fmt.Sprintf("%.4f", t.Value)
			}
			p("| %s | %s | %s | %s | %s |\n", t.Target, t.Goal, val, yn(t.Met), t.Note)
		}
		p("\n")
	}
	if len(res.Skipped) > 0 {
		p("Not included: %s\n\n", strings.Join(res.Skipped, "; "))
	}
	p("Whole run: %.0f s.\n", res.Seconds)
	return b.String()
}
