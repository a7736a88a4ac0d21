package socket

import (
	"net"
	"os"
	"sync/atomic"
	"syscall"

	"github.com/softnet-go/softnet/internal/eintr"
	"github.com/softnet-go/softnet/mbuf"
	"golang.org/x/sys/unix"
)

// SendFile sends the header chain hdr (may be nil) and then n bytes of f from offset off
// with sendfile(2), so the file's bytes never enter user space: FreeBSD's sendfile with
// its headers (built with m_uiotombuf). The socket is corked (TCP_CORK) around the two,
// so the header and the first file bytes share packets. Data written before SendFile
// goes first; writes made while it runs wait behind it. SendFile takes ownership of hdr.
// It returns the bytes sent (header included) and blocks until all are in the kernel,
// the write deadline passes, or an error; the file's offset is not used or changed. A
// file shorter than off+n ends it early without error. It holds the send side's sblock
// for the whole call, and the send sockbuf busy (the worker leaves the kernel socket's
// send side alone), but not the sockbuf's lock across its system calls: reading the file
// may wait for the disk, and the worker must not wait with it.
func (so *Socket) SendFile(f *os.File, off, n int64, hdr *mbuf.Mbuf) (int64, error) {
	if so.proto().flags&prAtomic != 0 {
		hdr.FreeM()
		return 0, so.opError("sendfile", syscall.EOPNOTSUPP)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		hdr.FreeM()
		return 0, so.opError("sendfile", err)
	}
	so.wrlock.Lock()
	defer so.wrlock.Unlock()
	sb := &so.snd
	sb.mu.Lock()
	// Wait for what is queued to go out, then own the kernel socket's send side.
	for {
		if err := so.sendCheck(); err != nil {
			sb.mu.Unlock()
			hdr.FreeM()
			return 0, so.opError("sendfile", err)
		}
		if so.state.Load()&ssConnected != 0 && sb.cc == 0 && sb.flags&sbBusy == 0 {
			break
		}
		so.w.Add(&so.outTask)
		d := so.dl.wr.Load()
		if d.expired() {
			sb.mu.Unlock()
			hdr.FreeM()
			return 0, so.opError("sendfile", errTimeout)
		}
		sb.wait(d)
	}
	sb.flags |= sbSendfile // output wakes us, busy as the sockbuf is, when there is room
	ev, ok := so.beginIO(sb)
	if !ok {
		sb.flags &^= sbSendfile
		sb.mu.Unlock()
		hdr.FreeM()
		return 0, so.opError("sendfile", net.ErrClosed)
	}

	total, werr := so.sendfile(rc, hdr, off, n)

	so.endIO(sb, ev)
	sb.flags &^= sbSendfile
	sb.wakeup() // writers waiting behind SendFile
	sb.mu.Unlock()
	if werr != nil {
		if e := errnoOf(werr); e != 0 {
			werr = e
		}
		return total, so.opError("sendfile", werr)
	}
	return total, nil
}

// sendfileCalls counts sendfile(2) calls while countSplices is set, for the tests.
var sendfileCalls atomic.Int64

// sendfile is SendFile's part outside the lock, with the send sockbuf busy (sbSendfile)
// and a reference on so.fd held: it corks the socket, writes hdr (and frees it), sends n
// bytes of the file from off, and uncorks. When the kernel is full it waits for output
// to see room (output wakes a busy sockbuf with sbSendfile set).
func (so *Socket) sendfile(rc syscall.RawConn, hdr *mbuf.Mbuf, off, n int64) (int64, error) {
	unix.SetsockoptInt(so.fd, unix.IPPROTO_TCP, unix.TCP_CORK, 1)
	defer unix.SetsockoptInt(so.fd, unix.IPPROTO_TCP, unix.TCP_CORK, 0)
	var total int64
	var werr error
	for m := hdr; m != nil && werr == nil; {
		bufs := m.AppendBuffers(nil)
		if len(bufs) == 0 {
			break
		}
		ev := so.events.Load()
		k, err := sysWritev(so.fd, bufs)
		if k > 0 {
			total += int64(k)
			m.Adj(k)
			for m != nil && m.Len() == 0 {
				m = m.Free()
			}
			hdr = m
		}
		switch {
		case err == unix.EAGAIN:
			werr = so.waitSendfile(ev)
		case err != nil:
			werr = err
		}
	}
	hdr.FreeM()
	var sent int64
	for sent < n && werr == nil {
		var k int
		var err error
		ev := so.events.Load()
		if countSplices {
			sendfileCalls.Add(1)
		}
		cerr := rc.Control(func(ffd uintptr) {
			k, err = eintr.Retry(func() (int, error) {
				return unix.Sendfile(so.fd, int(ffd), &off, int(min(n-sent, 1<<30)))
			})
		})
		if cerr != nil {
			werr = cerr
			break
		}
		if k > 0 {
			sent += int64(k)
			total += int64(k)
		}
		switch {
		case err == unix.EAGAIN:
			werr = so.waitSendfile(ev)
		case err != nil:
			werr = err
		case k == 0:
			n = sent // the file ended
		}
	}
	return total, werr
}

// waitSendfile waits, for SendFile, until the kernel socket may have room: an EPOLLOUT
// since ev, or output's wakeup of the busy sockbuf; or the write deadline passes or the
// socket closes (the error).
func (so *Socket) waitSendfile(ev uint32) error {
	sb := &so.snd
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return so.waitIO(sb, ev, so.dl.wr.Load())
}
