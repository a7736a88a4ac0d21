package socket

import (
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// DefaultBulkBuffer is the kernel buffer size a BufferBudget lends a bulk flow when
// NewBufferBudget is given none: 4 MiB, which BenchmarkBudget finds recovers the kernel
// path's bytes per CPU-second with 256 KiB configured buffers (the autotuned maximum
// of the default tcp_wmem is 4 MiB too).
const DefaultBulkBuffer = 4 << 20

// A BufferBudget bounds the extra kernel socket memory that bulk flows may take. A
// daemon that sizes every socket's kernel buffers small (SetReadBuffer, SetWriteBuffer),
// so that a flood of stalled flows cannot park gigabytes in the kernel, pays for it in
// throughput: a bulk flow on the kernel path moves fewer bytes per system call through
// small buffers. A BufferBudget shared by the daemon's splices (SpliceOptions.Budget)
// lends larger buffers to the flows that prove to be bulk: when a SpliceAuto splice is
// promoted to the kernel path it raises the source's SO_RCVBUF and the drain's
// SO_SNDBUF to the budget's bulk size, if the budget has room for the difference, and
// sets the configured sizes again — and gives the bytes back — when it returns to the
// user path or ends (EOF, error, Max, Idle, Unsplice, or either socket's Close). Under
// pressure (the budget spent) flows keep their configured buffers.
//
// Only buffers that were sized (SetReadBuffer for the source, SetWriteBuffer for the
// drain) are raised: setting SO_RCVBUF or SO_SNDBUF turns Linux's autotuning off for good,
// so a buffer the kernel tunes is left alone. Sizes are counted as passed to setsockopt;
// Linux doubles them for its bookkeeping, so the kernel memory lent is up to twice Used.
// A BufferBudget is safe for concurrent use.
type BufferBudget struct {
	limit int64
	bulk  int
	used  atomic.Int64
	lent  atomic.Int64 // buffers lent now
}

// NewBufferBudget returns a budget of limit bytes beyond the configured buffer sizes,
// lending buffers of bulk bytes (DefaultBulkBuffer if bulk <= 0).
func NewBufferBudget(limit int64, bulk int) *BufferBudget {
	if bulk <= 0 {
		bulk = DefaultBulkBuffer
	}
	return &BufferBudget{limit: limit, bulk: bulk}
}

// Limit returns the budget's limit in bytes.
func (b *BufferBudget) Limit() int64 { return b.limit }

// Bulk returns the size of the buffers the budget lends.
func (b *BufferBudget) Bulk() int { return b.bulk }

// Used returns the bytes lent now, beyond the configured sizes.
func (b *BufferBudget) Used() int64 { return b.used.Load() }

// Lent returns how many socket buffers are raised now.
func (b *BufferBudget) Lent() int64 { return b.lent.Load() }

// take reserves n bytes if the budget has room.
func (b *BufferBudget) take(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			b.lent.Add(1)
			return true
		}
	}
}

// give returns n bytes taken by take.
func (b *BufferBudget) give(n int64) {
	b.used.Add(-n)
	b.lent.Add(-1)
}

// bufGrowth is what a splice borrowed from its BufferBudget: the configured sizes to set
// again and the bytes to give back. It lives in the source's splice record, guarded by
// the source's rcv.mu.
type bufGrowth struct {
	budget         *BufferBudget
	rcvSized       bool  // the source's SO_RCVBUF was sized when the splice began
	tried          bool  // grow ran on this stay on the kernel path
	rcvWas, sndWas int   // the configured SO_RCVBUF of the source, SO_SNDBUF of the drain; 0: not raised
	rcvOwed        int64 // bytes taken from the budget for each
	sndOwed        int64
}

// grow asks the budget for bulk buffers for a splice that has just been promoted: the
// source's SO_RCVBUF and the drain's SO_SNDBUF, each if it was sized and is smaller
// than the bulk size. It runs once per stay on the kernel path. so.rcv.mu and
// dst.snd.mu are held, so neither fd can be closed meanwhile.
func (g *bufGrowth) grow(so, dst *Socket) {
	if g.budget == nil || g.tried {
		return
	}
	g.tried = true
	bulk := g.budget.bulk
	if g.rcvSized {
		if cur := sockBuf(so.fd, unix.SO_RCVBUF); cur > 0 && cur < bulk && g.budget.take(int64(bulk-cur)) {
			if unix.SetsockoptInt(so.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, bulk) == nil {
				g.rcvWas, g.rcvOwed = cur, int64(bulk-cur)
			} else {
				g.budget.give(int64(bulk - cur))
			}
		}
	}
	if dst.snd.flags&sbSized != 0 {
		if cur := sockBuf(dst.fd, unix.SO_SNDBUF); cur > 0 && cur < bulk && g.budget.take(int64(bulk-cur)) {
			if unix.SetsockoptInt(dst.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, bulk) == nil {
				g.sndWas, g.sndOwed = cur, int64(bulk-cur)
			} else {
				g.budget.give(int64(bulk - cur))
			}
		}
	}
}

// giveBack sets the configured sizes again and returns the bytes to the budget, when
// the splice leaves the kernel path or ends. so.rcv.mu and dst.snd.mu are held and both
// fds are open.
func (g *bufGrowth) giveBack(so, dst *Socket) {
	if g.rcvWas > 0 {
		unix.SetsockoptInt(so.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, g.rcvWas)
	}
	if g.sndWas > 0 {
		unix.SetsockoptInt(dst.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, g.sndWas)
	}
	g.forget()
}

// forget returns the bytes to the budget without touching the sockets (their fds may be
// closed: the socket is being destroyed).
func (g *bufGrowth) forget() {
	if g.rcvOwed > 0 {
		g.budget.give(g.rcvOwed)
	}
	if g.sndOwed > 0 {
		g.budget.give(g.sndOwed)
	}
	g.rcvWas, g.sndWas, g.rcvOwed, g.sndOwed = 0, 0, 0, 0
	g.tried = false
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

// rcvSized reports whether the kernel receive buffer of so was sized (SetReadBuffer)
// rather than left to autotuning. Splice calls it before it takes the sockbufs' locks.
func (so *Socket) rcvSized() bool {
	so.rcv.mu.Lock()
	defer so.rcv.mu.Unlock()
	return so.rcv.flags&sbSized != 0
}
