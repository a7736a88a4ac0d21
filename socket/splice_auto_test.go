package socket

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/softnet-go/softnet/netq"
	"golang.org/x/sys/unix"
)

// onKernel reports whether so's splice is on the kernel path now.
func onKernel(so *Socket) bool {
	sp := so.sp.Load()
	so.rcv.mu.Lock()
	defer so.rcv.mu.Unlock()
	return sp != nil && sp.kernel
}

// waitPath waits until so's splice is on the kernel path (kernel) or the user path.
func waitPath(t *testing.T, so *Socket, kernel bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for onKernel(so) != kernel {
		if time.Now().After(deadline) {
			t.Fatalf("the splice did not reach the kernel=%v path", kernel)
		}
		time.Sleep(time.Millisecond)
	}
}

// promoteSoon waits for so's auto splice to take the kernel path, as it does when input
// reads fill the input budget autoPromote times in a row. Whether they do depends on
// how the writer and the worker are scheduled (a worker that keeps up reads less than
// the budget each time), so after a while the test promotes the splice as input would
// have: the tests that call it are about what a switch must keep, not about when it
// happens (BenchmarkAutoThreshold and TestSpliceAutoSmallStaysUser are about that).
func promoteSoon(t *testing.T, so *Socket) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !onKernel(so) {
		if time.Now().After(deadline) {
			sp := so.sp.Load()
			so.rcv.mu.Lock()
			if sp.drain != nil && !sp.kernel {
				sp.promote()
			}
			so.rcv.mu.Unlock()
			sp.queue()
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// trickle writes n small pieces with gaps, so that an auto splice on the kernel path sees
// quiet turns.
func trickle(c net.Conn, data []byte, n int) {
	step := len(data) / n
	for i := range n {
		end := (i + 1) * step
		if i == n-1 {
			end = len(data)
		}
		c.Write(data[i*step : end])
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSpliceAutoSwitch moves an auto splice user → kernel → user → kernel mid-stream
// (bulk, then a trickle, then bulk) and checks the bytes and SpliceLen exactly, with
// and without a budget.
func TestSpliceAutoSwitch(t *testing.T) {
	for _, withBudget := range []bool{false, true} {
		name := "nobudget"
		if withBudget {
			name = "budget"
		}
		t.Run(name, func(t *testing.T) {
			clean(t)
			r := newRig(t, nil)
			var budget *BufferBudget
			if withBudget {
				budget = NewBufferBudget(64<<20, 0)
				r.src.SetReadBuffer(128 << 10)
				r.dst.SetWriteBuffer(128 << 10)
			}
			if err := r.src.Splice(r.dst, SpliceOptions{Mode: SpliceAuto, Budget: budget}); err != nil {
				t.Fatal(err)
			}
			if onKernel(r.src) {
				t.Fatal("an auto splice starts on the kernel path")
			}
			bulk1, small, bulk2 := randBytes(21, 2<<20), randBytes(22, 600), randBytes(23, 2<<20)
			data := append(append(append([]byte{}, bulk1...), small...), bulk2...)
			got := make(chan []byte)
			go func() { got <- readN(t, r.server, len(data)) }()
			r.client.Write(bulk1)
			promoteSoon(t, r.src)
			if withBudget && budget.Lent() == 0 {
				// The first kernel turn borrows: wait for it.
				for i := 0; budget.Lent() == 0 && i < 1000; i++ {
					time.Sleep(time.Millisecond)
				}
				if budget.Lent() != 2 {
					t.Fatalf("promoted with a budget: %d buffers lent, want 2", budget.Lent())
				}
			}
			trickle(r.client, small, len(small))
			waitPath(t, r.src, false)
			if withBudget {
				if budget.Used() != 0 {
					t.Fatalf("back on the user path, the budget still lends %d bytes", budget.Used())
				}
				if n := sockBuf(r.src.fd, unix.SO_RCVBUF); n != 128<<10 {
					t.Fatalf("SO_RCVBUF given back as %d, want %d", n, 128<<10)
				}
			}
			r.client.Write(bulk2)
			r.client.CloseWrite()
			if b := <-got; !bytes.Equal(b, data) {
				t.Fatal("data differs across the switches")
			}
			if err := waitSplice(t, r.src, 10*time.Second); err != nil {
				t.Fatalf("WaitSplice = %v", err)
			}
			if n := r.src.SpliceLen(); n != int64(len(data)) {
				t.Fatalf("SpliceLen = %d, want %d", n, len(data))
			}
			if withBudget && budget.Used() != 0 {
				t.Fatalf("after the end the budget lends %d bytes", budget.Used())
			}
		})
	}
}

// TestSpliceAutoSwitchMax ends an auto splice at Max inside the second bulk phase, after
// user → kernel → user → kernel: exactly Max bytes reach the server, the rest is the
// source's, in order.
func TestSpliceAutoSwitchMax(t *testing.T) {
	clean(t)
	r := newRig(t, nil)
	bulk1, small, bulk2 := randBytes(31, 1<<20), randBytes(32, 300), randBytes(33, 3<<20)
	data := append(append(append([]byte{}, bulk1...), small...), bulk2...)
	max := int64(len(bulk1) + len(small) + 2<<20 + 777)
	if err := r.src.Splice(r.dst, SpliceOptions{Mode: SpliceAuto, Max: max}); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte)
	go func() { got <- readN(t, r.server, int(max)) }()
	r.client.Write(bulk1)
	promoteSoon(t, r.src)
	trickle(r.client, small, len(small))
	waitPath(t, r.src, false)
	go func() { r.client.Write(bulk2); r.client.CloseWrite() }()
	b := <-got
	if err := waitSplice(t, r.src, 10*time.Second); !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("WaitSplice = %v, want EFBIG", err)
	}
	if n := r.src.SpliceLen(); n != max {
		t.Fatalf("SpliceLen = %d, want %d", n, max)
	}
	if !bytes.Equal(b, data[:max]) {
		t.Fatal("spliced bytes differ")
	}
	r.server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, _ := r.server.Read(make([]byte, 1)); n != 0 {
		t.Fatal("more than max reached the drain")
	}
	rest, err := io.ReadAll(r.src)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rest, data[max:]) {
		t.Fatalf("leftover: %d bytes, want %d, or they differ", len(rest), len(data)-int(max))
	}
}

// TestSpliceAutoUnspliceAfterSwitch unsplices right after a promotion (bytes in the
// user sockbufs and the pipe, the server not reading) and right after a demotion: every
// byte reaches the server or stays readable on the source, in order, and SpliceLen is
// what the server got.
func TestSpliceAutoUnspliceAfterSwitch(t *testing.T) {
	for _, after := range []string{"promotion", "demotion"} {
		t.Run(after, func(t *testing.T) {
			clean(t)
			r := newRig(t, nil)
			r.server.SetReadBuffer(32 << 10)
			r.dst.SetWriteBuffer(32 << 10)
			if err := r.src.Splice(r.dst, SpliceOptions{Mode: SpliceAuto, Budget: NewBufferBudget(64<<20, 0)}); err != nil {
				t.Fatal(err)
			}
			bulk, small, tail := randBytes(41, 3<<20), randBytes(42, 500), randBytes(43, 256<<10)
			data := append(append(append([]byte{}, bulk...), small...), tail...)
			var srv bytes.Buffer
			var srvMu sync.Mutex
			reading := make(chan bool, 1)
			srvDone := make(chan struct{})
			go func() { // reads only while told to
				defer close(srvDone)
				buf := make([]byte, 64<<10)
				on := false
				for {
					select {
					case v, ok := <-reading:
						if !ok {
							return
						}
						on = v
					default:
					}
					if !on {
						time.Sleep(time.Millisecond)
						continue
					}
					r.server.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
					n, _ := r.server.Read(buf)
					srvMu.Lock()
					srv.Write(buf[:n])
					srvMu.Unlock()
				}
			}()
			writer := make(chan struct{})
			if after == "promotion" {
				go func() { r.client.Write(bulk); close(writer) }()
				promoteSoon(t, r.src)
			} else {
				reading <- true
				r.client.Write(bulk)
				promoteSoon(t, r.src)
				trickle(r.client, small, len(small))
				waitPath(t, r.src, false)
				reading <- false
				go func() { r.client.Write(tail); close(writer) }()
				time.Sleep(2 * time.Millisecond)
			}
			if err := r.src.Unsplice(); err != nil {
				t.Fatal(err)
			}
			moved := r.src.SpliceLen()
			reading <- true
			<-writer
			if after == "promotion" {
				r.client.Write(small)
				r.client.Write(tail)
			}
			r.client.CloseWrite()
			rest, err := io.ReadAll(r.src)
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				srvMu.Lock()
				n := srv.Len()
				srvMu.Unlock()
				if int64(n) >= moved || time.Now().After(deadline) {
					break
				}
				time.Sleep(time.Millisecond)
			}
			close(reading)
			<-srvDone
			if int64(srv.Len()) != moved {
				t.Fatalf("server got %d bytes, SpliceLen %d", srv.Len(), moved)
			}
			if !bytes.Equal(append(srv.Bytes(), rest...), data) {
				t.Fatalf("server %d + source %d bytes do not make the data (%d)", srv.Len(), len(rest), len(data))
			}
		})
	}
}

