package socket

import (
	"sync/atomic"
	"syscall"

	"github.com/softnet-go/softnet/internal/eintr"
	"github.com/softnet-go/softnet/mbuf"
	"golang.org/x/sys/unix"
)

// kernelTurnMax is how many bytes one turn of the kernel path moves into the drain
// before it yields: one pipe-full. A turn costs the worker its system calls rather than
// its bytes (they do not touch user space), and a turn of the kernel path is at most one
// splice into the pipe and one out of it (plus the one that finds the source empty), so
// it holds the worker about as long as a user-path turn of netq.Budget does;
// BenchmarkKernelTurn measures the latency of a small request served beside bulk flows
// and the splices per MiB with one pipe-full and with netq.Budget per turn. A flow that
// moves little is served first anyway (the sparse queue: sosplice.queue). A variable
// only for the benchmarks.
var kernelTurnMax = pipeSize

// spliceCalls counts splice(2) calls while countSplices is set, for the tests and
// benchmarks; the daemon leaves it unset, so its workers do not share a counter's cache
// line on every splice.
var (
	countSplices bool
	spliceCalls  atomic.Int64
)

// somoveKernel is somove() over splice(2): the same checks, maximum, idle timer and
// ending (sorelease) as the user path, but the bytes go from the source socket into a pipe and from
// the pipe into the drain inside the kernel. Data already in the source's receive sockbuf
// moves first, by the user path; bytes go into the drain only when its send sockbuf is
// empty, so they stay in order behind what was queued there. The pipe comes from the
// pool when there are bytes to move and goes back as soon as it is empty. so.rcv.mu and
// dst.snd.mu are held.
//
// A turn reads the source until a splice brings less than it asked for, moves that to
// the drain, and yields with its task queued again (r.again) rather than splicing once
// more to see EAGAIN: that probe would cost a system call per turn, and the next turn
// makes it anyway, finding whatever arrived meanwhile. The task must be queued: epoll is
// edge-triggered, and a short splice may have stopped because the pipe ran out of slots
// (one per page fragment) while bytes are still in the socket, which then brings no new
// EPOLLIN until more data arrive. Only a splice that returns EAGAIN lets the turn end
// without queueing itself.
func (so *Socket) somoveKernel(sp *sosplice, dst *Socket) moveResult {
	rcv, snd := &so.rcv, &dst.snd
	var r moveResult
	if rcv.mb != nil {
		r = so.somove(sp, dst)
		if r.end || rcv.mb != nil {
			return r
		}
	}
	if rcv.flags&sbBusy != 0 {
		return r // an input readv from before the splice: it queues us when done
	}
	if sp.auto {
		sp.grown.grow(so, dst) // promoted: borrow bulk buffers, once per stay
	}
	var err syscall.Errno
	maxreached := false
	moved, read := 0, 0 // bytes into the drain, and out of the source
	drained := false    // a splice from the source brought less than asked, or EAGAIN
	for {
		if stay, e := spliceChecks(so, dst); stay {
			err = e
			break
		}
		if p := sp.pipe; p != nil && p.n > 0 {
			if snd.cc > 0 || snd.flags&sbBusy != 0 {
				r.moved = true // its output runs, and sowwakeup brings us back
				break
			}
			k, e := sysSplice(p.r, dst.fd, p.n)
			if k > 0 {
				p.n -= k
				moved += k
				sp.len.Add(int64(k))
			}
			if e == unix.EAGAIN {
				break // the drain's kernel buffer is full: EPOLLOUT brings us back
			}
			if e != 0 {
				snd.flags |= sbCantMore
				if e != syscall.EPIPE {
					dst.soerr.CompareAndSwap(0, int32(e))
				}
				err = syscall.EPIPE
				break
			}
			if p.n > 0 {
				continue
			}
		}
		if sp.max > 0 && sp.len.Load() >= sp.max {
			maxreached = true
			break
		}
		if rcv.flags&sbCantMore != 0 {
			break
		}
		if moved >= kernelTurnMax || drained {
			r.again = true // yield; the next turn reads on (see above)
			break
		}
		if sp.pipe == nil {
			p, e := getPipe()
			if e != nil {
				err = errnoOf(e)
				break
			}
			sp.pipe = p
		}
		want := pipeWant(sp.pipe.n, snd.flags&sbSized != 0, snd.hiwat, sp.max, sp.len.Load())
		if want <= 0 {
			continue
		}
		k, e := sysSplice(so.fd, sp.pipe.w, want)
		switch {
		case k > 0:
			sp.pipe.n += k
			read += k
			drained = k < want
			continue
		case e == unix.EAGAIN:
			drained = true
		case e == 0:
			rcv.flags |= sbCantMore // EOF: what is in the pipe still goes
			continue
		default:
			so.soerr.CompareAndSwap(0, int32(e))
			rcv.flags |= sbCantMore
		}
		break
	}
	if sp.pipe != nil && sp.pipe.n == 0 {
		putPipe(sp.pipe)
		sp.pipe = nil
	}
	r.end = so.sorelease(sp, dst, maxreached, err)
	r.read = read
	if !r.end {
		so.kernelTurn(sp, dst, read, drained)
	}
	return r
}

