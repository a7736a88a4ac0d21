package socket

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/softnet-go/softnet/netq"
)

// The load of TestAppIODoesNotBlockWorker: bulkPairs socket pairs on the worker, a
// goroutine writing bulkBuf-byte buffers into one end of each and another reading the
// other end into buffers of the same size.
const (
	bulkPairs = 2
	bulkBuf   = 32 << 20
)

// The bounds of TestAppIODoesNotBlockWorker, generous (a shared 2-core machine, the race
// detector). appBlockBound is the p99 round trip of a 64-byte ping-pong through a splice
// beside the load on its worker. appWaitBound is the time, in all, that goroutines (the
// worker) may wait for a sockbuf lock held by the load's Reads and Writes during the
// 1.5 s of ping-pong. Before Read and Write left the sockbuf lock out of their system
// calls and long copies, the worker waited 400 to 630 ms for them (with the race
// detector or without), and the p99 round trip with the race detector was 8 to 63 ms;
// after, the waits are 2 to 5 ms and the p99 3 to 8 ms.
const (
	appBlockBound = 50 * time.Millisecond
	appWaitBound  = 100 * time.Millisecond
)

// TestAppIODoesNotBlockWorker: application goroutines Write and Read large buffers on
// sockets of one worker while a client ping-pongs 64 bytes through an echo splice on the
// same worker. The worker runs input and output for the bulk sockets beside the echo,
// taking their sockbufs' locks; an application call that held that lock across its
// read(2) or send(2) (or a long copy) would make the worker wait for it, and the echo's
// round trips would grow with the bulk calls. The test measures both: the round trips,
// and the worker's waits on locks the Reads and Writes held, from the mutex profile
// (which charges a wait to the stack that unlocked). GOMAXPROCS is raised for the test so
// that the round trips measure the worker, not the Go scheduler's handing out of two Ps
// to more goroutines busy in system calls than there are Ps.
func TestAppIODoesNotBlockWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("streams gigabytes for seconds")
	}
	if l, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		l.Close() // the runtime's poller now exists: its fds are not the test's
	}
	clean(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(runtime.GOMAXPROCS(0), 4*bulkPairs)))
	g, err := netq.NewGroup(1)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	w := g.Worker(0)
	lc := ListenConfig{Worker: w}
	ln, err := lc.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	// The bulk flows: each a (dialled on w) writes to its b (accepted on w).
	var as, bs []*Socket
	for range bulkPairs {
		a, err := (&Dialer{Worker: w}).DialContext(tctx(t, 10*time.Second), "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		as, bs = append(as, a), append(bs, b)
	}

	// The echo: a client of package net, its server socket spliced to itself on w.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.Splice(e, SpliceOptions{Mode: SpliceUser}); err != nil {
		t.Fatal(err)
	}

	defer runtime.SetMutexProfileFraction(runtime.SetMutexProfileFraction(1))
	wait0 := appLockWait(t)
	var stop atomic.Bool
	var moved atomic.Int64
	var wg sync.WaitGroup
	for i := range bulkPairs {
		a, b := as[i], bs[i]
		wg.Add(2)
		go func() {
			defer wg.Done()
			buf := make([]byte, bulkBuf)
			for !stop.Load() {
				if _, err := a.Write(buf); err != nil {
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			buf := make([]byte, bulkBuf)
			for {
				n, err := b.Read(buf)
				moved.Add(int64(n))
				if err != nil {
					return
				}
			}
		}()
	}

	// Let the bulk flows get going, then ping-pong for a while.
	for moved.Load() < 16<<20 {
		time.Sleep(time.Millisecond)
	}
	var rtts []time.Duration
	ping := make([]byte, 64)
	pong := make([]byte, 64)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	end := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(end) {
		ping[0]++
		t0 := time.Now()
		if _, err := c.Write(ping); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, pong); err != nil {
			t.Fatal(err)
		}
		rtts = append(rtts, time.Since(t0))
		if pong[0] != ping[0] {
			t.Fatalf("echo returned %d, want %d", pong[0], ping[0])
		}
	}
	bulk := moved.Load()
	waited := appLockWait(t) - wait0
	stop.Store(true)
	for i := range bulkPairs {
		as[i].Close()
		bs[i].Close()
	}
	wg.Wait()

	slices.Sort(rtts)
	p99 := rtts[len(rtts)*99/100]
	t.Logf("%d round trips beside %d MiB of Reads and Writes of %d MiB on %d pairs: median %v, p99 %v, max %v; waits on locks Read and Write held: %v",
		len(rtts), bulk>>20, bulkBuf>>20, bulkPairs, rtts[len(rtts)/2], p99, rtts[len(rtts)-1], waited)
	if p99 > appBlockBound {
		t.Errorf("p99 round trip %v beside application Reads and Writes on the worker: want under %v", p99, appBlockBound)
	}
	if waited > appWaitBound {
		t.Errorf("goroutines waited %v for locks that Reads and Writes held: want under %v", waited, appWaitBound)
	}
	if err := e.Unsplice(); err != nil {
		t.Error(err)
	}
	// Free the buffers now, and give their memory back: with the race detector, freeing
	// 128 MiB costs hundreds of milliseconds of CPU, which would otherwise land in a later
	// test (and fail one that measures the process's CPU).
	debug.FreeOSMemory()
}

// appLockWait returns the time goroutines have waited, in all, for sync.Mutexes of this
// package that Read and Write held: the mutex profile charges each wait to the stack of
// the Unlock that ended it. (A Read or Write that queues a task takes the worker's
// queue lock too, netq's, for the insert and at most a write(2) to its eventfd; that
// lock is netq's affair and not counted.) The profile must be on
// (SetMutexProfileFraction(1)).
func appLockWait(t *testing.T) time.Duration {
	t.Helper()
	var text bytes.Buffer
	pprof.Lookup("mutex").WriteTo(&text, 1) // its header gives the cycles' rate
	var hz float64
	_, rate, _ := strings.Cut(text.String(), "cycles/second=")
	if _, err := fmt.Sscanf(rate, "%g", &hz); err != nil || hz <= 0 {
		t.Fatalf("no cycles/second in the mutex profile: %v", err)
	}
	n := 0
	var recs []runtime.BlockProfileRecord
	for {
		recs = make([]runtime.BlockProfileRecord, n+64)
		var ok bool
		if n, ok = runtime.MutexProfile(recs); ok {
			break
		}
	}
	var cycles int64
	for _, r := range recs[:n] {
		frames := runtime.CallersFrames(r.Stack())
		// The first frame is the Unlock: a sync.Mutex's, not a lock of the runtime's
		// own (the profile has those too, the profiler's among them).
		if f, _ := frames.Next(); f.Function != "sync.(*Mutex).Unlock" {
			continue
		}
		for {
			f, more := frames.Next()
			if strings.HasPrefix(f.Function, "github.com/softnet-go/softnet/netq.") {
				break
			}
			if f.Function == "github.com/softnet-go/softnet/socket.(*Socket).Read" ||
				f.Function == "github.com/softnet-go/softnet/socket.(*Socket).Write" {
				cycles += r.Cycles
				break
			}
			if !more {
				break
			}
		}
	}
	return time.Duration(float64(cycles) / hz * float64(time.Second))
}
