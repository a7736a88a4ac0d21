package netq

import (
	"errors"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Budget is how many bytes a handler or task should move for one flow in one turn. A flow
// with more to do moves Budget bytes, re-Adds its own task (which goes to the tail of the
// queue, to run in the next loop iteration) and returns, so that one hot flow cannot
// starve the other flows, the timers or fd events of its worker, as a busy interface
// starved NetBSD's softints. 64 KiB is one large cluster, or one
// TSO/GRO segment: enough to amortize a system call, small enough that a worker with
// hundreds of busy flows still gets round to each within milliseconds.
const Budget = 64 << 10

// A Worker is one event loop: a goroutine with its own epoll instance, a task queue and
// a timer wheel. Everything a worker runs — tasks, handlers, timers — runs on its
// goroutine, one at a time, so state owned by a worker needs no lock when only that
// worker touches it.
//
// Each iteration of the loop:
//
//  1. runs the timers that have expired;
//  2. runs the tasks that were queued when the iteration began, those added with AddSparse
//     first (a task added during the iteration, even by itself, runs in the next one);
//  3. collects fd events — without sleeping if tasks are pending, else sleeping until one
//     arrives, the tick of the earliest pending timer or a wake-up — and delivers them to
//     their handlers.
//
// The loop sleeps as any goroutine waiting for I/O does: parked on the runtime's network
// poller, with the epoll instance itself as the fd it waits on, and is woken by the
// poller (an fd event), by a read deadline (its next timer) or by Add and Reset expiring
// that deadline at once. The package documentation says why, with the measurements.
//
// A panic in a callback is not recovered: it kills the process, as in any goroutine.
// Recovering (as net/http does for handlers) would let the worker go on with a flow's
// state half-updated, and a relay that silently corrupts or stalls flows is worse than
// one that crashes and is restarted.
type Worker struct {
	g  *Group
	id int

	// mu guards the task queues, the timer wheel, closed, deadline and the wake-ups
	// (SetReadDeadline on epf from Add, Reset and stop).
	mu       sync.Mutex
	queue    Task  // sentinel of the tasks waiting for the next iteration
	sparse   Task  // sentinel of the sparse flows' tasks, which run first (AddSparse)
	batch    Task  // sentinel of the tasks taken by this iteration and not yet run
	wheel    wheel // timers
	closed   bool
	deadline int64  // read deadline set on epf: a tick of mono(), noDeadline or expired
	wakes    uint64 // wake-ups by Add and Reset, for tests

	// sleeping is set (under mu) when the loop is about to park, and cleared by whoever
	// wakes it, so that only an Add or Reset that finds the loop asleep wakes it: a busy
	// worker adding tasks to itself pays nothing for wake-ups.
	sleeping atomic.Bool
	now      atomic.Int64   // mono() at the start of the current iteration
	gid      atomic.Uintptr // curg() of the loop goroutine while it runs, else 0

	// fdmu guards epfd and the registration table (poll.go).
	fdmu     sync.Mutex
	epfd     int
	regs     []reg
	free     []int32
	byfd     []int32      // fd → slot+1 (0: not registered), the kernel's fd table shape: fds are small and dense
	readying atomic.Int32 // slot whose Ready is being delivered, or -1

	// epf is epfd as a non-blocking *os.File, so on the runtime's poller: the loop parks
	// in rc.Read until epfd is readable (it has events) or the read deadline passes. It
	// owns epfd and is closed only after the loop has exited.
	epf     *os.File
	rc      syscall.RawConn
	collect func(uintptr) bool // w.harvest, bound once so that parking does not allocate
	nready  int                // events harvest left in w.events
	events  [128]unix.EpollEvent
}

// Values of Worker.deadline besides a tick.
const (
	noDeadline = 0  // none set: the loop sleeps until an event or a wake-up
	expired    = -1 // in the past: the loop is woken, or will not park
)

// longAgo is the deadline that wakes a loop: any time in the past.
var longAgo = time.Unix(1, 0)

func newWorker(g *Group, id int) (*Worker, error) {
	w := &Worker{g: g, id: id, epfd: -1}
	w.queue.next, w.queue.prev = &w.queue, &w.queue
	w.sparse.next, w.sparse.prev = &w.sparse, &w.sparse
	w.batch.next, w.batch.prev = &w.batch, &w.batch
	w.readying.Store(-1)
	w.now.Store(mono())
	w.collect = w.harvest
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	// O_NONBLOCK changes nothing for epoll_wait (its timeout decides), but it is what
	// makes os.NewFile put the fd on the runtime's poller.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	w.epfd, w.epf = epfd, os.NewFile(uintptr(epfd), "epoll")
	if w.rc, err = w.epf.SyscallConn(); err == nil {
		err = w.epf.SetReadDeadline(time.Time{}) // fails if the poller refused the fd
	}
	if err != nil {
		w.closeFDs()
		return nil, err
	}
	return w, nil
}

// ID returns w's index in its group, in [0, Group.Len()).
func (w *Worker) ID() int { return w.id }

// Group returns the group w belongs to.
func (w *Worker) Group() *Group { return w.g }

// epoch anchors mono: a time.Time with a monotonic reading, so time.Since(epoch) is one
// read of the monotonic clock.
var epoch = time.Now()

// mono returns nanoseconds since epoch on the monotonic clock.
func mono() int64 { return int64(time.Since(epoch)) }

// Now returns the time at which w's current loop iteration began, without reading the
// clock. On w (in a callback) it is behind the real time by no more than the callbacks
// run so far in this iteration, which is what a handler stamping a flow's last activity
// wants at no cost. Called from another goroutine it may be as old as w's current sleep.
// The result carries a monotonic reading, so Sub and Since between such times are exact.
func (w *Worker) Now() time.Time {
	return epoch.Add(time.Duration(w.now.Load()))
}

func (w *Worker) loop() {
	defer w.g.wg.Done()
	w.gid.Store(curg())
	setRunning(w, true)
	defer func() {
		setRunning(w, false)
		w.gid.Store(0)
	}()
	for {
		now := mono()
		w.now.Store(now)
		timers, ok := w.begin(now)
		if !ok {
			return
		}
		if timers {
			w.runTimers()
		}
		w.runBatch()
		w.dispatch(w.poll())
	}
}

// begin starts an iteration, in one critical section: it takes the batch of tasks to run
// and moves the expired timers to the firing list. It returns whether any timer is due,
// and false if w is closing.
func (w *Worker) begin(now int64) (timers, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false, false
	}
	w.takeBatch()
	w.wheel.advance(now)
	return w.wheel.firing != nil, true
}

