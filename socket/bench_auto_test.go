package socket

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/softnet-go/softnet/netq"
)

// The auto-splice benchmarks: request/response flows and bulk flows through a relay in
// this process, their clients and servers in a child process (TestAutoPeer), so that
// getrusage deltas are the relay's CPU, as in BenchmarkRelay.

const autoPeerEnv = "SOFTNET_AUTO_PEER"

// startAutoPeer starts this test binary as TestAutoPeer with args.
func startAutoPeer(tb testing.TB, args ...string) *peer {
	tb.Helper()
	return startChild(tb, "TestAutoPeer", autoPeerEnv, args)
}

// TestAutoPeer is the child side of the auto-splice benchmarks; it does nothing in a
// normal test run. "rr,relay,count,size": a server answering each 64-byte request with
// size bytes, and one client making count requests through the relay, one at a time.
func TestAutoPeer(t *testing.T) {
	spec := os.Getenv(autoPeerEnv)
	if spec == "" {
		t.Skip("only as the auto-splice benchmarks' peer process")
	}
	a := strings.Split(spec, ",")
	if a[0] == "bulk" {
		peerBulk(a[1], atoi(a[2]))
		return
	}
	srv, _ := net.Listen("tcp", "127.0.0.1:0")
	fmt.Println("SINK", srv.Addr())
	stdin := make([]byte, 3)
	io.ReadFull(os.Stdin, stdin) // GO
	go func() { io.Copy(io.Discard, os.Stdin); os.Exit(0) }()
	count, size := atoi(a[2]), atoi(a[3])
	go func() {
		c, err := srv.Accept()
		if err != nil {
			return
		}
		req := make([]byte, 64)
		resp := make([]byte, size)
		for {
			if _, err := io.ReadFull(c, req); err != nil {
				c.Close()
				return
			}
			if _, err := c.Write(resp); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", a[1])
	if err != nil {
		fmt.Println("ERR", err)
		return
	}
	req := make([]byte, 64)
	resp := make([]byte, size)
	lat := make([]time.Duration, 0, count)
	t0 := time.Now()
	for range count {
		s := time.Now()
		c.Write(req)
		if _, err := io.ReadFull(c, resp); err != nil {
			fmt.Println("ERR", err)
			return
		}
		lat = append(lat, time.Since(s))
	}
	wall := time.Since(t0)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	fmt.Println("DONE", int64(wall), int64(lat[len(lat)/2]), int64(lat[len(lat)*99/100]))
	c.Close()
}

// autoRelay is a relay for the benchmarks: every connection accepted is spliced both
// ways to target with mode; sockbuf, if not 0, sizes every socket's buffers as spliced's
// --sockbuf does; budget is SpliceOptions.Budget.
func autoRelay(tb testing.TB, g *netq.Group, mode SpliceMode, sockbuf int, budget *BufferBudget, target func() string) (string, func()) {
	ln, err := (&ListenConfig{Group: g}).Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var mu sync.Mutex
	var socks []*Socket
	size := func(s *Socket) {
		if sockbuf > 0 {
			s.SetReadBuffer(sockbuf)
			s.SetWriteBuffer(sockbuf)
		}
	}
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			a, err := ln.Accept()
			if err != nil {
				return
			}
			size(a)
			b, err := (&Dialer{Worker: a.Worker()}).Connect("tcp", target())
			if err != nil {
				a.Close()
				continue
			}
			size(b)
			mu.Lock()
			socks = append(socks, a, b)
			mu.Unlock()
			var ends atomic.Int32
			end := func(to *Socket) func(error) {
				return func(error) {
					to.CloseWrite()
					if ends.Add(1) == 2 {
						a.Close()
						b.Close()
					}
				}
			}
			a.Splice(b, SpliceOptions{Mode: mode, OnEnd: end(b), Budget: budget})
			b.Splice(a, SpliceOptions{Mode: mode, OnEnd: end(a), Budget: budget})
		}
	}()
	return ln.Addr().String(), func() {
		ln.Close()
		<-accepting // no flow is set up after this
		mu.Lock()
		for _, so := range socks {
			// Reset, not a lingering close: the caller may close the workers next, and
			// a socket still flushing to a peer that stopped reading would never close.
			so.SetLinger(0)
			so.Close()
		}
		mu.Unlock()
	}
}

