package socket

import (
	"bytes"
	"syscall"
	"testing"
	"unsafe"

	"github.com/softnet-go/softnet/mbuf"
	"golang.org/x/sys/unix"
)

func TestMoveLen(t *testing.T) {
	for _, tc := range []struct {
		name              string
		cc                int
		moved, max        int64
		space, lowat      int
		n                 int
		maxreached, moves bool
	}{
		{"all of it", 1000, 0, 0, 4096, 2048, 1000, false, true},
		{"nothing pending", 0, 0, 0, 4096, 2048, 0, false, true},
		{"no maximum, room for part", 10000, 0, 0, 4096, 2048, 4096, false, true},
		{"room below lowat, more pending", 10000, 0, 0, 1000, 2048, 0, false, false},
		{"room below lowat, all fits", 500, 0, 0, 1000, 2048, 500, false, true},
		{"no room", 1000, 0, 0, 0, 2048, 0, false, false},
		{"over-full drain", 1000, 0, 0, -100, 2048, 0, false, false},
		{"maximum inside the data", 1000, 100, 300, 4096, 2048, 200, true, true},
		{"maximum at the end of the data", 200, 100, 300, 4096, 2048, 200, true, true},
		{"maximum beyond the data", 100, 100, 300, 4096, 2048, 100, false, true},
		{"maximum already reached", 100, 300, 300, 4096, 2048, 0, true, true},
		{"maximum, but the room is less", 10000, 0, 8000, 4096, 2048, 4096, false, true},
		{"maximum, room below lowat", 10000, 0, 8000, 1000, 2048, 0, false, false},
		{"maximum, no room", 10000, 0, 8000, 0, 2048, 0, false, false},
		{"maximum equal to the room", 10000, 0, 4096, 4096, 2048, 4096, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, maxreached, ok := moveLen(tc.cc, tc.moved, tc.max, tc.space, tc.lowat)
			if n != tc.n || maxreached != tc.maxreached || ok != tc.moves {
				t.Errorf("moveLen(%d, %d, %d, %d, %d) = %d, %v, %v; want %d, %v, %v",
					tc.cc, tc.moved, tc.max, tc.space, tc.lowat, n, maxreached, ok, tc.n, tc.maxreached, tc.moves)
			}
		})
	}
}

func TestSpliceEnd(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    passEnd
		err  syscall.Errno
		end  bool
	}{
		{"goes on", passEnd{}, 0, false},
		{"EOF with nothing left", passEnd{rcvDone: true}, 0, true},
		{"drain shut", passEnd{sndDone: true}, 0, true},
		{"maximum reached exactly", passEnd{maxreached: true, exact: true}, syscall.EFBIG, true},
		{"maximum inside a datagram", passEnd{maxreached: true}, 0, true},
		{"exactly the maximum, not stopped at it", passEnd{exact: true}, 0, false},
		{"an error", passEnd{err: syscall.EPIPE}, syscall.EPIPE, true},
		{"an error wins over EFBIG", passEnd{err: syscall.EMSGSIZE, maxreached: true, exact: true}, syscall.EMSGSIZE, true},
		{"an error pending on the source", passEnd{pending: true}, 0, true},
		{"everything", passEnd{err: syscall.ECONNRESET, maxreached: true, exact: true, rcvDone: true, sndDone: true, pending: true}, syscall.ECONNRESET, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err, end := spliceEnd(tc.p)
			if err != tc.err || end != tc.end {
				t.Errorf("spliceEnd(%+v) = %v, %v; want %v, %v", tc.p, err, end, tc.err, tc.end)
			}
		})
	}
}

func TestPipeWant(t *testing.T) {
	for _, tc := range []struct {
		name       string
		inPipe     int
		sized      bool
		hiwat      int
		max, moved int64
		want       int
	}{
		{"empty pipe, autotuned drain", 0, false, 64 << 10, 0, 0, pipeSize},
		{"part full", 100 << 10, false, 64 << 10, 0, 0, pipeSize - 100<<10},
		{"full", pipeSize, false, 64 << 10, 0, 0, 0},
		{"sized drain", 0, true, 64 << 10, 0, 0, 256 << 10},
		{"sized drain, part full", 200 << 10, true, 64 << 10, 0, 0, 56 << 10},
		{"sized drain, full", 300 << 10, true, 64 << 10, 0, 0, -44 << 10},
		{"sized drain larger than the pipe", 0, true, 1 << 20, 0, 0, pipeSize},
		{"maximum far", 0, false, 64 << 10, 10 << 20, 0, pipeSize},
		{"maximum near", 0, false, 64 << 10, 1000, 400, 600},
		{"maximum, some in the pipe", 100, false, 64 << 10, 1000, 400, 500},
		{"maximum in the pipe already", 600, false, 64 << 10, 1000, 400, 0},
		{"maximum and a sized drain", 0, true, 1 << 10, 1 << 20, 0, 4 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pipeWant(tc.inPipe, tc.sized, tc.hiwat, tc.max, tc.moved); got != tc.want {
				t.Errorf("pipeWant(%d, %v, %d, %d, %d) = %d, want %d", tc.inPipe, tc.sized, tc.hiwat, tc.max, tc.moved, got, tc.want)
			}
		})
	}
}

