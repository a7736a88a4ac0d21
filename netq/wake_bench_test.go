package netq

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// cpuNanos returns the CPU time (user + system) the process has used so far.
func cpuNanos(tb testing.TB) int64 {
	tb.Helper()
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkWake is the round trip through a worker: a goroutine pings the worker and
// waits for its answer, either through an fd ("fd": a byte written on a socketpair,
// which the worker's handler echoes back; the pinger waits on the runtime's poller) or
// through Add ("add": a task that answers on a channel). With gap=0 the next ping comes
// as soon as the answer is in, so the worker has just gone to sleep; with gap=200µs the
// pinger pauses first, so every round trip wakes a worker that has been asleep a while
// (and a worker that spun after its work would have given up). It reports the median
// and 90th percentile round trip (p50-ns, p90-ns; the pause is not counted) and the CPU
// the whole process used per round trip (cpu-ns, the pause included: a worker that spins
// while it waits pays there).
func BenchmarkWake(b *testing.B) {
	for _, path := range []string{"fd", "add"} {
		for _, gap := range []time.Duration{0, 200 * time.Microsecond} {
			b.Run(fmt.Sprintf("%s/gap=%v", path, gap), func(b *testing.B) {
				g, err := NewGroup(1)
				if err != nil {
					b.Fatal(err)
				}
				defer g.Close()
				rtt := pinger(b, g.Worker(0), path)
				for range 100 { // warm up
					rtt()
				}
				lat := make([]int64, 0, b.N)
				cpu := cpuNanos(b)
				b.ResetTimer()
				for range b.N {
					if gap > 0 {
						time.Sleep(gap)
					}
					t0 := mono()
					rtt()
					lat = append(lat, mono()-t0)
				}
				b.StopTimer()
				cpu = cpuNanos(b) - cpu
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2]), "p50-ns")
				b.ReportMetric(float64(lat[len(lat)*9/10]), "p90-ns")
				b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns")
			})
		}
	}
}

// pinger sets up a round trip through w by path ("fd" or "add") and returns it. The fds
// are closed when the benchmark ends.
func pinger(b *testing.B, w *Worker, path string) func() {
	if path == "add" {
		done := make(chan struct{}, 1)
		task := NewTask(func() { done <- struct{}{} })
		return func() {
			w.Add(task)
			<-done
		}
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unix.Close(fds[0]) })
	var buf [64]byte
	if err := w.Register(fds[0], unix.EPOLLIN, HandlerFunc(func(uint32) {
		if n, _ := unix.Read(fds[0], buf[:]); n > 0 {
			unix.Write(fds[0], buf[:n])
		}
	})); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.Unregister(fds[0]) })
	peer := os.NewFile(uintptr(fds[1]), "peer") // non-blocking: on the runtime's poller
	b.Cleanup(func() { peer.Close() })
	one, in := []byte{1}, make([]byte, 1)
	return func() {
		peer.Write(one)
		peer.Read(in)
	}
}
