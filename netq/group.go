package netq

import (
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

var (
	// ErrClosed is returned by operations on a Group that has been closed, or on one of
	// its workers.
	ErrClosed = errors.New("netq: workers closed")

	// ErrOnWorker is returned by calls that would wait for a worker when the caller is
	// itself running on a worker (in a task, handler or timer callback): the wait could
	// deadlock, on the caller's own worker or on one that is waiting for it.
	ErrOnWorker = errors.New("netq: called on a worker")
)

// A Group is a set of workers, each an event loop on its own goroutine. It is the
// softnet of OpenBSD (NET_TASKQ task queues, one thread each) plus the epoll loop that
// feeds them. The workers run until Close.
type Group struct {
	workers []*Worker
	closed  atomic.Bool   // set at the start of Close
	done    chan struct{} // closed when Close has finished: the loops have exited
	wg      sync.WaitGroup
	once    sync.Once
}

// NewGroup starts a group of n workers; n <= 0 means runtime.GOMAXPROCS(0), one per P
// (read once: the group does not follow later GOMAXPROCS changes).
// Each worker gets an epoll instance and an eventfd; the error is from creating those.
func NewGroup(n int) (*Group, error) {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	g := &Group{done: make(chan struct{})}
	for i := range n {
		w, err := newWorker(g, i)
		if err != nil {
			for _, w := range g.workers {
				w.closeFDs()
			}
			return nil, err
		}
		g.workers = append(g.workers, w)
	}
	g.wg.Add(n)
	for _, w := range g.workers {
		go w.loop()
	}
	return g, nil
}

var (
	defaultOnce  sync.Once
	defaultGroup *Group
)

// Default returns the process-wide group of GOMAXPROCS workers, starting it on first use.
// It is never closed. It panics if the workers cannot be started (no epoll or eventfd:
// the process is out of file descriptors).
func Default() *Group {
	defaultOnce.Do(func() {
		g, err := NewGroup(0)
		if err != nil {
			panic("netq: starting the default workers: " + err.Error())
		}
		defaultGroup = g
	})
	return defaultGroup
}

// Len returns the number of workers.
func (g *Group) Len() int { return len(g.workers) }

// Worker returns the worker for a flow: workers[flowid % Len()]. It is OpenBSD's
// net_tq(ifindex), with the flow's hash (for example the kernel's choice of
// SO_REUSEPORT listener) in place of the interface index, so that all work for one flow
// happens on one worker.
func (g *Group) Worker(flowid uint32) *Worker {
	return g.workers[flowid%uint32(len(g.workers))]
}

// Workers returns the workers, indexed by Worker.ID, in a new slice.
func (g *Group) Workers() []*Worker { return slices.Clone(g.workers) }

// Close stops the workers and waits for their goroutines to exit, then closes the epoll
// instances and eventfds. Tasks and timers still pending never run; Add then returns
// false and Register, Modify and Sync return ErrClosed. Close does not touch registered
// fds: they belong to their owners, who still close them (Unregister still works and
// returns nil). A callback running when Close is called finishes first.
//
// Close is idempotent; a second call waits for the first to finish. Called on one of g's
// own workers it cannot wait for itself and returns ErrOnWorker without closing anything;
// called on a worker of another group, it holds that worker until g's loops have exited.
func (g *Group) Close() error {
	if w := Current(); w != nil && w.g == g {
		return ErrOnWorker
	}
	g.once.Do(func() {
		g.closed.Store(true)
		for _, w := range g.workers {
			w.stop()
		}
		g.wg.Wait()
		for _, w := range g.workers {
			w.closeFDs()
		}
		close(g.done)
	})
	return nil
}