// poll collects fd events (step 3) and returns how many are in w.events. If w may
// sleep, it parks the loop goroutine in rc.Read, which harvests first and parks only if
// there was nothing, so an event that arrives after the harvest makes epfd readable and
// the runtime's poller readies the goroutine; a wake-up by Add or Reset expires the read
// deadline, which makes Read return ErrDeadlineExceeded at once, parked or not.
func (w *Worker) poll() int {
	w.nready = 0
	if !w.sleep() {
		w.harvest(0)
		return w.nready
	}
	err := w.rc.Read(w.collect)
	w.sleeping.Store(false)
	if err != nil {
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			panic("netq: waiting on the epoll instance: " + err.Error())
		}
		w.mu.Lock()
		w.deadline = expired // by a timer's deadline or a wake-up: reset it before parking again
		w.mu.Unlock()
	}
	return w.nready
}

// harvest collects the events epfd has now, without waiting, and reports whether there
// were any (rc.Read parks the loop until epfd is readable when there were none).
func (w *Worker) harvest(uintptr) bool {
	for {
		n, err := unix.EpollWait(w.epfd, w.events[:], 0)
		if err == nil {
			w.nready = n
			return n > 0
		}
		if err != unix.EINTR { // retried: parking now could sleep through ready events
			panic(os.NewSyscallError("epoll_wait", err))
		}
	}
}

// sleep reports whether the loop may sleep: not if w is closing, tasks are pending or a
// timer is due. If it may, it sets the read deadline to the tick of the earliest pending
// timer (or none) and sets sleeping, under mu, so that Add and Reset, which check
// sleeping under mu after queueing, either queued before and are seen here or see
// sleeping and wake the loop.
func (w *Worker) sleep() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.pending() {
		return false
	}
	ms := w.wheel.sleep(mono())
	if ms == 0 {
		return false
	}
	dl := int64(noDeadline)
	if ms > 0 {
		dl = w.wheel.wakeAt
	}
	if dl != w.deadline {
		var t time.Time
		if dl != noDeadline {
			t = epoch.Add(time.Duration(dl) * tick)
		}
		w.epf.SetReadDeadline(t)
		w.deadline = dl
	}
	w.sleeping.Store(true)
	return true
}

// wakeLocked wakes the loop if it may be sleeping. w.mu is held.
func (w *Worker) wakeLocked() {
	if w.sleeping.Load() && w.sleeping.CompareAndSwap(true, false) {
		w.wakes++
		w.expire()
	}
}

// expire moves the read deadline into the past: the runtime readies the loop goroutine
// if it is parked in rc.Read, or Read returns at once if it is about to park. It is a
// wake-up without a system call. w.mu is held and w's fds are open.
func (w *Worker) expire() {
	w.epf.SetReadDeadline(longAgo)
	w.deadline = expired
}

// stop tells the loop to exit (Close, first half).
func (w *Worker) stop() {
	w.mu.Lock()
	w.closed = true
	w.expire()
	w.mu.Unlock()
}

// closeFDs closes the epoll instance and forgets pending tasks and timers (Close, second
// half, after the loop has exited).
func (w *Worker) closeFDs() {
	w.fdmu.Lock()
	if w.epf != nil {
		w.epf.Close() // takes epfd off the runtime's poller and closes it
	}
	w.epfd = -1
	w.fdmu.Unlock()

	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for _, l := range []*Task{&w.queue, &w.sparse, &w.batch} {
		for l.next != l {
			t := l.next
			t.unlink()
			t.on.Store(nil)
		}
	}
	w.wheel.clear()
}

// sleepMillis converts a wait in nanoseconds into milliseconds, rounding up so that the
// loop never wakes before the tick it waits for; 0 means a timer is due now (the loop
// then does not sleep).
func sleepMillis(ns int64) int {
	if ns <= 0 {
		return 0
	}
	ms := (ns + int64(time.Millisecond) - 1) / int64(time.Millisecond)
	return int(min(ms, math.MaxInt32))
}
