package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"time"

	"github.com/softnet-go/softnet/relay"
)

const benchUsage = `Usage: spliced bench [--streams N] [--time DURATION] [--mode MODE] [--udp] [--json]

Runs a source, a relay and a sink on loopback inside this process, with no setup, and
measures the relay: one line per second as iperf3 prints it, then a summary with the
throughput (Gbit/s, or datagrams/s with --udp), the relay's CPU time and the zone
statistics.

The relay's CPU time is the process's CPU time (getrusage) less the share of the source
and the sink, which a short direct source → sink run measures first (CPU time per byte or
per datagram, times what went through the relay). Compare the modes on your own machine:
iocopy is Go's io.Copy relay (splice(2) between TCP sockets), copy a goroutine per
direction copying through a 32 KiB buffer.
`

// benchFlags are the flags of spliced bench.
type benchFlags struct {
	streams   int
	duration  time.Duration
	mode      string
	udp, json bool
	size      int64
}

// benchResult is the summary, as --json prints it.
type benchResult struct {
	Mode               string          `json:"mode"`
	Protocol           string          `json:"protocol"`
	Streams            int             `json:"streams"`
	Seconds            float64         `json:"seconds"`
	Bytes              int64           `json:"bytes"`
	Gbps               float64         `json:"gbps"`
	Datagrams          int64           `json:"datagrams,omitempty"`
	DatagramsPerSec    float64         `json:"datagrams_per_sec,omitempty"`
	DatagramSize       int64           `json:"datagram_size,omitempty"`
	RelayCPUSeconds    float64         `json:"relay_cpu_seconds"`
	ProcessCPUSeconds  float64         `json:"process_cpu_seconds"`
	EndpointCPUSeconds float64         `json:"endpoint_cpu_seconds"`
	BytesPerRelayCPU   float64         `json:"bytes_per_relay_cpu_second"`
	GOMAXPROCS         int             `json:"gomaxprocs"`
	Intervals          []benchInterval `json:"intervals"`
	Memory             *memorySummary  `json:"memory,omitempty"`
}

type benchInterval struct {
	Start      float64 `json:"start"`
	End        float64 `json:"end"`
	Bytes      int64   `json:"bytes"`
	Datagrams  int64   `json:"datagrams,omitempty"`
	CPUSeconds float64 `json:"process_cpu_seconds"`
}

func cmdBench(args []string, stdout, stderr io.Writer) int {
	c := newCommand("bench", benchUsage, stdout, stderr)
	f := benchFlags{streams: 1, duration: 5 * time.Second, mode: "auto", size: 1200}
	c.fs.IntVar(&f.streams, "streams", f.streams, "parallel streams (TCP connections or UDP clients), `N`")
	c.fs.Var(durationFlag{&f.duration}, "time", "measure for `DURATION`")
	c.fs.Var(choiceFlag{&f.mode, []string{"auto", "user", "kernel", "iocopy", "copy"}}, "mode",
		"relay `MODE`: auto, user, kernel (splicing), or the baselines iocopy and copy")
	c.fs.BoolVar(&f.udp, "udp", false, "relay UDP datagrams instead of a TCP byte stream")
	c.fs.Var(sizeFlag{&f.size}, "size", "UDP datagram size in `BYTES`")
	c.fs.BoolVar(&f.json, "json", false, "print one JSON object instead of the report")
	if code := c.parse(args); code >= 0 {
		return code
	}
	switch {
	case f.streams < 1 || f.streams > 1024:
		return c.fail(fmt.Errorf("--streams %d: want 1 to 1024", f.streams))
	case f.duration < 100*time.Millisecond || f.duration > time.Hour:
		return c.fail(fmt.Errorf("--time %v: want 100ms to 1h", f.duration))
	case f.udp && f.mode == "kernel":
		return c.fail(errors.New("--mode kernel: splice(2) is for TCP; use auto or user with --udp"))
	case f.udp && (f.size < 1 || f.size > 65507):
		return c.fail(fmt.Errorf("--size %d: want 1 to 65507 bytes", f.size))
	}
	res, err := bench(&f, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "spliced bench: %v\n", err)
		return 1
	}
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
		return 0
	}
	printSummary(stdout, res)
	return 0
}

