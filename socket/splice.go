package socket

import (
	"context"
	"net"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/softnet-go/softnet/netq"
)

// A SpliceMode chooses how a splice moves data.
type SpliceMode int

const (
	// SpliceAuto starts every flow on the user path (SpliceUser) and moves a TCP flow to
	// the kernel path (SpliceKernel) once it proves to be bulk, and back when it goes
	// quiet, as HAProxy's "option splice-auto" does with its streamer flag.
	//
	// Why: a small request costs fewer system calls on the user path (one readv, one
	// writev) than on the kernel path (a splice into the pipe, one out of it, and the
	// splice that finds the socket empty), while a bulk flow costs less CPU per byte on
	// the kernel path, whose bytes never enter user space.
	//
	// Promotion: autoPromote (3) input reads in a row that fill the input budget
	// (netq.Budget) or the receive sockbuf, with no read between them of less; HAProxy
	// calls a buffer filled in one read three times in a row a fast streamer. Demotion:
	// autoDemote (3) kernel turns in a row that each took from the source more than
	// nothing but less than half of netq.Budget, leaving the pipe empty (HAProxy: three
	// reads of at most half a buffer). A turn that moved nothing from the source, or
	// one that left bytes in the pipe (the drain is the bottleneck) keeps the kernel
	// path. BenchmarkAuto measures both ends: request/response flows stay on the user
	// path, bulk flows reach the kernel path's bytes per CPU-second.
	//
	// Switching keeps byte order: the kernel path moves what the user path left in the
	// source's receive sockbuf first, and splices into the drain only when the drain's
	// send sockbuf is empty; the flow goes back to the user path only when the pipe is
	// empty. With SpliceOptions.Budget, a promoted flow also gets larger kernel socket
	// buffers while it is on the kernel path. A UDP splice is always SpliceUser.
	SpliceAuto SpliceMode = iota
	// SpliceUser moves mbufs from the source's receive sockbuf to the drain's send sockbuf
	// without copying them (somove); the worker reads the source into clusters and writes
	// the drain from them.
	SpliceUser
	// SpliceKernel drives the same state machine over splice(2) through a pipe from a
	// pool, so the bytes never enter user space. TCP only.
	SpliceKernel
)

func (m SpliceMode) String() string {
	switch m {
	case SpliceAuto:
		return "auto"
	case SpliceUser:
		return "user"
	case SpliceKernel:
		return "kernel"
	}
	return "SpliceMode(" + strconv.Itoa(int(m)) + ")"
}

// SpliceOptions are the arguments of Splice: OpenBSD's struct splice without the fd.
type SpliceOptions struct {
	// Max is sp_max: the most bytes to move; 0 means no limit. Exactly Max bytes moved
	// ends the splice with EFBIG, and what follows stays readable on the source.
	Max int64
	// Idle is sp_idle: the splice ends with ETIMEDOUT when no pass of the splice (a
	// move, or a wake-up of either end) happens for this long; 0 means never.
	Idle time.Duration
	// Mode chooses the user-space or the kernel path.
	Mode SpliceMode
	// OnEnd, if set, is called once when the splice ends, with the reason WaitSplice
	// would return, which it takes (so WaitSplice then finds none). It runs on the
	// source's worker, or in the goroutine that called Unsplice or Close, and must not
	// block: it is how a relay learns of the end without a goroutine per connection.
	// (An addition to the OpenBSD contract; the fields above are the contract's.)
	OnEnd func(err error)
	// Budget, if set, lets a SpliceAuto flow that is promoted to the kernel path raise
	// the source's SO_RCVBUF and the drain's SO_SNDBUF to the budget's bulk size while
	// it stays there, if the budget has room (see BufferBudget). nil: no growth.
	Budget *BufferBudget
}

// sosplice is OpenBSD's struct sosplice: the splice state of a socket, made on its first
// Splice and kept for its life. A socket may be the source of one splice (drain set) and
// the drain of another (soback set) at once, or both of one (a splice to itself). The
// source's fields are guarded by the source's rcv.mu, soback by the drain's snd.mu.
type sosplice struct {
	so     *Socket
	drain  *Socket      // ssp_socket: set on the source while spliced
	soback *Socket      // ssp_soback: set on the drain while spliced
	len    atomic.Int64 // ssp_len: bytes moved by the latest splice
	max    int64        // ssp_max
	idle   time.Duration
	kernel bool // on the kernel path now (SpliceKernel, or SpliceAuto promoted)
	auto   bool // SpliceAuto on TCP: kernel may change (splice_auto.go)
	large  int  // auto, user path: input reads in a row that filled the budget or the sockbuf
	small  int  // auto, kernel path: turns in a row that moved little from the source
	onEnd  func(error)
	// lastTurn is what the latest turn of the splice task moved (bytes into the drain
	// or out of the source, the larger): queue puts a flow that moved less than
	// sparseQuantum on the worker's sparse queue.
	lastTurn atomic.Int64
	grown    bufGrowth  // the buffers a BufferBudget lent this splice (budget.go)
	task     netq.Task  // ssp_task: sotask, on the source's worker
	timer    netq.Timer // ssp_idleto: soidle
	// active is when the latest pass ran (since clockBase), guarded by so.rcv.mu. A pass
	// stamps it instead of re-arming the idle timer, which takes the worker's lock;
	// the timer, when it fires, arms itself again for what is left of the idle time.
	active time.Duration
	memw   atomic.Bool
	pipe   *pipe // the kernel path's pipe, held only while bytes are in it
}

