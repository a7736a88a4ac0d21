package socket

import (
	"errors"
	"io"
	"sync/atomic"
	"syscall"

	"github.com/softnet-go/softnet/mbuf"
	"github.com/softnet-go/softnet/netq"
	"golang.org/x/sys/unix"
)

// input is the socket's input routine (soreceive's other half: the protocol's input
// appending to so_rcv). It runs on the worker, from the fd's readiness or the input task,
// and hands over to the protocol's (protosw.input) unless the socket is gone or listens.
func (so *Socket) input() {
	if so.state.Load()&(ssDestroyed|ssDoomed|ssListening) != 0 {
		return
	}
	so.proto().input(so)
}

// tcpInput is TCP's input routine (tcp_input appending to so_rcv): it reads the kernel
// socket into clusters from the packet zone (mbuf.ReadFd: one readv), bounded by the
// space in the receive sockbuf, netq.Budget and the memory Limit, and calls sorwakeup.
// It stops while the buffer is full (so TCP's window closes and back-pressure reaches
// the peer) and is queued again when a reader or the splice makes room. At the memory
// Limit it waits for memory (waitMemory) rather than spinning or dropping.
//
// Its first steps are udpInput's too (nothing while shut or busy; a reader waiting on
// the kernel reads for itself; a full buffer stalls input), with the kernel splice path
// between them; and a stream's "nothing queued" is cc == 0 where a datagram socket's is
// no record (an empty datagram is one).
func (so *Socket) tcpInput() {
	sb := &so.rcv
	sb.mu.Lock()
	if sb.flags&(sbCantMore|sbBusy) != 0 {
		sb.mu.Unlock()
		return
	}
	if sb.flags&sbSplice == 0 && sb.flags&sbWantIO != 0 && sb.cc == 0 {
		// A reader waits on the kernel: let it read into its own buffer.
		sb.flags &^= sbWantIO
		sb.wakeup()
		sb.mu.Unlock()
		return
	}
	if sp := so.sp.Load(); sb.flags&sbSplice != 0 && sp != nil && sp.kernel {
		// The kernel path moves the bytes with splice(2); they never come up here.
		sp.queue()
		sb.mu.Unlock()
		return
	}
	space := sb.space()
	if space <= 0 {
		sb.flags |= sbStalled
		sb.mu.Unlock()
		return
	}
	limit := min(space, netq.Budget)
	if sp := so.sp.Load(); sb.flags&sbSplice != 0 && sp != nil && sp.max > 0 {
		// Read no more than the splice may move (the rest would only wait here).
		if left := int(sp.max-sp.len.Load()) - sb.cc; left > 0 {
			limit = min(limit, left)
		}
	}
	frag := inputFragment() // stress.SetInputFragment (MBUF_STRESS_TEST); 0: off
	if frag != 0 {
		limit = fragReadLimit(frag, limit)
	}
	sb.flags |= sbBusy
	reserve := so.takeReserve()
	sb.mu.Unlock()

	m, n, err := readInto(so.fd, reserve, limit)
	if n == 0 && limit > mbuf.MCLBytes && errors.Is(err, syscall.ENOBUFS) {
		limit = mbuf.MCLBytes
		m, n, err = mbuf.ReadFd(so.fd, limit, mbuf.DontWait) // what little memory there is
	}
	if frag != 0 && n > 0 {
		m = fragmentInput(frag, m)
	}

	sb.mu.Lock()
	sb.flags &^= sbBusy
	if n > 0 {
		sb.appendStream(m)
	} else if m != nil {
		m.FreeM()
	}
	if sp := so.sp.Load(); sb.flags&sbSplice != 0 && sp != nil {
		sp.inputRead(sb, n) // SpliceAuto: a bulk flow takes the kernel path
	}
	switch {
	case err == nil:
		if n == limit || sb.flags&sbRdHup != 0 {
			so.w.Add(&so.inTask) // there may be more (or the EOF): yield, then go on
		}
	case err == unix.EAGAIN:
	case err == io.EOF:
		sb.flags |= sbCantMore // socantrcvmore
	case err == errRetry:
		so.w.Add(&so.inTask)
	case errors.Is(err, syscall.ENOBUFS):
		if n == 0 {
			so.waitMemory()
		} else {
			so.w.Add(&so.inTask)
		}
	default:
		e := errnoOf(err)
		if e == 0 {
			e = syscall.EIO
		}
		so.soerr.CompareAndSwap(0, int32(e))
		sb.flags |= sbCantMore
		so.snd.mu.Lock()
		so.snd.flags |= sbCantMore
		so.sowwakeup()
		so.snd.mu.Unlock()
	}
	spliced := sb.flags&sbSplice != 0
	so.sorwakeup()
	sb.mu.Unlock()
	if spliced {
		// Move what was just read at once, while it is in the cache, rather than in a
		// later iteration: the clusters go out and come back hot.
		if sp := so.sp.Load(); sp != nil && sp.so.w.Del(&sp.task) {
			sp.run()
		}
	}
}