// bench runs one measurement; with !f.json it prints a line per second to w.
func bench(f *benchFlags, w io.Writer) (*benchResult, error) {
	res := &benchResult{Mode: f.mode, Protocol: "tcp", Streams: f.streams, GOMAXPROCS: runtime.GOMAXPROCS(0)}
	size := 128 << 10
	if f.udp {
		res.Protocol = "udp"
		res.DatagramSize = f.size
		size = int(f.size)
	}
	mem, err := newMemory(&relay.Config{})
	if err != nil {
		return nil, err
	}

	// The share of the source and the sink: a short run without the relay.
	cal := min(time.Second, f.duration/3)
	perUnit, err := calibrate(f, size, cal)
	if err != nil {
		return nil, fmt.Errorf("direct run: %w", err)
	}

	sk, err := newSink(f.udp, f.streams)
	if err != nil {
		return nil, err
	}
	defer sk.close()
	srv := relay.NewServer(relay.ServerOptions{Log: slog.New(slog.DiscardHandler), Workers: mem.workers})
	cfg := relay.RelayConfig{Name: "bench", Protocol: res.Protocol, Listen: "127.0.0.1:0", Targets: []string{sk.addr}, Mode: relay.Mode(f.mode)}
	if err := srv.Apply([]relay.RelayConfig{cfg}); err != nil {
		return nil, err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		srv.Shutdown(ctx)
		cancel()
	}()

	if !f.json {
		fmt.Fprintf(w, "spliced bench: %s relay, mode %s, %d stream(s), %v, GOMAXPROCS %d\n",
			res.Protocol, f.mode, f.streams, f.duration, res.GOMAXPROCS)
		if f.udp {
			fmt.Fprintf(w, "[ ID] Interval           Datagrams      Rate              Bitrate          CPU\n")
		} else {
			fmt.Fprintf(w, "[ ID] Interval           Transfer       Bitrate          CPU\n")
		}
	}
	stop := make(chan struct{})
	src, err := startSource(f.udp, srv.Addr("bench").String(), f.streams, size, stop)
	if err != nil {
		return nil, err
	}
	start, cpu0 := time.Now(), cpuTime()
	lastT, lastB, lastD, lastC := start, int64(0), int64(0), cpu0
	tick := time.NewTicker(time.Second)
	end := time.NewTimer(f.duration)
	for done := false; !done; {
		select {
		case <-tick.C:
		case <-end.C:
			done = true
		}
		now, b, d, cp := time.Now(), sk.bytes.Load(), sk.datagrams.Load(), cpuTime()
		iv := benchInterval{Start: lastT.Sub(start).Seconds(), End: now.Sub(start).Seconds(),
			Bytes: b - lastB, Datagrams: d - lastD, CPUSeconds: (cp - lastC).Seconds()}
		if iv.End-iv.Start > 0.01 {
			res.Intervals = append(res.Intervals, iv)
			if !f.json {
				printInterval(w, f.udp, iv)
			}
		}
		lastT, lastB, lastD, lastC = now, b, d, cp
	}
	tick.Stop()
	close(stop)
	res.Seconds = lastT.Sub(start).Seconds()
	res.Bytes, res.Datagrams = lastB, lastD
	proc := lastC - cpu0
	srcErr := src.wait()
	if !f.udp {
		sk.waitConns(2 * time.Second)
	}
	res.ProcessCPUSeconds = proc.Seconds()
	units := float64(res.Bytes)
	if f.udp {
		units = float64(res.Datagrams)
	}
	res.EndpointCPUSeconds = perUnit * units
	res.RelayCPUSeconds = max(0, res.ProcessCPUSeconds-res.EndpointCPUSeconds)
	res.Gbps = float64(res.Bytes) * 8 / res.Seconds / 1e9
	if f.udp {
		res.DatagramsPerSec = float64(res.Datagrams) / res.Seconds
	}
	if res.RelayCPUSeconds > 0 {
		res.BytesPerRelayCPU = float64(res.Bytes) / res.RelayCPUSeconds
	}
	res.Memory = mem.summary()
	if res.Bytes == 0 {
		return res, fmt.Errorf("nothing went through the relay (source: %v)", srcErr)
	}
	return res, nil
}

// calibrate runs the source straight into a sink for d and returns the process CPU
// seconds per byte (per datagram with --udp) the two of them spend.
func calibrate(f *benchFlags, size int, d time.Duration) (float64, error) {
	sk, err := newSink(f.udp, f.streams)
	if err != nil {
		return 0, err
	}
	defer sk.close()
	stop := make(chan struct{})
	src, err := startSource(f.udp, sk.addr, f.streams, size, stop)
	if err != nil {
		return 0, err
	}
	time.Sleep(d / 5) // warm up
	b0, d0, c0 := sk.bytes.Load(), sk.datagrams.Load(), cpuTime()
	time.Sleep(d - d/5)
	b1, d1, c1 := sk.bytes.Load(), sk.datagrams.Load(), cpuTime()
	close(stop)
	src.wait()
	if !f.udp {
		sk.waitConns(2 * time.Second)
	}
	units := float64(b1 - b0)
	if f.udp {
		units = float64(d1 - d0)
	}
	if units <= 0 {
		return 0, errors.New("nothing arrived")
	}
	return (c1 - c0).Seconds() / units, nil
}
