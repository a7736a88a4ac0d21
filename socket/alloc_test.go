package socket

import (
	"io"
	"runtime"
	"testing"
	"time"
)

// TestSpliceSteadyStateAllocs streams through a splice and counts the heap allocations
// of the whole process while 64 MiB move, after a warm-up: the moving of a chunk (read,
// somove, sendmsg, the splice(2) pair) must allocate nothing, so the count stays far below
// one per 64 KiB chunk (a few come from the runtime and the test's own net.Conns).
func TestSpliceSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's runtime allocates by itself")
	}
	for _, mode := range []SpliceMode{SpliceUser, SpliceKernel} {
		t.Run(mode.String(), func(t *testing.T) {
			r := newRig(t, nil)
			if err := r.src.Splice(r.dst, SpliceOptions{Mode: mode}); err != nil {
				t.Fatal(err)
			}
			const warm, measured = 16 << 20, 64 << 20
			errc := make(chan error, 1)
			go func() {
				buf := make([]byte, 128<<10)
				r.client.SetWriteDeadline(time.Now().Add(30 * time.Second))
				for sent := 0; sent < warm+measured; sent += len(buf) {
					if _, err := r.client.Write(buf); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
			r.server.SetReadDeadline(time.Now().Add(30 * time.Second))
			buf := make([]byte, 128<<10)
			if _, err := io.ReadFull(r.server, make([]byte, warm)); err != nil {
				t.Fatal(err)
			}
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			for got := 0; got < measured; {
				n, err := r.server.Read(buf[:min(len(buf), measured-got)])
				if err != nil {
					t.Fatalf("after %d bytes: %v", got, err)
				}
				got += n
			}
			runtime.ReadMemStats(&m1)
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			chunks := measured / (64 << 10)
			t.Logf("%d mallocs", m1.Mallocs-m0.Mallocs)
			if n := m1.Mallocs - m0.Mallocs; n > uint64(chunks/16) {
				t.Fatalf("%d heap allocations while %d MiB moved (%d chunks of 64 KiB): want 0 per chunk", n, measured>>20, chunks)
			}
		})
	}
}