// spliceRecord returns so's splice record, making it on first use.
func (so *Socket) spliceRecord() *sosplice {
	if sp := so.sp.Load(); sp != nil {
		return sp
	}
	sp := &sosplice{so: so}
	sp.task.Init(sp.run)
	so.w.InitTimer(&sp.timer, sp.idleFired)
	if !so.sp.CompareAndSwap(nil, sp) {
		return so.sp.Load()
	}
	return sp
}

// queue is the task_add of sorwakeup/sowwakeup: it queues the splice task on the
// source's worker, on the sparse queue (netq.Worker.AddSparse) if its latest turn moved
// less than sparseQuantum, else behind the bulk passes (Add).
func (sp *sosplice) queue() {
	if sp == nil {
		return
	}
	if sp.lastTurn.Load() < sparseQuantum {
		sp.so.w.AddSparse(&sp.task)
	} else {
		sp.so.w.Add(&sp.task)
	}
}

// Splice is sosplice(): it splices src to dst, so that the worker moves what src
// receives to dst's send side until EOF, Max, the Idle timeout or an error, as OpenBSD's
// SO_SPLICE does. Setup errors are syscall.Errno values, checked in the order of OpenBSD
// rev 1.385: EPROTONOSUPPORT (kernel mode with a UDP source), EINVAL (negative Max or
// Idle), EBADF (either socket closed), EPROTONOSUPPORT (TCP to UDP or UDP to TCP, or
// kernel mode with a UDP drain), EOPNOTSUPP (a listening socket), ENOTCONN (a TCP source,
// or any drain, neither connected nor connecting), EBUSY (src already spliced, or dst
// already has a source). A nil dst unsplices, as fd −1 does.
//
// Data already queued in src moves at once. While spliced, src is never readable: Read
// blocks and gets no data. The splice task runs on src's worker, queued by src's input
// (sorwakeup) and by dst's output making room (sowwakeup); put both sockets on one worker
// (Dialer.Worker) so it never crosses workers. The end is reported by WaitSplice (and
// OnEnd): nil for EOF (not passed on: shut dst down yourself) or Unsplice, EFBIG,
// ETIMEDOUT, EPIPE, EMSGSIZE, or the source's or drain's error. A socket may be spliced
// to itself (an echo); the two directions of a relay are two splices.
func (src *Socket) Splice(dst *Socket, opt SpliceOptions) error {
	pr := src.proto()
	if opt.Mode == SpliceKernel && pr.flags&prKernelSplice == 0 {
		return syscall.EPROTONOSUPPORT
	}
	if opt.Mode < SpliceAuto || opt.Mode > SpliceKernel {
		return syscall.EINVAL
	}
	if opt.Max < 0 || opt.Idle < 0 {
		return syscall.EINVAL
	}
	if dst == nil {
		return src.Unsplice()
	}
	if src.state.Load()&ssClosed != 0 || dst.state.Load()&ssClosed != 0 {
		return syscall.EBADF
	}
	if dst.proto() != pr { // and so a kernel splice has a drain that can take one
		return syscall.EPROTONOSUPPORT
	}
	ss, ds := src.state.Load(), dst.state.Load()
	if ss&ssListening != 0 || ds&ssListening != 0 {
		return syscall.EOPNOTSUPP
	}
	if pr.flags&prConnRequired != 0 && ss&(ssConnected|ssConnecting) == 0 {
		return syscall.ENOTCONN
	}
	if ds&(ssConnected|ssConnecting) == 0 {
		return syscall.ENOTCONN
	}
	sp, dsp := src.spliceRecord(), dst.spliceRecord()

	src.rcv.mu.Lock()
	dst.snd.mu.Lock()
	if src.rcv.flags&sbClosed != 0 || dst.snd.flags&sbClosed != 0 {
		dst.snd.mu.Unlock()
		src.rcv.mu.Unlock()
		return syscall.EBADF
	}
	if sp.drain != nil || dsp.soback != nil {
		dst.snd.mu.Unlock()
		src.rcv.mu.Unlock()
		return syscall.EBUSY
	}
	sp.drain = dst
	dsp.soback = src
	sp.len.Store(0)
	sp.max = opt.Max
	sp.idle = opt.Idle
	sp.kernel = opt.Mode == SpliceKernel
	sp.auto = opt.Mode == SpliceAuto && pr.flags&prKernelSplice != 0
	sp.large, sp.small = 0, 0
	sp.lastTurn.Store(0)
	sp.grown = bufGrowth{budget: opt.Budget}
	sp.onEnd = opt.OnEnd
	src.rcv.flags |= sbSplice
	src.rcv.flags &^= sbWantIO
	dst.snd.flags |= sbSplice
	if sp.idle > 0 {
		sp.active = time.Since(clockBase)
		sp.timer.Reset(sp.idle)
	}
	dst.snd.mu.Unlock()
	src.rcv.mu.Unlock()

	sp.queue()             // move what is queued at once
	src.w.Add(&src.inTask) // and read what the kernel holds
	return nil
}

