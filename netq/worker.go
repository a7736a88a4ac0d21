package netq

import (
	"encoding/binary"
	"math"
	"os"
	"sync"
	"sync/atomic"
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

// A Worker is one event loop: a goroutine with its own epoll instance, an eventfd that
// wakes it, a task queue and a timer wheel. Everything a worker runs — tasks, handlers,
// timers — runs on its goroutine, one at a time, so state owned by a worker needs no lock
// when only that worker touches it.
//
// Each iteration of the loop:
//
//  1. runs the timers that have expired;
//  2. runs the tasks that were queued when the iteration began, those added with AddSparse
//     first (a task added during the iteration, even by itself, runs in the next one);
//  3. waits for fd events — not at all if tasks are pending, else until the tick of the
//     earliest pending timer, else until woken — and delivers them to their handlers.
//
// A panic in a callback is not recovered: it kills the process, as in any goroutine.
// Recovering (as net/http does for handlers) would let the worker go on with a flow's
// state half-updated, and a relay that silently corrupts or stalls flows is worse than
// one that crashes and is restarted.
type Worker struct {
	g  *Group
	id int

	// mu guards the task queues, the timer wheel, closed, and writes to evfd (so that
	// no write can reach evfd after Close closed it).
	mu     sync.Mutex
	queue  Task  // sentinel of the tasks waiting for the next iteration
	sparse Task  // sentinel of the sparse flows' tasks, which run first (AddSparse)
	batch  Task  // sentinel of the tasks taken by this iteration and not yet run
	wheel  wheel // timers
	closed bool
	wakes  uint64 // eventfd writes, for tests

	// sleeping is set (under mu) when the loop is about to block in epoll_wait, and
	// cleared by whoever wakes it, so that only Add and Reset that find the loop asleep
	// write the eventfd: a busy worker adding tasks to itself makes no system call.
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

	// evfd is the eventfd: written only under mu, read only by the loop; both fds are
	// closed only after the loop has exited.
	evfd   int
	evbuf  [8]byte
	events [128]unix.EpollEvent
}

// wakeSlot marks the eventfd's epoll events; registrations use slots >= 0.
const wakeSlot = -1

// eventfdOne is the counter increment written to wake a loop: a uint64 1, native endian.
var eventfdOne = func() (b [8]byte) {
	binary.NativeEndian.PutUint64(b[:], 1)
	return b
}()

func newWorker(g *Group, id int) (*Worker, error) {
	w := &Worker{g: g, id: id, epfd: -1, evfd: -1}
	w.queue.next, w.queue.prev = &w.queue, &w.queue
	w.sparse.next, w.sparse.prev = &w.sparse, &w.sparse
	w.batch.next, w.batch.prev = &w.batch, &w.batch
	w.readying.Store(-1)
	w.now.Store(mono())
	var err error
	if w.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		w.epfd = -1
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if w.evfd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		w.evfd = -1
		w.closeFDs()
		return nil, os.NewSyscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: wakeSlot}
	if err = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, w.evfd, &ev); err != nil {
		w.closeFDs()
		return nil, os.NewSyscallError("epoll_ctl", err)
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

// poll waits for fd events (step 3) and returns how many are in w.events.
func (w *Worker) poll() int {
	timeout := w.timeout()
	n, err := unix.EpollWait(w.epfd, w.events[:], timeout)
	if timeout != 0 {
		w.sleeping.Store(false)
	}
	if err != nil {
		if err == unix.EINTR { // a signal (the Go scheduler preempts with SIGURG)
			return 0
		}
		panic(os.NewSyscallError("epoll_wait", err))
	}
	return n
}

// timeout returns the epoll_wait timeout in milliseconds: 0 if tasks are pending or w is
// closing, else until the earliest pending timer's tick, else -1 (until woken).
// A non-zero timeout sets sleeping, under mu, so that Add and Reset, which check it under
// mu after queueing, cannot miss the sleep.
func (w *Worker) timeout() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.pending() {
		return 0
	}
	ms := w.wheel.sleep(mono())
	if ms != 0 {
		w.sleeping.Store(true)
	}
	return ms
}

// wakeLocked writes the eventfd if the loop may be sleeping. w.mu is held.
func (w *Worker) wakeLocked() {
	if w.sleeping.Load() && w.sleeping.CompareAndSwap(true, false) {
		w.writeEventfd()
	}
}

// writeEventfd wakes the loop. w.mu is held and w is not closed, so evfd is open. The
// only possible error is EAGAIN (the counter is full), which means a wake-up is pending
// anyway.
func (w *Worker) writeEventfd() {
	w.wakes++
	unix.Write(w.evfd, eventfdOne[:])
}

// drainEventfd resets the eventfd counter after it woke the loop.
func (w *Worker) drainEventfd() {
	unix.Read(w.evfd, w.evbuf[:])
}

// stop tells the loop to exit (Close, first half).
func (w *Worker) stop() {
	w.mu.Lock()
	w.closed = true
	w.writeEventfd()
	w.mu.Unlock()
}

// closeFDs closes the epoll instance and the eventfd and forgets pending tasks and timers
// (Close, second half, after the loop has exited).
func (w *Worker) closeFDs() {
	w.fdmu.Lock()
	if w.epfd >= 0 {
		unix.Close(w.epfd)
		w.epfd = -1
	}
	w.fdmu.Unlock()

	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	if w.evfd >= 0 {
		unix.Close(w.evfd)
		w.evfd = -1
	}
	for _, l := range []*Task{&w.queue, &w.sparse, &w.batch} {
		for l.next != l {
			t := l.next
			t.unlink()
			t.on.Store(nil)
		}
	}
	w.wheel.clear()
}

// sleepMillis converts a wait in nanoseconds into epoll_wait's milliseconds, rounding up
// so the loop never wakes before the tick it waits for.
func sleepMillis(ns int64) int {
	if ns <= 0 {
		return 0
	}
	ms := (ns + int64(time.Millisecond) - 1) / int64(time.Millisecond)
	return int(min(ms, math.MaxInt32))
}
