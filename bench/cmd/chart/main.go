// Command chart reads the comparison harness's results.json and writes an SVG bar chart of
// spliced's (and softnet's buffers') figures against each peer's, from the harness's
// "comparisons": one bar per peer and metric, on a log scale around 1×, each ratio
// oriented so that above 1 is in softnet's favour whichever way the metric is good (for
// latency, CPU and memory, lower is better: the bar is peer ÷ softnet). Green where
// softnet leads the peer, red where it trails; the direct path (no relay) is a grey bar,
// the ceiling of every relay, not a competitor; spliced's own other modes are not drawn
// as peers. The machine, the date and the commit are printed on the image.
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
	"time"

	"github.com/softnet-go/softnet/bench/internal/schema"
)

// results is what the chart reads of results.json: these fields of cmd/compare's Results
// (a main package, which the chart cannot import).
type results struct {
	Machine     map[string]string   `json:"machine"`
	Started     time.Time           `json:"started"`
	Config      map[string]any      `json:"config"`
	Comparisons []schema.Comparison `json:"comparisons"`
}

type section struct {
	title string
	bars  []schema.Comparison
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
	if len(r.Comparisons) == 0 {
		log.Fatalf("%s has no comparisons (an older harness's results?)", *in)
	}
	var secs []section
	idx := map[string]int{}
	for _, c := range r.Comparisons {
		if c.Ratio <= 0 || math.IsInf(c.Ratio, 0) || math.IsNaN(c.Ratio) {
			continue
		}
		key := c.Section + "\x00" + c.Metric
		i, ok := idx[key]
		if !ok {
			better := "higher is better"
			if !c.HigherBetter {
				better = "lower is better"
			}
			i = len(secs)
			idx[key] = i
			secs = append(secs, section{title: fmt.Sprintf("%s — %s (%s)", c.Section, c.Metric, better)})
		}
		secs[i].bars = append(secs[i].bars, c)
	}
	if err := os.WriteFile(*out, []byte(svg(&r, secs)), 0o644); err != nil {
		log.Fatal(err)
	}
	log.Printf("wrote %s", *out)
}

const (
	width  = 1280
	labelW = 300
	valueW = 390 // the ratio's text past the axis's end, then the figures
	barH   = 15
	gap    = 3
	headH  = 24
	plotW  = width - labelW - valueW - 20
	maxLog = 4.0 // the axis runs from 1/16× to 16×

	green = "#2e8b57"
	red   = "#c0392b"
	grey  = "#9e9e9e"
)

// x maps a ratio to its position on the log axis.
func x(v float64) float64 {
	l := math.Max(-maxLog, math.Min(maxLog, math.Log2(v)))
	return labelW + plotW/2 + l*plotW/(2*maxLog)
}

// figure formats a metric's value compactly.
func figure(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case a >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

func svg(r *results, secs []section) string {
	var body strings.Builder
	y := 112.0
	for _, s := range secs {
		fmt.Fprintf(&body, `<text x="10" y="%.0f" font-weight="bold" font-size="12">%s</text>`+"\n", y+16, html.EscapeString(s.title))
		y += headH
		top := y
		for _, c := range s.bars {
			color := green
			label := c.Peer
			switch {
			case c.Ceiling:
				color, label = grey, "direct, no relay (ceiling)"
			case c.Ratio < 1:
				color = red
			}
			x0, x1 := x(1), x(c.Ratio)
			if x1 < x0 {
				x0, x1 = x1, x0
			}
			fmt.Fprintf(&body, `<text x="%d" y="%.0f" text-anchor="end" font-size="11">%s</text>`+"\n", labelW-8, y+11, html.EscapeString(label))
			fmt.Fprintf(&body, `<rect x="%.1f" y="%.0f" width="%.1f" height="%d" fill="%s"/>`+"\n", x0, y, math.Max(x1-x0, 1), barH, color)
			tx, anchor := x(c.Ratio)+4, "start"
			if c.Ratio < 1 {
				tx, anchor = x(c.Ratio)-4, "end"
			}
			word := "ahead"
			if c.Ratio < 1 {
				word = "behind"
			}
			if math.Abs(c.Ratio-1) < 0.005 {
				word = "even"
			}
			if c.Ceiling {
				word = "of the ceiling"
			}
			fmt.Fprintf(&body, `<text x="%.1f" y="%.0f" text-anchor="%s" font-size="10">%.2f× %s</text>`+"\n", tx, y+11, anchor, c.Ratio, word)
			// the two raw figures: softnet's (named by its first word: spliced or softnet;
			// the peer is named on the left), then the peer's
			who, _, _ := strings.Cut(c.Softnet, " ")
			fmt.Fprintf(&body, `<text x="%d" y="%.0f" font-size="10" fill="#555">%s %s vs %s</text>`+"\n", labelW+plotW+100, y+11,
				html.EscapeString(who), figure(c.SoftnetValue), figure(c.PeerValue))
			y += barH + gap
		}
		fmt.Fprintf(&body, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#333"/>`+"\n", x(1), top-2, x(1), y)
		y += 8
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", width, y+20)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="22" font-size="16" font-weight="bold">softnet / spliced against its peers, one run, one machine (log scale; above 1× is in softnet's favour)</text>`+"\n")
	m := r.Machine
	date := m["date"]
	if date == "" && !r.Started.IsZero() {
		date = r.Started.Format("2006-01-02")
	}
	quick := ""
	if q, _ := r.Config["quick"].(bool); q {
		quick = " — QUICK SMOKE RUN, not for publication"
	}
	fmt.Fprintf(&b, `<text x="10" y="42" font-size="12">%s</text>`+"\n", html.EscapeString(fmt.Sprintf("%s, %s cores, %s, Linux %s, %s; %s, commit %s%s",
		orDash(m["cpu"]), orDash(m["nproc"]), orDash(m["memory"]), orDash(m["kernel"]), orDash(m["go"]), orDash(date), orDash(m["commit"]), quick)))
	fmt.Fprintf(&b, `<text x="10" y="60" font-size="11" fill="#444">%s</text>`+"\n", html.EscapeString(
		"Each ratio is oriented by the metric: softnet ÷ peer where higher is better, peer ÷ softnet where lower is better (latency, CPU, memory). spliced runs at its shipped defaults."))
	lx := 10.0
	for _, l := range []struct{ color, text string }{{green, "softnet leads this peer"}, {red, "softnet trails this peer"}, {grey, "direct path, no relay: the ceiling (spliced's fraction of it)"}} {
		fmt.Fprintf(&b, `<rect x="%.0f" y="68" width="12" height="12" fill="%s"/><text x="%.0f" y="78" font-size="11">%s</text>`+"\n", lx, l.color, lx+16, html.EscapeString(l.text))
		lx += 20 + 6.2*float64(len(l.text)) + 24
	}
	for _, t := range []float64{1.0 / 16, 0.125, 0.25, 0.5, 1, 2, 4, 8, 16} {
		lbl := fmt.Sprintf("%g×", t)
		if t < 1 {
			lbl = fmt.Sprintf("1/%g×", 1/t)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="104" text-anchor="middle" font-size="10" fill="#666">%s</text>`+"\n", x(t), lbl)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="108" x2="%.1f" y2="%.0f" stroke="#e4e4e4"/>`+"\n", x(t), x(t), y)
	}
	b.WriteString(body.String())
	b.WriteString("</svg>\n")
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}
