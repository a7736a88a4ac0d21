package socket

import (
	"sync"
	"testing"
	"time"

	"github.com/softnet-go/softnet/mbuf"
	"golang.org/x/sys/unix"
)

// TestSpliceUDPFloodAtLimitDrains: a UDP splice flooded at the memory Limit must, once
// the flood stops, read on until the kernel's receive queue of its source is empty: an
// input that stopped for memory or a full sockbuf must be woken again.
func TestSpliceUDPFloodAtLimitDrains(t *testing.T) {
	clean(t)
	lim := mbuf.Limit()
	old := lim.Max()
	lim.Reclaim()
	if err := lim.SetMax(lim.Used() + 256<<10); err != nil {
		t.Fatal(err)
	}
	defer lim.SetMax(old)
	const flows = 8
	rigs := make([]*udpRig, flows)
	for i := range rigs {
		r := newUDPRig(t, "udp", "127.0.0.1:0", "udp", "127.0.0.1:0")
		r.src.SetReadBuffer(64 << 10)
		r.dst.SetWriteBuffer(64 << 10)
		if err := r.src.Splice(r.dst, SpliceOptions{}); err != nil {
			t.Fatal(err)
		}
		go func() { // the target reads whatever reaches it
			b := make([]byte, 2048)
			for {
				if _, err := r.server.Read(b); err != nil {
					return
				}
			}
		}()
		rigs[i] = r
	}
	var wg sync.WaitGroup
	for _, r := range rigs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := make([]byte, 1000)
			for end := time.Now().Add(time.Second); time.Now().Before(end); {
				for range 64 {
					r.client.Write(b)
				}
			}
		}()
	}
	wg.Wait()
	for i, r := range rigs {
		checkDrained(t, i, r)
	}
}

func checkDrained(t *testing.T, i int, r *udpRig) {
	var q int
	for end := time.Now().Add(3 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var err error
		q, err = unix.IoctlGetInt(r.src.fd, unix.SIOCINQ)
		if err != nil {
			t.Fatal(err)
		}
		if q == 0 {
			break
		}
		if time.Now().After(end) {
			r.src.rcv.mu.Lock()
			flags, cc, space := r.src.rcv.flags, r.src.rcv.cc, r.src.rcv.space()
			r.src.rcv.mu.Unlock()
			t.Fatalf("flow %d: the source's kernel queue still holds a datagram of %d bytes 3 s after the flood: input stopped (rcv flags %#x, cc %d, space %d, state %#x)",
				i, q, flags, cc, space, r.src.state.Load())
		}
	}
}