// A read of bigRead bytes or more goes into one cluster of bigCluster bytes first: one
// iovec instead of sixteen page clusters costs the kernel less per byte.
const (
	bigRead    = 32 << 10
	bigCluster = mbuf.MJum64Bytes
	bigKeep    = 16 << 10 // a read shorter than this is copied out of the big cluster
)

// copyChain copies b into a new chain of storage that fits it (m_getm2, then the copy).
func copyChain(b []byte) (*mbuf.Mbuf, error) {
	m, err := mbuf.GetM(nil, len(b), mbuf.DontWait, mbuf.MTData, mbuf.MPktHdr)
	if err != nil {
		return nil, err
	}
	m.PktHdr().Len = len(b)
	for x := m; x != nil && len(b) > 0; x = x.Next() {
		k := copy(x.Tail(), b)
		x.Extend(k)
		b = b[k:]
	}
	return m, nil
}

// errRetry tells input to run again: readInto got bytes and then an error or EOF that
// the next pass will see.
var errRetry = errors.New("socket: retry input")

// readInto reads up to limit bytes from fd: into reserve first (a cluster a memory wait
// won), then into fresh clusters with mbuf.ReadFd.
func readInto(fd int, reserve *mbuf.Mbuf, limit int) (*mbuf.Mbuf, int, error) {
	big := false
	if reserve == nil && limit >= bigRead {
		if m, err := mbuf.GetJCL(mbuf.DontWait, mbuf.MTData, mbuf.MPktHdr, bigCluster); err == nil {
			reserve, big = m, true
		}
	}
	if reserve == nil {
		return mbuf.ReadFd(fd, limit, mbuf.DontWait)
	}
	t := reserve.Tail()
	if len(t) > limit {
		t = t[:limit]
	}
	n, err := sysRead(fd, t)
	if n == 0 {
		if err == nil {
			err = io.EOF
		}
		reserve.FreeM()
		return nil, 0, err
	}
	reserve.Extend(n)
	if big && n < bigKeep {
		// A few bytes must not pin a 64 KiB cluster (the sockbuf counts bytes): copy
		// them into storage of their size.
		if c, cerr := copyChain(reserve.Data()); cerr == nil {
			reserve.FreeM()
			reserve = c
		}
	}
	if err != nil || n < len(t) || n == limit {
		return reserve, n, err
	}
	m, n2, err := mbuf.ReadFd(fd, limit-n, mbuf.DontWait)
	if m != nil {
		reserve.Link(m)
	}
	if err != nil && err != unix.EAGAIN {
		err = errRetry // EOF, an error or no memory: these bytes first, the rest next pass
	}
	return reserve, n + n2, err
}

// memWaits counts input's waits for memory (for tests and statistics).
var memWaits atomic.Int64

// takeReserve returns the cluster a memory wait won, if any.
func (so *Socket) takeReserve() *mbuf.Mbuf {
	x := so.x.Load()
	if x == nil {
		return nil
	}
	x.mu.Lock()
	m := x.reserve
	x.reserve = nil
	x.mu.Unlock()
	return m
}

// waitMemory makes input wait for memory at the Limit: a short-lived goroutine allocates
// one cluster with mbuf.Wait (woken by uma when any zone under the Limit gives memory
// back), keeps it for the next TCP input (a UDP socket frees it at once), and queues the
// input task. Only one runs per socket; Close cancels it. so.rcv.mu is held.
func (so *Socket) waitMemory() {
	if so.state.Load()&ssClosed != 0 || so.state.Or(ssMemWait)&ssMemWait != 0 {
		return
	}
	memWaits.Add(1)
	ctx := so.ctx()
	go func() {
		m, err := mbuf.GetCL(mbuf.Wait(ctx), mbuf.MTData, mbuf.MPktHdr)
		x := so.extra()
		x.mu.Lock()
		if err == nil {
			// Only an input that reads into a reserve keeps it (protosw.reserve). A
			// reserve still unused is kept, not overwritten (which would leak it).
			if so.state.Load()&ssClosed != 0 || x.reserve != nil || !so.proto().reserve {
				m.FreeM()
			} else {
				x.reserve = m
			}
		}
		x.mu.Unlock()
		so.state.And(^uint32(ssMemWait))
		so.w.Add(&so.inTask)
	}()
}
