package socket

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The relay benchmarks run the relay in this process and its clients and servers in a
// child process (this test binary, running TestRelayPeer), so that getrusage(RUSAGE_SELF)
// deltas are the relay's CPU and /proc/self/statm its memory.

const peerEnv = "SOFTNET_RELAY_PEER"

// cpuTime returns the process's user+system CPU time (getrusage(RUSAGE_SELF)).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peer is the child process: started with the relay's address, it prints lines on
// stdout and reads commands on stdin.
type peer struct {
	cmd *exec.Cmd
	out *bufio.Scanner
	in  io.WriteCloser
}

func startPeer(tb testing.TB, args ...string) *peer {
	tb.Helper()
	return startChild(tb, "TestRelayPeer", peerEnv, args)
}

// startChild starts this test binary running only test, with env set to args joined by
// commas, as the peer of a benchmark.
func startChild(tb testing.TB, test, env string, args []string) *peer {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"="+strings.Join(args, ","))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &peer{cmd: cmd, out: bufio.NewScanner(out), in: in}
	watchdog := time.AfterFunc(5*time.Minute, func() { cmd.Process.Kill() })
	tb.Cleanup(func() { watchdog.Stop(); in.Close(); cmd.Wait() })
	return p
}

// start tells the peer to go on.
func (p *peer) start() { io.WriteString(p.in, "GO\n") }

// line returns the next line from the peer with the given prefix's value.
func (p *peer) line(tb testing.TB, prefix string) string {
	for p.out.Scan() {
		if v, ok := strings.CutPrefix(p.out.Text(), prefix+" "); ok {
			return v
		}
	}
	tb.Fatalf("peer ended before %q", prefix)
	return ""
}

// TestRelayPeer is the child side of the relay benchmarks; it does nothing in a normal
// test run.
func TestRelayPeer(t *testing.T) {
	spec := os.Getenv(peerEnv)
	if spec == "" {
		t.Skip("only as the relay benchmarks' peer process")
	}
	a := strings.Split(spec, ",")
	stdin := bufio.NewReader(os.Stdin)
	goLine = func() { // wait for the relay to know the sink; exit when the relay does
		stdin.ReadString('\n')
		go func() {
			io.Copy(io.Discard, stdin)
			os.Exit(0)
		}()
	}
	switch a[0] {
	case "tcp":
		peerTCP(a[1], atoi(a[2]), int64(atoi(a[3])))
	case "udp":
		peerUDP(a[1], atoi(a[2]), atoi(a[3]))
	case "idle":
		peerIdle(a[1], atoi(a[2]))
	}
}

// goLine blocks the peer until the relay has read its SINK line.
var goLine func()

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// peerTCP: a sink server, then streams clients each sending n bytes through the relay.
func peerTCP(relay string, streams int, n int64) {
	sink, _ := net.Listen("tcp", "127.0.0.1:0")
	fmt.Println("SINK", sink.Addr())
	goLine()
	var got atomic.Int64
	var wg sync.WaitGroup
	wg.Add(streams)
	go func() {
		for range streams {
			c, err := sink.Accept()
			if err != nil {
				return
			}
			go func() {
				defer wg.Done()
				k, _ := io.CopyBuffer(io.Discard, struct{ io.Reader }{c}, make([]byte, 256<<10))
				got.Add(k)
				c.Close()
			}()
		}
	}()
	buf := make([]byte, 256<<10)
	var cw sync.WaitGroup
	for range streams {
		c, err := net.Dial("tcp", relay)
		if err != nil {
			fmt.Println("ERR", err)
			return
		}
		cw.Add(1)
		go func() {
			defer cw.Done()
			for left := n; left > 0; {
				k, err := c.Write(buf[:min(left, int64(len(buf)))])
				if err != nil {
					return
				}
				left -= int64(k)
			}
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, c)
			c.Close()
		}()
	}
	cw.Wait()
	wg.Wait()
	fmt.Println("DONE", got.Load())
}

// peerUDP: a sink, then count datagrams of 1200 bytes sent to the relay as fast as the
// relay's socket takes them.
func peerUDP(relay string, count, size int) {
	sink, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	sink.SetReadBuffer(4 << 20)
	fmt.Println("SINK", sink.LocalAddr())
	goLine()
	var got atomic.Int64
	done := make(chan struct{})
	go func() {
		buf := make([]byte, 2048)
		for {
			sink.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			if _, err := sink.Read(buf); err != nil {
				close(done)
				return
			}
			got.Add(1)
		}
	}()
	c, _ := net.Dial("udp", relay)
	c.(*net.UDPConn).SetWriteBuffer(4 << 20)
	b := make([]byte, size)
	for i := range count {
		c.Write(b)
		if i%64 == 63 {
			runtime.Gosched()
		}
	}
	<-done
	fmt.Println("DONE", got.Load())
}

