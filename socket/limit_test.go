package socket

import (
	"bytes"
	"crypto/sha256"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/softnet-go/softnet/mbuf"
)

// TestLimitSlowReader sets the memory Limit just above what is in use, so that input
// from four fast writers to slow readers runs into it: memory stays under the Limit, the
// input waits for memory (no spin, no drop), and every byte arrives in order once the
// readers catch up.
func TestLimitSlowReader(t *testing.T) {
	clean(t)
	lim := mbuf.Limit()
	old := lim.Max()
	lim.Reclaim() // free slabs cached by earlier tests would hide the Limit
	max := lim.Used() + 512<<10
	if err := lim.SetMax(max); err != nil {
		t.Fatal(err)
	}
	defer lim.SetMax(old)
	waits0 := memWaits.Load()

	const conns, size = 4, 3 << 20
	var over atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			// The slabs the kegs hold (Limit.Used may overshoot for an instant while a
			// refused charge is taken back).
			var held int64
			for _, k := range mbuf.Stats().Kegs {
				held += k.Bytes
			}
			if held > max {
				over.Store(held)
			}
		}
	}()
	var wg sync.WaitGroup
	for i := range conns {
		c, s := pair(t, "tcp", "127.0.0.1:0")
		s.SetReadBuffer(2 << 20) // 4 × 2 MiB wanted: far more than the Limit leaves
		data := randBytes(uint64(500+i), size)
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := c.Write(data); err != nil {
				t.Error(err)
			}
			c.CloseWrite()
		}()
		go func() {
			defer wg.Done()
			h := sha256.New()
			buf := make([]byte, 16<<10)
			total := 0
			time.Sleep(200 * time.Millisecond) // the worker fills the sockbuf up to the Limit
			for {
				if total < size/2 {
					time.Sleep(time.Millisecond) // then slow, for the first half
				}
				n, err := s.Read(buf)
				h.Write(buf[:n])
				total += n
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
			if want := sha256.Sum256(data); total != size || !bytes.Equal(h.Sum(nil), want[:]) {
				t.Errorf("conn %d: %d bytes, want %d, equal %v", i, total, size, bytes.Equal(h.Sum(nil), want[:]))
			}
		}()
	}
	wg.Wait()
	close(stop)
	sampler.Wait()
	if u := over.Load(); u != 0 {
		t.Errorf("memory in use %d went over the Limit %d", u, max)
	}
	if memWaits.Load() == waits0 {
		t.Errorf("input never waited for memory: the test did not reach the Limit")
	}
	t.Logf("input waited for memory %d times under a Limit of %d bytes", memWaits.Load()-waits0, max)
}
