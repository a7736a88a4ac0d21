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
// again, from which the bytes to give back follow (the budget's bulk size less each). It
// lives in the source's splice record, guarded by the source's rcv.mu.
type bufGrowth struct {
	budget         *BufferBudget
	tried          bool // grow ran on this stay on the kernel path
	rcvWas, sndWas int  // the configured SO_RCVBUF of the source, SO_SNDBUF of the drain; 0: not raised
}

// grow asks the budget for bulk buffers for a splice that has just been promoted: the
// source's SO_RCVBUF and the drain's SO_SNDBUF, each if it was sized (SetReadBuffer,
// SetWriteBuffer: the sockbuf's high-water mark is the size given) and is smaller than
// the bulk size. It runs once per stay on the kernel path. so.rcv.mu and dst.snd.mu are
// held, so neither fd can be closed meanwhile.
func (g *bufGrowth) grow(so, dst *Socket) {
	if g.budget == nil || g.tried {
		return
	}
	g.tried = true
	if so.rcv.flags&sbSized != 0 {
		g.rcvWas = g.raise(so.fd, unix.SO_RCVBUF, so.rcv.hiwat)
	}
	if dst.snd.flags&sbSized != 0 {
		g.sndWas = g.raise(dst.fd, unix.SO_SNDBUF, dst.snd.hiwat)
	}
}

// raise sets buffer opt of fd, configured to cur bytes, to the bulk size if the budget
// lends the difference. It returns cur if it did, else 0.
func (g *bufGrowth) raise(fd, opt, cur int) int {
	bulk := g.budget.bulk
	if cur <= 0 || cur >= bulk || !g.budget.take(int64(bulk-cur)) {
		return 0
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, bulk) != nil {
		g.budget.give(int64(bulk - cur))
		return 0
	}
	return cur
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
	for _, was := range [2]int{g.rcvWas, g.sndWas} {
		if was > 0 {
			g.budget.give(int64(g.budget.bulk - was))
		}
	}
	g.rcvWas, g.sndWas = 0, 0
	g.tried = false
}