// peerIdle: a sink server and n connections through the relay, each touched by one byte
// each way, then idle until stdin closes.
func peerIdle(relay string, n int) {
	sink, _ := net.Listen("tcp", "127.0.0.1:0")
	fmt.Println("SINK", sink.Addr())
	goLine()
	srv := make(chan net.Conn, n)
	go func() {
		for range n {
			c, err := sink.Accept()
			if err != nil {
				return
			}
			srv <- c
		}
	}()
	conns := make([]net.Conn, 0, 2*n)
	b := make([]byte, 1)
	for range n {
		c, err := net.Dial("tcp", relay)
		if err != nil {
			fmt.Println("ERR", err)
			return
		}
		s := <-srv
		c.Write(b)
		io.ReadFull(s, b)
		s.Write(b)
		io.ReadFull(c, b)
		conns = append(conns, c, s)
	}
	fmt.Println("READY", len(conns))
	runtime.KeepAlive(conns)
	select {} // until the relay closes stdin: goLine's goroutine exits the process
}

// relayKind is one of the relays compared.
type relayKind string

const (
	relayUser    relayKind = "user"    // Splice, SpliceUser
	relayKernel  relayKind = "kernel"  // Splice, SpliceKernel
	relayIOCopy  relayKind = "iocopy"  // net.TCPConn with io.Copy each way (splice(2) inside)
	relayCopy32K relayKind = "copy32k" // net.TCPConn, a goroutine per direction, 32 KiB buffer
)

// startRelay listens and relays every connection to target; it returns the address and
// a stop function.
func startRelay(tb testing.TB, kind relayKind, target func() string) (string, func()) {
	switch kind {
	case relayUser, relayKernel:
		mode := SpliceUser
		if kind == relayKernel {
			mode = SpliceKernel
		}
		ln, err := Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		var mu sync.Mutex
		var socks []*Socket
		go func() {
			for {
				a, err := ln.Accept()
				if err != nil {
					return
				}
				b, err := (&Dialer{Worker: a.Worker()}).Connect("tcp", target())
				if err != nil {
					a.Close()
					continue
				}
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
				a.Splice(b, SpliceOptions{Mode: mode, OnEnd: end(b)})
				b.Splice(a, SpliceOptions{Mode: mode, OnEnd: end(a)})
			}
		}()
		return ln.Addr().String(), func() {
			ln.Close()
			mu.Lock()
			for _, so := range socks {
				so.Close()
			}
			mu.Unlock()
		}
	default:
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		var mu sync.Mutex
		var conns []net.Conn
		go func() {
			for {
				a, err := ln.Accept()
				if err != nil {
					return
				}
				b, err := net.Dial("tcp", target())
				if err != nil {
					a.Close()
					continue
				}
				mu.Lock()
				conns = append(conns, a, b)
				mu.Unlock()
				pipe := func(dst, src net.Conn) {
					if kind == relayIOCopy {
						io.Copy(dst, src)
					} else {
						io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, 32<<10))
					}
					dst.(*net.TCPConn).CloseWrite()
				}
				go pipe(b, a)
				go pipe(a, b)
			}
		}()
		return ln.Addr().String(), func() {
			ln.Close()
			mu.Lock()
			for _, c := range conns {
				c.Close()
			}
			mu.Unlock()
		}
	}
}

// BenchmarkRelay measures TCP relays over loopback, 1 and 8 streams: this package's user
// and kernel splice paths against an io.Copy relay and a 32 KiB goroutine copy relay.
// It reports Gbit/s and bytes moved per second of the relay's CPU (getrusage of this
// process; the clients and servers run in a child process). One op moves 1 MiB.
func BenchmarkRelay(b *testing.B) {
	for _, streams := range []int{1, 8} {
		for _, kind := range []relayKind{relayUser, relayKernel, relayIOCopy, relayCopy32K} {
			b.Run(fmt.Sprintf("%s/streams=%d", kind, streams), func(b *testing.B) {
				benchRelay(b, kind, streams)
			})
		}
	}
}