// TestSpliceAutoSmallStaysUser: a request/response flow never leaves the user path.
func TestSpliceAutoSmallStaysUser(t *testing.T) {
	clean(t)
	r := newRig(t, nil)
	r.src.Splice(r.dst, SpliceOptions{Mode: SpliceAuto})
	r.dst.Splice(r.src, SpliceOptions{Mode: SpliceAuto})
	req := make([]byte, 64)
	for i := range 200 {
		req[0] = byte(i)
		r.client.Write(req)
		b := readN(t, r.server, 64)
		r.server.Write(b)
		if got := readN(t, r.client, 64); got[0] != byte(i) {
			t.Fatal("echo differs")
		}
	}
	if onKernel(r.src) || onKernel(r.dst) {
		t.Fatal("a 64-byte request/response flow took the kernel path")
	}
}

// fairResult is what fairnessRun measured.
type fairResult struct {
	p50, p99, worst, wall time.Duration
	rts                   int   // round trips completed
	bulk                  int64 // bytes the bulk flows moved, verified
	splices               int64
}

// fairnessRun relays bulkFlows bulk flows and one interactive flow (rts round trips of
// 64 bytes, or as many as fit in limit) through one relay on a group of one worker, all
// spliced with mode; the bulk flows run from before the first round trip to after the
// last, and their sinks check every byte. The bulk flows' clients and sinks run in a
// child process (TestAutoPeer), so that their CPU does not delay this process's
// goroutines, the relay's worker among them; the interactive client and its echo
// server run here.
func fairnessRun(tb testing.TB, mode SpliceMode, bulkFlows, rts int, limit time.Duration) fairResult {
	g, err := netq.NewGroup(1)
	if err != nil {
		tb.Fatal(err)
	}
	defer g.Close()
	srv, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer srv.Close()
	var sink atomic.Value
	sink.Store("127.0.0.1:1")
	var dials atomic.Int32
	addr, stop := autoRelay(tb, g, mode, 0, nil, func() string {
		if dials.Add(1) <= int32(bulkFlows) {
			return sink.Load().(string)
		}
		return srv.Addr().String()
	})
	defer stop()
	go func() {
		c, err := srv.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b := make([]byte, 64)
		for {
			if _, err := io.ReadFull(c, b); err != nil {
				return
			}
			c.Write(b)
		}
	}()
	p := startAutoPeer(tb, "bulk", addr, strconv.Itoa(bulkFlows))
	sink.Store(p.line(tb, "SINK"))
	p.start()
	p.line(tb, "DIALED")
	time.Sleep(200 * time.Millisecond) // the bulk flows get going (and promoted)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	sc0 := spliceCalls.Load()
	lat := make([]time.Duration, 0, rts)
	req, resp := make([]byte, 64), make([]byte, 64)
	t0 := time.Now()
	for i := range rts {
		if limit > 0 && time.Since(t0) > limit {
			break
		}
		req[0], req[63] = byte(i), byte(i>>8)
		s := time.Now()
		c.Write(req)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, resp); err != nil {
			tb.Errorf("round trip %d: %v", i, err)
			break
		}
		lat = append(lat, time.Since(s))
		if !bytes.Equal(req, resp) {
			tb.Errorf("round trip %d: the echo differs", i)
			break
		}
	}
	wall := time.Since(t0)
	sc := spliceCalls.Load() - sc0
	io.WriteString(p.in, "STOP\n")
	f := strings.Fields(p.line(tb, "DONE"))
	res := fairResult{wall: wall, rts: len(lat), splices: sc}
	if len(f) != 2 || f[1] != "0" {
		tb.Errorf("the bulk flows' bytes differ: %v", f)
	} else {
		res.bulk, _ = strconv.ParseInt(f[0], 10, 64)
	}
	if len(lat) > 0 {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		res.p50, res.p99, res.worst = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	}
	return res
}

