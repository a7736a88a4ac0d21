package socket

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/softnet-go/softnet/mbuf"
	"golang.org/x/sys/unix"
)

// errTimeout is what a call whose deadline passed returns (inside a *net.OpError).
var errTimeout = os.ErrDeadlineExceeded

// Read is soreceive() into b. Data queued in the receive sockbuf comes first; with none
// queued and the worker not reading, Read reads the kernel socket directly into b (one
// copy, as package net does). A pending error is returned once, after the data; then
// io.EOF once the peer has shut down. While the socket is the source of a running splice
// it gets no data and blocks (until its deadline). Once the read deadline has passed it
// fails at once, data queued or not, as package net's Read does. A UDP socket returns one
// datagram per call, truncated to len(b). Reads by several goroutines are serialized
// (sblock), and none holds the sockbuf's lock across its system call or a long copy, so
// a Read never stalls the worker.
func (so *Socket) Read(b []byte) (int, error) {
	if so.proto().flags&prAtomic != 0 {
		n, _, err := so.readDatagram(b)
		return n, err
	}
	so.rdlock.Lock()
	defer so.rdlock.Unlock()
	sb := &so.rcv
	sb.mu.Lock()
	for {
		if sb.flags&sbClosed != 0 {
			sb.mu.Unlock()
			return 0, so.opError("read", net.ErrClosed)
		}
		d := so.dl.rd.Load()
		if d.expired() {
			sb.mu.Unlock()
			return 0, so.opError("read", errTimeout)
		}
		if sb.flags&sbSplice == 0 {
			if sb.cc > 0 {
				return so.readQueued(b), nil
			}
			if e := so.takeError(); e != 0 {
				sb.mu.Unlock()
				return 0, so.opError("read", e)
			}
			if sb.flags&sbCantMore != 0 {
				sb.mu.Unlock()
				return 0, io.EOF
			}
			if len(b) == 0 {
				sb.mu.Unlock()
				return 0, nil
			}
			st := so.state.Load()
			if st&(ssConnected|ssConnecting) == 0 {
				sb.mu.Unlock()
				return 0, so.opError("read", syscall.ENOTCONN)
			}
			if st&ssConnected != 0 && sb.flags&sbBusy == 0 {
				ev, ok := so.beginIO(sb)
				if !ok {
					sb.mu.Unlock()
					return 0, so.opError("read", net.ErrClosed)
				}
				n, err := sysRead(so.fd, b)
				missed := so.endIO(sb, ev)
				switch {
				case n > 0:
					sb.mu.Unlock()
					return n, nil
				case err == nil:
					sb.flags |= sbCantMore
					if e := so.takeError(); e != 0 {
						// The worker took it (SO_ERROR) during the read: it goes
						// first, as it would have had it come before the EOF.
						sb.mu.Unlock()
						return 0, so.opError("read", e)
					}
					sb.mu.Unlock()
					return 0, io.EOF
				case err != unix.EAGAIN:
					sb.flags |= sbCantMore
					sb.mu.Unlock()
					return 0, so.opError("read", err)
				case missed:
					continue // an event came during the read: try again
				}
				sb.flags |= sbWantIO
			}
		}
		sb.wait(so.dl.rd.Load()) // again: it may have been made while the lock was released
	}
}

// copyOut copies from chain m into b and returns the bytes copied.
func copyOut(b []byte, m *mbuf.Mbuf) int {
	n := 0
	for ; m != nil && n < len(b); m = m.Next() {
		n += copy(b[n:], m.Data())
	}
	return n
}