// Unsplice is sosplice() with fd −1: it ends src's splice with no error. Data not yet
// moved stays readable on src, ahead of what arrives later (bytes in the kernel path's
// pipe included). It returns EPROTO if src is not spliced.
func (src *Socket) Unsplice() error {
	src.rcv.mu.Lock()
	sp := src.sp.Load()
	if sp == nil || sp.drain == nil {
		src.rcv.mu.Unlock()
		return syscall.EPROTO
	}
	dst := sp.drain
	dst.snd.mu.Lock()
	fn := src.sounsplice(sp, dst)
	dst.snd.mu.Unlock()
	src.rcv.mu.Unlock()
	src.afterUnsplice(fn, dst)
	return nil
}

// SpliceLen is getsockopt(SO_SPLICE): the bytes moved by src's latest splice (UDP:
// payload bytes), counted as they reach the drain's send side. It may be read while the
// splice runs, survives its end, and is reset only by the next successful Splice.
func (src *Socket) SpliceLen() int64 {
	if sp := src.sp.Load(); sp != nil {
		return sp.len.Load()
	}
	return 0
}

// WaitSplice blocks until src's splice has ended and returns the reason, clearing it,
// as select and SO_ERROR do: nil for EOF or Unsplice, EFBIG (exactly Max moved),
// ETIMEDOUT (idle), EPIPE (the drain cannot send), EMSGSIZE (a UDP datagram larger than
// the drain's send buffer), or the source's or drain's own error (ECONNRESET...). With no
// splice running it returns the pending error, or nil, at once. It returns ctx.Err() if
// ctx ends first, and net.ErrClosed if src is closed.
func (src *Socket) WaitSplice(ctx context.Context) error {
	sb := &src.rcv
	sb.mu.Lock()
	for {
		if sb.flags&sbClosed != 0 {
			sb.mu.Unlock()
			return net.ErrClosed
		}
		if sb.flags&sbSplice == 0 {
			e := src.takeError()
			sb.mu.Unlock()
			if e != 0 {
				return e
			}
			return nil
		}
		if !sb.waitUntil(ctx.Done()) {
			sb.mu.Unlock()
			return ctx.Err()
		}
	}
}

// sounsplice dissolves the splice of so (the source) into dst: SB_SPLICE off, the
// records unlinked, the idle timer stopped, bytes left in the kernel path's pipe put
// back into so's receive sockbuf. so.rcv.mu and dst.snd.mu are held; the caller then
// calls afterUnsplice with what this returns.
func (so *Socket) sounsplice(sp *sosplice, dst *Socket) func(error) {
	so.rcv.flags &^= sbSplice
	dst.snd.flags &^= sbSplice
	sp.drain = nil
	if dsp := dst.sp.Load(); dsp != nil {
		dsp.soback = nil
	}
	sp.timer.Stop()
	so.w.Del(&sp.task)
	if sp.pipe != nil {
		so.pipeBack(sp)
	}
	sp.grown.giveBack(so, dst)
	fn := sp.onEnd
	sp.onEnd = nil
	so.rcv.wakeup() // readers and WaitSplice
	dst.snd.wakeup()
	return fn
}

// afterUnsplice runs, without locks, what follows an unsplice: input goes on for the
// owner, the drain gets its output, and OnEnd learns the reason.
func (so *Socket) afterUnsplice(fn func(error), dst *Socket) {
	so.w.Add(&so.inTask)
	dst.w.Add(&dst.outTask)
	if fn != nil {
		var err error
		so.rcv.mu.Lock()
		if e := so.takeError(); e != 0 {
			err = e
		}
		so.rcv.mu.Unlock()
		fn(err)
	}
}