// TestSpliceAutoFairness: one interactive flow keeps answering promptly while 4 bulk
// flows saturate the same worker, all spliced with SpliceAuto.
func TestSpliceAutoFairness(t *testing.T) {
	clean(t)
	const rts = 300
	res := fairnessRun(t, SpliceAuto, 4, rts, 4*time.Second)
	t.Logf("%d round trips in %v: p50 %v, p99 %v, max %v; bulk %d MiB", res.rts, res.wall, res.p50, res.p99, res.worst, res.bulk>>20)
	if res.rts != rts {
		t.Fatalf("%d of %d round trips in %v", res.rts, rts, res.wall)
	}
	if res.p50 > 5*time.Millisecond {
		t.Errorf("median round trip %v beside bulk flows, want under 5 ms", res.p50)
	}
	if res.worst > 100*time.Millisecond {
		t.Errorf("worst round trip %v beside bulk flows, want under 100 ms", res.worst)
	}
	if res.bulk == 0 {
		t.Error("the bulk flows moved nothing")
	}
}

// TestBufferBudgetReturns runs many budgeted auto splices that end in every way — EOF,
// the client's reset, the relay closing either socket, Max, Idle, Unsplice — and checks
// that the budget lent buffers and has every byte back.
func TestBufferBudgetReturns(t *testing.T) {
	clean(t)
	budget := NewBufferBudget(1<<30, 2<<20)
	var peak atomic.Int64
	ends := []string{"eof", "reset", "closesrc", "closedst", "max", "idle", "unsplice"}
	for round := range 2 {
		for i, how := range ends {
			r := newRig(t, nil)
			r.src.SetReadBuffer(128 << 10)
			r.dst.SetWriteBuffer(128 << 10)
			opt := SpliceOptions{Mode: SpliceAuto, Budget: budget}
			if how == "max" {
				opt.Max = 3 << 20
			}
			if how == "idle" {
				opt.Idle = 200 * time.Millisecond
			}
			if err := r.src.Splice(r.dst, opt); err != nil {
				t.Fatal(err)
			}
			data := randBytes(uint64(100*round+i), 4<<20)
			go func() { r.client.Write(data[:2<<20]) }()
			readN(t, r.server, 1<<20)
			promoteSoon(t, r.src)
			for j := 0; budget.Lent() == 0 && j < 1000; j++ {
				time.Sleep(time.Millisecond)
			}
			peak.Store(max(peak.Load(), budget.Used()))
			switch how {
			case "eof":
				go io.Copy(io.Discard, r.server)
				r.client.CloseWrite()
			case "reset":
				r.client.SetLinger(0)
				r.client.Close()
			case "closesrc":
				r.src.Close()
			case "closedst":
				r.dst.Close()
			case "max":
				go io.Copy(io.Discard, r.server)
				go r.client.Write(data[2<<20:])
			case "idle":
				go io.Copy(io.Discard, r.server)
			case "unsplice":
				r.src.Unsplice()
			}
			if how != "closesrc" {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := r.src.WaitSplice(ctx)
				cancel()
				if err == context.DeadlineExceeded {
					t.Fatalf("%s: the splice did not end", how)
				}
			}
			r.client.Close()
			r.server.Close()
			r.src.Close()
			r.dst.Close()
		}
	}
	if peak.Load() == 0 {
		t.Fatal("the budget never lent a buffer")
	}
	deadline := time.Now().Add(5 * time.Second)
	for budget.Used() != 0 || budget.Lent() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after every flow ended the budget lends %d bytes in %d buffers", budget.Used(), budget.Lent())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBufferBudgetExhausted: with no room in the budget, promoted flows keep their
// configured buffers and still move every byte.
func TestBufferBudgetExhausted(t *testing.T) {
	clean(t)
	budget := NewBufferBudget(1<<10, 0)
	r := newRig(t, nil)
	r.src.SetReadBuffer(128 << 10)
	r.dst.SetWriteBuffer(128 << 10)
	r.src.Splice(r.dst, SpliceOptions{Mode: SpliceAuto, Budget: budget})
	data := randBytes(51, 4<<20)
	go func() { r.client.Write(data); r.client.CloseWrite() }()
	if got := readN(t, r.server, len(data)); !bytes.Equal(got, data) {
		t.Fatal("data differs")
	}
	if err := waitSplice(t, r.src, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if budget.Used() != 0 || budget.Lent() != 0 {
		t.Fatalf("an exhausted budget lent %d bytes", budget.Used())
	}
}

// sockBuf returns the size that setsockopt was given for SO_RCVBUF or SO_SNDBUF of fd:
// what getsockopt reports, halved (Linux doubles the value set), or 0 on error.
func sockBuf(fd, opt int) int {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, opt)
	if err != nil {
		return 0
	}
	return v / 2
}
