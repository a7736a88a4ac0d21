// Command compare is softnet's comparison harness: in one run, on one workload, it
// measures softnet's allocator and mbuf chains against sync.Pool, gVisor's pkg/buffer and
// grpc-go's mem package, and spliced against Go relays, HAProxy and socat as separate
// processes on loopback, writes results/results.json and prints markdown tables with
// ratios to softnet.
//
// Run it from the bench directory: go run ./cmd/compare (or bash run). It is bounded in
// time (about 4 minutes on a 2-core machine) and kills every process it starts.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Results is the whole of results.json.
type Results struct {
	Machine  map[string]string `json:"machine"`
	Started  time.Time         `json:"started"`
	Seconds  float64           `json:"seconds"`
	Config   map[string]any    `json:"config"`
	Micro    []MicroResult     `json:"micro"`
	TCP      []TCPResult       `json:"tcp"`
	UDP      []UDPResult       `json:"udp"`
	Idle     []IdleResult      `json:"idle"`
	GC       *GCResult         `json:"gc,omitempty"`
	Targets  []Target          `json:"targets"`
	Skipped  []string          `json:"skipped"`
	Markdown string            `json:"markdown"`
}

// GCResult is the relay's heap allocation count per moved 64 KiB while streaming.
type GCResult struct {
	Mode          string  `json:"mode"`
	Mallocs       float64 `json:"mallocs"`
	Bytes         int64   `json:"bytes"`
	MallocsPer64K float64 `json:"mallocs_per_64kib"`
	// Scrape is what one /metrics scrape allocates (the median of three), subtracted
	// from Mallocs.
	Scrape float64 `json:"scrape_mallocs"`
	// Raw is the count between the scrapes before subtracting Scrape (which varies by
	// a few hundred from scrape to scrape: the resolution of this measurement).
	Raw float64 `json:"raw_mallocs"`
	// GCCycles is how many garbage collections the relay ran in the window.
	GCCycles float64 `json:"gc_cycles"`
}

