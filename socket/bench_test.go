package socket

import (
	"io"

	"runtime"
	"syscall"
	"testing"
	"time"
)

// benchStream writes b.N chunks from w and reads them all from r in another goroutine.
func benchStream(b *testing.B, w io.Writer, r io.Reader, chunk int) {
	buf := make([]byte, chunk)
	rbuf := make([]byte, chunk)
	total := int64(b.N) * int64(chunk)
	done := make(chan error, 1)
	b.SetBytes(int64(chunk))
	b.ResetTimer()
	go func() {
		var got int64
		for got < total {
			n, err := r.Read(rbuf)
			got += int64(n)
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range b.N {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkTCPStream compares Read/Write throughput over loopback of a Socket pair and a
// net.TCPConn pair in the same run.
func BenchmarkTCPStream(b *testing.B) {
	for _, chunk := range []int{4 << 10, 64 << 10} {
		b.Run("socket/"+sizeName(chunk), func(b *testing.B) {
			c, s := pair(b, "tcp", "127.0.0.1:0")
			benchStream(b, c, s, chunk)
		})
		b.Run("net/"+sizeName(chunk), func(b *testing.B) {
			c, s := netPair(b)
			benchStream(b, c, s, chunk)
		})
	}
}

func sizeName(n int) string {
	if n >= 1<<10 {
		return itoa(n>>10) + "KiB"
	}
	return itoa(n) + "B"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// raiseNofile raises the soft fd limit to the hard one.
func raiseNofile(tb testing.TB) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		tb.Fatal(err)
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkIdlePairs measures the Go heap of 5,000 idle connected socket pairs (both
// ends in this process), reported as heap-bytes/socket, and checks that no goroutine
// is made per socket.
func BenchmarkIdlePairs(b *testing.B) {
	raiseNofile(b)
	const pairs = 5000
	for range b.N {
		ln, err := Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		addr := ln.Addr().String()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()
		socks := make([]*Socket, 0, 2*pairs)
		ctx := tctx(b, time.Minute)
		for range pairs {
			c, err := Dial(ctx, "tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			s, err := ln.Accept()
			if err != nil {
				b.Fatal(err)
			}
			socks = append(socks, c, s)
		}
		// One byte each way, so every socket has been through input and output once.
		one := []byte{1}
		buf := make([]byte, 1)
		for i := 0; i < len(socks); i += 2 {
			socks[i].Write(one)
			socks[i+1].Read(buf)
			socks[i+1].Write(one)
			socks[i].Read(buf)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		g1 := runtime.NumGoroutine()
		per := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(len(socks))
		b.ReportMetric(per, "heap-bytes/socket")
		b.ReportMetric(float64(g1-g0), "goroutines")
		b.ReportMetric(float64(mbufsInUse()), "mbufs-in-use")
		if g1-g0 > 10 {
			b.Errorf("%d goroutines for %d sockets", g1-g0, len(socks))
		}
		runtime.KeepAlive(socks)
		for _, so := range socks {
			so.Close()
		}
		ln.Close()
	}
}
