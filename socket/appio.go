package socket

import (
	"net"
	"net/netip"

	"github.com/softnet-go/softnet/mbuf"
	"golang.org/x/sys/unix"
)

// Application calls and the worker share each sockbuf's mu, and the worker takes it for
// every input and output pass of the socket, so an application call must never hold it
// across a system call or a long copy: the worker, and every flow it serves, would wait
// for it. An application call that goes to the kernel does what the worker does around
// its own read and write (input, output): it marks the sockbuf sbBusy, unlocks, makes
// the call, locks again and clears sbBusy (beginIO, endIO). While the sockbuf is busy the
// worker leaves the kernel socket alone for that direction: input and output return at
// once, and the kernel splice path waits for the sockbuf to be free.
//
// Three things make that safe:
//
//   - One application call per direction at a time: the socket's rdlock and wrlock are
//     BSD's sblock(), taken by every application call that reads (Read, RawConn.Read) or
//     writes (Write, SendFile, RawConn.Write) for the whole call, while the sockbuf's mu
//     (BSD's sockbuf mutex) protects the buffer itself.
//   - No lost wakeup: epoll is edge-triggered, and an event the worker skipped because
//     the sockbuf was busy does not come again. ready counts the events (so.events);
//     endIO compares the count with the one beginIO saw, and a call that found the kernel
//     empty (or full) tries again rather than sleeping when an event came in between,
//     as internal/poll's pollDesc keeps a readiness that arrived before the wait. What
//     the worker skipped is then done when someone other than the caller depends on it:
//     input for a Recv or a splice waiting, output for bytes Send queued meanwhile.
//   - The descriptor stays open: the worker closes it in destroy, which may run while
//     an application call is in the kernel. The call holds a reference (fdrefs) taken
//     under the sockbuf lock, and the last reference closes the fd, as internal/poll's
//     fdMutex defers the close to the last decref.

// longCopy is the most bytes an application call copies into or out of a sockbuf while
// holding its lock; a longer copy moves the mbufs out of (or builds them outside) the
// buffer and copies without the lock.
const longCopy = 16 << 10

// fdClosing is added to fdrefs by destroy: the fd is to be closed when no application
// system call holds it.
const fdClosing = 1 << 30

// holdFd takes a reference on so.fd for a system call made without a sockbuf lock, or
// reports false if the socket is destroyed (its fd closed or about to be). The lock of
// one of the socket's sockbufs is held: destroy marks the socket destroyed before it
// takes both sockbufs' locks, and asks for the close (closeFd) after, so it sees a
// reference taken under either lock, and no reference is taken after it.
func (so *Socket) holdFd() bool {
	if so.state.Load()&ssDestroyed != 0 {
		return false
	}
	so.fdrefs.Add(1)
	return true
}

// releaseFd drops a reference taken by holdFd, closing the fd if destroy is waiting for
// it.
func (so *Socket) releaseFd() {
	if so.fdrefs.Add(-1) == fdClosing {
		unix.Close(so.fd)
	}
}

// closeFd is destroy's close(2): at once, or when the last application system call on
// the fd returns.
func (so *Socket) closeFd() {
	if so.fdrefs.Add(fdClosing) == fdClosing {
		unix.Close(so.fd)
	}
}

// beginIO marks sb busy for an application system call, takes a reference on the fd and
// releases sb.mu, which is held. It returns the event count to pass to endIO, and false
// (with sb.mu still held and nothing marked) if the socket is destroyed.
func (so *Socket) beginIO(sb *sockbuf) (uint32, bool) {
	if !so.holdFd() {
		return 0, false
	}
	sb.flags |= sbBusy
	ev := so.events.Load()
	sb.mu.Unlock()
	return ev, true
}