// pipeWant is how many bytes a splice from the source into the pipe may ask for, with
// inPipe bytes in the pipe already. The drain's kernel send buffer is the flow-control
// point. Left to Linux's autotuning it grows to megabytes, and the pipe fills to
// pipeSize: a turn moves up to 1 MiB in two splices, as Go's io.Copy does. A drain sized
// with SetWriteBuffer (sized; spliced --sockbuf) keeps the pipe to four times its
// high-water mark hiwat, so the bytes a flow holds in the kernel stay bounded. With a
// maximum (max > 0; moved so far), the pipe never holds more than is left to move. A
// result of 0 or less asks for nothing.
func pipeWant(inPipe int, sized bool, hiwat int, max, moved int64) int {
	want := pipeSize - inPipe
	if sized {
		want = min(pipeSize, 4*hiwat) - inPipe
	}
	if max > 0 {
		want = min(want, int(max-moved)-inPipe)
	}
	return want
}

// sysSplice is splice(2) of up to n bytes, non-blocking, EINTR retried.
func sysSplice(from, to int, n int) (int, syscall.Errno) {
	k, err := eintr.Retry(func() (int64, error) {
		if countSplices {
			spliceCalls.Add(1)
		}
		return unix.Splice(from, nil, to, nil, n, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
	})
	if err != nil {
		return 0, errnoOf(err)
	}
	return int(k), 0
}

// pipeBack puts the bytes left in the splice's pipe into the source's receive sockbuf
// (which the kernel path keeps empty), so the owner reads them first, and gives the
// pipe back. so.rcv.mu is held.
func (so *Socket) pipeBack(sp *sosplice) {
	p := sp.pipe
	sp.pipe = nil
	for p.n > 0 {
		m, k, err := mbuf.ReadFd(p.r, p.n, mbuf.DontWait)
		if err != nil {
			m, k, err = readHeap(p.r, p.n)
		}
		if err != nil {
			// No memory at all: the bytes are lost, and the owner is told so.
			so.soerr.CompareAndSwap(0, int32(syscall.ENOBUFS))
			p.close()
			return
		}
		p.n -= k
		so.rcv.appendStream(m)
	}
	putPipe(p)
}

// readHeap reads n bytes from fd into Go memory attached to an mbuf (ExtAdd): the way
// back for pipe bytes when no cluster can be had.
func readHeap(fd, n int) (*mbuf.Mbuf, int, error) {
	m, err := mbuf.Get(mbuf.DontWait, mbuf.MTData)
	if err != nil {
		return nil, 0, err
	}
	buf := make([]byte, n)
	k, err := sysRead(fd, buf)
	if err != nil || k == 0 {
		m.Free()
		if err == nil {
			err = syscall.EIO
		}
		return nil, 0, err
	}
	if err := m.ExtAdd(buf[:k], nil, 0, mbuf.DontWait); err != nil {
		m.Free()
		return nil, 0, err
	}
	return m, k, nil
}
