package netq

import (
	"context"
	"sync/atomic"
)

// A Task is a function that can be queued on a worker, OpenBSD's struct task (task(9)).
// It is intrusive: the queue links through the Task itself, so queueing it allocates
// nothing, and a queued task is queued once however many times it is added. Embed a Task
// in the object it works for (a socket's splice task) and Init it once.
//
// A Task is on at most one worker's queue at a time. It may be added again while it runs
// (a flow that yields re-adds its own task), to the same or another worker.
type Task struct {
	next, prev *Task                  // queue links, guarded by the queue's worker's mu
	on         atomic.Pointer[Worker] // the worker whose queue holds t, or nil
	fn         func()
}

// Init sets the function t runs: task_set(9). It must not be called while t is queued.
func (t *Task) Init(fn func()) { t.fn = fn }

// NewTask returns a new Task that runs fn.
func NewTask(fn func()) *Task { return &Task{fn: fn} }

// Add is task_add(9): it queues t at the tail of w's queue and returns true, or returns
// false if t is already queued (on any worker) or w's group is closed. It is safe from
// any goroutine, including w itself, and does not allocate. It wakes w (one eventfd
// write) only if w is sleeping.
//
// t runs on w once, in a later loop iteration than the one that added it, even if the
// adder is running on w: a task that re-adds itself yields to w's timers and fd events.
// Tasks queued on one worker run in the order they were added.
func (w *Worker) Add(t *Task) bool {
	if t.on.Load() != nil { // already queued: the common case for a busy flow
		return false
	}
	if t.fn == nil {
		panic("netq: Add of a Task with no function (use Init or NewTask)")
	}
	return w.enqueue(t, &w.queue)
}

// AddSparse is Add for a sparse flow: the task of a flow that moved little in its last
// turn (an interactive request, a handshake) rather than one that used its whole Budget.
// It queues t on w's sparse queue, which the next loop iteration runs before the tasks
// queued with Add, in the order they were added — FQ-CoDel's "new flows" queue, so that
// a 64-byte request never waits behind the bulk passes queued in the same iteration. It
// returns false, changing nothing, if t is already queued (on either queue, of any
// worker) or w's group is closed. A flow must not use it to jump the queue turn after
// turn: the caller decides sparseness from what the flow moved, as FQ-CoDel does from
// the bytes a flow has sent in its quantum.
func (w *Worker) AddSparse(t *Task) bool {
	if t.on.Load() != nil {
		return false
	}
	if t.fn == nil {
		panic("netq: AddSparse of a Task with no function (use Init or NewTask)")
	}
	return w.enqueue(t, &w.sparse)
}

// enqueue links t at the tail of the list headed by q (w.queue or w.sparse) and wakes w
// if it sleeps.
func (w *Worker) enqueue(t *Task, q *Task) bool {
	w.mu.Lock()
	if w.closed || !t.on.CompareAndSwap(nil, w) {
		w.mu.Unlock()
		return false
	}
	t.prev = q.prev
	t.next = q
	q.prev.next = t
	q.prev = t
	w.wakeLocked()
	w.mu.Unlock()
	return true
}

// Del is task_del(9): it removes t from w's queue and returns true if t was queued on w
// and had not started to run; otherwise it returns false and changes nothing. A task
// that is running keeps running: Del does not wait for it (Sync does).
func (w *Worker) Del(t *Task) bool {
	if t.on.Load() != w {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if t.on.Load() != w {
		return false
	}
	t.unlink()
	t.on.Store(nil)
	return true
}

// Barrier runs fn on w after every task queued on w before the call has run (or been
// removed with Del), and after the task running on w, if any, has returned. It is
// taskq_barrier(9) without the sleep: it only queues fn behind those tasks and returns at
// once, so any goroutine — a task of w itself, or two workers barriering each other —
// can call it without risk of deadlock. It allocates one Task. If the group is closed, fn
// never runs.
func (w *Worker) Barrier(fn func()) {
	w.Add(NewTask(fn))
}

// Sync waits until every task queued on w before the call has run, as taskq_barrier(9)
// does. It returns nil, ctx.Err() if ctx ends first, or ErrClosed if w's group is or
// gets closed first. Waiting on a worker could deadlock, so Sync returns ErrOnWorker at
// once when called from a task, handler or timer of any worker of any group (see
// Current); code on a worker uses Barrier instead.
func (w *Worker) Sync(ctx context.Context) error {
	if Current() != nil {
		return ErrOnWorker
	}
	done := make(chan struct{})
	t := NewTask(func() { close(done) })
	if !w.Add(t) {
		return ErrClosed
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		w.Del(t)
		return ctx.Err()
	case <-w.g.done:
		select {
		case <-done: // it ran before the loop stopped
			return nil
		default:
			return ErrClosed
		}
	}
}

// takeBatch moves the queued tasks to the batch that this iteration runs (step 2), the
// sparse queue's first: tasks added from now on wait for the next iteration. w.mu is held.
func (w *Worker) takeBatch() {
	b := &w.batch
	for _, q := range [2]*Task{&w.sparse, &w.queue} {
		if q.next == q {
			continue
		}
		// Append q's list to the batch (which is empty or holds the sparse tasks).
		first, last := q.next, q.prev
		first.prev, last.next = b.prev, b
		b.prev.next, b.prev = first, last
		q.next, q.prev = q, q
	}
}

// pending reports whether tasks wait for the next iteration. w.mu is held.
func (w *Worker) pending() bool {
	return w.queue.next != &w.queue || w.sparse.next != &w.sparse
}

// runBatch runs the batch. Each task is unlinked under mu and run without it, so Del can
// still remove the tasks that have not run yet, and a running task can re-add itself.
// Nothing is ever added to the batch, so once it is seen empty it stays empty.
func (w *Worker) runBatch() {
	b := &w.batch
	w.mu.Lock()
	for b.next != b {
		t := b.next
		t.unlink()
		t.on.Store(nil)
		fn, last := t.fn, b.next == b
		w.mu.Unlock()
		fn()
		if last {
			return
		}
		w.mu.Lock()
	}
	w.mu.Unlock()
}

// unlink removes t from the queue or batch list it is on. The caller holds its mu.
func (t *Task) unlink() {
	t.prev.next = t.next
	t.next.prev = t.prev
	t.next, t.prev = nil, nil
}
