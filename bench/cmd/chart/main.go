// Command chart reads the comparison harness's results.json and writes an SVG bar chart of
// the ratios to softnet: one bar per comparison, on a log scale around 1×, green where
// softnet is ahead and red where it is behind.
//
//	go run ./cmd/chart [-in results/results.json] [-out results/benchmarks.svg]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"log"
	"math"
	"os"
	"strings"
)

type results struct {
	Micro []struct {
		Group     string  `json:"group"`
		Impl      string  `json:"impl"`
		Softnet   bool    `json:"softnet"`
		Advantage float64 `json:"softnet_advantage"`
	} `json:"micro"`
	TCP []struct {
		Relay   string  `json:"relay"`
		Softnet bool    `json:"softnet"`
		Streams int     `json:"streams"`
		AdvGbit float64 `json:"softnet_advantage_gbit"`
		AdvCPU  float64 `json:"softnet_advantage_cpu"`
	} `json:"tcp"`
	UDP []struct {
		Relay     string  `json:"relay"`
		Softnet   bool    `json:"softnet"`
		AdvPerCPU float64 `json:"softnet_advantage_cpu"`
	} `json:"udp"`
	Idle []struct {
		Relay      string  `json:"relay"`
		Softnet    bool    `json:"softnet"`
		AdvPerConn float64 `json:"softnet_advantage"`
	} `json:"idle"`
}

type bar struct {
	label string
	v     float64
}

type section struct {
	title string
	bars  []bar
}

func main() {
	in := flag.String("in", "results/results.json", "the harness's results")
	out := flag.String("out", "results/benchmarks.svg", "the chart to write")
	flag.Parse()
	b, err := os.ReadFile(*in)
	if err != nil {
		log.Fatal(err)
	}
	var r results
	if err := json.Unmarshal(b, &r); err != nil {
		log.Fatal(err)
	}
	var secs []section
	micro := section{title: "Buffers: other's ns/op ÷ softnet's (same group)"}
	for _, m := range r.Micro {
		if !m.Softnet && m.Advantage > 0 {
			micro.bars = append(micro.bars, bar{m.Group + " — " + m.Impl, m.Advantage})
		}
	}
	cpu := section{title: "TCP relays: spliced auto's bytes per relay-CPU-s ÷ other's"}
	gb := section{title: "TCP relays: spliced auto's Gbit/s ÷ other's"}
	for _, t := range r.TCP {
		if t.Softnet {
			continue
		}
		l := fmt.Sprintf("%s, %d stream(s)", t.Relay, t.Streams)
		if t.AdvCPU > 0 {
			cpu.bars = append(cpu.bars, bar{l, t.AdvCPU})
		}
		if t.AdvGbit > 0 {
			gb.bars = append(gb.bars, bar{l, t.AdvGbit})
		}
	}
	udp := section{title: "UDP relay: spliced's datagrams per relay-CPU-s ÷ other's"}
	for _, u := range r.UDP {
		if !u.Softnet && u.AdvPerCPU > 0 {
			udp.bars = append(udp.bars, bar{u.Relay, u.AdvPerCPU})
		}
	}
	idle := section{title: "Idle connections: other's RSS per connection ÷ spliced kernel's"}
	for _, i := range r.Idle {
		if i.Relay != "spliced kernel" && i.AdvPerConn > 0 {
			idle.bars = append(idle.bars, bar{i.Relay, i.AdvPerConn})
		}
	}
	for _, s := range []section{micro, cpu, gb, udp, idle} {
		if len(s.bars) > 0 {
			secs = append(secs, s)
		}
	}
	if err := os.WriteFile(*out, []byte(svg(secs)), 0o644); err != nil {
		log.Fatal(err)
	}
	log.Printf("wrote %s", *out)
}

const (
	width  = 1100
	labelW = 560
	barH   = 16
	gap    = 4
	headH  = 28
	plotW  = width - labelW - 80
	maxLog = 4.0 // the axis runs from 1/16× to 16×
)

// x maps a ratio to its position on the log axis.
func x(v float64) float64 {
	l := math.Max(-maxLog, math.Min(maxLog, math.Log2(v)))
	return labelW + plotW/2 + l*plotW/(2*maxLog)
}

func svg(secs []section) string {
	var b strings.Builder
	y := 50.0
	var body strings.Builder
	for _, s := range secs {
		fmt.Fprintf(&body, `<text x="10" y="%.0f" font-weight="bold">%s</text>`+"\n", y+18, html.EscapeString(s.title))
		y += headH
		top := y
		for _, br := range s.bars {
			x0, x1 := x(1), x(br.v)
			color := "#2e8b57" // softnet ahead
			if br.v < 1 {
				color = "#c0392b"
				x0, x1 = x1, x0
			}
			fmt.Fprintf(&body, `<text x="%d" y="%.0f" text-anchor="end" font-size="11">%s</text>`+"\n", labelW-8, y+12, html.EscapeString(br.label))
			fmt.Fprintf(&body, `<rect x="%.1f" y="%.0f" width="%.1f" height="%d" fill="%s"/>`+"\n", x0, y, math.Max(x1-x0, 1), barH, color)
			tx, anchor := x(br.v)+4, "start"
			if br.v < 1 {
				tx, anchor = x(br.v)-4, "end"
			}
			fmt.Fprintf(&body, `<text x="%.1f" y="%.0f" text-anchor="%s" font-size="11">%.2f×</text>`+"\n", tx, y+12, anchor, br.v)
			y += barH + gap
		}
		fmt.Fprintf(&body, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#333"/>`+"\n", x(1), top-2, x(1), y)
		y += 10
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", width, y+20)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="15" font-weight="bold">softnet comparison: ratios to softnet (log scale, 1/16× to 16×; green: softnet ahead, red: behind)</text>`+"\n")
	for _, t := range []float64{0.25, 0.5, 1, 2, 4, 8} {
		fmt.Fprintf(&b, `<text x="%.1f" y="40" text-anchor="middle" font-size="10" fill="#666">%g×</text>`+"\n", x(t), t)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="44" x2="%.1f" y2="%.0f" stroke="#ddd"/>`+"\n", x(t), x(t), y)
	}
	b.WriteString(body.String())
	b.WriteString("</svg>\n")
	return b.String()
}