// benchRR runs count request/response exchanges (64-byte request, size-byte response)
// through a relay splicing with mode, and reports per exchange: wall time, the relay's
// CPU and splice(2) calls, and the client's median and 99th percentile round trip.
func benchRR(b *testing.B, mode SpliceMode, size int) {
	var target atomic.Value
	target.Store("127.0.0.1:1")
	addr, stop := autoRelay(b, nil, mode, 0, nil, func() string { return target.Load().(string) })
	defer stop()
	count := max(b.N, 64)
	p := startAutoPeer(b, "rr", addr, strconv.Itoa(count), strconv.Itoa(size))
	target.Store(p.line(b, "SINK"))
	runtime.GC()
	b.ResetTimer()
	cpu0, sc0, pr0 := cpuTime(), spliceCalls.Load(), autoPromotions.Load()
	p.start()
	f := strings.Fields(p.line(b, "DONE"))
	cpu, sc, pr := cpuTime()-cpu0, spliceCalls.Load()-sc0, autoPromotions.Load()-pr0
	b.StopTimer()
	if len(f) != 3 {
		b.Fatalf("peer: %v", f)
	}
	wall, p50, p99 := atoi(f[0]), atoi(f[1]), atoi(f[2])
	b.ReportMetric(float64(wall)/float64(count), "ns/exchange")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(count), "relay-CPU-ns/exchange")
	b.ReportMetric(float64(sc)/float64(count), "splices/exchange")
	b.ReportMetric(float64(p50)/1e3, "p50-µs")
	b.ReportMetric(float64(p99)/1e3, "p99-µs")
	b.ReportMetric(float64(pr), "promotions")
}

// BenchmarkAuto compares SpliceAuto with the fixed modes: 64-byte request/response
// (round trips: system calls and ns per exchange), and bulk flows at 1 and 8 streams
// (bytes per relay CPU-second), with the io.Copy relay beside them.
func BenchmarkAuto(b *testing.B) {
	for _, mode := range []SpliceMode{SpliceUser, SpliceKernel, SpliceAuto} {
		b.Run("rr64/"+mode.String(), func(b *testing.B) { benchRR(b, mode, 64) })
	}
	for _, streams := range []int{1, 8} {
		for _, mode := range []SpliceMode{SpliceUser, SpliceKernel, SpliceAuto} {
			b.Run(fmt.Sprintf("bulk/%s/streams=%d", mode, streams), func(b *testing.B) {
				benchBulk(b, mode, streams, 0, nil)
			})
		}
		b.Run(fmt.Sprintf("bulk/iocopy/streams=%d", streams), func(b *testing.B) {
			benchRelay(b, relayIOCopy, streams)
		})
	}
}

// BenchmarkAutoThreshold measures autoPromote on exchanges with 256 KiB and 4 MiB
// responses: too low a threshold moves short responses to the kernel path and its
// setup, too high keeps long ones on the user path.
func BenchmarkAutoThreshold(b *testing.B) {
	defer func(n int) { autoPromote = n }(autoPromote)
	for _, size := range []int{64 << 10, 256 << 10, 4 << 20} {
		b.Run(fmt.Sprintf("size=%dK/user", size>>10), func(b *testing.B) { benchRR(b, SpliceUser, size) })
		b.Run(fmt.Sprintf("size=%dK/kernel", size>>10), func(b *testing.B) { benchRR(b, SpliceKernel, size) })
		for _, n := range []int{1, 3, 8} {
			b.Run(fmt.Sprintf("size=%dK/auto-N=%d", size>>10, n), func(b *testing.B) {
				autoPromote = n
				benchRR(b, SpliceAuto, size)
			})
		}
	}
}

// benchBulk is benchRelay for a relay splicing with mode, its sockets' buffers sized to
// sockbuf (0: autotuned), with budget. It also reports splice(2) calls per MiB.
func benchBulk(b *testing.B, mode SpliceMode, streams, sockbuf int, budget *BufferBudget) {
	var sinkAddr atomic.Value
	sinkAddr.Store("127.0.0.1:1")
	addr, stop := autoRelay(b, nil, mode, sockbuf, budget, func() string { return sinkAddr.Load().(string) })
	defer stop()
	total := int64(max(b.N, 64)) << 20
	per := total / int64(streams)
	p := startPeer(b, "tcp", addr, strconv.Itoa(streams), strconv.FormatInt(per, 10))
	sinkAddr.Store(p.line(b, "SINK"))
	runtime.GC()
	pr0, de0 := autoPromotions.Load(), autoDemotions.Load() // before the flows start
	p.start()
	b.ResetTimer()
	cpu0, t0, sc0 := cpuTime(), time.Now(), spliceCalls.Load()
	got, _ := strconv.ParseInt(p.line(b, "DONE"), 10, 64)
	cpu, wall, sc := cpuTime()-cpu0, time.Since(t0), spliceCalls.Load()-sc0
	b.StopTimer()
	if got != per*int64(streams) {
		b.Fatalf("sink got %d bytes, want %d", got, per*int64(streams))
	}
	b.SetBytes(1 << 20)
	b.ReportMetric(float64(got)*8/wall.Seconds()/1e9, "Gbit/s")
	b.ReportMetric(float64(got)/cpu.Seconds()/1e9, "GB/relay-CPU-s")
	b.ReportMetric(float64(sc)/float64(got>>20), "splices/MiB")
	if mode == SpliceAuto {
		b.ReportMetric(float64(autoPromotions.Load()-pr0)/float64(streams), "promotions/stream")
		b.ReportMetric(float64(autoDemotions.Load()-de0)/float64(streams), "demotions/stream")
	}
}

