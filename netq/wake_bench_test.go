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

var wakeModes = []struct {
	name string
	mode int
}{
	{"block", modeBlock},
	{"spin", modeSpin},
	{"park", modePark},
	{"parkdl", modeParkDL},
	{"parkspin", modeParkSpin},
}

// BenchmarkWake is the round trip through a worker: a goroutine pings the worker and
// waits for its answer, either through an fd (a byte written on a socketpair, which the
// worker's handler echoes back) or through Add (a task that answers on a channel). With
// gap > 0 the pinger pauses between round trips, long enough for the worker to go back
// to sleep, so that every round trip is a wake-up of a sleeping worker. It reports the
// round trip (ns/rtt, the pause excluded) and the CPU the whole process used per round
// trip (cpu-ns/rtt, the pause included: a worker that spins while it waits pays here).
func BenchmarkWake(b *testing.B) {
	for _, path := range []string{"fd", "add"} {
		for _, gap := range []time.Duration{0, 200 * time.Microsecond} {
			for _, m := range wakeModes {
				b.Run(fmt.Sprintf("%s/gap=%v/%s", path, gap, m.name), func(b *testing.B) {
					defer func(old int) { waitMode = old }(waitMode)
					waitMode = m.mode
					g, err := NewGroup(1)
					if err != nil {
						b.Fatal(err)
					}
					defer g.Close()
					ping := pingFD
					if path == "add" {
						ping = pingAdd
					}
					ping(b, g.Worker(0), gap)
				})
			}
		}
	}
}

// pingFD runs BenchmarkWake's round trips through a socketpair.
func pingFD(b *testing.B, w *Worker, gap time.Duration) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fds[0])
	var buf [64]byte
	if err := w.Register(fds[0], unix.EPOLLIN, HandlerFunc(func(uint32) {
		if n, _ := unix.Read(fds[0], buf[:]); n > 0 {
			unix.Write(fds[0], buf[:n])
		}
	})); err != nil {
		b.Fatal(err)
	}
	defer w.Unregister(fds[0])
	peer := os.NewFile(uintptr(fds[1]), "peer") // non-blocking: on the runtime's poller
	defer peer.Close()
	one, in := []byte{1}, make([]byte, 1)
	pingLoop(b, gap, func() {
		peer.Write(one)
		peer.Read(in)
	})
}

// pingAdd runs BenchmarkWake's round trips through Add.
func pingAdd(b *testing.B, w *Worker, gap time.Duration) {
	done := make(chan struct{}, 1)
	task := NewTask(func() { done <- struct{}{} })
	pingLoop(b, gap, func() {
		w.Add(task)
		<-done
	})
}

func pingLoop(b *testing.B, gap time.Duration, rtt func()) {
	for range 100 { // warm up
		rtt()
	}
	var busy int64
	cpu := cpuNanos(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if gap > 0 {
			time.Sleep(gap)
		}
		t0 := mono()
		rtt()
		busy += mono() - t0
	}
	b.StopTimer()
	b.ReportMetric(float64(busy)/float64(b.N), "ns/rtt")
	b.ReportMetric(float64(cpuNanos(b)-cpu)/float64(b.N), "cpu-ns/rtt")
}

// BenchmarkWakeCompare interleaves the variants: chunks of 32 round trips on each in
// turn, so that load from elsewhere on the machine hits them alike. It reports the median
// and 90th percentile round trip and the CPU per round trip of each variant.
func BenchmarkWakeCompare(b *testing.B) {
	for _, path := range []string{"fd", "add"} {
		for _, gap := range []time.Duration{0, 200 * time.Microsecond} {
			b.Run(fmt.Sprintf("%s/gap=%v", path, gap), func(b *testing.B) {
				type variant struct {
					name string
					rtt  func()
					lat  []int64
					cpu  int64
				}
				var vs []*variant
				for _, m := range wakeModes {
					old := waitMode
					waitMode = m.mode
					g, err := NewGroup(1)
					waitMode = old
					if err != nil {
						b.Fatal(err)
					}
					defer g.Close()
					v := &variant{name: m.name}
					v.rtt = pinger(b, g.Worker(0), path)
					vs = append(vs, v)
				}
				const chunk = 32
				for i := 0; i < b.N; i += chunk {
					for k := range vs {
						v := vs[(k+i/chunk)%len(vs)]
						c0 := cpuNanos(b)
						for range chunk {
							if gap > 0 {
								time.Sleep(gap)
							}
							t0 := mono()
							v.rtt()
							v.lat = append(v.lat, mono()-t0)
						}
						v.cpu += cpuNanos(b) - c0
					}
				}
				for _, v := range vs {
					slices.Sort(v.lat)
					n := len(v.lat)
					b.ReportMetric(float64(v.lat[n/2]), v.name+"-p50-ns")
					b.ReportMetric(float64(v.lat[n*9/10]), v.name+"-p90-ns")
					b.ReportMetric(float64(v.cpu)/float64(n), v.name+"-cpu-ns")
				}
			})
		}
	}
}

// pinger sets up a round trip through w by path ("fd" or "add") and returns it.
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
	peer := os.NewFile(uintptr(fds[1]), "peer")
	b.Cleanup(func() { peer.Close() })
	one, in := []byte{1}, make([]byte, 1)
	return func() {
		peer.Write(one)
		peer.Read(in)
	}
}