// endIO ends what beginIO began: it takes sb.mu again, clears sbBusy and drops the fd
// reference, and queues what the worker skipped while sb was busy for those who wait on
// the worker: on the receive side input, for a Recv or a splice waiting; on the send side
// output, for bytes Send or a splice queued meanwhile or a CloseWrite, and the splice
// into the socket, which waits for it to be free. It reports whether an epoll event came
// since beginIO (ev): the caller then retries a call that found the kernel empty or full
// rather than sleep. (After a call that did read, a skipped EPOLLIN needs nothing: the
// bytes wait in the kernel for the next read, direct as this one, and those who wait on
// the worker get input anyway.)
func (so *Socket) endIO(sb *sockbuf, ev uint32) bool {
	so.releaseFd()
	sb.mu.Lock()
	sb.flags &^= sbBusy
	missed := so.events.Load() != ev
	if sb == &so.rcv {
		if sb.waiters > 0 || sb.flags&sbSplice != 0 {
			so.w.Add(&so.inTask)
		}
		return missed
	}
	if sb.mb != nil || sb.flags&sbShutPending != 0 {
		so.w.Add(&so.outTask)
	}
	if sb.flags&sbSplice != 0 {
		so.sowwakeup()
	}
	return missed
}

// waitIO is sbwait() for an application call that found the kernel socket empty or full
// (a system call returned EAGAIN after beginIO took event count ev): unless an event came
// since, it waits until the worker wakes the sockbuf or the deadline dl passes. sb.mu is
// held. It returns errTimeout when the deadline has passed and net.ErrClosed once the
// socket is closed, else nil: the caller tries again.
func (so *Socket) waitIO(sb *sockbuf, ev uint32, dl *deadline) error {
	if sb.flags&sbClosed != 0 {
		return net.ErrClosed
	}
	if so.events.Load() != ev {
		return nil
	}
	if dl.expired() {
		return errTimeout
	}
	sb.wait(dl)
	if sb.flags&sbClosed != 0 {
		return net.ErrClosed
	}
	return nil
}

// readQueued is the copy of Read from a stream receive sockbuf holding data: up to
// len(b) bytes, under the lock when they are few, else taken out of the buffer and
// copied after the lock is released. sb.mu is held and is released.
func (so *Socket) readQueued(b []byte) int {
	sb := &so.rcv
	n := min(len(b), sb.cc)
	var m *mbuf.Mbuf
	if n > longCopy {
		m = sb.takeStream(n) // nil if it cannot split at the memory Limit
	}
	if m == nil {
		n = copyOut(b, sb.mb)
		sb.dropStream(n)
	}
	resume := sb.flags&sbStalled != 0 && sb.space() > 0 // resumeInputLocked, but:
	if resume {
		sb.flags &^= sbStalled
	}
	sb.mu.Unlock()
	if resume {
		so.w.Add(&so.inTask) // after the unlock: Add may write the worker's eventfd
	}
	if m != nil {
		n = copyOut(b, m)
		m.FreeM()
	}
	return n
}

// queueBytes copies p into the send sockbuf for the worker's output: p is at most the
// room left (space), so that a writer fills the buffer up to its high-water mark, as
// sosend's uiomove does. A short p is copied under sb.mu (into the last mbuf's
// trailing space first); a long one into a chain made after the lock is released, which
// then joins the buffer. It returns the bytes queued, fewer than len(p) only when memory
// ran out (the error). snd.mu is held, and is held again on return.
func (so *Socket) queueBytes(p []byte) (int, error) {
	if len(p) <= longCopy {
		return so.appendBytes(p, mbuf.DontWait)
	}
	sb := &so.snd
	sb.mu.Unlock()
	m, n, err := chainOf(p, mbuf.DontWait)
	sb.mu.Lock()
	if sb.flags&(sbClosed|sbCantMore) != 0 {
		m.FreeM() // closed or failed meanwhile: the caller's next check says which
		return 0, nil
	}
	sb.appendStream(m)
	return n, err
}

// recordSender returns the sender of datagram record r, from its MT_SONAME mbuf, and
// the record's first data mbuf; a record without one (a connected socket's) has the
// socket's peer.
func (so *Socket) recordSender(r *mbuf.Mbuf) (netip.AddrPort, *mbuf.Mbuf) {
	if r.Type() == mbuf.MTSoname {
		return rawToAddrPort(r.Data()), r.Next()
	}
	return so.peer(), r
}