// Write is sosend() from b. With the send sockbuf empty and the worker not writing,
// Write writes to the kernel socket directly, and waits for room in the kernel when it is
// full (one copy, as package net). Otherwise (Send or a splice queued chains the worker
// is writing) the bytes are copied into the send sockbuf behind them, in clusters from the
// packet zone, and Write blocks while the sockbuf is full. It returns when every byte is
// in the kernel or in the sockbuf; Close still sends those. A pending error is
// returned (once) before anything is written; once the write deadline has passed Write
// fails at once, as package net's does. A UDP socket sends b as one datagram
// (an empty b sends an empty datagram). Writes by several goroutines are serialized
// (sblock): the bytes of one Write are not mixed with another's. None holds the
// sockbuf's lock across its system call or a long copy, so a Write never stalls the
// worker.
func (so *Socket) Write(b []byte) (int, error) {
	if so.proto().flags&prAtomic != 0 {
		return so.writeDatagram(b, nil)
	}
	so.wrlock.Lock()
	defer so.wrlock.Unlock()
	sb := &so.snd
	sb.mu.Lock()
	n := 0
	for {
		if err := so.sendCheck(); err != nil {
			sb.mu.Unlock()
			return n, so.opError("write", err)
		}
		d := so.dl.wr.Load()
		if d.expired() {
			sb.mu.Unlock()
			return n, so.opError("write", errTimeout)
		}
		if so.state.Load()&ssConnected != 0 {
			if n == len(b) {
				sb.mu.Unlock()
				return n, nil
			}
			if sb.cc == 0 && sb.flags&sbBusy == 0 {
				ev, ok := so.beginIO(sb)
				if !ok {
					sb.mu.Unlock()
					return n, so.opError("write", net.ErrClosed)
				}
				k, err := sysSend(so.fd, b[n:], 0)
				missed := so.endIO(sb, ev)
				n += k
				if n == len(b) {
					sb.mu.Unlock()
					return n, nil
				}
				if err == nil || err == unix.EAGAIN && missed {
					continue
				}
				if err != unix.EAGAIN {
					sb.flags |= sbCantMore
					sb.mu.Unlock()
					return n, so.opError("write", err)
				}
				// The kernel is full: wait until it has room (EPOLLOUT runs output,
				// which wakes us), as package net does, rather than copy into the
				// sockbuf: one copy is cheaper than two.
			} else if space := sb.space(); space > 0 && (space >= sb.lowat || len(b)-n <= space) {
				// The worker is writing the sockbuf: queue behind it.
				k, err := so.queueBytes(b[n : n+min(space, len(b)-n)])
				n += k
				so.w.Add(&so.outTask)
				if n == len(b) {
					sb.mu.Unlock()
					return n, nil
				}
				if err != nil && k == 0 {
					// At the memory Limit: wait for a cluster, outside the lock.
					if err := so.waitSendMemory(); err != nil {
						return n, so.opError("write", err)
					}
				}
				continue
			}
		}
		sb.wait(so.dl.wr.Load()) // again: it may have been made while the lock was released
	}
}

// sendCheck returns why nothing can be sent now, in sosend's order: closed, a pending
// error (reported once), the sending side shut down, not connected. so.snd.mu is held.
func (so *Socket) sendCheck() error {
	if so.snd.flags&sbClosed != 0 {
		return net.ErrClosed
	}
	if e := so.takeError(); e != 0 {
		return e
	}
	if so.snd.flags&sbCantMore != 0 {
		return syscall.EPIPE
	}
	if so.state.Load()&(ssConnected|ssConnecting) == 0 {
		if so.proto().flags&prConnRequired != 0 {
			return syscall.ENOTCONN
		}
		return syscall.EDESTADDRREQ
	}
	return nil
}

// appendBytes copies p into the send sockbuf: into the trailing space of its last mbuf,
// then into new clusters. It returns the bytes copied, which are fewer than len(p) only
// when a cluster cannot be had (the error). so.snd.mu is held.
func (so *Socket) appendBytes(p []byte, how mbuf.How) (int, error) {
	sb := &so.snd
	n := 0
	if t := sb.tail; t != nil && t.Writable() {
		k := copy(t.Tail(), p)
		t.Extend(k)
		sb.cc += k
		sb.mbcnt += k
		n = k
	}
	m, k, err := chainOf(p[n:], how)
	sb.appendStream(m)
	return n + k, err
}

// chainOf copies p into a new chain of clusters (16 KiB jumbo clusters while more than a
// 2 KiB cluster's worth is left), and returns it and the bytes copied, fewer than len(p)
// only when a cluster cannot be had (the error).
func chainOf(p []byte, how mbuf.How) (*mbuf.Mbuf, int, error) {
	var head, tail *mbuf.Mbuf
	n := 0
	for n < len(p) {
		size := mbuf.MCLBytes
		if len(p)-n > mbuf.MCLBytes {
			size = mbuf.MJum16Bytes
		}
		m, err := mbuf.GetJCL(how, mbuf.MTData, 0, size)
		if err != nil {
			return head, n, err
		}
		k := copy(m.Tail(), p[n:])
		m.Extend(k)
		n += k
		if head == nil {
			head = m
		} else {
			tail.Link(m)
		}
		tail = m
	}
	return head, n, nil
}

