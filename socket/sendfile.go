package socket

import (
	"net"
	"os"
	"syscall"

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
// file shorter than off+n ends it early without error.
func (so *Socket) SendFile(f *os.File, off, n int64, hdr *mbuf.Mbuf) (int64, error) {
	if !so.ni.tcp() {
		hdr.FreeM()
		return 0, so.opError("sendfile", syscall.EOPNOTSUPP)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		hdr.FreeM()
		return 0, so.opError("sendfile", err)
	}
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
	sb.flags |= sbBusy | sbSendfile
	unix.SetsockoptInt(so.fd, unix.IPPROTO_TCP, unix.TCP_CORK, 1)

	var total int64
	var werr error
	// waitOut waits for the kernel to take more; sb.mu is held.
	waitOut := func() error {
		if sb.flags&sbClosed != 0 {
			return net.ErrClosed
		}
		d := so.dl.wr.Load()
		if d.expired() {
			return errTimeout
		}
		sb.wait(d)
		if sb.flags&sbClosed != 0 {
			return net.ErrClosed
		}
		return nil
	}
	for m := hdr; m != nil && werr == nil; {
		bufs := appendBuffers(nil, m)
		if len(bufs) == 0 {
			break
		}
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
			werr = waitOut()
		case err != nil:
			werr = err
		}
	}
	hdr.FreeM()
	var sent int64
	for sent < n && werr == nil {
		var k int
		var err error
		cerr := rc.Control(func(ffd uintptr) {
			for {
				k, err = unix.Sendfile(so.fd, int(ffd), &off, int(min(n-sent, 1<<30)))
				if err != unix.EINTR {
					return
				}
			}
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
			werr = waitOut()
		case err != nil:
			werr = err
		case k == 0:
			n = sent // the file ended
		}
	}
	unix.SetsockoptInt(so.fd, unix.IPPROTO_TCP, unix.TCP_CORK, 0)
	sb.flags &^= sbBusy | sbSendfile
	if sb.cc > 0 {
		so.w.Add(&so.outTask)
	}
	sb.wakeup()
	sb.mu.Unlock()
	if werr != nil {
		if e := errnoOf(werr); e != 0 {
			werr = e
		}
		return total, so.opError("sendfile", werr)
	}
	return total, nil
}
