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

The relay's CPU time is the process's CPU time (getrusage) less that of the source and
the sink, whose goroutines each run locked to a thread of their own so that their
threads' CPU time can be read (/proc/self/task/*/schedstat); it includes the Go runtime's
own work (GC, scheduler). Compare the modes on your own machine:
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
	Start           float64 `json:"start"`
	End             float64 `json:"end"`
	Bytes           int64   `json:"bytes"`
	Datagrams       int64   `json:"datagrams,omitempty"`
	CPUSeconds      float64 `json:"process_cpu_seconds"`
	RelayCPUSeconds float64 `json:"relay_cpu_seconds"`
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

	cpu := newCPUMeter()
	sk, err := newSink(f.udp, f.streams, cpu)
	if err != nil {
		return nil, err
	}
	defer sk.close()
	var relayAddr string
	if f.mode == "iocopy" || f.mode == "copy" {
		b, err := startBaseline(f.mode, f.udp, sk.addrs[0])
		if err != nil {
			return nil, err
		}
		defer b.close()
		relayAddr = b.addr().String()
	} else {
		srv := relay.NewServer(relay.ServerOptions{Log: slog.New(slog.DiscardHandler), Workers: mem.workers})
		cfg := relay.RelayConfig{Name: "bench", Protocol: res.Protocol, Listen: "127.0.0.1:0", Targets: sk.addrs, Mode: relay.Mode(f.mode)}
		if err := srv.Apply([]relay.RelayConfig{cfg}); err != nil {
			return nil, err
		}
		defer func() {
			// TCP flows end with the source's EOF; UDP flows only by idle, so close them.
			grace := 2 * time.Second
			if f.udp {
				grace = 0
			}
			ctx, cancel := context.WithTimeout(context.Background(), grace)
			srv.Shutdown(ctx)
			cancel()
		}()
		relayAddr = srv.Addr("bench").String()
	}

	if !f.json {
		fmt.Fprintf(w, "spliced bench: %s relay, mode %s, %d stream(s), %v, GOMAXPROCS %d\n",
			res.Protocol, f.mode, f.streams, f.duration, res.GOMAXPROCS)
		if f.udp {
			fmt.Fprintf(w, "[ ID] Interval           Datagrams      Rate              Bitrate          Relay CPU\n")
		} else {
			fmt.Fprintf(w, "[ ID] Interval           Transfer       Bitrate          Relay CPU\n")
		}
	}
	stop := make(chan struct{})
	src, err := startSource(f.udp, relayAddr, f.streams, size, stop, cpu)
	if err != nil {
		return nil, err
	}
	start, cpu0, ep0 := time.Now(), cpuTime(), cpu.total()
	lastT, lastB, lastD, lastC, lastE := start, int64(0), int64(0), cpu0, ep0
	tick := time.NewTicker(time.Second)
	end := time.NewTimer(f.duration)
	for done := false; !done; {
		select {
		case <-tick.C:
		case <-end.C:
			done = true
		}
		now, b, d, cp, ep := time.Now(), sk.bytes.Load(), sk.datagrams.Load(), cpuTime(), cpu.total()
		iv := benchInterval{Start: lastT.Sub(start).Seconds(), End: now.Sub(start).Seconds(),
			Bytes: b - lastB, Datagrams: d - lastD, CPUSeconds: (cp - lastC).Seconds(),
			RelayCPUSeconds: max(0, (cp-lastC)-(ep-lastE)).Seconds()}
		if iv.End-iv.Start > 0.01 {
			res.Intervals = append(res.Intervals, iv)
			if !f.json {
				printInterval(w, f.udp, iv)
			}
		}
		lastT, lastB, lastD, lastC, lastE = now, b, d, cp, ep
	}
	tick.Stop()
	close(stop)
	res.Seconds = lastT.Sub(start).Seconds()
	res.Bytes, res.Datagrams = lastB, lastD
	proc, endpoints := lastC-cpu0, lastE-ep0
	srcErr := src.wait()
	if !f.udp {
		sk.waitConns(2 * time.Second)
	}
	res.ProcessCPUSeconds = proc.Seconds()
	res.EndpointCPUSeconds = endpoints.Seconds()
	res.RelayCPUSeconds = max(0, proc-endpoints).Seconds()
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