func benchRelay(b *testing.B, kind relayKind, streams int) {
	var sinkAddr atomic.Value
	sinkAddr.Store("127.0.0.1:1") // until the peer says: a stray connection fails
	addr, stop := startRelay(b, kind, func() string { return sinkAddr.Load().(string) })
	defer stop()
	total := int64(max(b.N, 64)) << 20
	per := total / int64(streams)
	p := startPeer(b, "tcp", addr, strconv.Itoa(streams), strconv.FormatInt(per, 10))
	sinkAddr.Store(p.line(b, "SINK"))
	p.start()
	runtime.GC()
	b.ResetTimer()
	cpu0, t0 := cpuTime(), time.Now()
	got, _ := strconv.ParseInt(p.line(b, "DONE"), 10, 64)
	cpu, wall := cpuTime()-cpu0, time.Since(t0)
	b.StopTimer()
	if got != per*int64(streams) {
		b.Fatalf("sink got %d bytes, want %d", got, per*int64(streams))
	}
	b.SetBytes(1 << 20)
	b.ReportMetric(float64(got)*8/wall.Seconds()/1e9, "Gbit/s")
	b.ReportMetric(float64(got)/cpu.Seconds()/1e9, "GB/relay-CPU-s")
}

// BenchmarkRelayUDP compares datagrams of 1200 bytes per second of relay CPU: a splice
// from a bound socket to a connected one, against a relay doing one ReadFrom and one
// WriteTo per datagram.
func BenchmarkRelayUDP(b *testing.B) {
	for _, kind := range []string{"splice", "readfrom"} {
		b.Run(kind, func(b *testing.B) {
			count := max(b.N, 200000)
			var relayed atomic.Int64
			var addr string
			var stop func()
			var setTarget func(string)
			if kind == "splice" {
				src, err := ListenPacket("udp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				src.SetReadBuffer(4 << 20)
				addr = src.LocalAddr().String()
				var dst *Socket
				setTarget = func(t string) {
					dst, err = (&Dialer{Worker: src.Worker()}).DialContext(context.Background(), "udp", t)
					if err != nil {
						b.Fatal(err)
					}
					src.Splice(dst, SpliceOptions{Mode: SpliceUser})
				}
				stop = func() {
					relayed.Store(src.SpliceLen() / 1200)
					src.Close()
					dst.Close()
				}
			} else {
				src, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
				if err != nil {
					b.Fatal(err)
				}
				src.SetReadBuffer(4 << 20)
				addr = src.LocalAddr().String()
				out, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
				setTarget = func(t string) {
					to := netip.MustParseAddrPort(t)
					go func() {
						buf := make([]byte, 2048)
						for {
							n, _, err := src.ReadFromUDPAddrPort(buf)
							if err != nil {
								return
							}
							out.WriteToUDPAddrPort(buf[:n], to)
							relayed.Add(1)
						}
					}()
				}
				stop = func() { src.Close(); out.Close() }
			}
			p := startPeer(b, "udp", addr, strconv.Itoa(count), "1200")
			setTarget(p.line(b, "SINK"))
			p.start()
			runtime.GC()
			b.ResetTimer()
			cpu0, t0 := cpuTime(), time.Now()
			got, _ := strconv.ParseInt(p.line(b, "DONE"), 10, 64)
			cpu, wall := cpuTime()-cpu0, time.Since(t0)
			b.StopTimer()
			stop()
			n := relayed.Load()
			b.ReportMetric(float64(n)/cpu.Seconds(), "dgrams/relay-CPU-s")
			b.ReportMetric(float64(got)/wall.Seconds(), "dgrams/s")
			b.ReportMetric(float64(got)/float64(count), "delivered")
		})
	}
}

// BenchmarkRelayIdle measures the relay's memory for 5,000 idle relayed TCP connections
// (two sockets each, spliced both ways, each touched by a byte each way): RSS and Go heap
// per connection, from /proc/self/statm and runtime.MemStats.
func BenchmarkRelayIdle(b *testing.B) {
	raiseNofile(b)
	const n = 5000
	for _, kind := range []relayKind{relayUser, relayKernel, relayCopy32K} {
		b.Run(string(kind), func(b *testing.B) {
			for range b.N {
				var sinkAddr atomic.Value
				sinkAddr.Store("127.0.0.1:1")
				addr, stop := startRelay(b, kind, func() string { return sinkAddr.Load().(string) })
				runtime.GC()
				debug.FreeOSMemory()
				rss0, heap0 := rss(), heapAlloc()
				p := startPeer(b, "idle", addr, strconv.Itoa(n))
				sinkAddr.Store(p.line(b, "SINK"))
				p.start()
				p.line(b, "READY")
				time.Sleep(100 * time.Millisecond)
				runtime.GC()
				debug.FreeOSMemory()
				rss1, heap1 := rss(), heapAlloc()
				b.ReportMetric(float64(rss1-rss0)/n, "RSS-bytes/conn")
				b.ReportMetric(float64(heap1-heap0)/n, "heap-bytes/conn")
				p.in.Close()
				p.cmd.Wait()
				stop()
			}
		})
	}
}

func rss() int64 {
	b, _ := os.ReadFile("/proc/self/statm")
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

func heapAlloc() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
