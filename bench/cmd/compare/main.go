// Command compare is softnet's comparison harness: in one run, on one workload, it
// measures softnet's allocator and mbuf chains against sync.Pool, gVisor's pkg/buffer and
// grpc-go's mem package, and spliced (at its shipped defaults) against the direct path,
// HAProxy, plain Go relays (bench/cmd/gorelay) and socat as separate processes on
// loopback: bulk streams, small request/response, connection churn, fairness, idle
// connections, UDP, and third-party clients (wrk and nginx, redis-benchmark, iperf3). It
// writes results/results.json and results/configs/ (every peer's exact configuration)
// and prints markdown tables.
//
// Run it from the bench directory: go run ./cmd/compare (or bash run); -only rr,churn
// runs some scenarios, -quick a smoke run of under a minute, -render results.json only
// redoes an earlier run's targets and tables. The default run is bounded to about 12
// minutes on a 2-core machine; it kills every process it starts.
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
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Results is the whole of results.json.
type Results struct {
	Machine map[string]string `json:"machine"`
	Started time.Time         `json:"started"`
	Seconds float64           `json:"seconds"`
	Config  map[string]any    `json:"config"`
	Micro   []MicroResult     `json:"micro"`
	TCP     []TCPResult       `json:"tcp"`
	RR1     []RRResult        `json:"rr_1"`
	RR32    []RRResult        `json:"rr_32"`
	Churn   []ChurnResult     `json:"churn"`
	Fair    []FairResult      `json:"fair"`
	UDP     []UDPResult       `json:"udp"`
	Idle    []IdleResult      `json:"idle"`
	GC      *GCResult         `json:"gc,omitempty"`
	Wrk     []WrkResult       `json:"wrk"`
	Redis   []RedisResult     `json:"redis"`
	Iperf   []IperfResult     `json:"iperf3"`
	Targets []Target          `json:"targets"`
	// Comparisons are spliced's figures against each peer's, oriented so that a ratio
	// above 1 is in softnet's favour: what the chart draws.
	Comparisons []Comparison `json:"comparisons"`
	Configs     []ConfigFile `json:"configs"`
	Skipped     []string     `json:"skipped"`
	Markdown    string       `json:"markdown"`
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

// Target is one of spliced's targets (targets.go) checked against this run: what is
// measured, the goal (a bound, or a ratio to a peer's row of the same run), this run's
// figure and whether it meets the goal.
type Target struct {
	Target string  `json:"target"`
	Goal   string  `json:"goal"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Met    bool    `json:"met"`
	// NotRun says this run lacks the rows the target needs (Note says which); Value
	// and Met mean nothing then.
	NotRun bool   `json:"not_run,omitempty"`
	Note   string `json:"note,omitempty"`
}

var (
	flagOut      = flag.String("out", "results", "directory for results.json, configs/ and the relays' logs")
	flagRoot     = flag.String("root", "..", "the softnet checkout (for building cmd/spliced)")
	flagDur      = flag.Duration("dur", 2*time.Second, "measured time of each bulk (and UDP) relay run")
	flagRounds   = flag.Int("rounds", 3, "rounds of every relay scenario (each relay once per round, round-robin; the median is kept)")
	flagWarm     = flag.Duration("warm", 500*time.Millisecond, "warm-up before each bulk, UDP and fairness run")
	flagRR1Dur   = flag.Duration("rr1dur", 3*time.Second, "measured time of each 1-connection request/response run")
	flagRRDur    = flag.Duration("rrdur", 1500*time.Millisecond, "measured time of each 32-connection request/response, churn and fairness run")
	flagRRWarm   = flag.Duration("rrwarm", 300*time.Millisecond, "warm-up before each request/response and churn run")
	flagToolDur  = flag.Duration("tooldur", 2*time.Second, "duration of each wrk run (whole seconds)")
	flagIperfDur = flag.Duration("iperfdur", 2*time.Second, "duration of each iperf3 run (whole seconds)")
	flagRedisN   = flag.Int("redisn", 15000, "redis-benchmark requests per test")
	flagIdle     = flag.Int("idle", 5000, "idle relayed connections")
	flagIdleCPU  = flag.Duration("idlecpu", 3*time.Second, "window of the idle relay's CPU measurements")
	flagModes    = flag.String("modes", "kernel,user", "spliced --mode values measured as extra rows (bulk and idle)")
	flagCount    = flag.Int("count", 3, "runs of each microbenchmark (the median is kept)")
	flagOnly     = flag.String("only", "", "comma-separated scenarios to run (default all): "+strings.Join(allParts, ","))
	flagSkip     = flag.String("skip", "", "comma-separated scenarios to skip")
	flagRender   = flag.String("render", "", "measure nothing: read this results.json, recompute its targets, comparisons and tables with this code, print the tables and write results.json and tables.md into -out")
	flagQuick    = flag.Bool("quick", false, "a smoke run of about a minute: 1 round, short runs, 500 idle connections, only direct, spliced, haproxy and the io.Copy relay, no micro or gc unless -only names them")
)

// allParts are the scenarios, in the order they run.
var allParts = []string{"micro", "bulk", "rr", "rr32", "churn", "fair", "idle", "udp", "gc", "wrk", "redis", "iperf"}

// quick sets the -quick defaults of every flag not given on the command line.
func quick() {
	given := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for name, v := range map[string]string{"rounds": "1", "dur": "400ms", "warm": "150ms", "rr1dur": "500ms", "rrdur": "400ms", "rrwarm": "100ms",
		"tooldur": "1s", "iperfdur": "1s", "redisn": "5000", "idle": "500", "idlecpu": "500ms", "modes": ""} {
		if !given[name] {
			_ = flag.Set(name, v)
		}
	}
}

func main() {
	flag.Parse()
	if *flagRender != "" {
		os.Exit(render(*flagRender, *flagOut))
	}
	if *flagQuick {
		quick()
	}
	for _, p := range append(strings.Split(*flagOnly, ","), strings.Split(*flagSkip, ",")...) {
		if p = strings.TrimSpace(p); p != "" && p != "tcp" && !slices.Contains(allParts, p) {
			fmt.Fprintf(os.Stderr, "compare: unknown scenario %q (want %s)\n", p, strings.Join(allParts, ","))
			os.Exit(2)
		}
	}
	start := time.Now()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		killAll()
		os.Exit(1)
	}()
	// Every load test is bounded by its own duration; this is the backstop.
	watchdog := time.AfterFunc(15*time.Minute, func() {
		fmt.Fprintln(os.Stderr, "compare: over 15 minutes, giving up")
		killAll()
		writePartial(start)
		os.Exit(2)
	})
	defer watchdog.Stop()
	code := run(start)
	killAll()
	os.Exit(code)
}

func logf(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }

// want reports whether a scenario runs: named by -only (or -only empty), not named by
// -skip, and with -quick not micro or gc unless -only names them. "tcp" is the old name
// of "bulk".
func want(part string) bool {
	has := func(list string) bool {
		for _, p := range strings.Split(list, ",") {
			p = strings.TrimSpace(p)
			if p == part || p == "tcp" && part == "bulk" {
				return true
			}
		}
		return false
	}
	if has(*flagSkip) {
		return false
	}
	if *flagOnly != "" {
		return has(*flagOnly)
	}
	return !*flagQuick || part != "micro" && part != "gc"
}

// partial is the run's results so far, written by the watchdog if the run overruns (each
// scenario's slice is assigned whole when the scenario ends).
var (
	partialMu sync.Mutex
	partial   *Results
)

func writePartial(start time.Time) {
	partialMu.Lock()
	res := partial
	partialMu.Unlock()
	if res == nil {
		return
	}
	res.Skipped = append(res.Skipped, "the rest: the run overran its 15 minutes and was stopped")
	res.Configs = configs()
	res.Seconds = time.Since(start).Seconds()
	report(res)
	_ = writeConfigs(*flagOut, res.Configs)
	_ = writeResults(*flagOut, res)
	logf("compare: wrote the partial results")
}

func run(start time.Time) int {
	defer killAll()
	raiseNofile()
	res := &Results{Started: start.UTC(), Machine: machine(), Skipped: []string{},
		Config: map[string]any{"relay_seconds": flagDur.Seconds(), "warm_seconds": flagWarm.Seconds(),
			"rr1_seconds": flagRR1Dur.Seconds(), "rr_seconds": flagRRDur.Seconds(), "rr_warm_seconds": flagRRWarm.Seconds(), "tool_seconds": flagToolDur.Seconds(),
			"iperf_seconds": flagIperfDur.Seconds(), "redis_requests": *flagRedisN, "idle_cpu_seconds": flagIdleCPU.Seconds(),
			"idle_conns": *flagIdle, "micro_count": *flagCount, "rounds": *flagRounds, "gomaxprocs": runtime.GOMAXPROCS(0),
			"quick": *flagQuick, "only": *flagOnly, "skip": *flagSkip, "spliced_flags": "run --listen L --to T --admin off (shipped defaults)",
			"chain": "64 KiB in 32 x 2 KiB pieces", "tcp_write": "128 KiB writes", "udp_datagram": 1200, "message_bytes": msgSize}}
	partialMu.Lock()
	partial = res
	partialMu.Unlock()
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
	if want("micro") {
		logf("== microbenchmarks (testing.Benchmark, 1 s each, median of %d)", *flagCount)
		res.Micro = runMicros(withGvisor, *flagCount, logf)
	}

	spliced := filepath.Join(tmp, "spliced")
	udprelay := filepath.Join(tmp, "udprelay")
	gorelay := filepath.Join(tmp, "gorelay")
	logf("== building spliced, gorelay and udprelay")
	if out, err := exec.Command("go", "build", "-C", *flagRoot, "-o", spliced, "./cmd/spliced").CombinedOutput(); err != nil {
		logf("compare: go build spliced: %v\n%s", err, out)
		return 1
	}
	for _, c := range []string{udprelay, gorelay} {
		if out, err := exec.Command("go", "build", "-o", c, "./cmd/"+filepath.Base(c)).CombinedOutput(); err != nil {
			logf("compare: go build %s: %v\n%s", filepath.Base(c), err, out)
			return 1
		}
	}
	p := peers{spliced: spliced, gorelay: gorelay, haproxy: installed("haproxy"), socat: installed("socat")}
	for _, bin := range []string{"haproxy", "socat"} {
		if !installed(bin) {
			res.Skipped = append(res.Skipped, bin+": not installed")
		}
	}

	if want("bulk") {
		logf("== bulk TCP streams, %v each after %v warm-up", *flagDur, *flagWarm)
		res.TCP = runTCPAll(p, tmp)
	}
	if want("rr") {
		logf("== request/response, 1 connection, %d-byte messages, %v each", msgSize, *flagRR1Dur)
		res.RR1 = runRRAll(p, 1, tmp)
	}
	if want("rr32") {
		logf("== request/response, 32 connections, %d-byte messages, %v each", msgSize, *flagRRDur)
		res.RR32 = runRRAll(p, 32, tmp)
	}
	if want("churn") {
		logf("== connection churn, 16 clients (connect, %d B echo, close), %v each", msgSize, *flagRRDur)
		res.Churn = runChurnAll(p, 16, tmp)
	}
	if want("fair") {
		logf("== fairness: 1 interactive connection beside 4 bulk streams, %v each", *flagRRDur)
		res.Fair = runFairAll(p, 4, tmp)
	}
	if want("idle") {
		logf("== %d idle relayed connections", *flagIdle)
		res.Idle = runIdleAll(p, tmp)
	}
	if want("udp") {
		logf("== UDP relays")
		res.UDP = runUDPAll(spliced, udprelay, tmp)
	}
	if want("gc") {
		logf("== relay heap allocations while streaming (spliced --mode user, admin /metrics)")
		res.GC = runGC(spliced, tmp)
	}
	// The third-party clients: each needs its client (bin) and its server, if it has one.
	for _, t := range []struct {
		part, bin, server, what string
		run                     func() error
	}{
		{"wrk", "wrk", "nginx", "wrk against nginx", func() (err error) { res.Wrk, err = runWrkAll(p, tmp); return }},
		{"redis", "redis-benchmark", "redis-server", "redis-benchmark against redis-server", func() (err error) { res.Redis, err = runRedisAll(p, tmp); return }},
		{"iperf", "iperf3", "", "iperf3, 8 parallel streams", func() (err error) { res.Iperf, err = runIperfAll(p, tmp); return }},
	} {
		if !want(t.part) {
			continue
		}
		if !installed(t.bin) {
			res.Skipped = append(res.Skipped, t.bin+": not installed ("+t.what+" skipped)")
			logf("== %s: %s not installed, skipped", t.what, t.bin)
			continue
		}
		logf("== %s", t.what)
		var err error
		if t.server != "" && !installed(t.server) {
			err = errors.New(t.server + " not installed")
		} else {
			err = t.run()
		}
		if err != nil {
			res.Skipped = append(res.Skipped, t.what+": "+err.Error())
			logf("  %v", err)
		}
	}
	res.Targets = targets(res)
	res.Configs = configs()
	res.Seconds = time.Since(start).Seconds()
	report(res)
	if err := writeConfigs(*flagOut, res.Configs); err != nil {
		logf("compare: %v", err)
		return 1
	}
	if err := writeResults(*flagOut, res); err != nil {
		logf("compare: %v", err)
		return 1
	}
	logf("wrote %s and %s in %.0f s", filepath.Join(*flagOut, "results.json"), filepath.Join(*flagOut, "configs"), res.Seconds)
	return 0
}

// render redoes the report of an earlier run from its results.json: the targets,
// comparisons and markdown come from this code, the measurements and the peers'
// configurations from the file. go run ./cmd/compare -render results/results.json
// rewrites results/results.json and results/tables.md in place.
func render(in, out string) int {
	b, err := os.ReadFile(in)
	if err != nil {
		logf("compare: %v", err)
		return 1
	}
	res := &Results{}
	if err := json.Unmarshal(b, res); err != nil {
		logf("compare: %s: %v", in, err)
		return 1
	}
	res.Targets = targets(res)
	report(res)
	if err := os.MkdirAll(out, 0o755); err != nil {
		logf("compare: %v", err)
		return 1
	}
	if err := writeResults(out, res); err != nil {
		logf("compare: %v", err)
		return 1
	}
	if err := writeFile(filepath.Join(out, "tables.md"), res.Markdown+"\n"); err != nil {
		logf("compare: %v", err)
		return 1
	}
	logf("rendered %s into %s", in, out)
	return 0
}

// report computes the comparisons and the tables of res (its targets, configurations and
// duration set), and prints the tables.
func report(res *Results) {
	res.Comparisons = comparisons(res)
	res.Markdown = markdown(res)
	fmt.Println(res.Markdown)
}

// writeResults writes res as dir/results.json.
func writeResults(dir string, res *Results) error {
	b, _ := json.MarshalIndent(res, "", "  ")
	return os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644)
}

// installed reports whether bin is on the PATH.
func installed(bin string) bool {
	_, err := exec.LookPath(bin)
	return err == nil
}

func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o644) }

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
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			m["memory"] = fmt.Sprintf("%.0f GiB", kb/(1<<20))
		}
	}
	m["commit"] = commit(*flagRoot)
	m["date"] = time.Now().UTC().Format("2006-01-02")
	for _, t := range [][]string{{"nginx", "-v"}, {"redis-server", "--version"}, {"iperf3", "--version"}, {"wrk", "--version"}} {
		if out, err := exec.Command(t[0], t[1:]...).CombinedOutput(); err == nil || len(out) > 0 {
			if l := strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0]); l != "" && !strings.Contains(l, "not found") {
				m[t[0]] = l
			}
		}
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

// commit is the main module's git rev-parse --short HEAD, with "-dirty" when tracked
// files differ from it.
func commit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if err := exec.Command("git", "-C", root, "diff", "--quiet", "HEAD", "--").Run(); err != nil {
		c += "-dirty"
	}
	return c
}

// bulkNames are the relays of the bulk rows: spliced at its defaults, then with each
// -modes value, the Go relays, HAProxy with and without splice-auto, and socat.
func bulkNames() []string {
	names := append([]string{directSpec.name, nameSpliced}, modeNames()...)
	return append(names, nameIOCopy, nameCopy, nameHAProxy, nameHASplice, nameSocat)
}

// modeNames are the rows of spliced with each -modes value.
func modeNames() []string {
	var names []string
	for _, m := range strings.Split(*flagModes, ",") {
		if m = strings.TrimSpace(m); m != "" {
			names = append(names, nameSpliced+" --mode "+m)
		}
	}
	return names
}

func runTCPAll(p peers, tmp string) []TCPResult {
	sink := newTCPSink()
	defer sink.close()
	specs := p.specs(bulkNames()...)
	var out []TCPResult
	for _, streams := range []int{1, 8} {
		runs := interleave(specs, fixed(sink.ln.Addr().String()), tmp, TCPResult{Streams: streams}, func(rp *relayProc) (TCPResult, error) {
			return runTCP(sink, rp.listen, rp.pid(), streams, *flagWarm, *flagDur)
		}, func(r TCPResult) string {
			return fmt.Sprintf("%d streams %6.2f Gbit/s %6.2f GB/relay-CPU-s (cpu %.2f s)", streams, r.Gbits, r.BytesPerCPU/1e9, r.RelayCPU)
		})
		// Each row is the median run by bytes per relay-CPU-second (by Gbit/s for the
		// direct path), with every run's figures kept as samples.
		for _, rs := range runs {
			m, _ := median(rs, keyTCP, func(r TCPResult) float64 {
				if r.Direct {
					return r.Gbits
				}
				return r.BytesPerCPU
			})
			for _, r := range rs {
				if r.Err == "" {
					m.SamplesGbit = append(m.SamplesGbit, r.Gbits)
					m.SamplesCPU = append(m.SamplesCPU, r.BytesPerCPU)
				}
			}
			out = append(out, m)
		}
	}
	for i := range out {
		for _, ref := range out {
			if ref.Relay == nameSpliced && ref.Streams == out[i].Streams && ref.Err == "" && out[i].Err == "" {
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
		{name: "spliced --udp", softnet: true, tool: "spliced", start: func(l, t, _ string) *exec.Cmd {
			return exec.Command(spliced, "run", "--udp", "--listen", l, "--to", t, "--admin", "off")
		}},
		{name: "Go ReadFrom/WriteTo relay", tool: "udprelay", start: func(l, t, _ string) *exec.Cmd {
			return exec.Command(udprelay, "--listen", l, "--to", t)
		}},
	}
	var out []UDPResult
	for _, s := range specs {
		sink := udpSinkConn()
		var r UDPResult
		rp, err := startRelay(s, sink.LocalAddr().String(), "udp", tmp)
		if err == nil {
			r, err = runUDP(sink, rp.listen, rp.pid(), *flagWarm, *flagDur)
			rp.stop()
		}
		sink.Close()
		r.Row = s.row()
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

func runIdleAll(p peers, tmp string) []IdleResult {
	names := append(append([]string{nameSpliced}, modeNames()...), nameHAProxy, nameIOCopy, nameCopy)
	var out []IdleResult
	sink := newTCPSink()
	defer sink.close()
	for _, s := range p.specs(names...) {
		var r IdleResult
		rp, err := startRelay(s, sink.ln.Addr().String(), "tcp", tmp)
		if err == nil {
			r, err = runIdle(sink, rp.listen, rp.pid(), *flagIdle, 1000, *flagIdleCPU)
			rp.stop()
			if b, _ := os.ReadFile(rp.logf.Name()); err != nil && len(b) > 0 {
				err = fmt.Errorf("%w (relay's log: %s)", err, lastLine(string(b)))
			}
		}
		r.Row = s.row()
		if err != nil {
			r.Err = err.Error()
			logf("  %-30s %v", s.name, err)
		} else {
			logf("  %-30s %6.2f KiB RSS/conn, %.1f fds/conn; CPU idle %.2f%%, with %d idle conns %.2f%%", s.name, r.PerConn/1024, r.FDsPerConn, r.CPUIdlePct, r.CPUConns, r.CPUConnsPct)
		}
		out = append(out, r)
		time.Sleep(500 * time.Millisecond)
	}
	var ref float64
	for _, r := range out {
		if r.Relay == nameSpliced && r.Err == "" {
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
	s := relaySpec{name: "spliced --mode user, admin on", tool: "spliced", start: func(l, t, _ string) *exec.Cmd {
		return exec.Command(spliced, "run", "--listen", l, "--to", t, "--mode", "user", "--admin", admin)
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