// Target is one DESIGN §6 target checked against this run.
type Target struct {
	Target string  `json:"target"`
	Goal   string  `json:"goal"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Met    bool    `json:"met"`
	Note   string  `json:"note,omitempty"`
}

var (
	flagOut     = flag.String("out", "results", "directory for results.json and the relays' logs")
	flagRoot    = flag.String("root", "..", "the softnet checkout (for building cmd/spliced)")
	flagDur     = flag.Duration("dur", 2*time.Second, "measured time of each relay run")
	flagRounds  = flag.Int("rounds", 3, "rounds of the TCP relay runs (each relay once per round; the median is kept)")
	flagWarm    = flag.Duration("warm", 500*time.Millisecond, "warm-up before each relay run")
	flagIdle    = flag.Int("idle", 5000, "idle relayed connections")
	flagSockbuf = flag.String("sockbuf", "0", "spliced --sockbuf (0: Linux autotuning, as HAProxy and socat)")
	flagCount   = flag.Int("count", 3, "runs of each microbenchmark (the median is kept)")
	flagSkip    = flag.String("skip", "", "comma-separated parts to skip: micro,tcp,udp,idle,gc")
)

func main() {
	flag.Parse()
	start := time.Now()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		killAll()
		os.Exit(1)
	}()
	// Every load test is bounded by its own duration; this is the backstop.
	watchdog := time.AfterFunc(12*time.Minute, func() {
		fmt.Fprintln(os.Stderr, "compare: over 12 minutes, giving up")
		killAll()
		os.Exit(2)
	})
	defer watchdog.Stop()
	code := run(start)
	killAll()
	os.Exit(code)
}

func logf(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }

func skip(part string) bool {
	for _, p := range strings.Split(*flagSkip, ",") {
		if strings.TrimSpace(p) == part {
			return true
		}
	}
	return false
}

func run(start time.Time) int {
	defer killAll()
	raiseNofile()
	res := &Results{Started: start.UTC(), Machine: machine(), Skipped: []string{},
		Config: map[string]any{"relay_seconds": flagDur.Seconds(), "warm_seconds": flagWarm.Seconds(),
			"idle_conns": *flagIdle, "micro_count": *flagCount, "tcp_rounds": *flagRounds, "spliced_sockbuf": *flagSockbuf, "gomaxprocs": runtime.GOMAXPROCS(0),
			"chain": "64 KiB in 32 x 2 KiB pieces", "tcp_write": "128 KiB writes", "udp_datagram": 1200}}
	if err := os.MkdirAll(*flagOut, 0o755); err != nil {
		logf("compare: %v", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "softnet-bench-")
	if err != nil {
		logf("compare: %v", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	withGvisor := gvisorOK()
	if !withGvisor {
		res.Skipped = append(res.Skipped, "gVisor pkg/buffer: not compiled in")
	}
	if !skip("micro") {
		logf("== microbenchmarks (testing.Benchmark, 1 s each, median of %d)", *flagCount)
		res.Micro = runMicros(withGvisor, *flagCount, logf)
	}

	spliced := filepath.Join(tmp, "spliced")
	udprelay := filepath.Join(tmp, "udprelay")
	logf("== building spliced and udprelay")
	if out, err := exec.Command("go", "build", "-C", *flagRoot, "-o", spliced, "./cmd/spliced").CombinedOutput(); err != nil {
		logf("compare: go build spliced: %v\n%s", err, out)
		return 1
	}
	if out, err := exec.Command("go", "build", "-o", udprelay, "./cmd/udprelay").CombinedOutput(); err != nil {
		logf("compare: go build udprelay: %v\n%s", err, out)
		return 1
	}
	specs := relaySpecs(spliced, res)

	if !skip("tcp") {
		logf("== TCP relays, %v each after %v warm-up", *flagDur, *flagWarm)
		res.TCP = runTCPAll(specs, tmp)
	}
	if !skip("udp") {
		logf("== UDP relays")
		res.UDP = runUDPAll(spliced, udprelay, tmp)
	}
	if !skip("idle") {
		logf("== %d idle relayed connections", *flagIdle)
		res.Idle = runIdleAll(specs, tmp)
	}
	if !skip("gc") {
		logf("== relay heap allocations while streaming (spliced --mode user, admin /metrics)")
		res.GC = runGC(spliced, tmp)
	}
	res.Targets = targets(res)
	res.Seconds = time.Since(start).Seconds()
	res.Markdown = markdown(res)
	fmt.Println(res.Markdown)
	b, _ := json.MarshalIndent(res, "", "  ")
	path := filepath.Join(*flagOut, "results.json")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		logf("compare: %v", err)
		return 1
	}
	logf("wrote %s in %.0f s", path, res.Seconds)
	return 0
}

// raiseNofile sets the soft fd limit to the hard one explicitly, so that the relays the
// harness starts inherit it (Go restores the original soft limit in children otherwise).
func raiseNofile() {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			logf("compare: setrlimit: %v", err)
		}
	}
}

func machine() map[string]string {
	m := map[string]string{"goos": runtime.GOOS, "goarch": runtime.GOARCH, "go": runtime.Version(),
		"nproc": strconv.Itoa(runtime.NumCPU())}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "model name"); ok {
				m["cpu"] = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m["kernel"] = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("haproxy", "-v").Output(); err == nil {
		m["haproxy"] = strings.SplitN(string(out), "\n", 2)[0]
	}
	if out, err := exec.Command("socat", "-V").Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "socat version") {
				m["socat"] = strings.TrimSpace(l)
			}
		}
	}
	return m
}

func relaySpecs(spliced string, res *Results) []relaySpec {
	sp := func(mode string, softnet bool) relaySpec {
		return relaySpec{name: "spliced " + mode, softnet: softnet, start: func(l, t, _ string) *exec.Cmd {
			return exec.Command(spliced, "run", "--listen", l, "--to", t, "--mode", mode, "--admin", "off",
				"--sockbuf", *flagSockbuf, "--log-level", "warn")
		}}
	}
	specs := []relaySpec{sp("auto", true), sp("kernel", true), sp("user", true), sp("iocopy", false), sp("copy", false)}
	if _, err := exec.LookPath("haproxy"); err == nil {
		for _, splice := range []bool{false, true} {
			name := "haproxy"
			if splice {
				name = "haproxy splice-auto"
			}
			specs = append(specs, relaySpec{name: name, start: func(l, t, dir string) *exec.Cmd {
				cfg := filepath.Join(dir, sanitize(name)+".cfg")
				opt := ""
				if splice {
					opt = "    option splice-auto\n"
				}
				_ = os.WriteFile(cfg, []byte(fmt.Sprintf(`global
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
`, opt, l, t)), 0o644)
				return exec.Command("haproxy", "-db", "-f", cfg)
			}})
		}
	} else {
		res.Skipped = append(res.Skipped, "haproxy: not installed ("+err.Error()+")")
	}
	if _, err := exec.LookPath("socat"); err == nil {
		specs = append(specs, relaySpec{name: "socat", start: func(l, t, _ string) *exec.Cmd {
			_, lp, _ := strings.Cut(l, ":")
			return exec.Command("socat", "TCP-LISTEN:"+lp+",fork,reuseaddr,bind=127.0.0.1", "TCP:"+t)
		}})
	} else {
		res.Skipped = append(res.Skipped, "socat: not installed ("+err.Error()+")")
	}
	return specs
}

func runTCPAll(specs []relaySpec, tmp string) []TCPResult {
	sink := newTCPSink()
	defer sink.close()
	type key struct {
		relay   string
		streams int
	}
	var order []key
	runs := map[key][]TCPResult{}
	for round := 1; round <= max(*flagRounds, 1); round++ {
		logf("  round %d of %d", round, max(*flagRounds, 1))
		for _, streams := range []int{1, 8} {
			r, err := runTCP(sink, sink.ln.Addr().String(), 0, streams, *flagWarm, *flagDur)
			r.Relay = "direct (no relay, ceiling)"
			if err != nil {
				r.Err = err.Error()
			}
			logf("  %-28s %d streams %6.2f Gbit/s", r.Relay, streams, r.Gbits)
			k := key{r.Relay, streams}
			if round == 1 {
				order = append(order, k)
			}
			runs[k] = append(runs[k], r)
			for _, s := range specs {
				var r TCPResult
				rp, err := startRelay(s, sink.ln.Addr().String(), "tcp", tmp)
				if err == nil {
					r, err = runTCP(sink, rp.listen, rp.cmd.Process.Pid, streams, *flagWarm, *flagDur)
					rp.stop()
				}
				r.Relay, r.Softnet, r.Streams = s.name, s.softnet, streams
				if err != nil {
					r.Err = err.Error()
					logf("  %-28s %d streams: %v", s.name, streams, err)
				} else {
					logf("  %-28s %d streams %6.2f Gbit/s %6.2f GB/relay-CPU-s (cpu %.2f s)", s.name, streams, r.Gbits, r.BytesPerCPU/1e9, r.RelayCPU)
				}
				k := key{s.name, streams}
				if round == 1 {
					order = append(order, k)
				}
				runs[k] = append(runs[k], r)
			}
		}
	}
	// Each row is the median run by bytes per relay-CPU-second (by Gbit/s for the
	// direct path), with every run's figures kept as samples.
	var out []TCPResult
	for _, k := range order {
		rs := runs[k]
		var ok []TCPResult
		for _, r := range rs {
			if r.Err == "" {
				ok = append(ok, r)
			}
		}
		if len(ok) == 0 {
			out = append(out, rs[0])
			continue
		}
		sort.Slice(ok, func(i, j int) bool {
			if ok[i].BytesPerCPU != ok[j].BytesPerCPU {
				return ok[i].BytesPerCPU < ok[j].BytesPerCPU
			}
			return ok[i].Gbits < ok[j].Gbits
		})
		m := ok[len(ok)/2]
		for _, r := range ok {
			m.SamplesGbit = append(m.SamplesGbit, r.Gbits)
			m.SamplesCPU = append(m.SamplesCPU, r.BytesPerCPU)
		}
		out = append(out, m)
	}
	for i := range out {
		for _, ref := range out {
			if ref.Relay == "spliced auto" && ref.Streams == out[i].Streams && ref.Err == "" && out[i].Err == "" {
				if out[i].Gbits > 0 {
					out[i].AdvGbit = ref.Gbits / out[i].Gbits
				}
				if out[i].BytesPerCPU > 0 {
					out[i].AdvCPU = ref.BytesPerCPU / out[i].BytesPerCPU
				}
			}
		}
	}
	return out
}

func runUDPAll(spliced, udprelay, tmp string) []UDPResult {
	specs := []relaySpec{
		{name: "spliced --udp", softnet: true, start: func(l, t, _ string) *exec.Cmd {
			return exec.Command(spliced, "run", "--udp", "--listen", l, "--to", t, "--admin", "off", "--log-level", "warn")
		}},
		{name: "Go ReadFrom/WriteTo relay", start: func(l, t, _ string) *exec.Cmd {
			return exec.Command(udprelay, "--listen", l, "--to", t)
		}},
	}
	var out []UDPResult
	for _, s := range specs {
		sink := udpSinkConn()
		var r UDPResult
		rp, err := startRelay(s, sink.LocalAddr().String(), "udp", tmp)
		if err == nil {
			r, err = runUDP(sink, rp.listen, rp.cmd.Process.Pid, *flagWarm, *flagDur)
			rp.stop()
		}
		sink.Close()
		r.Relay, r.Softnet = s.name, s.softnet
		if err != nil {
			r.Err = err.Error()
			logf("  %-28s %v", s.name, err)
		} else {
			logf("  %-28s %8.0f dgram/s %8.0f dgram/relay-CPU-s (loss %.1f%%)", s.name, r.PerSec, r.PerCPU, r.LossPct)
		}
		out = append(out, r)
	}
	if len(out) == 2 && out[0].Err == "" && out[1].Err == "" {
		for i := range out {
			out[i].AdvPerCPU = out[0].PerCPU / out[i].PerCPU
			out[i].AdvPerSec = out[0].PerSec / out[i].PerSec
		}
	}
	return out
}

func runIdleAll(specs []relaySpec, tmp string) []IdleResult {
	want := map[string]bool{"spliced kernel": true, "spliced user": true, "spliced copy": true, "spliced iocopy": true, "haproxy": true}
	var out []IdleResult
	sink := newTCPSink()
	defer sink.close()
	for _, s := range specs {
		if !want[s.name] {
			continue
		}
		var r IdleResult
		rp, err := startRelay(s, sink.ln.Addr().String(), "tcp", tmp)
		if err == nil {
			r, err = runIdle(sink, rp.listen, rp.cmd.Process.Pid, *flagIdle)
			rp.stop()
			if b, _ := os.ReadFile(rp.logf.Name()); err != nil && len(b) > 0 {
				err = fmt.Errorf("%w (relay's log: %s)", err, lastLine(string(b)))
			}
		}
		r.Relay, r.Softnet = s.name, s.softnet
		if err != nil {
			r.Err = err.Error()
			logf("  %-28s %v", s.name, err)
		} else {
			logf("  %-28s %7.0f B RSS/conn idle, %7.0f B after 1 KiB each", s.name, r.PerConn, r.Touched)
		}
		out = append(out, r)
		time.Sleep(500 * time.Millisecond)
	}
	var ref float64
	for _, r := range out {
		if r.Relay == "spliced kernel" && r.Err == "" {
			ref = r.PerConn
		}
	}
	for i := range out {
		if ref > 0 && out[i].Err == "" {
			out[i].AdvPerConn = out[i].PerConn / ref
		}
	}
	return out
}

// runGC streams one connection through spliced --mode user and reads the Go runtime's
// malloc count and GC cycles from its admin endpoint during the steady state: after a 3 s
// warm-up on the same connection, so that the connection's setup and the sockbufs'
// growth are not counted, and with the cost of a scrape itself (the median of three
// back-to-back scrapes) subtracted.
func runGC(spliced, tmp string) *GCResult {
	admin := freePort("tcp")
	s := relaySpec{name: "spliced user gc", start: func(l, t, _ string) *exec.Cmd {
		return exec.Command(spliced, "run", "--listen", l, "--to", t, "--mode", "user", "--admin", admin,
			"--sockbuf", *flagSockbuf, "--log-level", "warn")
	}}
	sink := newTCPSink()
	defer sink.close()
	rp, err := startRelay(s, sink.ln.Addr().String(), "tcp", tmp)
	if err != nil {
		logf("  %v", err)
		return nil
	}
	defer rp.stop()
	c, err := net.DialTimeout("tcp", rp.listen, 2*time.Second)
	if err != nil {
		logf("  gc: %v", err)
		return nil
	}
	defer c.Close()
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second)) // the writer stops by itself
	stop := make(chan struct{})
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		buf := make([]byte, 128<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	defer func() { close(stop); _ = c.SetWriteDeadline(time.Now()); <-wrote }()
	// Three seconds of warm-up: with Linux's autotuning the sockbufs, and so the zones'
	// slabs, are still growing in the first second.
	time.Sleep(3 * time.Second)
	var ms [4]float64
	var gc0 float64
	var errs []error
	for i := range ms {
		var err error
		ms[i], gc0, err = mallocs(admin)
		errs = append(errs, err)
	}
	b0 := sink.bytes.Load()
	time.Sleep(3 * time.Second)
	b1 := sink.bytes.Load()
	m1, gc1, err2 := mallocs(admin)
	if err := errors.Join(append(errs, err2)...); err != nil {
		logf("  gc: %v", err)
		return nil
	}
	// What one scrape allocates: the median of three back-to-back scrapes.
	d := []float64{ms[1] - ms[0], ms[2] - ms[1], ms[3] - ms[2]}
	sort.Float64s(d)
	m0b := ms[3]
	scrape := d[1]
	g := &GCResult{Mode: "user", Mallocs: max(m1-m0b-scrape, 0), Raw: m1 - m0b, Bytes: b1 - b0, Scrape: scrape, GCCycles: gc1 - gc0}
	g.MallocsPer64K = g.Mallocs / (float64(g.Bytes) / 65536)
	logf("  %.0f mallocs for %d MiB moved: %.5f per 64 KiB (steady state; a scrape's own %.0f subtracted); %.0f GC cycles", g.Mallocs, g.Bytes>>20, g.MallocsPer64K, scrape, g.GCCycles)
	return g
}

func mallocs(admin string) (mallocs, gcs float64, err error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + admin + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, err
	}
	found := false
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "go_memstats_mallocs_total "); ok {
			if mallocs, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
				return 0, 0, err
			}
			found = true
		}
		if v, ok := strings.CutPrefix(l, "go_gc_duration_seconds_count "); ok {
			gcs, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if !found {
		return 0, 0, fmt.Errorf("no go_memstats_mallocs_total in /metrics")
	}
	return mallocs, gcs, nil
}