// streamBuf returns a stream sockbuf holding one mbuf per length in lens, each filled
// with bytes counting up from 0, and the bytes.
func streamBuf(t *testing.T, lens ...int) (*sockbuf, []byte) {
	t.Helper()
	var sb sockbuf
	sb.reserve(1<<20, 1)
	var all []byte
	for _, l := range lens {
		m, err := mbuf.GetCL(mbuf.DontWait, mbuf.MTData, 0)
		if err != nil {
			t.Fatal(err)
		}
		for range l {
			all = append(all, byte(len(all)))
		}
		k := copy(m.Tail(), all[len(all)-l:])
		m.Extend(k)
		sb.appendStream(m)
	}
	t.Cleanup(sb.flush)
	return &sb, all
}

func TestSockbufTake(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lens  []int
		n     int
		split bool
		k     int // bytes taken
		mbufs int // mbufs taken
	}{
		{"whole mbufs", []int{100, 200, 300}, 300, false, 300, 2},
		{"whole mbufs, split allowed", []int{100, 200, 300}, 300, true, 300, 2},
		{"straddling, no split", []int{100, 200, 300}, 250, false, 100, 1},
		{"straddling, split", []int{100, 200, 300}, 250, true, 250, 2},
		{"first straddles, no split", []int{100, 200}, 50, false, 0, 0},
		{"first straddles, split", []int{100, 200}, 50, true, 50, 1},
		{"all", []int{100, 200}, 300, false, 300, 2},
		{"more than there is", []int{100, 200}, 1000, true, 300, 2},
		{"nothing", []int{100}, 0, true, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb, all := streamBuf(t, tc.lens...)
			m, k := sb.take(tc.n, tc.split)
			defer m.FreeM()
			cnt, got := 0, []byte(nil)
			for x := m; x != nil; x = x.Next() {
				cnt++
				got = append(got, x.Data()...)
			}
			if k != tc.k || cnt != tc.mbufs || !bytes.Equal(got, all[:tc.k]) {
				t.Errorf("take(%d, %v) = %d bytes in %d mbufs (%d read); want %d in %d", tc.n, tc.split, k, cnt, len(got), tc.k, tc.mbufs)
			}
			if sb.cc != len(all)-k {
				t.Errorf("cc %d after taking %d of %d", sb.cc, k, len(all))
			}
			var rest []byte
			for x := sb.mb; x != nil; x = x.Next() {
				rest = append(rest, x.Data()...)
			}
			if !bytes.Equal(rest, all[k:]) {
				t.Errorf("the buffer holds %d bytes that are not the rest", len(rest))
			}
		})
	}
}

func TestIovecLoad(t *testing.T) {
	for _, tc := range []struct {
		name string
		lens []int
		max  int
		cnt  int
		n    int
	}{
		{"all", []int{100, 200, 300}, 1 << 20, 3, 600},
		{"empty mbufs are skipped", []int{100, 0, 300, 0}, 1 << 20, 2, 400},
		{"stops once max is in", []int{100, 200, 300}, 250, 2, 300},
		{"max at a boundary", []int{100, 200, 300}, 300, 2, 300},
		{"a window past max", []int{1000}, 10, 1, 1000},
		{"no chain", nil, 1 << 20, 0, 0},
		{"maxIov windows at the most", fill(maxIov+10, 1), 1 << 20, maxIov, maxIov},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb, all := streamBuf(t, tc.lens...)
			var v iovec
			v.load(sb.mb, tc.max)
			if v.cnt != tc.cnt || v.n != tc.n {
				t.Fatalf("load: %d windows, %d bytes; want %d, %d", v.cnt, v.n, tc.cnt, tc.n)
			}
			var got []byte
			for _, e := range v.iov[:v.cnt] {
				got = append(got, unsafeBytes(e)...)
			}
			if !bytes.Equal(got, all[:tc.n]) {
				t.Errorf("the windows hold other bytes than the chain's first %d", tc.n)
			}
		})
	}
}

func fill(n, v int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// unsafeBytes is the memory an iovec entry points at.
func unsafeBytes(e unix.Iovec) []byte { return unsafe.Slice(e.Base, e.Len) }