// waitSendMemory waits, without so.snd.mu, until a cluster can be had (or the write
// deadline passes, or the socket closes), puts the cluster at the end of the send
// sockbuf so the next copy fills it, and takes so.snd.mu again. On error the lock is
// released.
func (so *Socket) waitSendMemory() error {
	so.snd.mu.Unlock()
	ctx, cancel := so.waitCtx(so.dl.wr.Load())
	m, err := mbuf.GetCL(mbuf.Wait(ctx), mbuf.MTData, 0)
	cancel()
	if err != nil {
		if so.state.Load()&ssClosed != 0 {
			return net.ErrClosed
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return errTimeout
		}
		return err
	}
	so.snd.mu.Lock()
	so.snd.appendStream(m) // empty: it holds storage, and the next copy fills it
	return nil
}

// waitCtx returns a context that ends when the socket closes or the deadline d passes.
func (so *Socket) waitCtx(d *deadline) (context.Context, context.CancelFunc) {
	ctx := so.ctx()
	if d != nil {
		if t := d.when(); !t.IsZero() {
			return context.WithDeadline(ctx, t)
		}
	}
	return context.WithCancel(ctx)
}

// Recv is soreceive() without the copy: it returns the data queued in the receive
// sockbuf as an mbuf chain the caller now owns (and frees, with FreeM): a TCP socket
// returns up to max bytes (all queued bytes if max <= 0), a UDP socket one datagram (a
// packet: a pkthdr chain; an empty datagram is a chain of length 0). It blocks while
// nothing is queued, and reports errors and EOF as Read does.
func (so *Socket) Recv(max int) (*mbuf.Mbuf, error) {
	if so.proto().flags&prAtomic != 0 {
		m, _, err := so.recvDatagram()
		return m, err
	}
	sb := &so.rcv
	sb.mu.Lock()
	for {
		if sb.flags&sbClosed != 0 {
			sb.mu.Unlock()
			return nil, so.opError("read", net.ErrClosed)
		}
		if sb.flags&sbSplice == 0 {
			if sb.cc > 0 {
				n := sb.cc
				if max > 0 {
					n = min(n, max)
				}
				m := sb.takeStream(n)
				if m == nil { // cannot split at the memory Limit: take whole mbufs
					m = sb.unlinkHead()
				}
				so.resumeInputLocked()
				sb.mu.Unlock()
				return m, nil
			}
			if e := so.takeError(); e != 0 {
				sb.mu.Unlock()
				return nil, so.opError("read", e)
			}
			if sb.flags&sbCantMore != 0 {
				sb.mu.Unlock()
				return nil, io.EOF
			}
			if so.state.Load()&(ssConnected|ssConnecting) == 0 {
				sb.mu.Unlock()
				return nil, so.opError("read", syscall.ENOTCONN)
			}
			sb.flags &^= sbWantIO
			so.w.Add(&so.inTask) // the worker reads into clusters and wakes us
		}
		d := so.dl.rd.Load()
		if d.expired() {
			sb.mu.Unlock()
			return nil, so.opError("read", errTimeout)
		}
		sb.wait(d)
	}
}

// Send is sosend() of an mbuf chain, without copying: the chain joins the send sockbuf
// (a UDP socket sends it as one datagram) and the worker writes it. Send takes ownership
// of m in every case: on error it is freed. It blocks while the send sockbuf is full
// (a TCP chain may then overshoot the high-water mark by its own length, as sbappend
// can); a UDP datagram longer than the send sockbuf's high-water mark fails with
// EMSGSIZE.
func (so *Socket) Send(m *mbuf.Mbuf) error {
	if so.proto().flags&prAtomic != 0 {
		_, err := so.sendDatagram(m, nil)
		return err
	}
	sb := &so.snd
	sb.mu.Lock()
	for {
		if err := so.sendCheck(); err != nil {
			sb.mu.Unlock()
			m.FreeM()
			return so.opError("write", err)
		}
		if so.state.Load()&ssConnected != 0 && sb.space() > 0 {
			sb.appendStream(m)
			sb.mu.Unlock()
			so.kick()
			return nil
		}
		d := so.dl.wr.Load()
		if d.expired() {
			sb.mu.Unlock()
			m.FreeM()
			return so.opError("write", errTimeout)
		}
		sb.wait(d)
	}
}

// kick makes the worker run output soon: at once when called on the worker, else by
// queueing the output task.
func (so *Socket) kick() {
	if so.w.OnWorker() {
		so.output()
		return
	}
	so.w.Add(&so.outTask)
}