// unspliceAll dissolves the splices so is part of, as source and as drain, without
// setting an error on the other socket (soclose).
func (so *Socket) unspliceAll() {
	if so.sp.Load() == nil {
		return
	}
	so.Unsplice()
	for {
		so.snd.mu.Lock()
		sp := so.sp.Load()
		src := sp.soback
		so.snd.mu.Unlock()
		if src == nil {
			return
		}
		src.rcv.mu.Lock()
		so.snd.mu.Lock()
		ssp := src.sp.Load()
		if ssp.drain != so { // it changed meanwhile: look again
			so.snd.mu.Unlock()
			src.rcv.mu.Unlock()
			continue
		}
		fn := src.sounsplice(ssp, so)
		so.snd.mu.Unlock()
		src.rcv.mu.Unlock()
		src.afterUnsplice(fn, so)
		return
	}
}

// release frees what the splice record holds when its socket is destroyed.
func (sp *sosplice) release(so *Socket) {
	so.rcv.mu.Lock()
	sp.timer.Stop()
	so.w.Del(&sp.task)
	if sp.pipe != nil {
		sp.pipe.close()
		sp.pipe = nil
	}
	sp.grown.forget()
	so.rcv.mu.Unlock()
}

// clockBase anchors sosplice.active: a time with a monotonic reading.
var clockBase = time.Now()

// idleFired is soidle(): the idle time passed without a pass of the splice: ETIMEDOUT.
// If a pass ran since the timer was armed, the idle time counts from that pass: the
// timer is armed again for the rest.
func (sp *sosplice) idleFired() {
	so := sp.so
	so.rcv.mu.Lock()
	dst := sp.drain
	if dst == nil {
		so.rcv.mu.Unlock()
		return
	}
	if quiet := so.w.Now().Sub(clockBase) - sp.active; quiet < sp.idle {
		sp.timer.Reset(sp.idle - quiet)
		so.rcv.mu.Unlock()
		return
	}
	dst.snd.mu.Lock()
	idled := so.soerr.CompareAndSwap(0, int32(syscall.ETIMEDOUT))
	fn := so.sounsplice(sp, dst)
	dst.snd.mu.Unlock()
	so.rcv.mu.Unlock()
	if idled && fn != nil {
		end := fn
		fn = func(err error) {
			if err == syscall.ETIMEDOUT {
				err = ErrIdle
			}
			end(err)
		}
	}
	so.afterUnsplice(fn, dst)
}

// ErrIdle is the reason OnEnd gets for a splice that ended by its Idle time: it is
// ETIMEDOUT (errors.Is), as sp_idle's is, but not the same error as a connection's own
// ETIMEDOUT (TCP keepalive or retransmission giving up on a vanished peer), so that a
// relay can tell a quiet direction, which may end alone, from a dead peer, which ends
// the flow. WaitSplice reports both as ETIMEDOUT.
var ErrIdle error = idleError{}

type idleError struct{}

func (idleError) Error() string        { return "splice idle timeout" }
func (idleError) Timeout() bool        { return true }
func (idleError) Is(target error) bool { return target == syscall.ETIMEDOUT }

// run is sotask(): the splice task, on the source's worker.
func (sp *sosplice) run() {
	so := sp.so
	so.rcv.mu.Lock()
	dst := sp.drain
	if dst == nil || so.state.Load()&ssDestroyed != 0 {
		so.rcv.mu.Unlock()
		return
	}
	dst.snd.mu.Lock()
	var r moveResult
	len0 := sp.len.Load()
	if sp.kernel {
		r = so.somoveKernel(sp, dst)
	} else {
		r = so.somove(sp, dst)
	}
	sp.lastTurn.Store(max(sp.len.Load()-len0, int64(r.read)))
	var fn func(error)
	if r.end {
		fn = so.sounsplice(sp, dst)
	} else if sp.idle > 0 {
		sp.active = so.w.Now().Sub(clockBase)
	}
	so.resumeInputLocked()
	dst.snd.mu.Unlock()
	so.rcv.mu.Unlock()
	if r.moved {
		dst.kick()
	}
	if r.again {
		sp.queue()
	}
	if r.end {
		so.afterUnsplice(fn, dst)
	}
}

// moveResult is what one pass of somove found.
type moveResult struct {
	moved bool // something went to the drain's send sockbuf: run its output
	again bool // more to do after a yield (the budget ran out)
	end   bool // the splice is over (the reason, if any, is in the source's so_error)
	read  int  // kernel path: bytes spliced from the source into the pipe
}
