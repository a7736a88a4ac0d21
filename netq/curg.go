package netq

import (
	"sync"
	"sync/atomic"
)

// Which goroutine is running? Go deliberately has no goroutine ids, but two things in this
// package must know whether the caller is a worker's loop goroutine: Sync, which would
// deadlock if a worker waited for itself (or for a worker that waits for it), and
// Unregister, which must not wait for a Ready that is its own caller.
//
// Every task, handler and timer of a worker runs on that worker's one loop goroutine, and
// nothing else does, so "running on w" is exactly "the current goroutine is w's loop
// goroutine". curg returns an identity of the current goroutine: on amd64 and arm64 the
// address of the runtime's g (goroutine descriptor), read from the thread-local slot or
// g register in a few lines of assembly, as github.com/petermattis/goid does; elsewhere
// the goroutine id parsed from runtime.Stack, which is slower but needs no assembly. A g
// lives as long as its goroutine (the runtime recycles it only after the goroutine exits),
// so each loop records its identity when it starts and clears it before it exits, and no
// other goroutine can match it in between.

// running lists the workers whose loops are running, in every group. It is copied on
// write (loops start and stop rarely) so that Current needs no lock.
var (
	runningMu sync.Mutex
	running   atomic.Pointer[[]*Worker]
)

func setRunning(w *Worker, on bool) {
	runningMu.Lock()
	defer runningMu.Unlock()
	var next []*Worker
	if p := running.Load(); p != nil {
		for _, x := range *p {
			if x != w {
				next = append(next, x)
			}
		}
	}
	if on {
		next = append(next, w)
	}
	running.Store(&next)
}

// Current returns the worker whose task, handler or timer callback is calling it, or nil
// if the caller is not running on any worker of any group. It knows by goroutine
// identity: each loop records the identity of its goroutine (the address of the
// runtime's goroutine descriptor) while it runs, and only callbacks run on a loop
// goroutine; a goroutine started by a callback is not on the worker. It costs a few
// nanoseconds per running worker.
func Current() *Worker {
	p := running.Load()
	if p == nil {
		return nil
	}
	g := curg()
	for _, w := range *p {
		if w.gid.Load() == g {
			return w
		}
	}
	return nil
}

// OnWorker reports whether the caller is running on w: in a task, handler or timer
// callback of w. It costs a few nanoseconds; code that must run on w can assert it.
func (w *Worker) OnWorker() bool {
	return w.gid.Load() == curg()
}
