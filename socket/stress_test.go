package socket

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/softnet-go/softnet/internal/stress"
	"github.com/softnet-go/softnet/mbuf"
)

// setInputFragment turns the input-fragmenting hook on for the rest of t.
func setInputFragment(t testing.TB, length int) {
	t.Helper()
	if err := stress.SetInputFragment(length); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stress.SetInputFragment(0) })
}

// TestInputFragment checks the MBUF_STRESS_TEST hook: with it on, every mbuf a reader
// receives holds at most the fragment length (1 byte, or up to 255 for the random
// modes), the bytes arrive byte-exact, and nothing is left in use; with it off the same
// write arrives in large mbufs.
func TestInputFragment(t *testing.T) {
	if err := stress.SetInputFragment(-3); err == nil {
		t.Fatal("stress.SetInputFragment(-3) succeeded")
	}
	for _, length := range []int{0, 1, 7, mbuf.FragRandomOnce, mbuf.FragRandomEach} {
		t.Run(fmt.Sprint(length), func(t *testing.T) {
			clean(t)
			setInputFragment(t, length)
			if got := stress.InputFragment(); got != length {
				t.Fatalf("stress.InputFragment() = %d, want %d", got, length)
			}
			done0, failed0 := fragStats.done.Load(), fragStats.failed.Load()
			c, s := pair(t, "tcp", "127.0.0.1:0")
			data := randBytes(uint64(900+length), 48<<10)
			go func() { c.Write(data); c.CloseWrite() }()
			s.SetReadDeadline(time.Now().Add(20 * time.Second))
			var got []byte
			biggest, mbufs := 0, 0
			for {
				m, err := s.Recv(0)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("Recv after %d bytes: %v", len(got), err)
				}
				for x := m; x != nil; x = x.Next() {
					biggest = max(biggest, x.Len())
					mbufs++
					got = append(got, x.Data()...)
				}
				m.FreeM()
			}
			if sum(got) != sum(data) {
				t.Fatalf("got %d bytes, want the %d sent, byte-exact", len(got), len(data))
			}
			want := length
			switch {
			case length == 0:
				if biggest <= 255 {
					t.Errorf("hook off: largest mbuf %d bytes; the test cannot tell on from off", biggest)
				}
				want = 0
			case length < 0:
				want = 255
			}
			if want > 0 && biggest > want {
				t.Errorf("largest mbuf %d bytes, want at most %d (%d mbufs)", biggest, want, mbufs)
			}
			if want == 1 && mbufs != len(data) {
				t.Errorf("%d mbufs for %d bytes fragmented by 1", mbufs, len(data))
			}
			if length != 0 && fragStats.done.Load() == done0 {
				t.Error("no chain was fragmented")
			}
			t.Logf("%d bytes in %d mbufs, largest %d; fragment failures %d", len(got), mbufs, biggest,
				fragStats.failed.Load()-failed0)
		})
	}
}

// TestInputFragmentSplice splices 1-byte and random-length fragmented input in user
// mode both ways through a rig: everything arrives byte-exact.
func TestInputFragmentSplice(t *testing.T) {
	for _, length := range []int{1, mbuf.FragRandomEach} {
		t.Run(fmt.Sprint(length), func(t *testing.T) {
			clean(t)
			setInputFragment(t, length)
			r := newRig(t, nil)
			if err := r.src.Splice(r.dst, SpliceOptions{Mode: SpliceUser}); err != nil {
				t.Fatal(err)
			}
			if err := r.dst.Splice(r.src, SpliceOptions{Mode: SpliceUser}); err != nil {
				t.Fatal(err)
			}
			// A 1-byte fragment takes a cluster of its own, so that mode moves a quarter
			// of the bytes: still 56 Ki mbufs, and well inside readN's deadline in a
			// -race mbufdebug build, which poisons and checks every cluster.
			scale := 1
			if length == 1 {
				scale = 4
			}
			up, down := randBytes(31, 128<<10/scale), randBytes(32, 96<<10/scale)
			go func() { r.client.Write(up); r.client.CloseWrite() }()
			go func() { r.server.Write(down); r.server.CloseWrite() }()
			if got := readN(t, r.server, len(up)); sum(got) != sum(up) {
				t.Fatal("client to server: data differs")
			}
			if got := readN(t, r.client, len(down)); sum(got) != sum(down) {
				t.Fatal("server to client: data differs")
			}
			for _, so := range []*Socket{r.src, r.dst} {
				if err := waitSplice(t, so, 10*time.Second); err != nil {
					t.Fatalf("WaitSplice = %v, want nil at EOF", err)
				}
			}
		})
	}
}

// TestUDPInputMemoryWaitNoLeak makes UDP input fail its allocations often, so that it
// waits for memory again and again: every datagram still arrives, and once the socket
// is closed no mbuf is left (a wait's cluster kept per wait, unused by UDP input, leaked).
func TestUDPInputMemoryWaitNoLeak(t *testing.T) {
	clean(t)
	so, err := ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer so.Close()
	c, err := net.Dial("udp", so.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waits0 := memWaits.Load()
	if err := stress.SetFailureRate(0.5); err != nil {
		t.Fatal(err)
	}
	defer stress.SetFailureRate(0)
	// Bursts written while no reader waits, so that input (not a reader) reads them.
	const rounds, burst = 40, 8
	buf := make([]byte, 2000)
	for r := range rounds {
		for i := range burst {
			if _, err := c.Write(fmt.Appendf(nil, "datagram %d.%d", r, i)); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(2 * time.Millisecond)
		for i := range burst {
			so.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := so.Read(buf)
			if err != nil {
				t.Fatalf("datagram %d.%d: %v", r, i, err)
			}
			if want := fmt.Sprintf("datagram %d.%d", r, i); string(buf[:n]) != want {
				t.Fatalf("got %q, want %q", buf[:n], want)
			}
		}
	}
	stress.SetFailureRate(0)
	if w := memWaits.Load() - waits0; w < 2 {
		t.Fatalf("%d memory waits: the test did not make input wait", w)
	}
}
