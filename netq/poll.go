package netq

import (
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// A Handler receives readiness events for a registered fd, on the fd's worker. events is
// a set of unix.EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLERR and EPOLLHUP bits. Registrations
// are edge-triggered: Ready is called when the fd becomes ready, not while it stays
// ready, so the fd's owner must read or write until EAGAIN — in turns of at most Budget
// bytes, continuing in a re-Added task — or it will not hear from the fd again.
type Handler interface {
	Ready(events uint32)
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(events uint32)

// Ready calls f(events).
func (f HandlerFunc) Ready(events uint32) { f(events) }

// reg is a registration. Its slot index and generation travel in the epoll event's data,
// so an event fetched for a registration that has since been removed (and perhaps its
// fd number reused) is recognised and dropped.
type reg struct {
	fd  int
	gen uint32
	h   Handler // nil if the slot is free
}

// Register adds fd to w's epoll instance, edge-triggered (EPOLLET is added to events),
// and delivers its events to h on w. The fd stays its owner's: w never closes it. An fd
// belongs to one worker for life; registering it twice on w gives EEXIST. Register may
// be called from any goroutine; h may be called before Register returns. Errors are
// *os.SyscallError (test with errors.Is(err, unix.EEXIST)), or ErrClosed.
func (w *Worker) Register(fd int, events uint32, h Handler) error {
	if h == nil {
		panic("netq: Register with a nil Handler")
	}
	w.fdmu.Lock()
	defer w.fdmu.Unlock()
	if w.epfd < 0 {
		return ErrClosed
	}
	if _, ok := w.slotOf(fd); ok {
		return os.NewSyscallError("epoll_ctl", unix.EEXIST)
	}
	var slot int32
	if n := len(w.free); n > 0 {
		slot, w.free = w.free[n-1], w.free[:n-1]
	} else {
		slot = int32(len(w.regs))
		w.regs = append(w.regs, reg{})
	}
	r := &w.regs[slot]
	ev := unix.EpollEvent{Events: events | unix.EPOLLET, Fd: slot, Pad: int32(r.gen)}
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		w.free = append(w.free, slot)
		return os.NewSyscallError("epoll_ctl", err)
	}
	r.fd, r.h = fd, h
	if fd >= len(w.byfd) {
		w.byfd = append(w.byfd, make([]int32, fd+1-len(w.byfd))...)
	}
	w.byfd[fd] = slot + 1
	return nil
}

// slotOf returns the registration slot of fd. fdmu is held.
func (w *Worker) slotOf(fd int) (int32, bool) {
	if fd < 0 || fd >= len(w.byfd) || w.byfd[fd] == 0 {
		return 0, false
	}
	return w.byfd[fd] - 1, true
}

// Modify changes the events fd is registered for (EPOLLET is added). It may be called
// from any goroutine. An fd not registered on w gives ENOENT.
func (w *Worker) Modify(fd int, events uint32) error {
	w.fdmu.Lock()
	defer w.fdmu.Unlock()
	if w.epfd < 0 {
		return ErrClosed
	}
	slot, ok := w.slotOf(fd)
	if !ok {
		return os.NewSyscallError("epoll_ctl", unix.ENOENT)
	}
	ev := unix.EpollEvent{Events: events | unix.EPOLLET, Fd: slot, Pad: int32(w.regs[slot].gen)}
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_MOD, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// Unregister removes fd from w. After it returns, no Ready for this registration starts,
// even for events w has already fetched in its current batch. Called on w (a handler
// unregistering its own or another fd of w), it returns at once; called from another
// goroutine, it waits for a Ready of fd that is running on w to return, which is short,
// because handlers do not block — but two handlers on different workers that each
// unregister an fd of the other's worker could wait for each other forever: an fd
// belongs to its worker, so unregister it there. Unregister it before closing the fd: a
// closed fd leaves epoll by itself only when no duplicate of it is open. The
// registration is removed even if epoll_ctl fails (EBADF: the fd was already closed); an
// fd not registered on w gives ENOENT. After Close, Unregister only forgets the
// registration and returns nil.
func (w *Worker) Unregister(fd int) error {
	w.fdmu.Lock()
	slot, ok := w.slotOf(fd)
	if !ok {
		w.fdmu.Unlock()
		return os.NewSyscallError("epoll_ctl", unix.ENOENT)
	}
	var err error
	if w.epfd >= 0 {
		if e := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, fd, nil); e != nil {
			err = os.NewSyscallError("epoll_ctl", e)
		}
	}
	w.byfd[fd] = 0
	r := &w.regs[slot]
	r.h = nil
	r.gen++ // events already fetched carry the old generation
	w.free = append(w.free, slot)
	w.fdmu.Unlock()

	// dispatch sets readying before it checks the generation under fdmu, and we changed
	// the generation under fdmu before reading readying: either dispatch saw the new
	// generation and will not call Ready, or we see its slot here and wait for Ready to
	// return.
	if !w.OnWorker() {
		for i := 0; w.readying.Load() == slot; i++ {
			if i < 100 {
				runtime.Gosched()
			} else {
				time.Sleep(50 * time.Microsecond)
			}
		}
	}
	return err
}

// dispatch delivers the n events in w.events (step 3).
func (w *Worker) dispatch(n int) {
	for i := range n {
		ev := &w.events[i]
		slot := ev.Fd
		if slot == wakeSlot {
			w.drainEventfd()
			continue
		}
		w.readying.Store(slot)
		w.fdmu.Lock()
		r := &w.regs[slot]
		h := r.h
		if r.gen != uint32(ev.Pad) {
			h = nil
		}
		w.fdmu.Unlock()
		if h != nil {
			h.Ready(ev.Events)
		}
		w.readying.Store(-1)
	}
}