// BenchmarkBudget measures the kernel path (SpliceAuto promoted) with 256 KiB socket
// buffers and no budget, with a budget lending 1, 2 or 4 MiB buffers, and with
// autotuned buffers (sockbuf 0), at 1 and 8 streams.
func BenchmarkBudget(b *testing.B) {
	for _, streams := range []int{1, 8} {
		b.Run(fmt.Sprintf("sockbuf=256K/streams=%d", streams), func(b *testing.B) {
			benchBulk(b, SpliceAuto, streams, 256<<10, nil)
		})
		for _, bulk := range []int{1 << 20, 2 << 20, 4 << 20} {
			b.Run(fmt.Sprintf("sockbuf=256K+budget%dM/streams=%d", bulk>>20, streams), func(b *testing.B) {
				benchBulk(b, SpliceAuto, streams, 256<<10, NewBufferBudget(1<<30, bulk))
			})
		}
		b.Run(fmt.Sprintf("autotuned/streams=%d", streams), func(b *testing.B) {
			benchBulk(b, SpliceAuto, streams, 0, nil)
		})
	}
}

// BenchmarkKernelTurn serves 64-byte round trips through a one-worker relay while 4
// bulk flows (SpliceKernel) saturate the same worker, with the kernel path's turn
// bounded to one pipe-full and to netq.Budget: the small flow's median and worst round
// trip, and the bulk flows' splice(2) calls per MiB. Clients and servers run in this
// process.
func BenchmarkKernelTurn(b *testing.B) {
	defer func(n int) { kernelTurnMax = n }(kernelTurnMax)
	for _, turn := range []int{netq.Budget, pipeSize} {
		b.Run(fmt.Sprintf("turn=%dK", turn>>10), func(b *testing.B) {
			kernelTurnMax = turn
			res := fairnessRun(b, SpliceKernel, 4, max(b.N, 500), 0)
			b.ReportMetric(float64(res.p50.Microseconds()), "p50-µs")
			b.ReportMetric(float64(res.p99.Microseconds()), "p99-µs")
			b.ReportMetric(float64(res.worst.Microseconds()), "max-µs")
			b.ReportMetric(float64(res.splices)/float64(max(res.bulk>>20, 1)), "splices/MiB")
			b.ReportMetric(float64(res.bulk)/res.wall.Seconds()/1e9, "bulk-GB/s")
		})
	}
}

// peerBulk is the peer of fairnessRun: a sink server checking every byte, and streams
// clients writing a pattern through the relay from "GO" until "STOP" on stdin; then it
// prints the bytes the sinks got and whether any differed.
func peerBulk(relay string, streams int) {
	sink, _ := net.Listen("tcp", "127.0.0.1:0")
	fmt.Println("SINK", sink.Addr())
	in := bufio.NewScanner(os.Stdin)
	in.Scan() // GO
	pattern := bulkPattern()
	var got atomic.Int64
	var bad atomic.Int32
	var sinks sync.WaitGroup
	sinks.Add(streams)
	go func() {
		for range streams {
			c, err := sink.Accept()
			if err != nil {
				return
			}
			go func() {
				defer sinks.Done()
				defer c.Close()
				buf := make([]byte, 256<<10)
				var pos int64
				for {
					n, err := c.Read(buf)
					if !checkPattern(pattern, buf[:n], pos) {
						bad.Store(1)
					}
					pos += int64(n)
					if err != nil {
						got.Add(pos)
						return
					}
				}
			}()
		}
	}()
	var stop atomic.Bool
	var clients sync.WaitGroup
	for range streams {
		c, err := net.Dial("tcp", relay)
		if err != nil {
			fmt.Println("ERR", err)
			return
		}
		clients.Add(1)
		go func() {
			defer clients.Done()
			defer c.Close()
			for !stop.Load() {
				if _, err := c.Write(pattern); err != nil {
					bad.Store(2)
					return
				}
			}
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, c)
		}()
	}
	fmt.Println("DIALED", streams)
	in.Scan() // STOP
	stop.Store(true)
	clients.Wait()
	sinks.Wait()
	fmt.Println("DONE", got.Load(), bad.Load())
}

// bulkPattern is what the bulk flows of fairnessRun send, over and over: byte i of a
// flow is i mod 251.
func bulkPattern() []byte {
	p := make([]byte, 251*1024)
	for i := range p {
		p[i] = byte(i % 251)
	}
	return p
}

// checkPattern reports whether b is the bytes of the pattern from stream offset pos.
func checkPattern(pattern, b []byte, pos int64) bool {
	for k := 0; k < len(b); {
		off := int((pos + int64(k)) % 251)
		l := min(len(b)-k, len(pattern)-off)
		if !bytes.Equal(b[k:k+l], pattern[off:off+l]) {
			return false
		}
		k += l
	}
	return true
}
